"""What a worker runs: fit and score a batch of candidates, or breed and evaluate an island epoch.
Data in, data out (JSON-able dicts: ``search.records``' ``to_dict``), so the same function runs
inline, in a local process pool, or on a Dask cluster."""

from __future__ import annotations

import functools
import json
import logging
import os
import time

from dsl.program import cost
from dsl.text import parse_program, format_program
from fitness.evaluate import fit_and_score
from fitness.fit import FitOptions
from fitness.problem import Problem, ProblemSpec

from .records import Candidate, Result

log = logging.getLogger("autonumerics.worker")

FAULT_ENV = "AUTONUMERICS_TEST_FAULT"  # testing hook: "crash:ID", "hang:ID" or "raise:ID"


@functools.lru_cache(maxsize=4)
def _problem(spec_json: str) -> Problem:
    return Problem.build(ProblemSpec(**json.loads(spec_json)))


def _inject_fault(cand_id: int) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    for item in filter(None, spec.split(",")):
        kind, _, ident = item.partition(":")
        if ident.isdigit() and int(ident) == cand_id:
            if kind == "crash":
                os._exit(70)
            if kind == "hang":
                time.sleep(3600)
            if kind == "raise":
                raise RuntimeError(f"injected fault for candidate {cand_id}")


def evaluate_one(problem: Problem, cand: dict | Candidate, cost_model: str = "ops") -> dict:
    cand = Candidate.from_dict(cand, "a candidate")
    t0 = time.perf_counter()
    try:
        _inject_fault(cand.id)
        opts = FitOptions().for_front(cand.promising_below)
        scored = fit_and_score(parse_program(cand.program), problem, cand.seed, opts, frame_constants=cand.frame)
        cost = scored.cost
        if cost_model != "ops":
            # measured speed of the program as it will run (frame included), in op-count units
            from backends.speed_cost import program_cost

            spec = problem.spec
            cost = program_cost(problem.realize(scored.program, scored.frame), spec.eval_dtype, cost_model, (spec.lo, spec.hi))
        return Result(id=cand.id, program=format_program(scored.program), error=scored.error, cost=cost,
                      summary=scored.summary.to_dict(), seconds=time.perf_counter() - t0, frame=scored.frame).to_dict()
    except Exception as exc:  # a pathological program must not end the run: score it as failed
        log.warning("candidate %s failed: %s: %s", cand.id, type(exc).__name__, exc)
        return failed_result(cand, f"{type(exc).__name__}: {exc}")


def failed_result(cand: dict | Candidate, why: str) -> dict:
    """The result of a candidate that could not be scored: infinitely bad, at its own cost."""
    cand = Candidate.from_dict(cand, "a candidate")
    return Result(id=cand.id, program=cand.program, error=float("inf"), cost=cost(parse_program(cand.program)),
                  failed=why, frame=cand.frame).to_dict()


@functools.lru_cache(maxsize=4)
def _hard_problem(spec_json: str, hard_points: tuple[float, ...]) -> Problem:
    return _problem(spec_json).with_hard_points(hard_points)


def evaluate_batch(spec_json: str, candidates: list[dict], cost_model: str = "ops",
                   hard_points: tuple[float, ...] = ()) -> list[dict]:
    """Fit and score ``candidates``; ``hard_points`` (from failed dense checks) extend the validation set."""
    problem = _hard_problem(spec_json, tuple(hard_points)) if hard_points else _problem(spec_json)
    return [evaluate_one(problem, c, cost_model) for c in candidates]


PARENT_POLL_S = 0.25


def exit_with_parent(poll_s: float = PARENT_POLL_S) -> None:
    """End this process when the process that started it is gone.

    A worker blocked on its task queue outlives a driver killed with SIGKILL (or by the OOM
    killer): nothing closes the queue for it.  A daemon thread notices that the parent pid
    changed (the orphan was adopted) and exits at once; the multiprocessing resource tracker,
    which holds a pipe from every worker, then sees end-of-file and exits too.
    """
    import threading

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(75)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def init_worker(queue) -> None:
    """Pool initializer: exit with the driver, and send log records to the driver's run log."""
    exit_with_parent()
    init_worker_logging(queue)


