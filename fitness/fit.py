"""Fitting a candidate's trainable constants.

Stage 1 (float64): Levenberg-Marquardt on the weighted residuals ``(p(x) - f(x)) * w`` with
Lawson's iteratively reweighted least squares, which drives the least-squares fit toward the
minimax (equioscillating) fit.  Several starts (the inherited constants, jittered copies and
random draws) run together: every Jacobian (finite differences) for every start is one batched
numpy evaluation of the program, so the whole fit is a few dozen vectorized calls.

Stage 1b (float32 ulp mode): a fit within ``refine_below_ulp`` is refined to the minimax fit of
the ulp-weighted error in real arithmetic (``fitness.minimax``: exchange steps and sequential LP).

Stage 2 (float32 only): the constants are rounded to float32 and polished on the true objective,
max ULP error of the float32 program (exact fma), by a greedy search over moves of a few float32
ulps per constant, again one batched evaluation per round.  Rounding minimax coefficients to
float32 naively costs accuracy (a degree-6 2^x polynomial: 1.03 ULP naive); this stage wins it back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.numpy_backend import evaluate
from dsl.program import Program

from .metrics import ulp_errors
from .points import from_ordinal, to_ordinal
from .problem import Problem, float64_inside


POLISH_SHARE = 0.4  # polish within this share of the refinement's margin (1.6x the front's error)


@dataclass(frozen=True)
class FitOptions:
    """Fitting effort.  ``for_front`` narrows the float32 stages to a candidate that can reach the
    front: the driver knows the best error at the candidate's cost, the worker does not."""

    starts: int = 3
    iterations: int = 40
    patience: int = 6  # stop once the best max error has not improved by 0.5% for this many steps
    polish_rounds: int = 12
    polish_below_ulp: float = 16.0  # polish only candidates this close (ulp mode) where the front has nothing as cheap
    refine_below_ulp: float = 4096.0  # minimax-refine only float64 fits this close (float32 ulp mode)
    exchange_passes: int = 4
    exchange_points: int = 64  # worst points of each pool added to the active set per pass
    active_points: int = 384  # evenly spread fitness points always in the active set

    def for_front(self, promising_below: float | None) -> "FitOptions":
        """Refine and polish only a fit within ``promising_below`` ulps (a few times the front's
        error at the candidate's cost, or None where the front has nothing there yet): the
        refinement and the polish are most of a fit's time, and they matter only for a program
        that can improve the front.  Such a program is polished at any error, as the float32
        baselines are (``fitness.baselines_f32``): at 2 ops the front sits at 2e4 ulps, and an
        unpolished exp2 on [0, 1] measured 20771.8 on 2^22 inputs against the same shape's
        polished 20771.4."""
        if promising_below is None:
            return self
        from dataclasses import replace

        return replace(self, refine_below_ulp=float(promising_below),
                       polish_below_ulp=POLISH_SHARE * float(promising_below))


def _residuals(program: Program, problem: Problem, thetas: np.ndarray) -> np.ndarray:
    idx = problem.fit_idx
    y = evaluate(program, problem.x[idx], "float64", params=thetas, exact_fma=False)
    with np.errstate(all="ignore"):
        r = ((y - problem.ref.hi[idx]) - problem.ref.lo[idx]) * problem.weight[idx]
    return np.where(np.isfinite(r), r, np.inf)


