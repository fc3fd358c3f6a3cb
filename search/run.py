"""Running a search: the driver loop around the engine, the run directory, and resume.

The driver owns the engine (population, front, cache, generator) and keeps every worker busy:
whenever a batch returns, its results are told to the engine and a new batch is asked for and
sent (asynchronous evolution: no worker waits for a generation).  It writes a checkpoint every
``checkpoint_every`` seconds, on SIGINT/SIGTERM and at the end; a worker that raises, dies or
hangs past ``eval_timeout`` costs only its candidates, which are scored as failed.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from fitness.atomic import atomic_write_text
from fitness.problem import Problem

from . import checkpoint
from .config import ConfigError, RunConfig
from .confirm import dense_check
from .engine import Engine
from .executors import make_executor
from .progress import Progress
from .results import RunDirError, read_checkpoint
from .records import FrontEntry
from .worker import init_worker

log = logging.getLogger("autonumerics")


@dataclass(frozen=True)
class RunResult:
    run_dir: str
    front: list[FrontEntry]
    candidates: int
    evaluated: int
    hit_rate: float
    elapsed: float
    stopped: str  # "budget", "time", "target", "interrupted", "exhausted" (see ``stop_text``)
    why: str = ""  # the reason in words


class RunDir:
    """The files of one run: config, checkpoint (+ backup), front, event log, log, exports."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    config = property(lambda self: self.path / "config.json")
    front = property(lambda self: self.path / "front.json")
    events = property(lambda self: self.path / "events.jsonl")
    log = property(lambda self: self.path / "run.log")
    exports = property(lambda self: self.path / "exports")

    def create(self) -> None:
        if (self.path / checkpoint.NAME).exists():
            raise ConfigError(f"run directory {self.path} already holds a run; use 'autonumerics resume {self.path}' or a new --run-dir")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"cannot write to run directory {self.path}: {exc.strerror or exc}") from None

    def event(self, kind: str, **fields) -> None:
        with open(self.events, "a", encoding="utf-8") as f:
            f.write(json.dumps({"t": round(time.time(), 3), "event": kind, **fields}) + "\n")