def init_worker_logging(queue) -> None:
    """Send this process's log records to the driver's run log.

    The driver wraps its run-log handler in ``multiprocessing_logging.MultiProcessingHandler``;
    spawned workers do not inherit handlers, so they put records on that handler's queue.
    """
    import logging.handlers

    logger = logging.getLogger("autonumerics")
    logger.handlers[:] = [logging.handlers.QueueHandler(queue)]
    logger.setLevel(logging.INFO)
    logger.propagate = False


# --- island epochs ---------------------------------------------------------------------------------
# A worker keeps one equivalence cache per run for all the epochs it runs (sending the run's whole
# cache with each epoch would cost more than it saves); a new run starts with an empty one.
_EPOCH_CACHES: dict[str, tuple] = {}  # run -> (the hard points its entries were measured with, cache)


@functools.lru_cache(maxsize=4)
def _epoch_config(config_json: str):
    from .config import RunConfig

    cfg = RunConfig.from_dict(json.loads(config_json))
    # one island, no migration, no restarts, no target: the driver does those across islands
    return cfg.replace(islands=1, migration_every=10**15, stagnation=10**15, target_error=None, workers=1,
                       scheduler=None, dask_local=None)


@functools.lru_cache(maxsize=4)
def _hints(spec_json: str):
    from fitness.properties import search_hints

    return search_hints(_problem(spec_json))


def run_epoch(spec_json: str, config_json: str, work: dict) -> dict:
    """Breed and evaluate ``work["n"]`` candidates on one island (``Engine.begin_epoch``), here.

    The island evolves exactly as it would in the driver (the same engine, on a one-island state
    holding the run's front, hard points and dense errors), with this process's cache.  Returns
    the island's new state, every fitted candidate with its result and cache key, and the counts
    the driver adds to its own.
    """
    import numpy as np

    from .cache import EquivalenceCache
    from .engine import Engine, EngineState, Island, entries_by_cost, validated

    hard = tuple(work["hard_points"])
    problem = _hard_problem(spec_json, hard) if hard else _problem(spec_json)
    cfg = _epoch_config(config_json).replace(budget_evals=int(work["n"]))
    run_key = spec_json + "|" + str(work["run"])
    if run_key not in _EPOCH_CACHES:
        while len(_EPOCH_CACHES) >= 2:  # another run's cache: this process moved on
            _EPOCH_CACHES.pop(next(iter(_EPOCH_CACHES)))
        _EPOCH_CACHES[run_key] = (hard, EquivalenceCache())
    known_hard, cache = _EPOCH_CACHES[run_key]
    if hard != known_hard:  # dense checks added hard points since: validated results are out of date
        cache.forget(validated)
        _EPOCH_CACHES[run_key] = (hard, cache)
    state = EngineState(islands=[Island.from_dict(work["island"], check=False)],  # the driver's own records
                        best_per_cost=entries_by_cost(work["front"], "the run's front entry", check=False), cache=cache,
                        next_id=int(work["id_base"]), hard_points=list(hard),
                        dense_errors={str(k): float(v) for k, v in work["dense_errors"].items()},
                        rng_state=np.random.PCG64(int(work["seed"])).state)
    engine = Engine(cfg, problem, state, hints=_hints(spec_json))
    fitted = []
    while True:
        cands = engine.ask(1)
        if not cands:
            break
        for cand in cands:
            msg = cand.to_dict()
            res = evaluate_one(problem, msg, cfg.cost_model)
            engine.tell([res])
            fitted.append({"candidate": msg, "result": res, "told": state.n_told})
    hits = dict(state.hits)
    return {"island": state.islands[0].to_dict(), "fitted": fitted, "told": state.n_told, "hits": hits}

