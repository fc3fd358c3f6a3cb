"""Regularized (aging) evolution as an ask/tell engine with explicit, serializable state.

``ask()`` returns candidates that need a real evaluation (constant fitting and scoring); a
candidate whose structural or functional hash is already known is answered from the cache inside
``ask()`` and never leaves the driver.  ``tell()`` takes evaluation results.  Each result enters
the population as its youngest member and the oldest member leaves (aging), whatever their
fitness.  Parents are picked by tournament: ``tournament_size`` members drawn at random, the
winner drawn among those of Pareto rank 0 on (error, cost).  In real mode some parents come from
the best program at each cost instead, and a queue of *expansions* grows each program that did
well at its cost by every growth template in turn (``_expansion``).

The state is plain data (lists, dicts, the generator's state): a checkpoint is that state
serialized, and a run resumed from it continues exactly as the uninterrupted run would have.
Candidate ids are counters and every random draw comes from the one generator, so one worker and
a fixed seed give one result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dsl.canonical import structural_hash
from dsl.mutate import GROW_MOVES, grow, mutate, random_program
from dsl.text import format_program, parse_program
from fitness.frames import evolvable_constants, mutate_constants
from fitness.problem import Problem, target_zeros

from .cache import EquivalenceCache, frame_key, functional_hash
from .config import RunConfig
from .front import improves, pareto, pareto_ranks

REFIT_MUTATIONS = ("perturb", "redraw")
# growth children start from their parent's fitted constants with a new degree of freedom: they
# are always fitted (the structure may be known from a worse start) and keyed by structure only
# (before fitting, most of them compute their parent's function, so that hash names the parent)
GROWTH_MUTATIONS = GROW_MOVES + ("grow_zero_factor",)
FRAME_MOVE_RATE = 0.1  # with an evolving frame: children that move a frame constant instead
FRONT_PARENT_RATE = 0.1  # real mode: parents drawn from the best-at-each-cost entries
HARD_POINTS_PER_CHECK = 32  # worst inputs of a failed dense check added to the validation set
MAX_HARD_POINTS = 2048  # the oldest go first beyond this
# real mode: a fitted program that is best at its cost, or close to it, is grown by every template
EXPANSION_MOVES = ("grow_horner_in", "grow_horner_in", "grow_horner_in", "grow_horner_out", "grow_square",
                   "grow_rational")  # plus grow_zero_factor where the target has zeros
EXPANSION_SHARE = 0.5  # of the children, while expansions are queued
EXPANSION_NEAR = 10.0  # "close": error within this factor of the best at the same cost
MAX_EXPANSIONS = 384  # queue length; the oldest expansions of merely close programs go first


@dataclass
class EngineState:
    population: list[dict] = field(default_factory=list)
    best_per_cost: dict[float, dict] = field(default_factory=dict)
    cache: EquivalenceCache = field(default_factory=EquivalenceCache)
    pending: list[dict] = field(default_factory=list)
    history: list[list[float]] = field(default_factory=list)  # [candidates, elapsed, cost, error]
    next_id: int = 0
    n_told: int = 0
    n_evaluated: int = 0
    n_hits: int = 0
    n_failed: int = 0
    elapsed: float = 0.0
    rng_state: dict | None = None
    hard_points: list[float] = field(default_factory=list)  # inputs where dense checks found spikes
    expansions: list[dict] = field(default_factory=list)  # real mode: queued template growths

    def to_dict(self) -> dict:
        return {
            "population": self.population,
            "best_per_cost": [self.best_per_cost[c] for c in sorted(self.best_per_cost)],
            "cache": self.cache.to_dict(),
            "pending": self.pending,
            "history": self.history,
            "next_id": self.next_id,
            "n_told": self.n_told,
            "n_evaluated": self.n_evaluated,
            "n_hits": self.n_hits,
            "n_failed": self.n_failed,
            "elapsed": self.elapsed,
            "rng_state": self.rng_state,
            "hard_points": self.hard_points,
            "expansions": self.expansions,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "EngineState":
        """Parse and check a checkpointed state; any malformation raises ValueError."""
        try:
            state = cls._parse(d)
            _check_state(state)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"{type(exc).__name__}: {exc}") from None
        return state

    @classmethod
    def _parse(cls, d: dict) -> "EngineState":
        return cls(
            population=list(d["population"]),
            best_per_cost={float(e["cost"]): e for e in d["best_per_cost"]},
            cache=EquivalenceCache.from_dict(d["cache"]),
            pending=list(d["pending"]),
            history=[list(h) for h in d["history"]],
            next_id=int(d["next_id"]),
            n_told=int(d["n_told"]),
            n_evaluated=int(d["n_evaluated"]),
            n_hits=int(d["n_hits"]),
            n_failed=int(d.get("n_failed", 0)),
            elapsed=float(d["elapsed"]),
            rng_state=d["rng_state"],
            hard_points=[float(v) for v in d.get("hard_points", [])],
            expansions=list(d.get("expansions", [])),
        )


def _check_entry(e, what: str, keys: tuple[str, ...]) -> None:
    if not isinstance(e, dict):
        raise ValueError(f"{what} is not an object")
    for k in keys:
        if k not in e:
            raise ValueError(f"{what} lacks {k!r}")
    if "program" in keys:
        parse_program(e["program"]) if isinstance(e["program"], str) else _fail(f"{what}: program is not text")
    if "frame" in e and not (isinstance(e["frame"], dict) and all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for k, v in e["frame"].items())):
        raise ValueError(f"{what}: frame constants are not a table of numbers")
    if "dense_ulp" in e and (isinstance(e["dense_ulp"], bool) or not isinstance(e["dense_ulp"], (int, float))
                             or math.isnan(e["dense_ulp"])):
        raise ValueError(f"{what}: dense_ulp is not a number")
    for k in ("error", "cost"):
        if k in keys and (isinstance(e[k], bool) or not isinstance(e[k], (int, float)) or math.isnan(e[k])):
            raise ValueError(f"{what}: {k} is not a number")


def _fail(message: str):
    raise ValueError(message)


def _check_state(st: EngineState) -> None:
    """Everything the engine will read, checked once, so a bad checkpoint fails at load time."""
    for i, e in enumerate(st.population):
        _check_entry(e, f"population[{i}]", ("id", "program", "error", "cost"))
    for c, e in st.best_per_cost.items():
        _check_entry(e, f"front entry at cost {c}", ("id", "program", "error", "cost"))
    for i, e in enumerate(st.pending):
        _check_entry(e, f"pending[{i}]", ("id", "program", "seed", "hashes", "mutation"))
        if not isinstance(e["hashes"], list) or not all(isinstance(h, str) for h in e["hashes"]):
            raise ValueError(f"pending[{i}]: hashes are not a list of strings")
    if not isinstance(st.cache.entries, dict) or not isinstance(st.cache.keys, dict):
        raise ValueError("cache is not a pair of tables")
    for k, e in st.cache.entries.items():
        _check_entry(e, f"cache entry {k}", ("key", "program", "error", "cost"))
    if any(not isinstance(v, str) or v not in st.cache.entries for v in st.cache.keys.values()):
        raise ValueError("cache keys point to missing entries")
    for i, e in enumerate(st.expansions):
        _check_entry(e, f"expansions[{i}]", ("parent", "program", "move", "priority", "shape", "error", "cost"))
        if e["move"] not in GROWTH_MUTATIONS:
            raise ValueError(f"expansions[{i}]: unknown move {e['move']!r}")
    if not all(math.isfinite(v) for v in st.hard_points):
        raise ValueError("hard points are not finite numbers")
    if not all(isinstance(h, list) and len(h) == 4 for h in st.history):
        raise ValueError("history rows are malformed")
    if min(st.next_id, st.n_told, st.n_evaluated, st.n_hits) < 0:
        raise ValueError("negative counters")
    if st.rng_state is not None:
        try:
            np.random.PCG64().state = st.rng_state
        except Exception as exc:  # numpy raises several types for a bad state
            raise ValueError(f"random generator state is invalid ({type(exc).__name__})") from None


def check_frame_constants(st: EngineState, frame: str) -> None:
    """Every frame-constant table in a checkpointed state is valid for ``frame`` (ValueError if not)."""
    from fitness.frames import frame_constants

    tables = [e for e in st.population + list(st.best_per_cost.values()) + st.pending
              + list(st.cache.entries.values()) if "frame" in e]
    for e in tables:
        frame_constants(frame, e["frame"])  # FrameError (a ValueError) names the problem


class Engine:
    def __init__(self, config: RunConfig, problem: Problem, state: EngineState | None = None):
        self.config = config
        self.problem = problem
        self.state = state or EngineState()
        self.rng = np.random.Generator(np.random.PCG64(config.seed))
        if self.state.rng_state is not None:
            self.rng.bit_generator.state = self.state.rng_state
        self.dtype = problem.spec.eval_dtype
        # real mode grows classical shapes by templates, and offers a factor (x - z) at the target's zeros
        self.real_mode = problem.spec.mode == "real"
        self.zeros = target_zeros(problem.target, problem.spec.lo, problem.spec.hi) if self.real_mode else ()

    # --- budget ----------------------------------------------------------------------------
    @property
    def candidates_issued(self) -> int:
        return self.state.n_told + len(self.state.pending)

    def budget_left(self) -> int:
        return self.config.budget_evals - self.candidates_issued

    @property
    def confirms_target(self) -> bool:
        """Whether a program must pass a dense check before the search stops for it (float32 ulp
        mode): the validation set can miss a narrow error spike that 2**22 inputs catch."""
        return self.config.target_error is not None and self.config.mode == "ulp" and self.config.dtype == "float32"

    def reached_target(self) -> bool:
        te = self.config.target_error
        return te is not None and any(e["error"] <= te and (not self.confirms_target or "dense_ulp" in e)
                                      for e in self.state.best_per_cost.values())

    def awaiting_confirmation(self) -> list[dict]:
        """Front entries within the target error that have not had their dense check yet."""
        if not self.confirms_target:
            return []
        te = self.config.target_error
        return [e for c, e in sorted(self.state.best_per_cost.items()) if e["error"] <= te and "dense_ulp" not in e]

    def confirm(self, cost: float, dense_ulp: float, worst_x: float, worst_inputs=()) -> bool:
        """Record a front entry's dense check; returns whether it holds within the target.

        A program that fails keeps its dense error, on the front, in the population and in the
        cache, so that it is neither taken for a success again nor re-entered with its old figure;
        its worst inputs join ``hard_points``, which the driver sends with every later evaluation
        (``Problem.with_hard_points``), so the search learns where the spikes were.
        """
        st = self.state
        entry = st.best_per_cost[cost]
        entry["dense_ulp"], entry["dense_worst_x"] = float(dense_ulp), float(worst_x)
        if dense_ulp > self.config.target_error:
            known = set(st.hard_points)
            st.hard_points += [float(v) for v in list(worst_inputs)[:HARD_POINTS_PER_CHECK] if float(v) not in known]
            del st.hard_points[:-MAX_HARD_POINTS]
        if dense_ulp > entry["error"]:
            entry["error"] = float(dense_ulp)
            for member in st.population:
                if member["program"] == entry["program"] and member.get("frame") == entry.get("frame"):
                    member["error"] = max(member["error"], float(dense_ulp))
            for cached in st.cache.entries.values():
                if cached["program"] == entry["program"] and cached.get("frame") == entry.get("frame"):
                    cached["error"] = max(cached["error"], float(dense_ulp))
        return entry["error"] <= self.config.target_error

    # --- ask ---------------------------------------------------------------------------------
    def _new_candidate(self) -> dict:
        st = self.state
        filling = len(st.population) + len(st.pending) < self.config.population_size and st.n_told < self.config.population_size
        if filling or not st.population:  # nothing to select from yet (all candidates in flight)
            n_ops = int(self.rng.integers(1, 4))
            child = random_program(self.rng, self.config.ops, min(n_ops, self.config.max_ops), self.dtype)
            parent, kind = None, "random"
        else:
            expanded = self._expansion()
            if expanded is not None:
                parent_entry, child, kind = expanded
            else:
                parent_entry = self._parent()
                child, kind = mutate(parse_program(parent_entry["program"]), self.rng, self.config.ops,
                                     self.config.max_ops, self.dtype, templates=self.real_mode, zeros=self.zeros)
            parent = parent_entry["id"]
        frame = None
        if self.problem.spec.frame_evolve:
            child, kind, frame = self._frame_move(child, kind, None if parent is None else parent_entry)
        cid = st.next_id
        st.next_id += 1
        hashes = [structural_hash(child, self.dtype)]
        if kind not in GROWTH_MUTATIONS:
            hashes.append("f" + functional_hash(child, self.problem.probes))
        if frame is not None:
            hashes = [h + frame_key(frame) for h in hashes]
        seed = int((self.config.seed * 1_000_003 + cid) % (2**63))
        cand = {"id": cid, "program": format_program(child), "parent": parent, "mutation": kind,
                "hashes": hashes, "seed": seed}
        if frame is not None:
            cand["frame"] = frame
        return cand

    def _frame_move(self, child, kind: str, parent_entry: dict | None):
        """(program, mutation kind, frame constants) for a run whose frame evolves.

        A child inherits its parent's frame constants; one child in ``FRAME_MOVE_RATE`` keeps the
        parent's program instead and moves one of the frame's discrete constants.
        """
        spec = self.problem.spec
        if parent_entry is None:
            return child, kind, evolvable_constants(spec.frame)
        frame = evolvable_constants(spec.frame, parent_entry.get("frame"))
        if self.rng.random() < FRAME_MOVE_RATE:
            moved, name = mutate_constants(spec.frame, frame, self.rng)
            if name:
                return parse_program(parent_entry["program"]), "frame", moved
        return child, kind, frame

    def _expansion(self):
        """(parent entry, child, move) from the expansion queue, or None (take a usual child).

        Improvements are expanded before programs that were merely close to the best at their
        cost; within each kind, first queued first served.  The template mutations alone would
        need the right parent and the right move drawn together (about one child in 4000 for a
        given front entry), and a Horner chain or a rational grows one coefficient per step.
        """
        queue = self.state.expansions
        if not queue or self.rng.random() >= EXPANSION_SHARE:
            return None
        while queue:
            i = next((j for j, e in enumerate(queue) if e["priority"] == 0), 0)
            item = queue.pop(i)
            child = grow(parse_program(item["program"]), item["move"], self.rng, self.config.ops,
                         self.config.max_ops, self.dtype, self.zeros)
            if child is not None:
                parent = {"id": item["parent"], "program": item["program"]}
                if "frame" in item:
                    parent["frame"] = item["frame"]
                return parent, child, item["move"]
        return None

    def _queue_expansions(self, member: dict, improved: bool) -> None:
        if member["cost"] >= self.config.max_ops:
            return
        moves = EXPANSION_MOVES + (("grow_zero_factor",) if self.zeros else ())
        shape = structural_hash(parse_program(member["program"]), self.dtype) + frame_key(member.get("frame"))
        queue = self.state.expansions
        same = [e for e in queue if e["shape"] == shape]
        if same and min(e["error"] for e in same) <= member["error"]:
            return  # this structure is queued already, with constants at least as good
        priority = min([0 if improved else 1] + [e["priority"] for e in same])
        queue[:] = [e for e in queue if e["shape"] != shape]
        item = {"parent": member["id"], "program": member["program"], "priority": priority,
                "error": member["error"], "cost": member["cost"], "shape": shape}
        if "frame" in member:
            item["frame"] = member["frame"]
        queue += [dict(item, move=m) for m in moves]
        while len(queue) > MAX_EXPANSIONS:
            i = next((j for j, e in enumerate(queue) if e["priority"] == 1), 0)
            del queue[i]

    def _parent(self) -> dict:
        """A tournament winner; in real mode, one parent in ``FRONT_PARENT_RATE`` is a front entry.

        The aging population holds only the last P candidates, so a structure that was best at
        its cost once (a fitted rational, say) leaves it after P steps, however good; drawing some
        parents from the front keeps such stepping stones breeding, which the growth templates
        need (p/q grows one coefficient at a time).  Ulp mode draws exactly as before.
        """
        if self.real_mode and self.state.best_per_cost and self.rng.random() < FRONT_PARENT_RATE:
            front = [self.state.best_per_cost[c] for c in sorted(self.state.best_per_cost)]
            return front[int(self.rng.integers(len(front)))]
        return self._tournament()

    def _tournament(self) -> dict:
        pop = self.state.population
        k = min(self.config.tournament_size, len(pop))
        idx = self.rng.choice(len(pop), size=k, replace=False)
        pts = [(pop[i]["error"] if math.isfinite(pop[i]["error"]) else math.inf, pop[i]["cost"]) for i in idx]
        if self.rng.random() < 0.5:
            # half the tournaments are won on error alone: pressure toward accuracy at any cost
            ranks = [0 if p[0] == min(q[0] for q in pts) else 1 for p in pts]
        else:
            ranks = pareto_ranks(pts)
        best = [int(i) for i, r in zip(idx, ranks) if r == 0]
        return pop[int(self.rng.choice(best))] if len(best) > 1 else pop[best[0]]

    def ask(self, n: int = 1) -> list[dict]:
        """Up to ``n`` candidates that need evaluating; cache hits are told on the way."""
        out: list[dict] = []
        while len(out) < n and self.budget_left() > 0 and not self.reached_target():
            cand = self._new_candidate()
            hit = None
            if self.config.caching and cand["mutation"] not in GROWTH_MUTATIONS:
                keys = cand["hashes"] if cand["mutation"] not in REFIT_MUTATIONS else cand["hashes"][1:]
                hit = self.state.cache.lookup(*keys)
            if hit is not None:
                self.state.n_hits += 1
                self.state.cache.keys.update({h: hit["key"] for h in cand["hashes"]})
                self._enter(cand, hit, from_cache=True)
            else:
                self.state.pending.append(cand)
                out.append(cand)
        self.state.rng_state = self.rng.bit_generator.state
        return out

    # --- tell --------------------------------------------------------------------------------
    def tell(self, results: list[dict]) -> list[dict]:
        """Enter evaluated candidates; returns the front entries they improved."""
        improved = []
        by_id = {c["id"]: c for c in self.state.pending}
        for res in results:
            cand = by_id.get(res["id"])
            if cand is None:
                continue  # a result for a candidate already told (a retried task): ignore
            self.state.pending = [c for c in self.state.pending if c["id"] != res["id"]]
            self.state.n_evaluated += 1
            if res.get("failed"):
                self.state.n_failed += 1
            entry = {"program": res["program"], "error": res["error"], "cost": res["cost"],
                     "summary": res.get("summary"), "failed": res.get("failed")}
            if res.get("frame") is not None:
                entry["frame"] = res["frame"]
            if self.config.caching and not res.get("failed"):
                entry = self.state.cache.store(tuple(cand["hashes"]), entry)
            if self._enter(cand, entry, from_cache=False):
                improved.append(self.state.best_per_cost[entry["cost"]])
        return improved

    def _enter(self, cand: dict, result: dict, from_cache: bool) -> bool:
        st = self.state
        member = {"id": cand["id"], "program": result["program"], "error": float(result["error"]),
                  "cost": float(result["cost"]), "parent": cand["parent"], "mutation": cand["mutation"]}
        if result.get("frame") is not None:
            member["frame"] = result["frame"]
        st.population.append(member)
        if len(st.population) > self.config.population_size:
            st.population.pop(0)  # aging: the oldest leaves, however good
        st.n_told += 1
        entry = dict(member, summary=result.get("summary"), from_cache=from_cache)
        improved = math.isfinite(member["error"]) and improves(st.best_per_cost, entry)
        if improved:
            st.best_per_cost[member["cost"]] = entry
            st.history.append([st.n_told, st.elapsed, member["cost"], member["error"]])
        if self.real_mode and not from_cache and math.isfinite(member["error"]):
            best = st.best_per_cost.get(member["cost"])
            if improved or (best is not None and member["error"] <= EXPANSION_NEAR * best["error"]):
                self._queue_expansions(member, improved)
        return improved

    # --- views -------------------------------------------------------------------------------
    def front(self) -> list[dict]:
        return pareto(self.state.best_per_cost)

    @property
    def hit_rate(self) -> float:
        return self.state.n_hits / self.state.n_told if self.state.n_told else 0.0