def _starts(theta0: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    k = len(theta0)
    rows = [theta0]
    for j in range(1, n):
        if j % 2 == 1:
            rows.append(theta0 * (1.0 + 0.05 * rng.normal(size=k)) + 1e-3 * rng.normal(size=k))
        else:
            rows.append(rng.normal(0.0, 1.0, size=k))
    out = np.array(rows, np.float64)
    return np.where(np.isfinite(out), out, 1.0)


def fit_float64(program: Program, problem: Problem, rng: np.random.Generator, opts: FitOptions) -> np.ndarray:
    """Minimax-leaning float64 fit of the parameters; returns the best parameter vector."""
    theta0 = np.array(program.params, np.float64)
    k = len(theta0)
    theta = _starts(theta0, rng, opts.starts)
    s = theta.shape[0]
    r = _residuals(program, problem, theta)
    n = r.shape[1]
    u = np.full((s, n), 1.0 / n)
    lam = np.full(s, 1e-2)
    best_theta = theta.copy()
    best_max = np.max(np.abs(r), axis=1)
    eye = np.eye(k)
    overall, stale = float(np.min(best_max)), 0
    with np.errstate(all="ignore"):
        for _ in range(opts.iterations):
            h = 1e-7 * np.maximum(np.abs(theta), 1e-3)
            pert = (theta[:, None, :] + h[:, :, None] * eye[None, :, :]).reshape(s * k, k)
            rp = _residuals(program, problem, pert).reshape(s, k, n)
            jac = (rp - r[:, None, :]) / h[:, :, None]
            jac = np.where(np.isfinite(jac), jac, 0.0)
            rr = np.where(np.isfinite(r), r, 0.0)
            a = np.einsum("skn,sln,sn->skl", jac, jac, u)
            g = np.einsum("skn,sn,sn->sk", jac, rr, u)
            diag = np.einsum("skk->sk", a)
            damp = a + (lam[:, None] * (diag + 1e-300))[:, :, None] * eye[None, :, :]
            try:
                step = np.linalg.solve(damp, -g[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(damp.reshape(-1, k)[:k], -g[0], rcond=None)[0][None, :].repeat(s, 0)
            trial = theta + np.where(np.isfinite(step), step, 0.0)
            rt = _residuals(program, problem, trial)
            old_obj = np.sum(u * np.where(np.isfinite(r), r * r, np.inf), axis=1)
            new_obj = np.sum(u * np.where(np.isfinite(rt), rt * rt, np.inf), axis=1)
            accept = new_obj < old_obj
            theta = np.where(accept[:, None], trial, theta)
            r = np.where(accept[:, None], rt, r)
            lam = np.where(accept, np.maximum(lam / 3.0, 1e-9), np.minimum(lam * 4.0, 1e9))
            cur_max = np.max(np.abs(r), axis=1)
            better = cur_max < best_max
            best_theta = np.where(better[:, None], theta, best_theta)
            best_max = np.where(better, cur_max, best_max)
            # Lawson: weight each point by its share of the error, pushing toward equioscillation
            absr = np.abs(np.where(np.isfinite(r), r, 0.0))
            u = u * (absr + 1e-300)
            total = np.sum(u, axis=1, keepdims=True)
            u = np.where(total > 0, u / np.where(total > 0, total, 1.0), 1.0 / n)
            u = np.maximum(u, 1e-12 / n)
            now = float(np.min(best_max))
            stale = stale + 1 if not now < overall * 0.995 else 0
            overall = min(overall, now)
            if stale >= opts.patience:
                break
    best = int(np.argmin(best_max))
    return best_theta[best]


def _objective32(program: Program, x: np.ndarray, hi: np.ndarray, lo: np.ndarray, thetas: np.ndarray):
    y = evaluate(program, x, "float32", params=thetas)
    err = ulp_errors(y, hi[None, :], lo[None, :], "float32")
    return np.max(err, axis=1), np.mean(err, axis=1)


def _greedy_ulp_moves(program: Program, x, hi, lo, cur: np.ndarray, rounds: int) -> np.ndarray:
    k = len(cur)
    best_max, best_mean = (v[0] for v in _objective32(program, x, hi, lo, cur[None, :]))
    moves = np.array([1, 2, 3, 5, 8, 16, 64, 256], np.int64)
    moves = np.concatenate([moves, -moves])
    for _ in range(rounds):
        ords = to_ordinal(cur, "float32")
        cand = np.repeat(cur[None, :], k * len(moves), axis=0)
        for j in range(k):
            cand[j * len(moves):(j + 1) * len(moves), j] = from_ordinal(ords[j] + moves, "float32")
        mx, mean = _objective32(program, x, hi, lo, cand)
        i = int(np.lexsort((mean, mx))[0])
        if (mx[i], mean[i]) < (best_max, best_mean):
            cur, best_max, best_mean = cand[i].copy(), mx[i], mean[i]
        else:
            break
    return cur


def polish_float32(program: Program, problem: Problem, theta: np.ndarray, opts: FitOptions) -> np.ndarray:
    """Greedy search over float32-ulp moves of each constant, on max (then mean) ULP error.

    Moves are scored on a small active set (the worst points so far plus an even spread), which
    makes each round cheap; after each pass the whole fitness set and the denser validation set
    are checked and their worst points join the active set (an exchange step), so the constants
    are neither tuned to a few points nor to the rounding noise of one sample.
    """
    with np.errstate(over="ignore"):
        cur = np.asarray(theta, np.float64).astype(np.float32)
    cur = np.where(np.isfinite(cur), cur, np.float32(1.0))
    pools = [(problem.x, problem.ref.hi, problem.ref.lo)]
    if problem.val_x is not None:
        pools.append((problem.val_x, problem.val_ref.hi, problem.val_ref.lo))

    def pool_errors(theta32, pools=pools):
        return [ulp_errors(evaluate(program, px, "float32", params=theta32[None, :])[0], phi, plo, "float32")
                for px, phi, plo in pools]

    first = pool_errors(cur, pools[:1])[0]
    if not np.isfinite(np.max(first)) or np.max(first) > opts.polish_below_ulp:
        return cur.astype(np.float64)
    errs = [first] + pool_errors(cur, pools[1:])
    x0, hi0, lo0 = pools[0]
    spread = np.linspace(0, len(x0) - 1, opts.active_points).round().astype(np.int64)
    active = [(x0[spread], hi0[spread], lo0[spread])]
    for _ in range(opts.exchange_passes):
        for (px, phi, plo), err in zip(pools, errs):
            worst = np.argsort(err)[-opts.exchange_points:]
            active.append((px[worst], phi[worst], plo[worst]))
        ax, ahi, alo = (np.concatenate(parts) for parts in zip(*active))
        new = _greedy_ulp_moves(program, ax, ahi, alo, cur, opts.polish_rounds)
        new_errs = pool_errors(new)
        if max(np.max(e) for e in new_errs) < max(np.max(e) for e in errs):
            cur, errs = new, new_errs
        else:
            break
    return cur.astype(np.float64)


def fit_constants_ulp(program: Program, problem: Problem, rng: np.random.Generator,
                      opts: FitOptions | None = None) -> Program:
    """The program with its parameters fitted for a ulp-mode problem (unchanged if it has none);
    ``fitness.evaluate.fit_constants`` picks this or the real-mode fitter."""
    opts = opts or FitOptions()
    if not program.param_indices:
        return program
    theta = fit_float64(program, problem, rng, opts)
    if problem.spec.mode == "ulp" and problem.spec.dtype == "float32":
        theta = refine_ulp(program, problem, theta, opts)
        theta = polish_float32(program, problem, theta, opts)
    elif float64_inside(problem.spec.mode):  # float64 constants: minimax in float32 ulps, nothing to round
        theta = refine_ulp(program, problem, theta, opts)
    return program.with_params(theta)


def ulp_residuals(program: Program, problem: Problem):
    """Signed errors in ulps of the exact value, real-number arithmetic (double-double), on the
    fitness points where the target is not 0, and their Jacobian: ``theta -> (r, jac)``."""
    from .double_double import dd_sub, evaluate_dd

    keep = (problem.ref.hi != 0) & np.isfinite(problem.weight)
    x, hi, lo, w = problem.x[keep], problem.ref.hi[keep], problem.ref.lo[keep], problem.weight[keep]

    def residuals(theta: np.ndarray):
        y_hi, y_lo, jac = evaluate_dd(program, x, theta, jacobian=True)
        with np.errstate(all="ignore"):
            d_hi, d_lo = dd_sub((y_hi, y_lo), (hi, lo))
            r = (d_hi + d_lo) * w
            r = np.where(np.isfinite(r) & np.isfinite(y_hi), r, np.inf)
            jac = np.where(np.isfinite(jac), jac * w, 0.0)
        return r, jac

    return residuals


def refine_ulp(program: Program, problem: Problem, theta: np.ndarray, opts: FitOptions) -> np.ndarray:
    """Minimax refinement (``fitness.minimax``) of a float64 fit on the ulp-weighted error, for a
    program within ``opts.refine_below_ulp`` of the target: Lawson's iteration stops short of the
    minimax fit for programs with many constants (a degree-9 odd polynomial for erf on [-2, 2]:
    46 ulps from the float64 stage, 0.1 after refinement), and the float32 polish only moves
    constants by a few float32 ulps."""
    from .minimax import refine

    residuals = ulp_residuals(program, problem)
    r, _ = residuals(theta)
    err = float(np.max(np.abs(r))) if len(r) else 0.0
    if not np.isfinite(err) or err == 0.0 or err > opts.refine_below_ulp:
        return theta
    refined, _info = refine(residuals, theta)
    return refined
