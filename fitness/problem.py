"""A problem: what to approximate, where, in which dtype, and how errors are measured.

``ProblemSpec`` is the small, serializable description (it goes in configs and checkpoints);
``Problem`` holds what it implies: the evaluation points, their reference values and the error
weights.  Both the driver and every worker build the same ``Problem`` from the same spec (the
reference values come from the disk cache after the first build).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import cached_property

import numpy as np

from dsl.program import Program
from dsl.semantics import as_dtype

from .metrics import ulp_of_exact
from .points import clamp_domain, fitness_points, value_binade_edges
from .reference import Reference, reference_values
from .targets import Target, check_domain, get_target

MODES = ("ulp", "real", "cr", "faithful")
FLOAT64_INSIDE = ("cr", "faithful")  # float32 in and out, float64 inside, one final rounding


def float64_inside(mode: str) -> bool:
    """Whether a mode's programs are float32 functions computed in float64 and rounded once at the
    end (``cr``: scored against the correctly rounded value; ``faithful``: against the two float32
    neighbours of the exact value, which is within 1 ULP)."""
    return mode in FLOAT64_INSIDE


VALIDATION_POINTS = 1 << 15


@dataclass(frozen=True)
class ProblemSpec:
    target: str
    lo: float
    hi: float
    dtype: str = "float32"
    mode: str = "ulp"  # "ulp": max ULP in dtype; "real": max relative error, float64 evaluation;
    # "cr": float32 in and out, float64 inside, scored by the distance to the correctly rounded
    # float32 value before the one final rounding (fitness.cr); "faithful": the same float32 function in
    # float64, scored by its faithful ratio (below 1: the rounded result is one of the two float32
    # neighbours of the exact value, within 1 ULP; fitness.cr)
    n_points: int = 2048
    frame: str = ""  # a range-reduction frame (fitness.frames) the search fills in; "" for none
    frame_evolve: bool = False  # the frame's own constants change too (fitted and moved, see frames.py)

    def __post_init__(self) -> None:
        as_dtype(self.dtype)
        if self.frame:
            from .frames import get_frame

            get_frame(self.frame)
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if float64_inside(self.mode) and self.dtype != "float32":
            raise ValueError(f"{self.mode} mode makes float32 functions computed in float64: its dtype is float32")
        if self.n_points < 16:
            raise ValueError("n_points must be at least 16")
        if self.frame_evolve:
            from .frames import evolvable

            if not self.frame:
                raise ValueError("frame evolution needs a frame")
            if not evolvable(self.frame):
                raise ValueError(f"frame {self.frame!r} has no constants to evolve")

    @property
    def eval_dtype(self) -> str:
        """The dtype candidates compute in: real mode scores the real-number function in float64,
        cr and faithful modes compute a float32 function in float64 (one rounding at the end)."""
        return "float64" if self.mode == "real" or float64_inside(self.mode) else self.dtype

    def to_dict(self) -> dict:
        d = asdict(self)
        if not self.frame_evolve:
            del d["frame_evolve"]  # absent when off: problems (and checkpoint hashes) from before it stay equal
        return d


@dataclass
class Problem:
    spec: ProblemSpec
    target: Target
    x: np.ndarray
    ref: Reference
    weight: np.ndarray  # 1/ulp (ulp mode) or 1/|f| (real mode): residual * weight is the error
    fit_idx: np.ndarray  # the subset used for fast float64 fitting
    probes: np.ndarray = field(repr=False, default=None)
    val_x: np.ndarray | None = field(repr=False, default=None)  # validation points (float32 ulp mode)
    val_ref: Reference | None = field(repr=False, default=None)

    @classmethod
    def build(cls, spec: ProblemSpec, use_cache: bool = True) -> "Problem":
        target = get_target(spec.target)
        check_domain(target, spec.lo, spec.hi)
        dt = spec.eval_dtype
        if spec.mode == "real":
            x = real_points(target, spec.lo, spec.hi, spec.n_points)
        else:  # cr and faithful modes: float32 inputs, held as float64 (the dtype its programs compute in)
            x = fitness_points(spec.lo, spec.hi, spec.dtype, n=spec.n_points).astype(dt)
        hard = np.empty(0, np.float64)
        if spec.mode == "cr":  # the inputs nearest a rounding midpoint, over the whole domain
            from .cr import hard_inputs

            hard = hard_inputs(target, spec.lo, spec.hi, use_cache=use_cache)
            x = np.unique(np.concatenate([x, hard]))
        ref = reference_values(target, x, spec.lo, spec.hi, dt, use_cache=use_cache)
        if spec.mode == "ulp" and not spec.frame and np.all(np.isfinite(ref.hi)):
            x, ref = _with_output_edges(target, x, ref, spec, use_cache)
        if not np.all(np.isfinite(ref.hi)):
            bad = x[~np.isfinite(ref.hi)][0]
            raise ValueError(f"{spec.target} is not finite at x = {float(bad)!r} inside the domain")
        if spec.mode != "real":
            # cr, faithful: the fitter works in float32 ulps too (a minimax relative fit is what leaves the
            # most room at every point); the score is the cr ratio (fitness.evaluate.cr_summary)
            weight = 1.0 / ulp_of_exact(ref.hi, ref.lo, spec.dtype)
        else:
            with np.errstate(divide="ignore", over="ignore"):
                weight = np.where(ref.hi != 0, 1.0 / np.abs(ref.hi), 0.0)
        n_fit = min(len(x), 512)
        fit_idx = np.unique(np.linspace(0, len(x) - 1, n_fit).round().astype(np.int64))
        if len(hard):  # the fitter must see the hard inputs too
            fit_idx = np.union1d(fit_idx, np.searchsorted(x, hard))
        plo, phi = (spec.lo, spec.hi) if not spec.frame else _core_domain(spec.frame)
        probes = np.linspace(plo, phi, 19)[1:-1].astype(dt)
        val_x = val_ref = None
        if spec.mode != "real":
            # a denser, disjoint sample: fitted float32 constants are checked here, so that
            # tuning them to the fitness points' rounding noise does not pass for accuracy
            val_x = fitness_points(spec.lo, spec.hi, spec.dtype, n=VALIDATION_POINTS, seed=99).astype(dt)
            val_ref = reference_values(target, val_x, spec.lo, spec.hi, dt, use_cache=use_cache)
        return cls(spec, target, x, ref, weight, fit_idx, probes, val_x, val_ref)

    def with_hard_points(self, x) -> "Problem":
        """This problem with ``x`` added to its validation set.

        The validation set is a sample, and the float32 polish tunes constants against it, so a
        narrow error spike between its points can pass; a dense check that finds one hands its
        worst inputs back, and from then on every candidate is scored on them too.
        """
        from dataclasses import replace

        from .reference import mp_values

        if self.val_x is None:
            raise ValueError("hard points are for float ulp-mode problems (they extend the validation set)")
        x = np.unique(np.asarray(x, self.spec.eval_dtype))
        x = x[(x >= self.spec.lo) & (x <= self.spec.hi)]
        ref = mp_values(self.target, x)
        return replace(self, val_x=np.concatenate([self.val_x, x]),
                       val_ref=Reference(np.concatenate([self.val_ref.hi, ref.hi]), np.concatenate([self.val_ref.lo, ref.lo])))

    @cached_property
    def cr_rooms(self) -> tuple:
        """cr and faithful modes: ``fitness.cr.rounding_room`` of the fitness and of the validation
        references, computed once per problem rather than once per scored candidate."""
        from .cr import rounding_room

        faithful = self.spec.mode == "faithful"
        return (rounding_room(self.ref, faithful),
                rounding_room(self.val_ref, faithful) if self.val_ref is not None else None)

    def realize(self, program: Program, frame_constants: dict[str, float] | None = None) -> Program:
        """The program that is actually evaluated: the candidate, or the frame around it (with the
        candidate's own frame constants when the frame evolves)."""
        if not self.spec.frame:
            return program
        from .frames import compose

        return compose(self.spec.frame, program, frame_constants or None, float64=float64_inside(self.spec.mode))

    def problem_hash(self, ops: tuple[str, ...]) -> str:
        """Identifies the problem a checkpoint belongs to: spec, points and op set."""
        h = hashlib.sha256()
        h.update(json.dumps(self.spec.to_dict(), sort_keys=True).encode())
        h.update(np.ascontiguousarray(self.x).tobytes())
        h.update(",".join(ops).encode())
        return h.hexdigest()[:24]


def _with_output_edges(target: Target, x: np.ndarray, ref: Reference, spec: ProblemSpec,
                       use_cache: bool) -> tuple[np.ndarray, Reference]:
    """The fitness points with the inputs where the target's value crosses a power of two
    (``points.value_binade_edges``: the largest ulp errors of a smooth relative error), and
    their reference values.  Frame problems are left alone: their core's output binades repeat
    and the dense check's hard points find them."""
    from .reference import mp_values

    fn = target.np_fn if target.np_fn is not None else (lambda v: mp_values(target, v).hi)
    extra = value_binade_edges(x, ref.hi, fn, spec.dtype)
    extra = extra[~np.isin(extra, x)]
    if len(extra) == 0:
        return x, ref
    x = np.unique(np.concatenate([x, extra]))
    return x, reference_values(target, x, spec.lo, spec.hi, spec.dtype, use_cache=use_cache)


REAL_ZERO_CLUSTER = 16  # 1/16 of the points per side of a zero of the target (real mode)


def target_zeros(target: Target, lo: float, hi: float) -> tuple[float, ...]:
    """The domain's endpoints (and an interior 0) where the target is exactly 0.

    Real mode measures relative error, so a program must vanish exactly where the target does;
    the search offers a factor (x - z) for each such z (``dsl.mutate``, templates).
    """
    from .reference import mp_values

    a, b = clamp_domain(lo, hi, "float64")
    sites = sorted({a, b} | ({0.0} if a < 0.0 < b else set()))
    ref = mp_values(target, np.array(sites, np.float64))
    return tuple(float(z) for z, f in zip(sites, ref.hi) if f == 0)


def real_points(target: Target, lo: float, hi: float, n: int = 2048, seed: int = 20240601) -> np.ndarray:
    """Sorted, unique float64 fitness points of a real-mode problem.

    Real mode measures the relative error of the real-number function, which depends on where
    in the domain a point lies, not on its float bit pattern: points spread by value (half
    Chebyshev nodes of the first kind, clustering toward the ends where minimax errors peak,
    half uniform random by value), both endpoints, and, toward each endpoint (or interior 0)
    where the target is exactly 0, a geometric cluster of ``n // REAL_ZERO_CLUSTER`` points per
    side from 1/16 of the domain's width down to ~1e-18 of it: near a zero of ``f`` the
    relative error ``p/f - 1`` is a ratio of two small numbers, and the exact zero itself
    (an endpoint, always included) demands that the program vanish there.  No subnormal points
    (``fitness_points`` spreads half its points by bit pattern, down to ~1e-308 on a domain
    starting at 0, where ``1/|f|`` overflows), so every weight ``1/|f|`` is finite.
    Deterministic: depends only on the target, the domain and ``n``.
    """
    a, b = clamp_domain(lo, hi, "float64")
    width = b - a
    zeros = target_zeros(target, lo, hi)
    cluster = []
    n_side = max(n // REAL_ZERO_CLUSTER, 4)
    for z in zeros:
        smallest = max(width * 2.0**-60, 16.0 * float(np.spacing(abs(z))))
        offsets = np.geomspace(width / 16.0, smallest, n_side)
        for side in (-1.0, 1.0):
            if a <= z + side * offsets[0] <= b:
                cluster.append(z + side * offsets)
    m = max(n - n_side * len(cluster), 16)
    n_cheb = m // 2
    k = np.arange(n_cheb)
    cheb = a + width * 0.5 * (1.0 - np.cos(np.pi * (k + 0.5) / n_cheb))
    uni = np.random.default_rng(seed).uniform(a, b, m - n_cheb)
    pts = np.concatenate([cheb, uni, *cluster, [a, b]])
    pts = np.clip(pts, a, b)
    pts = pts[(np.abs(pts) >= np.finfo(np.float64).tiny) | (pts == 0)]
    pts = np.where(pts == 0, 0.0, pts)  # merge -0 into +0
    return np.unique(pts)


def _core_domain(frame: str) -> tuple[float, float]:
    from .frames import get_frame

    return get_frame(frame).core_domain
