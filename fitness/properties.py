"""What a target looks like on its domain, read from its reference values: symmetry and zeros.

The search offers shapes that fit these properties (``dsl.mutate``: x·P(x²) for an odd target,
P(x²) for an even one, a factor (x - z) at a zero), so they are detected from the values of the
target itself, never from its name: a user's ``module:function`` gets the same treatment as a
built-in.

- *Symmetry*: on a domain that holds 0, the target is odd when f(-x) = -f(x), even when
  f(-x) = f(x), and "odd_offset" (odd about the point (0, c), c = f(0) != 0: f = c + an odd
  function, as the logistic sigmoid and erfc are) when f(-x) + f(x) = 2c, at every probe point, to within ``SYMMETRY_TOL`` relative (the references carry
  about 106 bits; an mpmath function that is odd by construction agrees exactly).  A one-sided
  domain such as [0, b] counts: the target is probed at -x outside it (a target undefined there
  has no parity), since x·P(x²) and P(x²) are the textbook shapes for an odd or even function on
  [0, b] too (erf, sin, tanh, cos near 0).
- *A center*: on a domain away from 0 with neither, the chain variable x - c of ``domain_center``.
- *Zeros*: every fitness point where the reference is exactly 0, and every sign change between
  neighbouring points, refined by bisection on the target to a float64 z.  In ulp mode the error
  near a zero is a relative error, so a program must carry the factor (x - z) to be accurate
  there; z is returned as a pair (hi, lo) of the evaluation dtype with hi + lo ~ z, and
  (x - hi) - lo is that factor to within a rounding (x - hi is exact near z by Sterbenz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mpmath
import numpy as np

from .reference import Reference, mp_values
from .targets import Target, TargetError

if TYPE_CHECKING:
    from dsl.growth import Hints

SYMMETRY_TOL = 2.0**-90
SYMMETRY_PROBES = 24
MAX_ZEROS = 8


@dataclass(frozen=True)
class Zero:
    """A zero of the target in the domain: ``hi + lo`` (both of the evaluation dtype) ~ z.

    ``unit_slope``: f'(z) = 1 (log at 1, sin and tanh at 0), so that t + t^2 Q(t) with t = x - z
    is a shape whose last operation adds the exact t: the one that reaches float32 accuracy.
    """

    hi: float
    lo: float = 0.0
    unit_slope: bool = False


def symmetry(target: Target, lo: float, hi: float) -> str | None:
    """"odd", "even", "odd_offset" or None: the target's parity, when the domain holds 0 (probed on
    [-r, r], r = max(-lo, hi), so a one-sided domain [0, b] is probed at -x outside it)."""
    if not (lo <= 0.0 <= hi and lo < hi):
        return None
    r = max(-lo, hi)
    pos = np.unique(np.concatenate([np.linspace(r / SYMMETRY_PROBES, r, SYMMETRY_PROBES // 2),
                                    np.geomspace(r * 2.0**-30, r / 3.0, SYMMETRY_PROBES // 2)]))
    try:
        fp, fm = mp_values(target, pos), mp_values(target, -pos)
    except TargetError:  # a user target that fails outside its domain: no parity to use
        return None
    if not (np.all(np.isfinite(fp.hi)) and np.all(np.isfinite(fm.hi))):
        return None
    scale = np.maximum(np.abs(fp.hi), np.finfo(np.float64).tiny)

    def close(a: Reference, b: Reference, sign: float) -> bool:
        d = (a.hi - sign * b.hi) + (a.lo - sign * b.lo)
        return bool(np.all(np.abs(d) <= SYMMETRY_TOL * scale))

    at0 = mp_values(target, np.array([0.0]))
    if close(fm, fp, -1.0) and np.any(fp.hi != 0):
        if at0.hi[0] == 0.0:
            return "odd"
    if close(fm, fp, 1.0):
        return "even"
    c = float(at0.hi[0])
    if c != 0.0 and math.isfinite(c) and np.any(fp.hi != c):
        # f(-x) + f(x) = 2 f(0): odd about the point (0, f(0)), as the logistic sigmoid and erfc are
        with mpmath.workprec(160):  # the sum of two double-doubles, exactly enough
            two_c = 2 * (mpmath.mpf(float(at0.hi[0])) + float(at0.lo[0]))
            d = [abs(mpmath.mpf(float(a)) + float(b) + float(u) + float(v) - two_c)
                 for a, b, u, v in zip(fm.hi, fm.lo, fp.hi, fp.lo)]
        if all(di <= SYMMETRY_TOL * max(float(sc), abs(c)) for di, sc in zip(d, scale)):
            return "odd_offset"
    return None


def zeros(target: Target, x: np.ndarray, ref: Reference, dtype: str) -> tuple[Zero, ...]:
    """The zeros of the target among and between the sorted points ``x`` (at most ``MAX_ZEROS``,
    those nearest the middle of the domain first when there are more)."""
    x = np.asarray(x, np.float64)
    f = np.asarray(ref.hi, np.float64)
    found: list[float] = [float(v) for v in x[f == 0]]
    s = np.sign(f)
    brackets = np.nonzero((s[:-1] * s[1:]) < 0)[0]
    for i in brackets:
        found.append(_bisect(target, float(x[i]), float(x[i + 1]), float(f[i])))
    found = sorted(set(v for v in found if math.isfinite(v)))
    if len(found) > MAX_ZEROS:
        mid = 0.5 * (x[0] + x[-1])
        found = sorted(sorted(found, key=lambda v: abs(v - mid))[:MAX_ZEROS])
    dt = np.dtype(dtype)
    out = []
    for z in found:
        zh = float(dt.type(z))
        zl = float(dt.type(z - zh)) if dt == np.float32 else 0.0
        out.append(Zero(zh, zl, unit_slope(target, z)))
    return tuple(dict.fromkeys(out))


NEAR_IDENTITY = (0.75, 1.25)


def near_identity(x: np.ndarray, ref: Reference) -> bool:
    """Whether f(x)/x stays within ``NEAR_IDENTITY`` at every non-zero point: then x + x·R(x²)
    (R = f/x - 1, at most 1/4) has a final fma whose correction's rounding error is a small part
    of an ulp of the result, where x·P(x²) rounds P near 1 and then the product."""
    x = np.asarray(x, np.float64)
    keep = x != 0
    if not np.any(keep):
        return False
    with np.errstate(all="ignore"):
        ratio = np.asarray(ref.hi, np.float64)[keep] / x[keep]
    return bool(np.all(np.isfinite(ratio)) and np.all((ratio >= NEAR_IDENTITY[0]) & (ratio <= NEAR_IDENTITY[1])))


def unit_slope(target: Target, z: float) -> bool:
    """Whether f'(z) = 1, by a central difference at ~2^-40 relative (mpmath, 128 bits)."""
    h = 2.0**-40 * max(1.0, abs(z))
    f = mp_values(target, np.array([z - h, z + h], np.float64))
    if not np.all(np.isfinite(f.hi)):
        return False
    slope = ((f.hi[1] - f.hi[0]) + (f.lo[1] - f.lo[0])) / ((z + h) - (z - h))
    return bool(abs(slope - 1.0) < 1e-9)


