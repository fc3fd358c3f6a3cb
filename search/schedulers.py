"""What the driver's loop sends to the workers, and what it does with what comes back.

The loop (``search.run``) owns the executor, the time limit, signals, faults and checkpoints; a
scheduler decides the work:

- ``CandidateScheduler``: the driver breeds every candidate (``Engine.ask``) and sends batches of
  candidates to evaluate; results enter at once (``Engine.tell``).  With one worker this is
  strictly sequential, hence deterministic.  The driver's own work per candidate (mutation,
  canonical form, hashes) limits it to a few hundred candidates a second: enough for a few
  dozen workers (BENCHMARKS.md, driver ceiling).
- ``EpochScheduler``: each task is an island *epoch*: the worker breeds and evaluates a number of
  candidates on one island (``search.worker.run_epoch``) and sends the island back with what it
  fitted (``Engine.begin_epoch`` / ``end_epoch``); the driver merges fronts, caches, migrations and
  restarts between epochs.  Its work per candidate is a cache store and a front update, which
  is what lets one driver feed a cluster.  The default for Dask and for eight or more local
  workers (``--epoch-size``).
"""

from __future__ import annotations

import json
import logging

from .worker import evaluate_batch, failed_result, run_epoch

log = logging.getLogger("autonumerics")

EPOCH_SIZE = 64  # candidates per island epoch (auto mode)
EPOCH_WORKERS = 8  # auto mode: epochs from this many local workers on (always on Dask)


def epoch_size_for(config, executor) -> int:
    """Candidates per epoch, or 0 for the candidate scheduler (``--epoch-size``, or auto)."""
    if config.epoch_size is not None:
        return int(config.epoch_size)
    return EPOCH_SIZE if executor.name == "dask" or executor.workers >= EPOCH_WORKERS else 0


class CandidateScheduler:
    name = "candidates"

    def __init__(self, engine, rd, spec_json: str, batch_size: int, on_events):
        self.engine, self.rd, self.spec_json, self.batch_size = engine, rd, spec_json, batch_size
        self.on_events = on_events

    def initial(self) -> list:
        """Candidates asked before the last checkpoint but never told: evaluate them first."""
        pend = list(self.engine.state.pending)
        return [pend[i:i + self.batch_size] for i in range(0, len(pend), self.batch_size)]

    def next_work(self):
        cands = self.engine.ask(self.batch_size)
        self.on_events()
        return cands or None

    def task(self, work):
        cfg = self.engine.config
        return evaluate_batch, (self.spec_json, [c.to_dict() for c in work], cfg.cost_model,
                                tuple(self.engine.state.hard_points))

    def size(self, work) -> int:
        return len(work)

    def describe(self, work) -> dict:
        return {"ids": [c.id for c in work]}

    def done(self, work, out) -> None:
        self._tell(out)

    def lost(self, work, why: str) -> None:
        """The work failed for good: its candidates are scored as failed."""
        self._tell([failed_result(c, why) for c in work])

    def _tell(self, results: list[dict]) -> None:
        for res in results:
            if res.get("failed"):
                self.rd.event("candidate_failed", id=res["id"], why=res["failed"])
        improved = self.engine.tell(results)
        self.on_events()
        for e in improved:
            self.rd.event("improved", id=e.id, cost=e.cost, error=e.error, candidates=self.engine.state.n_told)


class EpochScheduler:
    name = "epochs"

    def __init__(self, engine, rd, spec_json: str, epoch_size: int, on_events):
        self.engine, self.rd, self.spec_json, self.epoch_size = engine, rd, spec_json, epoch_size
        self.on_events = on_events
        self.config_json = json.dumps(engine.config.to_dict(), sort_keys=True)

    def initial(self) -> list:
        """Nothing: an epoch in flight at the checkpoint left its island as it was, and runs again.
        Candidates a candidate-mode session left pending (resumed now with more workers) are
        dropped: their islands breed again."""
        if self.engine.state.pending:
            log.info("epoch mode: %d pending candidate(s) of the previous session dropped",
                     len(self.engine.state.pending))
            self.engine.state.pending = []
        return []

    def next_work(self):
        work = self.engine.begin_epoch(self.epoch_size)
        return work

    def task(self, work):
        return run_epoch, (self.spec_json, self.config_json, work)

    def size(self, work) -> int:
        return int(work["n"])

    def describe(self, work) -> dict:
        return {"island": work["island_index"], "ids": [work["id_base"], work["id_base"] + work["n"] - 1]}

    def done(self, work, out) -> None:
        improved = self.engine.end_epoch(work, out)
        for item in out["fitted"]:
            if item["result"].get("failed"):
                self.rd.event("candidate_failed", id=item["result"]["id"], why=item["result"]["failed"])
        self.on_events()
        for e in improved:
            self.rd.event("improved", id=e.id, cost=e.cost, error=e.error, candidates=self.engine.state.n_told)

    def lost(self, work, why: str) -> None:
        """An epoch that failed for good (it failed alone too): the island starts afresh, since
        something it breeds kills its worker."""
        self.engine.abandon_epoch(work)
        self.rd.event("epoch_failed", **self.describe(work), why=why)
        self.engine.restart_island(work["island_index"], "its epoch failed twice")
        self.on_events()
