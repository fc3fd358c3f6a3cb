"""Regularized (aging) evolution on islands, as an ask/tell engine with explicit, serializable state.

``ask()`` returns candidates that need a real evaluation (constant fitting and scoring); a
candidate the equivalence cache can answer (``search.cache``: same structure or same family of
functions) is told on the way and never leaves the driver.  ``tell()`` takes evaluation results.

The population is split into ``config.islands`` islands that evolve apart: each candidate is bred
on one island (in turn), from that island's members, and enters that island as its youngest
member while its oldest leaves (aging), whatever their fitness.  Every ``migration_every``
candidates each island receives a copy of its neighbour's best program at every cost (a ring).
When the whole front has not improved for ``stagnation`` candidates, the island that holds the
fewest front programs is started afresh (diversity, not a stop); the front itself is kept.

Parents are picked by tournament on the island (``tournament_size`` members drawn at random, the
winner drawn among those of Pareto rank 0 on (error, cost), half the tournaments on error alone),
and a tenth come from the island's best program at each cost.  A program that does well at its
cost is *expanded*: queued to be grown by every growth template in turn (``dsl.growth``), and
while the queue is not empty half of the island's children come from it.  The templates suit the
target's symmetry and zeros, detected from its values (``fitness.properties``): a symmetric target
grows chains in x², and islands are seeded with x·P(x²), x + x³·P(x²) or P(x²).

The state is plain data (lists, dicts, the generator's state): a checkpoint is that state
serialized, and a run resumed from it continues exactly as the uninterrupted run would have.
Candidate ids are counters and every random draw comes from the one generator, so one worker and
a fixed seed give one result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from dsl.canonical import structural_hash
from dsl.growth import GROW_MOVES, ZERO_MOVE, moves_for, seed_program
from dsl.mutate import grow, mutate, random_program
from dsl.program import cost
from dsl.text import format_program, parse_program
from fitness.evaluate import VALIDATE_BELOW_ULP
from fitness.frames import evolvable_constants, mutate_constants
from fitness.problem import Problem
from fitness.properties import search_hints

from .cache import HIT_KINDS, EquivalenceCache, candidate_keys, frame_key, functional_hash
from .config import RunConfig
from .front import improves, pareto, pareto_ranks
from .records import CacheEntry, Candidate, Expansion, FrontEntry, Member, Result

REFIT_MUTATIONS = ("perturb", "redraw")
# growth children start from their parent's fitted constants with a new degree of freedom: they
# are always fitted (their structure may be known from a worse start)
GROWTH_MUTATIONS = GROW_MOVES + (ZERO_MOVE,)
FRAME_MOVE_RATE = 0.1  # with an evolving frame: children that move a frame constant instead
PROMISING = 4.0  # float32 ulp mode: refine and polish fits within this factor of the front's error
FRONT_PARENT_RATE = 0.1  # parents drawn from the island's best-at-each-cost entries
SEED_SHARE = 0.5  # of the random starts, for a target with a symmetry or zeros: templated seeds
DENSE_CHECK_BELOW = 2.0  # float32 ulp mode: front programs this close get a dense check (2^22 inputs)
DENSE_CHECK_DELAY = 100  # candidates a front entry holds its cost before its dense check
DENSE_SPIKE = 0.01  # a dense error this much above the sampled one: a spike the points missed
HARD_POINTS_PER_CHECK = 32  # worst inputs of a failed dense check added to the validation set
MAX_HARD_POINTS = 2048  # the oldest go first beyond this
# a fitted program that is best at its cost on its island, or close to it, is grown by every template
EXPANSION_MOVES = ("grow_horner_in", "grow_horner_in", "grow_horner_in", "grow_horner_out", "grow_square",
                   "grow_rational")  # those that suit the target's symmetry, plus the zero factor
EXPANSION_SHARE = 0.5  # of the children, while expansions are queued
EXPANSION_NEAR = 10.0  # "close": error within this factor of the best at the same cost
LINEAGE_GAIN = 2.0  # a growth child this many times better than its parent is expanded first
MAX_EXPANSIONS = 384  # queue length per island; the oldest expansions of merely close programs go first
HIT_STREAK_RESTART = 2000  # cache hits in a row: the search is going round in known programs
HIT_STREAK_EXHAUSTED = 20000  # ... even after a restart: every reachable program is known


@dataclass
class Island:
    """One sub-population: its members, its own best program at each cost, its expansion queue."""

    population: list[Member] = field(default_factory=list)
    best_per_cost: dict[float, FrontEntry] = field(default_factory=dict)
    expansions: list[Expansion] = field(default_factory=list)
    n_told: int = 0  # candidates entered since the island was (re)started

    def to_dict(self) -> dict:
        return {"population": [m.to_dict() for m in self.population],
                "best_per_cost": [self.best_per_cost[c].to_dict() for c in sorted(self.best_per_cost)],
                "expansions": [e.to_dict() for e in self.expansions], "n_told": self.n_told}

    @classmethod
    def from_dict(cls, d: dict, where: str = "island", check: bool = True) -> "Island":
        """Parse and check an island's records (ValueError naming the bad one); ``check=False``
        for an island the engine itself just sent back from an epoch (``Record.from_dict``)."""
        expansions = [Expansion.from_dict(e, f"{where} expansions[{i}]", check) for i, e in enumerate(d["expansions"])]
        for i, e in enumerate(expansions):
            if check and e.move not in GROWTH_MUTATIONS:
                raise ValueError(f"{where} expansions[{i}]: unknown move {e.move!r}")
        return cls(population=[Member.from_dict(m, f"{where} population[{i}]", check)
                               for i, m in enumerate(d["population"])],
                   best_per_cost=entries_by_cost(d["best_per_cost"], f"{where} front entry", check),
                   expansions=expansions, n_told=int(d["n_told"]))


def entries_by_cost(entries, where: str, check: bool = True) -> dict[float, FrontEntry]:
    """A best-at-each-cost table from its list of entries (cheapest first)."""
    out = {}
    for i, e in enumerate(entries):
        entry = FrontEntry.from_dict(e, f"{where} {i}", check)
        out[entry.cost] = entry
    return out


@dataclass
class EngineState:
    islands: list[Island] = field(default_factory=lambda: [Island()])
    best_per_cost: dict[float, FrontEntry] = field(default_factory=dict)  # the front, over all islands
    cache: EquivalenceCache = field(default_factory=EquivalenceCache)
    pending: list[Candidate] = field(default_factory=list)
    history: list[list[float]] = field(default_factory=list)  # [candidates, elapsed, cost, error]
    next_id: int = 0
    n_told: int = 0
    n_evaluated: int = 0
    n_hits: int = 0
    hits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(HIT_KINDS, 0))
    n_failed: int = 0
    elapsed: float = 0.0
    rng_state: dict | None = None
    hard_points: list[float] = field(default_factory=list)  # inputs where dense checks found spikes
    last_improved: int = 0  # n_told when the front last improved (or the last restart)
    next_migration: int = 0  # n_told at which islands next exchange programs
    restarts: int = 0
    dense_errors: dict[str, float] = field(default_factory=dict)  # program digest -> its dense check
    displaced: dict[str, FrontEntry] = field(default_factory=dict)  # cost -> the checked entry an unchecked one displaced

    @property
    def population(self) -> list[Member]:
        """Every member of every island (a new list)."""
        return [m for isl in self.islands for m in isl.population]

    def to_dict(self) -> dict:
        return {
            "islands": [isl.to_dict() for isl in self.islands],
            "best_per_cost": [self.best_per_cost[c].to_dict() for c in sorted(self.best_per_cost)],
            "cache": self.cache.to_dict(),
            "pending": [c.to_dict() for c in self.pending],
            "history": self.history,
            "next_id": self.next_id,
            "n_told": self.n_told,
            "n_evaluated": self.n_evaluated,
            "n_hits": self.n_hits,
            "hits": self.hits,
            "n_failed": self.n_failed,
            "elapsed": self.elapsed,
            "rng_state": self.rng_state,
            "hard_points": self.hard_points,
            "last_improved": self.last_improved,
            "next_migration": self.next_migration,
            "restarts": self.restarts,
            "dense_errors": self.dense_errors,
            "displaced": {k: e.to_dict() for k, e in self.displaced.items()},
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
            islands=[Island.from_dict(isl, f"island {n}") for n, isl in enumerate(d["islands"])],
            best_per_cost=entries_by_cost(d["best_per_cost"], "front entry"),
            cache=EquivalenceCache.from_dict(d["cache"]),
            pending=[Candidate.from_dict(c, f"pending[{i}]") for i, c in enumerate(d["pending"])],
            history=[list(h) for h in d["history"]],
            next_id=int(d["next_id"]),
            n_told=int(d["n_told"]),
            n_evaluated=int(d["n_evaluated"]),
            n_hits=int(d["n_hits"]),
            hits={k: int(d["hits"][k]) for k in HIT_KINDS},
            n_failed=int(d["n_failed"]),
            elapsed=float(d["elapsed"]),
            rng_state=d["rng_state"],
            hard_points=[float(v) for v in d["hard_points"]],
            last_improved=int(d["last_improved"]),
            next_migration=int(d["next_migration"]),
            restarts=int(d["restarts"]),
            dense_errors={str(k): float(v) for k, v in d["dense_errors"].items()},
            displaced={str(k): FrontEntry.from_dict(v, f"displaced entry at cost {k}") for k, v in d["displaced"].items()},
        )


def validated(entry: CacheEntry) -> bool:
    """Whether a fitted result's error depends on the validation set (``fitness.evaluate.score``
    validates a program within ``VALIDATE_BELOW_ULP`` on the fitness points), so that new hard
    points make it out of date."""
    return entry.error <= VALIDATE_BELOW_ULP


def _in_square(program_text: str) -> bool:
    """Whether a canonical program (text) computes x² (dead code is gone from canonical forms)."""
    return " = mul x x\n" in program_text


def vars_of(member: Member) -> dict:
    """A member's fields by name (to build a richer record from it)."""
    return {f.name: getattr(member, f.name) for f in fields(Member)}


