"""Parallel evaluation: local worker processes, a real Dask LocalCluster, and faults that must
not end a run (a worker that crashes, hangs, or raises)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from search.config import RunConfig
from search.run import run
from search.worker import FAULT_ENV

SMALL = dict(target="exp2", domain=(0.0, 1.0), population_size=12, tournament_size=4, n_points=256,
             max_ops=6, time_limit=240.0, seed=2)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


def _events(rd) -> list[dict]:
    return [json.loads(line) for line in (rd / "events.jsonl").read_text().splitlines()]


def test_two_local_workers_finish_the_budget(tmp_path):
    res = run(RunConfig(**SMALL, budget_evals=80, workers=2, run_dir=str(tmp_path / "r")), quiet=True)
    assert res.stopped == "budget"
    assert res.candidates == 80
    assert res.front and all(e.error < float("inf") for e in res.front)


def test_faults_do_not_stop_the_run(tmp_path, monkeypatch):
    # caching off: every candidate is evaluated, so the injected ids are sure to be reached
    monkeypatch.setenv(FAULT_ENV, "crash:3,hang:5,raise:7")
    rd = tmp_path / "faults"
    res = run(RunConfig(**SMALL, budget_evals=40, workers=2, caching=False, eval_timeout=3.0, run_dir=str(rd)), quiet=True)
    assert res.stopped == "budget" and res.candidates == 40
    events = _events(rd)
    failed = {e["id"]: e["why"] for e in events if e["event"] == "candidate_failed"}
    assert "worker failed" in failed[3]  # crashed twice (retried once): scored as failed
    assert failed[5] == "evaluation timed out"
    assert "injected fault" in failed[7]
    assert any(e["event"] == "timeout" and e["ids"] == [5] for e in events)
    # only the guilty candidates failed: the innocent batch that shared the dead pool was retried
    assert set(failed) == {3, 5, 7}
    log = (rd / "run.log").read_text()
    # the worker's own warning reached the one run log through multiprocessing-logging's queue
    assert "SpawnProcess" in log and "injected fault for candidate 7" in log


def test_dask_local_cluster(tmp_path):
    pytest.importorskip("distributed")
    rd = tmp_path / "dask"
    res = run(RunConfig(**SMALL, budget_evals=48, dask_local=2, run_dir=str(rd)), quiet=True)
    assert res.stopped == "budget" and res.candidates == 48
    assert res.front
    start = _events(rd)[0]
    assert start["event"] == "start" and start["config"]["dask_local"] == 2


def test_more_candidates_in_flight_than_the_population_holds():
    """With many workers, every member can be in flight before any result is back: asking
    then must not select from an empty population."""
    from fitness.problem import Problem
    from search.engine import Engine

    cfg = RunConfig(**{**SMALL, "population_size": 4, "tournament_size": 2}, budget_evals=100, workers=1,
                    run_dir="unused")
    engine = Engine(cfg, Problem.build(cfg.problem_spec))
    asked = engine.ask(10)
    assert len(asked) + engine.state.n_hits == 10


def _session(sid: int) -> list[int]:
    """Processes of a session (the driver started its own): survivors of a killed driver keep it."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.getsid(int(d)) == sid:
                    out.append(int(d))
            except OSError:
                pass
    return out


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to list a session's processes")
def test_sigkill_of_the_driver_leaves_no_process_behind(tmp_path):
    """Workers and the resource tracker notice their driver's death and exit within seconds."""
    env = dict(os.environ, AUTONUMERICS_CACHE=os.environ.get("AUTONUMERICS_CACHE", str(tmp_path / "cache")))
    proc = subprocess.Popen([sys.executable, "-c", "from search.cli import main; main()", "run", "--target", "exp2",
                             "--domain", "0", "1", "--workers", "2", "--time-limit", "120", "--quiet",
                             "--run-dir", str(tmp_path / "r")], start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(_session(proc.pid)) < 3:  # the driver and both workers
        time.sleep(0.2)
    assert len(_session(proc.pid)) >= 3, "the workers never started"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.time()
    while _session(proc.pid) and time.time() - t0 < 8:
        time.sleep(0.2)
    survivors = _session(proc.pid)
    for pid in survivors:  # do not leave them running whatever the outcome
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"{len(survivors)} process(es) outlived the driver"


# --- island epochs: the workers breed ---------------------------------------------------------------
def _state(rd) -> dict:
    st = json.loads((rd / "checkpoint.json").read_text())["state"]
    st.pop("elapsed")
    st["history"] = [h[:1] + h[2:] for h in st["history"]]
    return st


def test_epochs_with_one_worker_are_deterministic(tmp_path):
    cfg = dict(SMALL, budget_evals=96, workers=1, epoch_size=16, islands=3)
    runs = [run(RunConfig(**cfg, run_dir=str(tmp_path / name)), quiet=True) for name in ("a", "b")]
    other = run(RunConfig(**{**cfg, "seed": 9}, run_dir=str(tmp_path / "c")), quiet=True)
    assert runs[0].candidates == runs[1].candidates == 96
    a, b, c = (_state(tmp_path / n) for n in "abc")
    assert a == b and a["islands"] != c["islands"]
    assert all(isl["n_told"] > 0 for isl in a["islands"])  # every island bred
    assert a["n_evaluated"] + a["n_hits"] == 96 and other.stopped == "budget"
    log = (tmp_path / "a" / "run.log").read_text()
    assert "epochs" in log


def test_epochs_on_two_workers_and_resume(tmp_path, capsys):
    from search.cli import main

    rd = tmp_path / "r"
    res = run(RunConfig(**SMALL, budget_evals=64, workers=2, epoch_size=16, run_dir=str(rd)), quiet=True)
    assert res.stopped == "budget" and res.candidates == 64 and res.front
    st = _state(rd)
    assert len(st["islands"]) == 4  # two per worker for a new run in epoch mode
    assert not st["pending"] and st["n_evaluated"] > 0
    with pytest.raises(SystemExit) as info:
        main(["resume", str(rd), "--budget-evals", "96", "--quiet"])
    assert info.value.code == 0 and "96 candidates" in capsys.readouterr().out


def test_an_epoch_that_kills_its_worker_restarts_its_island(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "crash:20,raise:40")
    rd = tmp_path / "r"
    res = run(RunConfig(**SMALL, budget_evals=96, workers=2, epoch_size=16, caching=False, run_dir=str(rd)),
              quiet=True)
    assert res.stopped == "budget"
    events = _events(rd)
    lost = [e for e in events if e["event"] == "epoch_failed"]
    assert len(lost) == 1 and lost[0]["ids"][0] <= 20 <= lost[0]["ids"][1]
    assert any(e["event"] == "restart" and e["why"] == "its epoch failed twice" for e in events)
    failed = {e["id"]: e["why"] for e in events if e["event"] == "candidate_failed"}
    assert "injected fault" in failed[40]  # an exception is one failed candidate, inside its epoch


def test_a_candidate_mode_run_resumes_in_epoch_mode(tmp_path):
    """Resumed with epochs (more workers, or --epoch-size), a run drops the candidates its
    candidate-mode session left pending and breeds on."""
    from search.run import resume

    rd = tmp_path / "r"
    run(RunConfig(**SMALL, budget_evals=40, workers=1, islands=2, run_dir=str(rd)), quiet=True)
    path = rd / "checkpoint.json"
    data = json.loads(path.read_text())
    st = data["state"]
    st["pending"] = [{"id": st["next_id"], "program": "v1 = param 0.5\nv2 = fma x v1 v1\nreturn v2\n",
                      "parent": None, "mutation": "random", "hashes": ["s-left"], "seed": 1, "island": 0, "cost": 1.0}]
    st["next_id"] += 1
    path.write_text(json.dumps(data))
    (rd / "checkpoint.json.bak").unlink(missing_ok=True)
    cfg = json.loads(path.read_text())["config"]
    cfg["epoch_size"] = 16
    data["config"] = cfg
    path.write_text(json.dumps(data))
    res = resume(rd, budget_evals=72, quiet=True)
    assert res.stopped == "budget" and res.candidates == 72
    assert not _state(rd)["pending"]
