"""Classical baselines for the digits-per-operation table: Taylor, Padé, minimax polynomial and
minimax rational approximations, each turned into a DSL program with float64 constants.

Every approximation is a program in Horner form, so its size is measured by the same
``dsl.program.cost`` as a searched program: a degree-n polynomial costs n (one fma per Horner
step; 2n with ``use_fma=False``, the count of a machine or paper without fused multiply-add), a
rational [m/n] costs m + n + 1 (numerator, denominator, one division).  Accuracy is measured by
``fitness.real_error`` so that every method, and every searched program, is measured alike.

Targets that vanish at a float ``z`` of the domain (log and log2 at 1; erf, tanh and sin at 0)
have unbounded relative error near ``z`` unless the approximation vanishes exactly there, so
the zero is factored out as it is in every libm: with ``t = x - z`` (one subtraction, free when
``z = 0``) the program is ``t * N(t) / D(t)``, and ``N / D`` approximates ``g(t) = f(z + t) / t``.
The extra multiply is the Horner step of a numerator whose constant term is 0, so "degree m"
still means the degree of the whole numerator and the cost formulas above still hold.

All fitting happens in mpmath at ``PREC_BITS``; the coefficients are rounded to float64 only
when the program is built, and the table reports the digits of that rounded program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import mpmath

from dsl.program import Node, Program, cost
from fitness.real_error import max_relative_error
from fitness.targets import Target, get_target

PREC_BITS = 192  # monomial bases on [0, 1] lose ~10 digits to conditioning at degree 12
_GRID_SIZE = 600
_ZERO_CANDIDATES = (0.0, 1.0)
METHODS = ("taylor", "pade", "minimax_poly", "minimax_rational")


class RemezError(ValueError):
    """The exchange algorithm did not converge (no alternation, a pole, a singular system)."""


@dataclass(frozen=True)
class Approximation:
    """One classical approximation and the program that evaluates it.

    ``numerator``/``denominator`` are the program's float64 coefficients in ``t = x - zero``
    (``t = x`` when ``zero`` is None or 0), lowest degree first; the denominator's constant
    term is 1, or with ``use_fma=False`` its leading one (a monic Horner saves a multiply).
    ``levelled_error`` and ``extrema`` come from the Remez exchange (the relative error of the
    unrounded approximation and the x where it alternates); None and () otherwise.
    """

    method: str
    m: int
    n: int
    program: Program
    cost: float
    numerator: tuple[float, ...]
    denominator: tuple[float, ...]
    zero: float | None
    levelled_error: float | None = None
    extrema: tuple[float, ...] = ()

    @property
    def config(self) -> str:
        return f"degree {self.m}" if self.n == 0 else f"[{self.m}/{self.n}]"


@dataclass(frozen=True)
class BaselineRow:
    """The best approximation of one method within an operation budget."""

    method: str
    ops: int
    digits: float
    max_rel_error: float
    config: str
    cost: float
    program: Program


# --- the function being approximated ------------------------------------------------------------
class _Problem:
    """``g(t) = f(z + t) / t`` (or ``f`` itself when no zero is factored) on [a, b] = [lo-z, hi-z].

    Holds a Chebyshev-clustered grid with cached values of ``g``, shared by every fit of one
    baseline table.  Build and use inside ``mpmath.workprec(PREC_BITS)``.
    """

    def __init__(self, target: Target, lo: float, hi: float):
        self.target, self.lo, self.hi = target, lo, hi
        self.fn = target.mp_fn
        self.zero = _float_zero(self.fn, lo, hi)
        z = self.zero or 0.0
        self.shift = mpmath.mpf(z)
        self.a, self.b = mpmath.mpf(lo) - self.shift, mpmath.mpf(hi) - self.shift
        self._g0 = mpmath.diff(self.fn, self.shift) if self.zero is not None else None
        self.grid = chebyshev_points(self.a, self.b, _GRID_SIZE)
        self.g_grid = [self.g(t) for t in self.grid]
        if any(v == 0 for v in self.g_grid) or len({mpmath.sign(v) for v in self.g_grid}) > 1:
            raise ValueError(
                f"{target.name} changes sign inside [{lo}, {hi}] away from a float zero: "
                "relative error is unbounded there"
            )

    def g(self, t):
        if self.zero is None:
            return self.fn(t)
        if t == 0:
            return self._g0
        return self.fn(self.shift + t) / t

    def pole_free(self, den: Sequence) -> bool:
        """Whether the polynomial ``den`` keeps one strict sign on the grid."""
        return len({mpmath.sign(_polyval(den, t)) for t in self.grid}) == 1 and _polyval(den, self.a) != 0

    def taylor(self, degree: int) -> list:
        """Taylor coefficients of ``g`` about the interval midpoint, in ``s = t - t_mid``."""
        t_mid = (self.a + self.b) / 2
        if self.zero is None:
            return mpmath.taylor(self.fn, t_mid, degree)
        f = mpmath.taylor(self.fn, self.shift + t_mid, degree + 1)
        if t_mid == 0:
            return f[1:]
        # f(s) = (t_mid + s) g(s)  =>  f_k = t_mid g_k + g_{k-1}
        g, prev = [], mpmath.mpf(0)
        for k in range(degree + 1):
            prev = (f[k] - prev) / t_mid
            g.append(prev)
        return g


def _float_zero(fn: Callable, lo: float, hi: float) -> float | None:
    """A float z in [lo, hi] (an endpoint, 0 or 1) where the target is exactly 0, if any."""
    for z in (lo, hi, *_ZERO_CANDIDATES):
        if lo <= z <= hi and fn(mpmath.mpf(z)) == 0:
            return float(z)
    return None


def chebyshev_points(a, b, n: int) -> list:
    """``n`` Chebyshev-Lobatto points on [a, b] in increasing order, ends included (mpmath)."""
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    mid, half = (a + b) / 2, (b - a) / 2
    pts = [mid - half * mpmath.cospi(mpmath.mpf(i) / (n - 1)) for i in range(n)]
    pts[0], pts[-1] = a, b
    return pts


def _polyval(coeffs: Sequence, t):
    acc = mpmath.mpf(0)
    for c in reversed(coeffs):
        acc = acc * t + c
    return acc


def _shift_poly(coeffs: Sequence, c) -> list:
    """Coefficients in t of ``sum a_k (t - c)^k`` (binomial expansion, exact up to precision)."""
    out = [mpmath.mpf(0)] * len(coeffs)
    for k, a in enumerate(coeffs):
        for j in range(k + 1):
            out[j] += a * mpmath.binomial(k, j) * (-c) ** (k - j)
    return out


# --- programs ------------------------------------------------------------------------------------
class _Builder:
    def __init__(self) -> None:
        self.nodes: list[Node] = [Node("x")]

    def leaf(self, op: str, value: float) -> int:
        self.nodes.append(Node(op, (), float(value)))
        return len(self.nodes) - 1

    def op(self, name: str, *args: int) -> int:
        self.nodes.append(Node(name, tuple(args)))
        return len(self.nodes) - 1

    def horner(self, coeffs: Sequence[float], t: int, use_fma: bool) -> int:
        """Horner evaluation of ``sum coeffs[k] t^k``.

        A zero constant term costs a bare mul; a leading coefficient of exactly 1 (monic)
        starts with ``t + c`` instead of ``1 * t + c``, which saves a multiply without fma.
        """
        top = len(coeffs) - 1
        monic = top > 0 and coeffs[top] == 1.0
        acc = t if monic else self.leaf("param", coeffs[top])
        for k in range(top - 1, -1, -1):
            c, first = coeffs[k], monic and k == top - 1
            if c == 0.0 and k == 0:
                acc = acc if first else self.op("mul", acc, t)
            elif first:
                acc = self.op("add", acc, self.leaf("param", c))
            elif use_fma:
                acc = self.op("fma", acc, t, self.leaf("param", c))
            else:
                acc = self.op("add", self.op("mul", acc, t), self.leaf("param", c))
        return acc


def build_program(numerator: Sequence[float], denominator: Sequence[float], zero: float | None,
                  use_fma: bool = True) -> Program:
    """``N(t) / D(t)`` in Horner form with ``t = x - zero``; no division when ``D == [1]``."""
    b = _Builder()
    t = 0 if not zero else b.op("sub", 0, b.leaf("const", zero))
    num = b.horner(numerator, t, use_fma)
    if list(denominator) == [1.0]:
        return Program(tuple(b.nodes), num)
    out = b.op("div", num, b.horner(denominator, t, use_fma))
    return Program(tuple(b.nodes), out)


def _approximation(method: str, m: int, n: int, num_g: Sequence, den: Sequence, problem: _Problem,
                   use_fma: bool, levelled: float | None = None, extrema: Sequence = ()) -> Approximation:
    """Round an mpmath fit of ``g`` to float64 and build the program (restoring the factor t)."""
    if not use_fma and len(den) > 1:  # monic denominator: its first Horner step is an add
        num_g, den = [c / den[-1] for c in num_g], [c / den[-1] for c in den]
    num = [float(c) for c in num_g]
    if problem.zero is not None:
        num = [0.0, *num]
    den_f = [float(c) for c in den]
    prog = build_program(num, den_f, problem.zero, use_fma)
    xs = tuple(float(t + problem.shift) for t in extrema)
    return Approximation(method, m, n, prog, cost(prog), tuple(num), tuple(den_f), problem.zero,
                         None if levelled is None else float(levelled), xs)


def _g_degree(problem: _Problem, m: int) -> int:
    """Degree of N for a numerator of total degree m (the factor t takes one degree)."""
    if problem.zero is None:
        return m
    if m < 1:
        raise ValueError(f"{problem.target.name} vanishes at {problem.zero}: the numerator needs degree >= 1")
    return m - 1


# --- Taylor and Padé -----------------------------------------------------------------------------
def _taylor(problem: _Problem, degree: int, use_fma: bool) -> Approximation:
    d = _g_degree(problem, degree)
    coeffs = _shift_poly(problem.taylor(d), (problem.a + problem.b) / 2)
    return _approximation("taylor", degree, 0, coeffs, [mpmath.mpf(1)], problem, use_fma)


def _pade(problem: _Problem, m: int, n: int, use_fma: bool) -> Approximation:
    d = _g_degree(problem, m)
    c = (problem.a + problem.b) / 2
    p, q = mpmath.pade(problem.taylor(d + n), d, n)
    p, q = _shift_poly(p, c), _shift_poly(q, c)
    scale = q[0] if abs(q[0]) > 1e-8 * max(abs(v) for v in q) else max(q, key=abs)
    return _approximation("pade", m, n, [v / scale for v in p], [v / scale for v in q], problem, use_fma)


# --- Remez exchange on relative error -------------------------------------------------------------
def _solve_reference(ref: Sequence, g_ref: Sequence, m: int, n: int, pole_free: Callable):
    """N, D (D(0) = 1) and E with ``N(t_i) = (1 + (-1)^i E) g_i D(t_i)`` at the reference points.

    The system is bilinear in (coefficients, E) and has several solutions, most of them with a
    pole in the interval; Newton from a guess can land on any.  So, as in Chebfun's rational
    Remez, it is solved as an eigenproblem: the functionals ``c -> sum_i t_i^k c_i / w'(t_i)``
    (divided differences, ``w`` the node polynomial) annihilate every N of degree m for
    k = 0..n, leaving an (n+1)x(n+1) generalized eigenproblem ``M b = E K b`` for D's
    coefficients; the real eigenvalue of least |E| whose D keeps one sign is chosen.
    """
    size = m + n + 2
    signs = [1 if i % 2 == 0 else -1 for i in range(size)]
    weights = []
    for i, ti in enumerate(ref):
        w = mpmath.mpf(1)
        for j, tj in enumerate(ref):
            if j != i:
                w *= ti - tj
        weights.append(1 / w)
    pw = [[t**k for k in range(max(m, n) * 2 + 1)] for t in ref]
    mat_m = mpmath.matrix(n + 1, n + 1)
    mat_k = mpmath.matrix(n + 1, n + 1)
    for k in range(n + 1):
        for j in range(n + 1):
            terms = [weights[i] * g_ref[i] * pw[i][k + j] for i in range(size)]
            mat_m[k, j] = -mpmath.fsum(terms)
            mat_k[k, j] = mpmath.fsum(s * v for s, v in zip(signs, terms))
    try:
        eigvals, eigvecs = mpmath.eig(mpmath.inverse(mat_k) * mat_m)
    except ZeroDivisionError:
        raise RemezError("singular reference system") from None
    candidates = []
    for idx, e in enumerate(eigvals):
        if abs(mpmath.im(e)) > mpmath.mpf(2) ** (-mpmath.mp.prec // 2) * (1 + abs(e)):
            continue
        den = [mpmath.re(eigvecs[j, idx]) for j in range(n + 1)]
        if den[0] == 0:
            continue
        den = [d / den[0] for d in den]
        if pole_free(den):
            candidates.append((abs(mpmath.re(e)), mpmath.re(e), den))
    if not candidates:
        raise RemezError(f"[{m}/{n}]: every solution on the reference has a pole in the interval "
                         "(typically a degenerate pair, whose best approximation has lower degree)")
    _, e, den = min(candidates, key=lambda c: c[0])
    rhs = [(1 + signs[i] * e) * g_ref[i] * _polyval(den, t) for i, t in enumerate(ref)]
    num, _res = mpmath.qr_solve(mpmath.matrix([row[: m + 1] for row in pw]), mpmath.matrix(rhs))
    return [num[k] for k in range(m + 1)], den, e


def _error_fn(problem: _Problem, num: Sequence, den: Sequence) -> Callable:
    def err(t, g=None):
        g = problem.g(t) if g is None else g
        return _polyval(num, t) / (_polyval(den, t) * g) - 1
    return err


def _golden_abs_max(fn: Callable, a, b, iters: int = 28):
    inv_phi = (mpmath.sqrt(5) - 1) / 2
    c, d = b - inv_phi * (b - a), a + inv_phi * (b - a)
    fc, fd = abs(fn(c)), abs(fn(d))
    for _ in range(iters):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - inv_phi * (b - a)
            fc = abs(fn(c))
        else:
            a, c, fc = c, d, fd
            d = a + inv_phi * (b - a)
            fd = abs(fn(d))
    return c if fc >= fd else d


def _alternating_extrema(problem: _Problem, num, den, ref, count: int) -> list[tuple]:
    """``count`` consecutive sign-alternating extrema (t, e) of the error, including its maximum.

    The error is sampled on the cached grid plus the current reference (where it alternates by
    construction, so no run is missed); each constant-sign run contributes its largest
    |error|, refined by golden-section search between its grid neighbours.
    """
    g_ref = [problem.g(t) for t in ref]
    pts = sorted(zip(list(problem.grid) + list(ref), list(problem.g_grid) + g_ref), key=lambda p: p[0])
    err = _error_fn(problem, num, den)
    ts = [t for t, _ in pts]
    es = [err(t, g) for t, g in pts]
    runs: list[list[int]] = []
    for i, e in enumerate(es):
        if runs and (es[runs[-1][0]] >= 0) == (e >= 0):
            runs[-1].append(i)
        else:
            runs.append([i])
    extrema = []
    for run in runs:
        i = max(run, key=lambda k: abs(es[k]))
        t_best, e_best = ts[i], es[i]
        if 0 < i < len(ts) - 1:
            t_new = _golden_abs_max(err, ts[i - 1], ts[i + 1])
            e_new = err(t_new)
            if abs(e_new) > abs(e_best) and (e_new >= 0) == (e_best >= 0):
                t_best, e_best = t_new, e_new
        extrema.append((t_best, e_best))
    if len(extrema) < count:
        raise RemezError(f"error alternates {len(extrema)} times, need {count}")
    while len(extrema) > count:
        extrema.pop(0 if abs(extrema[0][1]) < abs(extrema[-1][1]) else -1)
    return extrema


def _remez(problem: _Problem, m: int, n: int):
    """Best relative approximation of g by N/D with deg N = m, deg D = n (exchange algorithm).

    Starts from Chebyshev points.  A rational exchange can wander into a pole from there; it is
    then restarted from the alternation points of the degree m + n minimax polynomial, which
    are as many as [m/n] needs and usually close to its own.
    """
    count = m + n + 2
    try:
        return _exchange(problem, m, n, chebyshev_points(problem.a, problem.b, count))
    except RemezError:
        if n == 0:
            raise
    _, _, _, ref = _exchange(problem, m + n, 0, chebyshev_points(problem.a, problem.b, count))
    return _exchange(problem, m, n, ref)


def _exchange(problem: _Problem, m: int, n: int, ref: list, max_iter: int = 40, tol: float = 1e-7):
    count = m + n + 2
    spread = math.inf
    for _ in range(max_iter):
        num, den, _e = _solve_reference(ref, [problem.g(t) for t in ref], m, n, problem.pole_free)
        extrema = _alternating_extrema(problem, num, den, ref, count)
        mags = [abs(e) for _, e in extrema]
        spread = float((max(mags) - min(mags)) / max(mags))
        ref = [t for t, _ in extrema]
        if spread <= tol:
            break
    if spread > 1e-3:
        raise RemezError(f"[{m}/{n}] did not equioscillate (spread {spread:.2e})")
    return num, den, max(mags), ref


def _minimax(problem: _Problem, m: int, n: int, use_fma: bool) -> Approximation:
    d = _g_degree(problem, m)
    num, den, levelled, extrema = _remez(problem, d, n)
    method = "minimax_poly" if n == 0 else "minimax_rational"
    return _approximation(method, m, n, num, den, problem, use_fma, levelled, extrema)


# --- public API ----------------------------------------------------------------------------------
def _problem(target: Target | str, lo: float, hi: float) -> _Problem:
    return _Problem(get_target(target) if isinstance(target, str) else target, float(lo), float(hi))


def taylor(target: Target | str, lo: float, hi: float, degree: int, *, use_fma: bool = True) -> Approximation:
    """Taylor polynomial of the given degree about the midpoint of [lo, hi], in monomial Horner form."""
    with mpmath.workprec(PREC_BITS):
        return _taylor(_problem(target, lo, hi), degree, use_fma)


def pade(target: Target | str, lo: float, hi: float, m: int, n: int, *,
         use_fma: bool = True) -> Approximation:
    """Padé approximant [m/n] about the midpoint of [lo, hi] (mpmath.pade on Taylor coefficients)."""
    with mpmath.workprec(PREC_BITS):
        return _pade(_problem(target, lo, hi), m, n, use_fma)


def minimax_polynomial(target: Target | str, lo: float, hi: float, degree: int, *,
                       use_fma: bool = True) -> Approximation:
    """Polynomial of the given degree minimizing the maximum relative error (Remez exchange).

    Its error equioscillates at degree + 2 points (degree + 1 when a zero is factored out).
    """
    with mpmath.workprec(PREC_BITS):
        return _minimax(_problem(target, lo, hi), degree, 0, use_fma)


def minimax_rational(target: Target | str, lo: float, hi: float, m: int, n: int, *,
                     use_fma: bool = True) -> Approximation:
    """Rational [m/n] minimizing the maximum relative error (rational Remez exchange).

    Raises ``RemezError`` when the exchange fails, e.g. for degenerate degree pairs.
    """
    if n < 1:
        raise ValueError("a rational approximation needs denominator degree n >= 1")
    with mpmath.workprec(PREC_BITS):
        return _minimax(_problem(target, lo, hi), m, n, use_fma)


def _configs(method: str, zero: float | None, max_ops: int, use_fma: bool) -> list[tuple[int, int]]:
    """(m, n) pairs of a method whose program fits in ``max_ops`` (costed on a dummy program)."""
    lowest = 0 if zero is None else 1
    pairs = []
    for m in range(lowest, max_ops + 1):
        for n in ([0] if method in ("taylor", "minimax_poly") else range(1, max_ops + 1)):
            num = [0.0] * (zero is not None) + [2.0] * (m + 1 - (zero is not None))
            den = [1.0] + [2.0] * (n - 1) + [2.0 if use_fma else 1.0] if n else [1.0]
            if cost(build_program(num, den, zero, use_fma)) <= max_ops:
                pairs.append((m, n))
    return pairs


def baseline_table(target: Target | str, lo: float, hi: float, max_ops: int, *,
                   methods: Sequence[str] = METHODS, use_fma: bool = True,
                   n_points: int = 2048) -> list[BaselineRow]:
    """Best digits of each classical method at each operation count 1..max_ops.

    A row (method, ops) is the most accurate approximation of that method whose program costs
    at most ``ops``; digits are measured by ``fitness.real_error.max_relative_error``.  Fits that
    fail (a Padé denominator that vanishes, a Remez exchange that does not converge) are
    skipped; a method with no fitting configuration at some ``ops`` has no row there.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown method(s) {sorted(unknown)}; known: {METHODS}")
    tgt = get_target(target) if isinstance(target, str) else target
    with mpmath.workprec(PREC_BITS):
        problem = _Problem(tgt, float(lo), float(hi))
    fit = {"taylor": lambda m, n: _taylor(problem, m, use_fma),
           "pade": lambda m, n: _pade(problem, m, n, use_fma),
           "minimax_poly": lambda m, n: _minimax(problem, m, 0, use_fma),
           "minimax_rational": lambda m, n: _minimax(problem, m, n, use_fma)}
    rows: list[BaselineRow] = []
    for method in methods:
        measured = []
        for m, n in _configs(method, problem.zero, max_ops, use_fma):
            try:
                with mpmath.workprec(PREC_BITS):
                    approx = fit[method](m, n)
            except (ValueError, ZeroDivisionError):  # RemezError is a ValueError
                continue
            err = max_relative_error(approx.program, tgt, lo, hi, n_points=n_points)
            measured.append((approx, err))
        for ops in range(1, max_ops + 1):
            fitting = [(a, e) for a, e in measured if a.cost <= ops]
            if fitting:
                a, e = max(fitting, key=lambda ae: ae[1].digits)
                rows.append(BaselineRow(method, ops, e.digits, e.max_rel_error, a.config, a.cost, a.program))
    return rows


