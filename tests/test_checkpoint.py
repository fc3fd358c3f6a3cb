"""Checkpoints and resume: atomic, versioned, problem-checked, and bit-exact for one worker."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search import checkpoint
from search.config import ConfigError, RunConfig
from search.run import resume, run

SMALL = dict(target="exp2", domain=(0.0, 1.0), population_size=12, tournament_size=4, n_points=256,
             max_ops=6, time_limit=300.0, workers=1, seed=3)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


def _state(run_dir: Path) -> dict:
    """The checkpointed search state, less wall-clock fields."""
    data = json.loads((run_dir / checkpoint.NAME).read_text())
    st = data["state"]
    st.pop("elapsed")
    st["history"] = [h[:1] + h[2:] for h in st["history"]]  # drop elapsed seconds
    return st


def test_resume_is_bit_exact(tmp_path):
    whole = tmp_path / "whole"
    run(RunConfig(**SMALL, budget_evals=160, run_dir=str(whole)), quiet=True)
    parts = tmp_path / "parts"
    run(RunConfig(**SMALL, budget_evals=70, run_dir=str(parts)), quiet=True)
    resume(parts, budget_evals=110, quiet=True)
    resume(parts, budget_evals=160, quiet=True)
    a, b = _state(whole), _state(parts)
    assert a["n_told"] == b["n_told"] == 160
    assert a["islands"] == b["islands"]
    assert a["best_per_cost"] == b["best_per_cost"]
    assert a["cache"] == b["cache"]
    assert a["rng_state"] == b["rng_state"]
    assert a == b


def test_real_mode_resume_is_bit_exact_with_queued_expansions(tmp_path):
    """Real mode queues template growths of good programs; the queue is part of the exact state."""
    real = dict(SMALL, mode="real", dtype="float64", n_points=128)
    whole = tmp_path / "whole"
    run(RunConfig(**real, budget_evals=90, run_dir=str(whole)), quiet=True)
    parts = tmp_path / "parts"
    run(RunConfig(**real, budget_evals=40, run_dir=str(parts)), quiet=True)
    islands = json.loads((parts / checkpoint.NAME).read_text())["state"]["islands"]
    assert any(isl["expansions"] for isl in islands)  # resumed mid-queue
    resume(parts, budget_evals=90, quiet=True)
    a, b = _state(whole), _state(parts)
    assert any(m["mutation"].startswith("grow_") for isl in a["islands"] for m in isl["population"])
    assert a == b


def test_checkpoint_keeps_backup_and_falls_back(tmp_path, capsys):
    rd = tmp_path / "r"
    run(RunConfig(**SMALL, budget_evals=30, run_dir=str(rd)), quiet=True)
    resume(rd, budget_evals=40, quiet=True)
    assert (rd / "checkpoint.json.bak").exists()
    (rd / "checkpoint.json").write_text('{"format_version": 1, "sta')  # truncated
    warnings = []
    data = checkpoint.load(rd, warn=warnings.append)
    assert data["state"]["n_told"] >= 30
    assert "backup" in warnings[0]
    resume(rd, budget_evals=50, quiet=True)  # resumes from the backup
    assert json.loads((rd / "checkpoint.json").read_text())["state"]["n_told"] == 50


def test_resume_refuses_another_problem(tmp_path):
    rd = tmp_path / "r"
    run(RunConfig(**SMALL, budget_evals=20, run_dir=str(rd)), quiet=True)
    path = rd / "checkpoint.json"
    data = json.loads(path.read_text())
    data["problem_hash"] = "0" * 24
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="another problem"):
        resume(rd, budget_evals=30, quiet=True)


def _run_with_format_version(tmp_path: Path, version: int) -> Path:
    """A small run whose checkpoints (and backup) claim another format version."""
    rd = tmp_path / "r"
    run(RunConfig(**SMALL, budget_evals=20, run_dir=str(rd)), quiet=True)
    for name in ("checkpoint.json", "checkpoint.json.bak"):
        p = rd / name
        if p.exists():
            data = json.loads(p.read_text())
            data["format_version"] = version
            p.write_text(json.dumps(data))
    return rd


def test_resume_refuses_unknown_format_version(tmp_path):
    rd = _run_with_format_version(tmp_path, 99)
    with pytest.raises(ConfigError, match="format version 99"):
        resume(rd, quiet=True)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from search.cli import main; main()", *args]


def _events(rd) -> list[dict]:
    """The run's events; a line a kill cut short is left out."""
    out = []
    for line in (rd / "events.jsonl").read_text().splitlines() if (rd / "events.jsonl").exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def test_sigkill_at_random_moments_loses_at_most_one_checkpoint_interval(tmp_path):
    """Kill a running search with SIGKILL several times, resume each time: every checkpoint
    stays readable, at most ``--checkpoint-every`` seconds of work are lost, and the run still
    ends exactly where an uninterrupted run ends."""
    every = 1.0
    budget = 600
    common = ["--target", "exp2", "--domain", "0", "1", "--population-size", "12", "--tournament-size", "4",
              "--max-ops", "6", "--seed", "5", "--workers", "1", "--quiet"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    rd = tmp_path / "killed"
    rng = random.Random(1)
    # n_points is a config-file option only; write it once
    cfg = tmp_path / "c.toml"
    cfg.write_text("n_points = 256\n")
    kills = 0
    for attempt in range(12):
        if (rd / "checkpoint.json").exists():
            cmd = _cli("resume", str(rd), "--quiet")
        else:
            cmd = _cli("run", "--config", str(cfg), *common, "--budget-evals", str(budget),
                       "--checkpoint-every", str(every), "--run-dir", str(rd))
        started = time.time()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        delay = rng.uniform(1.5, 3.5)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = time.time()
            kills += 1
            ck = rd / "checkpoint.json"
            if ck.exists():
                data = checkpoint.load(rd, warn=lambda m: None)  # never unreadable
                assert data["format_version"] == checkpoint.FORMAT_VERSION
                # the work lost, since the newest checkpoint or since this process began searching
                # (its start or resume event; killed before that, during start-up, it lost nothing),
                # is at most one interval (+ one evaluation)
                began = [e["t"] for e in _events(rd) if e["event"] in ("start", "resume") and e["t"] >= started - 0.01]
                if began:
                    assert killed_at - max(ck.stat().st_mtime, began[-1]) <= every + 1.5
            continue
        assert proc.returncode == 0, proc.stderr.read().decode()
        break
    else:  # twelve kills left it unfinished (start-up takes most of an attempt on a slow host): finish it unkilled
        subprocess.run(_cli("resume", str(rd), "--quiet"), env=env, check=True, stdout=subprocess.DEVNULL)
    assert kills >= 2, "the search finished before it could be killed twice: raise the budget"
    final = _state(rd)
    assert final["n_told"] == budget

    whole = tmp_path / "whole"
    subprocess.run(_cli("run", "--config", str(cfg), *common, "--budget-evals", str(budget),
                        "--run-dir", str(whole)), env=env, check=True, stdout=subprocess.DEVNULL)
    ref = _state(whole)
    assert final["islands"] == ref["islands"]
    assert final["best_per_cost"] == ref["best_per_cost"]


def test_report_and_export_refuse_another_checkpoint_format(tmp_path, capsys):
    """A run directory written by another version of the checkpoint format is refused with a
    clear one-line message by every command that reads it (this version reads format 2 only)."""
    from search.cli import main

    rd = _run_with_format_version(tmp_path, 0)
    for argv in (["report", str(rd)], ["export", str(rd), "--max-ulp", "1e12", "--quiet"], ["resume", str(rd)]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1
        assert "format version 0" in err[0] and f"reads version {checkpoint.FORMAT_VERSION}" in err[0]