def _bisect(target: Target, a: float, b: float, fa: float, steps: int = 80) -> float:
    """A float64 within a float64 ulp of where the target changes sign in [a, b]."""
    sa = math.copysign(1.0, fa)
    for _ in range(steps):
        m = 0.5 * (a + b)
        if m <= a or m >= b:
            break
        fm = float(mp_values(target, np.array([m])).hi[0])
        if fm == 0.0 or not math.isfinite(fm):
            return m
        if math.copysign(1.0, fm) == sa:
            a = m
        else:
            b = m
    return a if abs(float(mp_values(target, np.array([a])).hi[0])) <= abs(
        float(mp_values(target, np.array([b])).hi[0])) else b


def search_hints(problem) -> Hints:
    """What the growth templates use of the target's shape, detected from its values.

    Zeros are (hi, lo) pairs in the chain variable: x, or x² for a symmetric target, where only
    a zero at 0 of an even target is offered (an odd program x·P(x²) vanishes at 0 already, and
    a factor (x² - z²) would lose the relative accuracy near z that it is there for).
    Real mode keeps the exact float zeros relative error needs (``fitness.problem.target_zeros``).
    A framed problem's hints are its core's (``frame_core_hints``).
    """
    from dsl.growth import Hints

    from .problem import target_zeros

    spec = problem.spec
    if spec.frame:
        return frame_core_hints(spec.frame, spec.eval_dtype)
    sym = symmetry(problem.target, spec.lo, spec.hi)
    if spec.mode == "real":
        found = tuple(Zero(z, 0.0, unit_slope(problem.target, z)) for z in target_zeros(problem.target, spec.lo, spec.hi))
    else:
        found = zeros(problem.target, problem.x, problem.ref, spec.eval_dtype)
    if sym is not None and spec.lo != -spec.hi and any(z.hi != 0.0 for z in found):
        sym = None  # a one-sided domain with zeros of its own: their factors matter more than parity
    if sym == "odd_offset":
        if found:
            sym = None  # c + odd(x) crossing zero: the zero's factor matters more
        else:
            c = float(np.dtype(spec.eval_dtype).type(mp_values(problem.target, np.array([0.0])).hi[0]))
            return Hints("odd_offset", offset=c)
    if sym is not None:
        at0 = sym == "even" and any(z.hi == 0.0 for z in found)
        unit = sym == "odd" and unit_slope(problem.target, 0.0)
        return Hints(sym, ((0.0, 0.0),) if at0 else (), (False,) if at0 else (), unit,
                     sym == "odd" and not unit and near_identity(problem.x, problem.ref))
    center = domain_center(spec.lo, spec.hi) if not found else 0.0
    return Hints(None, tuple((z.hi, z.lo) for z in found), tuple(z.unit_slope for z in found), center=center)


