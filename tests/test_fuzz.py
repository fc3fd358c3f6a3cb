"""Bad input never crashes the tool: generated configs, corrupted run directories and random
command lines end either in success or in one line ``error: ...`` with exit status 2, and a
failed command changes no file of an existing run.

Bounded in the default run; ``pytest --hypothesis-profile=long tests/test_fuzz.py`` runs more.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from search.cli import main
from search.config import ConfigError, RunConfig
from search.run import run

KEYS = ["target", "domain", "dtype", "mode", "max_ops", "ops", "population_size", "tournament_size",
        "budget_evals", "time_limit", "target_error", "seed", "workers", "n_points", "cost",
        "checkpoint_every", "eval_timeout", "frame", "frame_evolve", "no_such_key", "run-dir"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=12), st.lists(st.floats(-10, 10), max_size=3),
                   st.lists(st.text(max_size=5), max_size=3))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_generated_configs_validate_or_raise_config_error(data):
    try:
        RunConfig.from_dict(data)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)


def _cli(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    return info.value.code, err


@given(text=st.text(max_size=200))
def test_generated_toml_files(tmp_path_factory, capsys, text):
    d = tmp_path_factory.mktemp("toml")
    cfg = d / "c.toml"
    cfg.write_text(text + "\nbudget_evals = 0\n", encoding="utf-8", errors="replace")
    code, err = _cli(["run", "--config", str(cfg), "--run-dir", str(d / "r"), "--quiet"], capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err


@given(args=st.lists(st.sampled_from(["run", "resume", "report", "export", "verify", "targets", "--target",
                                      "exp2", "nope", "--domain", "0", "1", "-1", "nan", "inf", "--budget-evals",
                                      "0", "--workers", "-2", "--lang", "fortran", "--max-ulp", "--config",
                                      "/nonexistent", "--mode", "imaginary", "--ops", "add,pow", "--bogus",
                                      "--frame", "log", "--frame-evolve"]),
                    min_size=1, max_size=7))
def test_random_command_lines(tmp_path_factory, capsys, args):
    d = tmp_path_factory.mktemp("cli")
    argv = [a.replace("/nonexistent", str(d / "missing")) for a in args]
    if argv[0] == "run":
        argv += ["--budget-evals", "0"]  # never start a real search: budget 0 is itself an error
    code, err = _cli(argv, capsys)
    assert "Traceback" not in err
    if code != 0:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (argv, err)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    rd = tmp_path_factory.mktemp("base") / "run"
    import os

    os.environ.setdefault("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))
    run(RunConfig(target="exp2", domain=(0.0, 1.0), budget_evals=40, population_size=8, tournament_size=4,
                  n_points=256, workers=1, seed=4, run_dir=str(rd)), quiet=True)
    return rd


def _digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


FILES = ["checkpoint.json", "checkpoint.json.bak", "config.json", "front.json", "events.jsonl"]


@given(name=st.sampled_from(FILES), how=st.sampled_from(["delete", "truncate", "flip", "retype"]),
       where=st.floats(0, 1), command=st.sampled_from(["report", "export", "resume", "verify"]))
def test_corrupted_run_directories(base_run, tmp_path_factory, capsys, name, how, where, command):
    rd = tmp_path_factory.mktemp("corrupt") / "run"
    shutil.copytree(base_run, rd)
    target = rd / name
    if target.exists():
        data = target.read_bytes()
        cut = int(where * len(data))
        if how == "delete":
            target.unlink()
        elif how == "truncate":
            target.write_bytes(data[:cut])
        elif how == "flip" and data:
            i = min(cut, len(data) - 1)
            target.write_bytes(data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:])
        elif how == "retype" and name.endswith(".json"):
            try:
                obj = json.loads(data)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and obj:
                key = sorted(obj)[int(where * (len(obj) - 1))]
                obj[key] = ["not", "what", "you", "expect"]
                target.write_text(json.dumps(obj))
    before = _digest(rd)
    argv = {"report": ["report", str(rd)],
            "export": ["export", str(rd), "--max-ulp", "1e12", "--out", str(rd.parent / "out.c"), "--quiet"],
            "resume": ["resume", str(rd), "--budget-evals", "41", "--quiet"],
            "verify": ["verify", str(rd), "--quiet"]}[command]
    code, err = _cli(argv, capsys)
    assert "Traceback" not in err
    if code != 0:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (name, how, command, err)
        assert _digest(rd) == before, "a failed command changed the run directory"