def _digest(entry: Member | CacheEntry) -> str:
    """Identifies a program with its frame constants (for the table of failed dense checks)."""
    import hashlib

    text = entry.program + frame_key(entry.frame)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _check_state(st: EngineState) -> None:
    """What the records' own validators (``search.records``) cannot see, checked once, so a bad
    checkpoint fails at load time."""
    if not st.islands:
        raise ValueError("no islands")
    for i, e in enumerate(st.pending):
        if not 0 <= e.island < len(st.islands):
            raise ValueError(f"pending[{i}]: no such island {e.island!r}")
    if not all(math.isfinite(v) for v in st.hard_points):
        raise ValueError("hard points are not finite numbers")
    if not all(isinstance(h, list) and len(h) == 4 for h in st.history):
        raise ValueError("history rows are malformed")
    if min(st.next_id, st.n_told, st.n_evaluated, st.n_hits, *st.hits.values()) < 0:
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
              + list(st.cache.entries.values()) if e.frame is not None]
    for e in tables:
        frame_constants(frame, e.frame)  # FrameError (a ValueError) names the problem


class Engine:
    def __init__(self, config: RunConfig, problem: Problem, state: EngineState | None = None, hints=None):
        self.config = config
        self.problem = problem
        self.state = state or EngineState(islands=[Island() for _ in range(config.islands)],
                                          next_migration=config.migration_every)
        if len(self.state.islands) != config.islands:
            raise ValueError(f"the state has {len(self.state.islands)} islands, the config {config.islands}")
        self.rng = np.random.Generator(np.random.PCG64(config.seed))
        if self.state.rng_state is not None:
            self.rng.bit_generator.state = self.state.rng_state
        self.dtype = problem.spec.eval_dtype
        self.hints = search_hints(problem) if hints is None else hints
        self.symmetry, self.zeros = self.hints.symmetry, self.hints.zeros
        self.moves = tuple(m for m in EXPANSION_MOVES if m in moves_for(self.symmetry)) + (
            (ZERO_MOVE,) if self.zeros else ())
        self.events: list[dict] = []  # for the driver's event log (restarts); not part of the state
        self.exhausted = False  # every candidate the engine can breed is already known
        self.busy: dict[int, int] = {}  # island out on an epoch -> its size (epoch mode); not part of the state
        # names this run to the workers (their caches are per run): its directory and seed
        self.run_token = f"{config.run_dir}|{config.seed}"
        self._turn = 0

    # --- budget ----------------------------------------------------------------------------
    @property
    def candidates_issued(self) -> int:
        return self.state.n_told + len(self.state.pending) + sum(self.busy.values())

    def budget_left(self) -> float:
        if self.config.budget_evals is None:
            return math.inf
        return self.config.budget_evals - self.candidates_issued

    @property
    def dense_checks(self) -> bool:
        """Whether front programs close to the target accuracy pass a dense check (float32 ulp
        mode): the fitness and validation points can miss a narrow error spike that 2**22 inputs
        catch, and the float32 polish tunes constants against the validation points."""
        return self.config.mode == "ulp" and self.config.dtype == "float32"

    def reached_target(self) -> bool:
        te = self.config.target_error
        return te is not None and any(e.error <= te and (not self.dense_checks or e.dense_ulp is not None)
                                      for e in self.state.best_per_cost.values())

    def awaiting_confirmation(self, now: bool = False) -> list[FrontEntry]:
        """Front entries within ``DENSE_CHECK_BELOW`` ulps that have not had their dense check yet,
        once they have held their cost for ``DENSE_CHECK_DELAY`` candidates (a burst of tiny
        improvements at one cost is checked once, at its end); at once for an entry within the
        target error (it may stop the search), or for every entry when ``now``.  The delay counts
        candidates, not seconds, so a resumed run checks what the uninterrupted run checks."""
        if not self.dense_checks:
            return []
        st, te = self.state, self.config.target_error
        limit = max(DENSE_CHECK_BELOW, te or 0.0)
        return [e for c, e in sorted(st.best_per_cost.items()) if e.error <= limit and e.dense_ulp is None
                and (now or (te is not None and e.error <= te)
                     or st.n_told - e.front_since >= DENSE_CHECK_DELAY)]

    def confirm(self, cost: float, dense_ulp: float, worst_x: float, worst_inputs=()) -> bool:
        """Record a front entry's dense check; returns whether it holds within the target error.

        A program whose dense error is above its sampled one keeps its dense error, on the front, in the populations and in the
        cache, so that it is neither taken for a success again nor re-entered with its old figure;
        its worst inputs join ``hard_points``, which the driver sends with every later evaluation
        (``Problem.with_hard_points``), so the search learns where the spikes were.
        """
        st = self.state
        entry = st.best_per_cost[cost].replace(dense_ulp=float(dense_ulp), dense_worst_x=float(worst_x))
        st.best_per_cost[cost] = entry
        previous = st.displaced.pop(str(cost), None)
        st.dense_errors[_digest(entry)] = float(dense_ulp)
        if dense_ulp > entry.error * (1.0 + DENSE_SPIKE):
            known = set(st.hard_points)
            new = [float(v) for v in list(worst_inputs)[:HARD_POINTS_PER_CHECK] if float(v) not in known]
            if new:
                st.hard_points += new
                del st.hard_points[:-MAX_HARD_POINTS]
                st.cache.forget(validated)  # their errors were measured without the new points
        if dense_ulp > entry.error:
            entry = entry.replace(error=float(dense_ulp))
            st.best_per_cost[cost] = entry

            def raised(r):
                if r.program == entry.program and r.frame == entry.frame:
                    return r.replace(error=max(r.error, float(dense_ulp)))
                return r

            for isl in st.islands:
                isl.population = [raised(m) for m in isl.population]
                isl.best_per_cost = {c: raised(e) for c, e in isl.best_per_cost.items()}
            st.cache.entries = {k: raised(e) for k, e in st.cache.entries.items()}
        if previous is not None and previous.error <= entry.error:
            st.best_per_cost[cost] = previous  # the checked program it displaced holds up better
        return self.config.target_error is not None and entry.error <= self.config.target_error

    # --- ask ---------------------------------------------------------------------------------
    def _in_flight(self, island: int) -> int:
        return sum(1 for c in self.state.pending if c.island == island)

    def _new_candidate(self) -> Candidate:
        st = self.state
        k = st.next_id % len(st.islands)
        isl = st.islands[k]
        P = self.config.population_size
        filling = len(isl.population) + self._in_flight(k) < P and isl.n_told < P
        if filling or not isl.population:  # nothing to select from yet (all candidates in flight)
            child, kind = self._random_start(), "random"
            parent = parent_entry = None
        else:
            expanded = self._expansion(isl)
            if expanded is not None:
                parent_entry, child, kind = expanded
            else:
                parent_entry = self._parent(isl)
                child, kind = mutate(parse_program(parent_entry.program), self.rng, self.config.ops,
                                     self.config.max_ops, self.dtype, templates=True, zeros=self.zeros,
                                     symmetry=self.symmetry)
            parent = parent_entry.id
        frame = None
        if self.problem.spec.frame_evolve:
            child, kind, frame = self._frame_move(child, kind, parent_entry)
        cid = st.next_id
        st.next_id += 1
        hashes = candidate_keys(child, self.problem.probes, self.dtype, frame_key(frame))
        seed = int((self.config.seed * 1_000_003 + cid) % (2**63))
        c = cost(child)
        lineage = parent_entry.error if kind in GROWTH_MUTATIONS and math.isfinite(parent_entry.error) else None
        return Candidate(id=cid, program=format_program(child), parent=parent, mutation=kind, hashes=tuple(hashes),
                         seed=seed, island=k, cost=c, promising_below=self._promising_below(c), frame=frame,
                         parent_error=lineage)

    def _promising_below(self, c: float) -> float | None:
        """The error below which a candidate of cost ``c`` could reach the front, with a margin
        (``PROMISING``): the best error at any cost up to ``c``, times the margin; None where
        the front has nothing that cheap (float32 ulp mode only)."""
        if not self.dense_checks:
            return None
        best = [e.error for k, e in self.state.best_per_cost.items() if k <= c and math.isfinite(e.error)]
        return PROMISING * min(best) if best else None

    def _random_start(self):
        """A random program of 1 to 3 operations, or (for a target with a symmetry or zeros, half
        the time) a templated seed of ``dsl.growth``."""
        n_ops = int(self.rng.integers(1, 4))
        if self.hints.any and self.rng.random() < SEED_SHARE:
            seed = seed_program(self.rng, self.config.ops, self.hints)
            if seed is not None:
                from dsl.canonical import canonicalize

                seed = canonicalize(seed, self.dtype)
                if cost(seed) <= self.config.max_ops:
                    return seed
        return random_program(self.rng, self.config.ops, min(n_ops, self.config.max_ops), self.dtype)

    def _frame_move(self, child, kind: str, parent_entry: Member | None):
        """(program, mutation kind, frame constants) for a run whose frame evolves.

        A child inherits its parent's frame constants; one child in ``FRAME_MOVE_RATE`` keeps the
        parent's program instead and moves one of the frame's discrete constants.
        """
        spec = self.problem.spec
        if parent_entry is None:
            return child, kind, evolvable_constants(spec.frame)
        frame = evolvable_constants(spec.frame, parent_entry.frame)
        if self.rng.random() < FRAME_MOVE_RATE:
            moved, name = mutate_constants(spec.frame, frame, self.rng)
            if name:
                return parse_program(parent_entry.program), "frame", moved
        return child, kind, frame

    def _expansion(self, isl: Island):
        """(parent entry, child, move) from the island's expansion queue, or None (a usual child).

        Improvements are expanded before programs that were merely close to the best at their
        cost; within each kind, first queued first served.  The template mutations alone would
        need the right parent and the right move drawn together (about one child in 4000 for a
        given front entry), and a Horner chain or a rational grows one coefficient per step.
        """
        queue = isl.expansions
        if not queue or self.rng.random() >= EXPANSION_SHARE:
            return None
        while queue:
            i = next((j for j, e in enumerate(queue) if e.priority == 0), 0)
            item = queue.pop(i)
            child = grow(parse_program(item.program), item.move, self.rng, self.config.ops,
                         self.config.max_ops, self.dtype, self.zeros, self.symmetry)
            if child is not None:
                parent = Member(item.parent, item.program, item.error, item.cost, frame=item.frame)
                return parent, child, item.move
        return None

    def _queue_expansions(self, isl: Island, member: Member, improved: bool, first: bool = False) -> None:
        """Queue every growth of ``member`` (once per structure); ``first`` puts them at the head
        of the queue: a growth step that paid grows on next, depth first, so a Horner chain whose
        every degree pays reaches its full depth in a few dozen children, not after every other
        queued improvement of the island (atan on [-1, 1], 5 seeds of 120 s: the medians at 11 and
        12 ops went from 0.91 and 0.90 ULP to 0.77 and 0.76; BENCHMARKS ``f32_others5``)."""
        if member.cost >= self.config.max_ops:
            return
        shape = structural_hash(parse_program(member.program), self.dtype) + frame_key(member.frame)
        queue = isl.expansions
        same = [e for e in queue if e.shape == shape]
        if same and min(e.error for e in same) <= member.error:
            return  # this structure is queued already, with constants at least as good
        priority = min([0 if improved else 1] + [e.priority for e in same])
        queue[:] = [e for e in queue if e.shape != shape]
        items = [Expansion(parent=member.id, program=member.program, move=m, priority=priority, shape=shape,
                           error=member.error, cost=member.cost, frame=member.frame) for m in self.moves]
        queue[:] = items + queue if first else queue + items
        while len(queue) > MAX_EXPANSIONS:
            i = next((j for j, e in enumerate(queue) if e.priority == 1), 0)
            del queue[i]

    def _parent(self, isl: Island) -> Member:
        """A tournament winner; one parent in ``FRONT_PARENT_RATE`` is one of the island's best.

        The aging population holds only the last P candidates, so a structure that was best at
        its cost once (a fitted rational, say) leaves it after P steps, however good; drawing some
        parents from the island's front keeps such stepping stones breeding, which the growth
        templates need (p/q grows one coefficient at a time).
        """
        if isl.best_per_cost and self.rng.random() < FRONT_PARENT_RATE:
            front = [isl.best_per_cost[c] for c in sorted(isl.best_per_cost)]
            return front[int(self.rng.integers(len(front)))]
        return self._tournament(isl.population)

    def _tournament(self, pop: list[Member]) -> Member:
        k = min(self.config.tournament_size, len(pop))
        idx = self.rng.choice(len(pop), size=k, replace=False)
        pts = [(pop[i].error if math.isfinite(pop[i].error) else math.inf, pop[i].cost) for i in idx]
        if self.rng.random() < 0.5:
            # half the tournaments are won on error alone: pressure toward accuracy at any cost
            ranks = [0 if p[0] == min(q[0] for q in pts) else 1 for p in pts]
        else:
            ranks = pareto_ranks(pts)
        best = [int(i) for i, r in zip(idx, ranks) if r == 0]
        return pop[int(self.rng.choice(best))] if len(best) > 1 else pop[best[0]]

    def _lookup(self, cand: Candidate) -> tuple[CacheEntry, str] | None:
        """The cache entry that answers a candidate, and the kind of hit; None to evaluate it.

        Refits (a perturbed or redrawn constant) and grown children are always fitted: they start
        from constants the structure's earlier fit did not try.
        """
        if not self.config.caching or cand.mutation in REFIT_MUTATIONS + GROWTH_MUTATIONS:
            return None
        found = self.state.cache.lookup(cand.hashes)
        if found is None or found[0].cost != cand.cost:
            return None  # an answer at another cost would move the candidate to that cost
        if cand.mutation == "identity":
            return found[0], "identity"
        return found

    def ask(self, n: int = 1) -> list[Candidate]:
        """Up to ``n`` candidates that need evaluating; cache hits are told on the way."""
        out: list[Candidate] = []
        streak = 0
        while len(out) < n and self.budget_left() > 0 and not self.reached_target():
            cand = self._new_candidate()
            hit = self._lookup(cand)
            if hit is None:
                self.state.pending.append(cand)
                out.append(cand)
                streak = 0
                continue
            entry, kind = hit
            self.state.n_hits += 1
            self.state.hits[kind] += 1
            for h in cand.hashes:
                self.state.cache.keys[h] = entry.key
            self._enter(cand, entry, from_cache=True)
            streak += 1
            if streak == HIT_STREAK_RESTART:
                self._restart("cache hits")
            if streak >= HIT_STREAK_EXHAUSTED:
                self.exhausted = True
                break
        self.state.rng_state = self.rng.bit_generator.state
        return out

    # --- tell --------------------------------------------------------------------------------
    def tell(self, results: list[dict | Result]) -> list[FrontEntry]:
        """Enter evaluated candidates; returns the front entries they improved."""
        improved = []
        by_id = {c.id: c for c in self.state.pending}
        for raw in results:
            res = Result.from_dict(raw, "a worker's result")
            cand = by_id.get(res.id)
            if cand is None:
                continue  # a result for a candidate already told (a retried task): ignore
            self.state.pending = [c for c in self.state.pending if c.id != res.id]
            self.state.n_evaluated += 1
            if res.failed:
                self.state.n_failed += 1
            entry = CacheEntry(program=res.program, error=res.error, cost=res.cost, summary=res.summary,
                               failed=res.failed, frame=res.frame)
            if self.state.dense_errors:  # a program that was checked keeps its dense error
                entry = entry.replace(error=max(entry.error, self.state.dense_errors.get(_digest(entry), -math.inf)))
            if self.config.caching and not res.failed:
                fitted = functional_hash(parse_program(res.program), self.problem.probes)
                entry, converged = self.state.cache.store(list(cand.hashes) + [fitted + frame_key(res.frame)], entry)
                self.state.hits["converged"] += converged
            if self._enter(cand, entry, from_cache=False):
                improved.append(self.state.best_per_cost[entry.cost])
        return improved

    def _enter(self, cand: Candidate, result: CacheEntry, from_cache: bool) -> bool:
        st = self.state
        isl = st.islands[cand.island]
        member = Member(id=cand.id, program=result.program, error=float(result.error), cost=float(result.cost),
                        parent=cand.parent, mutation=cand.mutation, frame=result.frame)
        if st.dense_errors:  # a program that was checked keeps its dense error, however it comes back
            member = member.replace(error=max(member.error, st.dense_errors.get(_digest(member), -math.inf)))
        isl.population.append(member)
        if len(isl.population) > self.config.population_size:
            isl.population.pop(0)  # aging: the oldest leaves, however good
        isl.n_told += 1
        st.n_told += 1
        entry = FrontEntry(**vars_of(member), summary=result.summary, from_cache=from_cache, island=cand.island,
                           dense_ulp=st.dense_errors.get(_digest(member)) if st.dense_errors else None)
        finite = math.isfinite(member.error)
        improved = finite and improves(st.best_per_cost, entry)
        if improved:
            old = st.best_per_cost.get(member.cost)
            if old is not None and old.dense_ulp is not None and entry.dense_ulp is None:
                st.displaced[str(member.cost)] = old  # back on the front if the newcomer fails its check
            elif entry.dense_ulp is not None:
                st.displaced.pop(str(member.cost), None)
            entry = entry.replace(front_since=st.n_told)
            st.best_per_cost[member.cost] = entry
            st.history.append([st.n_told, st.elapsed, member.cost, member.error])
            st.last_improved = st.n_told
        local = finite and improves(isl.best_per_cost, entry)
        if local:
            isl.best_per_cost[member.cost] = entry
        if not from_cache and finite:
            best = isl.best_per_cost.get(member.cost)
            # a growth step that paid (the new degree of freedom cut the parent's error by
            # LINEAGE_GAIN) grows on first, like an improvement: a Horner chain whose middle
            # degrees lose to rationals at their cost still reaches the degree that wins
            paid = cand.parent_error is not None and member.error <= cand.parent_error / LINEAGE_GAIN
            close = best is not None and member.error <= EXPANSION_NEAR * best.error
            if local or paid or close or self._close_in_niche(isl, member):
                self._queue_expansions(isl, member, local or paid, first=paid)
        self._maintain()
        return improved

    def _close_in_niche(self, isl: Island, member: Member) -> bool:
        """For a target odd about (0, c): whether ``member`` is within ``EXPANSION_NEAR`` of the best
        program of its own niche (programs in x² or in x) at its cost among the island's members.

        The parity shape c + x·P(x²) wins the middle costs by orders of magnitude and then stalls
        where c + x·R cancels (the sigmoid near 40 ULP), while the rationals in x that overtake it
        at higher costs are never "close" to it on the way there, so they were not grown."""
        if self.symmetry != "odd_offset":
            return False
        niche = _in_square(member.program)
        peers = [m.error for m in isl.population
                 if m.cost == member.cost and math.isfinite(m.error) and _in_square(m.program) == niche]
        return member.error <= EXPANSION_NEAR * min(peers + [member.error])

    # --- islands -----------------------------------------------------------------------------
    def _maintain(self) -> None:
        st = self.state
        if len(st.islands) > 1 and st.n_told >= st.next_migration:
            self._migrate()
            st.next_migration = st.n_told + self.config.migration_every
        if st.n_told - st.last_improved >= self.config.stagnation:
            self._restart("stagnation")

    def _migrate(self) -> None:
        """Each island receives a copy of its ring neighbour's best program at every cost (an
        island out on an epoch receives nothing: its state comes back with the epoch)."""
        islands = self.state.islands
        fronts = [pareto(isl.best_per_cost) for isl in islands]
        for i, isl in enumerate(islands):
            if i in self.busy:
                continue
            for e in fronts[i - 1]:
                isl.population.append(e.member())
                if len(isl.population) > self.config.population_size:
                    isl.population.pop(0)
                if improves(isl.best_per_cost, e):
                    isl.best_per_cost[e.cost] = e

    def _restart(self, why: str) -> None:
        """Start the island that holds the fewest front programs afresh (the front is kept)."""
        st = self.state
        front = pareto(st.best_per_cost)
        held = [sum(1 for e in front if e.island == i) for i in range(len(st.islands))]
        idle = [i for i in range(len(st.islands)) if i not in self.busy]
        if not idle:
            return  # every island is out on an epoch: the next stagnation check tries again
        self.restart_island(min(idle, key=lambda i: (held[i], i)), why)

    def restart_island(self, k: int, why: str) -> None:
        st = self.state
        st.islands[k] = Island()
        st.restarts += 1
        st.last_improved = st.n_told
        self.events.append({"event": "restart", "island": k, "why": why, "candidates": st.n_told})

    def drain_events(self) -> list[dict]:
        out, self.events = self.events, []
        return out

    # --- island epochs (breeding in the workers) ------------------------------------------------
    def begin_epoch(self, n: int) -> dict | None:
        """Send the next idle island out to breed and evaluate ``n`` candidates in a worker
        (``search.worker.run_epoch``), or None when every island is out, the budget is spent or
        the target is reached.  The island's state stays as it was until the epoch comes back, so
        a checkpoint taken meanwhile resumes it from before the epoch."""
        st = self.state
        n = int(min(n, self.budget_left()))
        if n <= 0 or self.reached_target() or len(self.busy) == len(st.islands):
            return None
        k = next(i % len(st.islands) for i in range(self._turn, self._turn + len(st.islands))
                 if i % len(st.islands) not in self.busy)
        self._turn = k + 1
        self.busy[k] = n
        base = st.next_id
        st.next_id += n
        return {"island_index": k, "island": st.islands[k].to_dict(), "n": n, "id_base": base, "run": self.run_token,
                "seed": int((self.config.seed * 1_000_003 + base) % (2**63)),
                "front": [st.best_per_cost[c].to_dict() for c in sorted(st.best_per_cost)],
                "hard_points": list(st.hard_points), "dense_errors": dict(st.dense_errors)}

    def end_epoch(self, work: dict, out: dict) -> list[FrontEntry]:
        """Take an epoch's island back and enter what it fitted; returns the front entries improved."""
        st = self.state
        k = work["island_index"]
        self.busy.pop(k, None)
        isl = Island.from_dict(out["island"], f"island {k} back from its epoch", check=False)
        isl.best_per_cost = {c: e.replace(island=k) for c, e in isl.best_per_cost.items()}
        st.islands[k] = isl
        improved = []
        told0 = st.n_told
        for item in out["fitted"]:
            cand = Candidate.from_dict(item["candidate"], "an epoch's candidate", check=False)
            res = Result.from_dict(item["result"], "an epoch's result", check=False)
            st.n_told = told0 + int(item["told"])  # as the island counted it, for the history
            st.n_evaluated += 1
            st.n_failed += bool(res.failed)
            # (the workers' caches answer their islands; the driver's would only cost time here)
            front = FrontEntry(id=cand.id, program=res.program, error=res.error, cost=res.cost, parent=cand.parent,
                               mutation=cand.mutation, frame=res.frame, summary=res.summary, failed=res.failed,
                               from_cache=False, island=k)
            if st.dense_errors:
                digest = _digest(front)
                if digest in st.dense_errors:
                    front = front.replace(error=max(front.error, st.dense_errors[digest]),
                                          dense_ulp=st.dense_errors[digest])
            if math.isfinite(front.error) and improves(st.best_per_cost, front):
                old = st.best_per_cost.get(front.cost)
                if old is not None and old.dense_ulp is not None and front.dense_ulp is None:
                    st.displaced[str(front.cost)] = old
                front = front.replace(front_since=st.n_told)
                st.best_per_cost[front.cost] = front
                st.history.append([st.n_told, st.elapsed, front.cost, front.error])
                st.last_improved = st.n_told
                improved.append(front)
        st.n_told = told0 + int(out["told"])
        st.n_hits += sum(int(out["hits"].get(h, 0)) for h in ("identity", "structure", "family"))
        for h, v in out["hits"].items():
            st.hits[h] += int(v)
        self._maintain()
        return improved

    def abandon_epoch(self, work: dict) -> None:
        """An epoch that never came back: its island is as it was, free for another epoch."""
        self.busy.pop(work["island_index"], None)

    # --- views -------------------------------------------------------------------------------
    def front(self) -> list[FrontEntry]:
        return pareto(self.state.best_per_cost)

    @property
    def hit_rate(self) -> float:
        return self.state.n_hits / self.state.n_told if self.state.n_told else 0.0