CENTER_BITS = 4


def frame_core_hints(frame: str, dtype: str = "float32") -> "Hints":
    """The zeros of a frame's core function on its reduced domain, read from the frame's float64
    core reference: a framed search evolves the core, not the target, so the target's own shape
    says nothing of it.  The sigmoid frame's core e^r - 1 vanishes at 0 with slope 1, and needs
    the shape r + r^2 Q(r) there (rounded relative to e^r - 1, which the frame's extra bits need);
    the exp and log cores have no zero and get no hint.  A core that is odd or even about 0 (erf
    on [0, 1] in ``erf_small``) gets the symmetric templates, as an unframed target would."""
    from dsl.growth import Hints

    from .frames import core_reference, get_frame

    lo, hi = get_frame(frame).core_domain
    t = np.unique(np.concatenate([np.linspace(lo, hi, 257), [0.0] if lo < 0.0 < hi else []]))
    with np.errstate(all="ignore"):
        v = core_reference(frame, t)
    sym = _core_symmetry(frame, lo, hi)
    if sym == "odd":
        slope = core_reference(frame, np.array([-2.0**-20, 2.0**-20]))
        unit = bool(abs((slope[1] - slope[0]) / 2.0**-19 - 1.0) < 1e-6)
        keep = t != 0
        with np.errstate(all="ignore"):
            ratio = v[keep] / t[keep]
        near = bool(np.all(np.isfinite(ratio)) and np.all((ratio >= NEAR_IDENTITY[0]) & (ratio <= NEAR_IDENTITY[1])))
        return Hints("odd", (), (), unit, not unit and near)
    if sym == "even":
        at0 = bool(core_reference(frame, np.array([0.0]))[0] == 0.0)
        return Hints("even", ((0.0, 0.0),) if at0 else (), (False,) if at0 else ())
    found = [float(z) for z in t[v == 0]]
    for i in np.nonzero(np.sign(v[:-1]) * np.sign(v[1:]) < 0)[0]:
        a, b = float(t[i]), float(t[i + 1])
        for _ in range(80):
            m = 0.5 * (a + b)
            if np.sign(core_reference(frame, np.array([m]))[0]) == np.sign(v[i]):
                a = m
            else:
                b = m
        found.append(0.5 * (a + b))
    dt = np.dtype(dtype)
    zs, units = [], []
    for z in sorted(set(found))[:MAX_ZEROS]:
        h = 2.0**-20 * max(1.0, abs(z))
        d = core_reference(frame, np.array([z - h, z + h]))
        zh = float(dt.type(z))
        zs.append((zh, float(dt.type(z - zh)) if dt == np.float32 else 0.0))
        units.append(bool(abs((d[1] - d[0]) / (2 * h) - 1.0) < 1e-6))
    return Hints(None, tuple(zs), tuple(units))


CORE_SYMMETRY_TOL = 2.0**-45  # core references are float64 functions, not 106-bit ones


def _core_symmetry(frame: str, lo: float, hi: float) -> str | None:
    """"odd" or "even": a frame's core function's parity on a core domain that holds 0 (probed at
    -t outside a one-sided domain, as ``symmetry`` probes a target), read from its float64 reference."""
    from .frames import core_reference

    if not (lo <= 0.0 <= hi and lo < hi):
        return None
    r = max(-lo, hi)
    pos = np.unique(np.concatenate([np.linspace(r / SYMMETRY_PROBES, r, SYMMETRY_PROBES // 2),
                                    np.geomspace(r * 2.0**-30, r / 3.0, SYMMETRY_PROBES // 2)]))
    with np.errstate(all="ignore"):
        fp, fm, f0 = core_reference(frame, pos), core_reference(frame, -pos), core_reference(frame, np.array([0.0]))
    if not (np.all(np.isfinite(fp)) and np.all(np.isfinite(fm))):
        return None
    tol = CORE_SYMMETRY_TOL * np.maximum(np.abs(fp), np.finfo(np.float64).tiny)
    if np.all(np.abs(fm + fp) <= tol) and np.any(fp != 0) and f0[0] == 0.0:
        return "odd"
    if np.all(np.abs(fm - fp) <= tol):
        return "even"
    return None


def domain_center(lo: float, hi: float) -> float:
    """The middle of a domain that lies away from 0, rounded to ``CENTER_BITS`` significant bits
    (a short literal: x - c is then exact wherever x is within a factor 2 of c, and a few binades
    further when x's ulp divides c's last bit); 0.0 for a domain that holds 0 or touches it.

    Chains in x - c are well conditioned there; chains in x are not (``dsl.growth``)."""
    if not (lo > 0.0 or hi < 0.0) or not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0
    m, e = math.frexp(0.5 * (lo + hi))
    return math.ldexp(round(m * 2**CENTER_BITS) / 2**CENTER_BITS, e)