def default_run_dir(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{config.target.replace(':', '_')}-{config.dtype}-s{config.seed}-{stamp}")


def _setup_logging(run_dir: RunDir) -> logging.Handler:
    """One run log for the driver and every local worker (multiprocessing-logging's queue)."""
    from multiprocessing_logging import MultiProcessingHandler

    file_handler = logging.FileHandler(run_dir.log, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(processName)s %(name)s %(levelname)s %(message)s"))
    handler = MultiProcessingHandler("autonumerics-run-log", sub_handler=file_handler)
    # Workers are spawned (JAX and fork deadlock), and a queue made in the default fork context
    # cannot be handed to them: give the handler a spawn-context queue.  Its receiving thread
    # reads ``handler.queue`` afresh on every poll, so it moves to the new queue within 0.2 s.
    handler.queue = multiprocessing.get_context("spawn").Queue(-1)
    logger = logging.getLogger("autonumerics")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def _write_front(rd: RunDir, engine: Engine) -> None:
    atomic_write_text(rd.front, json.dumps({"config": engine.config.to_dict(), "front": [e.to_dict() for e in engine.front()]}, indent=1))


def _save(rd: RunDir, engine: Engine, problem_hash: str) -> None:
    """Checkpoint the engine; candidates in flight are in its state's ``pending`` list."""
    st = engine.state
    st.rng_state = engine.rng.bit_generator.state
    payload = {"config": engine.config.to_dict(), "problem_hash": problem_hash, "state": st.to_dict()}
    checkpoint.save(rd.path, payload)
    _write_front(rd, engine)


def run(config: RunConfig, quiet: bool = False) -> RunResult:
    """Start a new search in ``config.run_dir`` (created) and run it to a budget."""
    if not config.run_dir:
        config = config.replace(run_dir=default_run_dir(config))
    rd = RunDir(config.run_dir)
    if config.mode == "cr" and not quiet:  # the one long step before the progress lines start
        print(f"cr mode: finding the hard inputs of [{config.domain[0]:g}, {config.domain[1]:g}] (every float32 "
              "there, about a minute per 2^30; cached for later runs)", file=sys.stderr, flush=True)
    problem = _build_problem(config)  # before creating anything: a bad problem leaves no trace
    rd.create()
    atomic_write_text(rd.config, json.dumps(config.to_dict(), indent=1))
    engine = Engine(config, problem)
    _save(rd, engine, problem.problem_hash(config.ops))  # resumable from the first moment
    rd.event("start", config=config.to_dict())
    return _drive(engine, rd, problem, quiet, session_limit=config.time_limit)


def resume(run_dir: str | os.PathLike, budget_evals: int | None = None, time_limit: float | None = None,
           workers: int | None = None, quiet: bool = False, target: str | None = None) -> RunResult:
    """Continue a run from its checkpoint; refuses a checkpoint of another problem.

    A run directory's word is never enough to import code: a run whose target is a user
    ``module:function`` resumes only when ``target`` names that same function again.
    """
    rd = RunDir(run_dir)
    try:
        ck = read_checkpoint(rd.path, warn=lambda m: print(m, file=sys.stderr))
    except RunDirError as exc:
        raise ConfigError(str(exc)) from None
    config, state = ck.config, ck.state
    check_named_target(config, target, f"autonumerics resume {rd.path}")
    changes = {"run_dir": str(rd.path), "resolve_target": True}
    if budget_evals is not None:
        changes["budget_evals"] = budget_evals
    if time_limit is not None:
        changes["time_limit"] = time_limit
    if workers is not None:
        changes["workers"] = workers
    try:
        config = config.replace(**changes)
    except ConfigError as exc:
        raise ConfigError(f"cannot resume with these options: {exc}") from None
    problem = _build_problem(config)
    expected = problem.problem_hash(config.ops)
    if ck.problem_hash != expected:
        raise ConfigError(
            f"checkpoint in {rd.path} belongs to another problem (hash {ck.problem_hash}, this version "
            f"computes {expected} for its config): refusing to resume"
        )
    engine = Engine(config, problem, state)
    rd.event("resume", candidates=state.n_told, budget_evals=config.budget_evals)
    return _drive(engine, rd, problem, quiet, session_limit=config.time_limit)


def check_named_target(config: RunConfig, named: str | None, command: str) -> None:
    """A run directory names its target; a user target is used only when the user names it too.

    Raises ConfigError (one line, with the command to type) when the run's target is a user
    ``module:function`` that ``named`` does not repeat, or when ``named`` is another target.
    """
    from fitness.targets import is_user_target

    if named is not None and named != config.target:
        raise ConfigError(f"--target {named} is not this run's target ({config.target})")
    if named is None and is_user_target(config.target):
        raise ConfigError(f"this run's target is the user function {config.target}, which is imported only when you "
                          f"name it: {command} --target {config.target}")


def _build_problem(config: RunConfig) -> Problem:
    try:
        return Problem.build(config.problem_spec)
    except ValueError as exc:  # the target is not finite somewhere in the domain, for example
        raise ConfigError(str(exc)) from None


class _StopFlag:
    def __init__(self):
        self.reason: str | None = None

    def __call__(self, signum, frame):  # signal handler: finish the step in hand, then stop
        self.reason = "interrupted"


def _drive(engine: Engine, rd: RunDir, problem: Problem, quiet: bool, session_limit: float) -> RunResult:
    """The loop: keep the workers busy with the scheduler's work until a budget ends the run.

    Faults: work that was running when a worker died is retried once, alone on the executor
    ("quarantine"), so that only work that kills its worker when alone is given up (the
    scheduler scores its candidates as failed, or restarts its island); work that runs past
    ``eval_timeout`` per candidate is given up and the pool restarted.
    """
    config = engine.config
    handler = _setup_logging(rd)
    problem_hash = problem.problem_hash(config.ops)
    spec_json = json.dumps(problem.spec.to_dict(), sort_keys=True)
    executor = make_executor(config.workers, config.scheduler, config.dask_local,
                             initializer=init_worker, initargs=(handler.queue,))
    sched = _scheduler(engine, rd, executor, spec_json)
    stop = _StopFlag()
    old_handlers = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old_handlers[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: the caller handles signals
            pass
    progress = Progress(engine, quiet=quiet)
    start = time.monotonic()
    elapsed0 = engine.state.elapsed
    last_ckpt = start
    in_flight: dict[cf.Future, tuple[object, float, int]] = {}  # work, sent at, tries
    # two tasks per worker process keep every worker busy while the driver handles a result;
    # in-process (one worker) evaluation stays strictly sequential, hence deterministic
    max_in_flight = 1 if executor.name == "inline" else 2 * executor.workers
    log.info("run %s: %s on [%s, %s] %s, %s worker(s) (%s), %s", rd.path, config.target, *config.domain,
             config.dtype, executor.workers, executor.name, sched.name)

    def submit(work, tries: int = 0) -> None:
        fn, args = sched.task(work)
        in_flight[executor.submit(fn, *args)] = (work, time.monotonic(), tries)

    quarantine: list = []

    def resubmit_running() -> None:
        """After a restart every running task is lost: send them again."""
        tasks = [(w, n) for w, _, n in in_flight.values()]
        in_flight.clear()
        for work, tries in tasks:
            submit(work, tries)

    reason = "budget"
    try:
        for work in sched.initial():
            submit(work)
        while True:
            engine.state.elapsed = elapsed0 + (time.monotonic() - start)
            if stop.reason:
                reason = stop.reason
                break
            if time.monotonic() - start >= session_limit:
                reason = "time"
                break
            if quarantine:
                if not in_flight:
                    submit(quarantine.pop(0), tries=1)
            else:
                while len(in_flight) < max_in_flight and not any(n for _w, _t, n in in_flight.values()):
                    work = sched.next_work()
                    if work is None:
                        break
                    submit(work)
            if not in_flight:
                reason = "target" if engine.reached_target() else "exhausted" if engine.exhausted else "budget"
                break
            wait_s = max(0.01, min(0.25, session_limit - (time.monotonic() - start)))
            done, _ = cf.wait(list(in_flight), timeout=wait_s, return_when=cf.FIRST_COMPLETED)
            finished: list = []
            broken = False
            for fut in done:
                work, _t, tries = in_flight.pop(fut)
                try:
                    finished.append((work, fut.result()))
                except Exception as exc:  # a worker died (or the cluster lost it)
                    broken = True
                    why = f"{type(exc).__name__}: {exc}"
                    # a dead pool fails every task it held: retry each alone, so that only the
                    # work that really kills its worker is given up
                    if tries == 0:
                        quarantine.append(work)
                        log.warning("worker lost while running %s (%s); retrying alone", sched.describe(work), why)
                        continue
                    rd.event("worker_failed", **sched.describe(work), why=why)
                    log.warning("worker failed again on %s, alone: %s", sched.describe(work), why)
                    finished.append((work, _Lost(f"worker failed: {type(exc).__name__}")))
            now = time.monotonic()
            hung = [f for f, (w, t, _n) in in_flight.items() if now - t > config.eval_timeout * sched.size(w)]
            for fut in hung:
                work, _t, _n = in_flight.pop(fut)
                rd.event("timeout", **sched.describe(work), seconds=config.eval_timeout)
                log.warning("%s exceeded the %.0f s evaluation timeout", sched.describe(work), config.eval_timeout)
                finished.append((work, _Lost("evaluation timed out")))
            if broken or hung:
                executor.restart()
                for fut, (work, _t, tries) in list(in_flight.items()):
                    if broken and tries == 0:  # lost with the pool: to quarantine as well
                        quarantine.append(work)
                        del in_flight[fut]
                resubmit_running()
            for work, out in finished:
                if isinstance(out, _Lost):
                    sched.lost(work, out.why)
                else:
                    sched.done(work, out)
            dense_checks(rd, engine, config)
            progress.update()
            if time.monotonic() - last_ckpt >= config.checkpoint_every:
                _save(rd, engine, problem_hash)
                rd.event("checkpoint", candidates=engine.state.n_told)
                last_ckpt = time.monotonic()
    finally:
        engine.state.elapsed = elapsed0 + (time.monotonic() - start)
        _save(rd, engine, problem_hash)
        executor.shutdown() if reason != "interrupted" else _quick_shutdown(executor)
        for sig, old in old_handlers.items():
            signal.signal(sig, old)
        progress.finish()
        rd.event("stop", reason=reason, why=stop_text(reason, config), candidates=engine.state.n_told,
                 evaluated=engine.state.n_evaluated, hit_rate=engine.hit_rate, hits=dict(engine.state.hits),
                 restarts=engine.state.restarts, elapsed=engine.state.elapsed)
        log.info("stopped (%s) after %d candidates", stop_text(reason, config), engine.state.n_told)
        logging.getLogger("autonumerics").removeHandler(handler)
        handler.close()
    return RunResult(str(rd.path), engine.front(), engine.state.n_told, engine.state.n_evaluated,
                     engine.hit_rate, engine.state.elapsed, reason, stop_text(reason, config))


class _Lost:
    """Work given up (its worker died twice, or it timed out), and why."""

    def __init__(self, why: str):
        self.why = why


def _scheduler(engine: Engine, rd: RunDir, executor, spec_json: str):
    """The candidate scheduler, or island epochs (``--epoch-size``; auto: on Dask and from eight
    local workers); a new run in epoch mode gets two islands per worker, so none waits."""
    from .engine import Island
    from .schedulers import CandidateScheduler, EpochScheduler, epoch_size_for

    config = engine.config

    def events() -> None:
        _log_engine_events(rd, engine)

    size = epoch_size_for(config, executor)
    if size <= 0:
        # a Dask task costs milliseconds: send several candidates per task there
        batch = config.batch_size if (config.batch_size > 1 or executor.name != "dask") else 4
        return CandidateScheduler(engine, rd, spec_json, batch, events)
    want = 2 * executor.workers
    st = engine.state
    if len(st.islands) < want and st.n_told == 0 and not st.pending:
        st.islands += [Island() for _ in range(want - len(st.islands))]
        engine.config = config.replace(islands=want)
        log.info("epoch mode: %d islands for %d workers", want, executor.workers)
    elif len(st.islands) < executor.workers:
        log.warning("epoch mode with %d islands: at most that many of the %d workers are busy (--islands)",
                    len(st.islands), executor.workers)
    return EpochScheduler(engine, rd, spec_json, size, events)


def dense_checks(rd: RunDir, engine: Engine, config: RunConfig, now: bool = False) -> None:
    """Check the front entries that await it on 2^22 inputs (``Engine.awaiting_confirmation``)."""
    for e in engine.awaiting_confirmation(now):
        sampled = e.error
        rep = dense_check(config, e)
        held = engine.confirm(e.cost, rep.max_ulp, rep.worst_x, rep.worst_inputs)
        rd.event("dense_check", id=e.id, cost=e.cost, sampled_ulp=sampled, dense_ulp=rep.max_ulp,
                 worst_x=rep.worst_x, held=held, seconds=rep.seconds)
        log.info("candidate %s (cost %g, %.4f ULP on the search's points): %.4f ULP on %d inputs%s", e.id,
                 e.cost, sampled, rep.max_ulp, rep.n_points,
                 "" if config.target_error is None else (" (holds)" if held else " (misses the target, search goes on)"))


def stop_text(reason: str, config: RunConfig) -> str:
    """Why a run ended, in words (the finish message, the log and the ``stop`` event)."""
    return {
        "budget": f"candidate budget of {config.budget_evals} reached",
        "time": f"time limit of {config.time_limit:g} s reached",
        "target": f"a program within the target error {config.target_error:g} is on the front"
                  if config.target_error is not None else "target reached",
        "interrupted": "interrupted",
        "exhausted": f"every program the search could breed within {config.max_ops} ops was already known "
                     "to the cache, even after restarting an island",
    }.get(reason, reason)


def _log_engine_events(rd: RunDir, engine: Engine) -> None:
    for e in engine.drain_events():
        fields = {k: v for k, v in e.items() if k != "event"}
        rd.event(e["event"], **fields)
        log.info("%s: %s", e["event"], ", ".join(f"{k} {v}" for k, v in fields.items()))


def _quick_shutdown(executor) -> None:
    try:
        executor.restart()  # kill workers still busy: their candidates stay pending in the checkpoint
    finally:
        executor.shutdown()

