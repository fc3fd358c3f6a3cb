"""A real Dask cluster, as the README's multi-machine recipe starts it: a ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1, a search through ``--scheduler``, one worker killed in the
middle of it; the run goes on, and report and resume work afterwards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([shutil.which("dask"), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _cli(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from search.cli import main; main()", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _stop(procs) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait()


def test_search_on_a_real_cluster_survives_a_lost_worker(tmp_path):
    if shutil.which("dask") is None:
        pytest.skip("the dask command is not installed")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               AUTONUMERICS_CACHE=os.environ.get("AUTONUMERICS_CACHE", str(tmp_path / "cache")))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", env=env)]
    try:
        workers = [_dask("worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                         "--name", f"w{i}", env=env) for i in range(2)]
        procs += workers
        rd = tmp_path / "run"
        run = subprocess.Popen([sys.executable, "-c", "from search.cli import main; main()", "run", "--target", "exp2",
                                "--domain", "0", "1", "--scheduler", address, "--time-limit", "14",
                                "--checkpoint-every", "2", "--run-dir", str(rd), "--quiet"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(run)
        # wait until candidates come back from the cluster, then kill one worker
        deadline = time.time() + 60
        while time.time() < deadline and not (rd / "checkpoint.json").exists():
            time.sleep(0.2)
        time.sleep(5)
        os.killpg(workers[0].pid, signal.SIGKILL)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert "stopped (time limit of 14 s reached)" in out
        events = [json.loads(line) for line in (rd / "events.jsonl").read_text().splitlines()]
        stop = events[-1]
        assert stop["event"] == "stop" and stop["candidates"] > 50
        rep = _cli("report", str(rd), env=env)
        assert rep.returncode == 0 and "ops" in rep.stdout
        # a budget, not a time limit: on a slow host the resumed session's start-up once took all of 8 s
        again = _cli("resume", str(rd), "--budget-evals", str(stop["candidates"] + 20), "--time-limit", "120",
                     "--quiet", env=env)
        assert again.returncode == 0, again.stderr
        assert json.loads((rd / "events.jsonl").read_text().splitlines()[-1])["candidates"] > stop["candidates"]
    finally:
        _stop(procs)
