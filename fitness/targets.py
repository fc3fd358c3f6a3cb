"""The functions a search can approximate.

Each built-in target pairs an mpmath function (the truth, evaluated at >= 100 bits) with a
float64 numpy function (a fast first guess used only for dense verification, where every value
that could round differently is recomputed with mpmath).  A user target is any importable
``module:function`` taking and returning an mpmath number; it is imported only when the user
names it.  If the module also defines ``function_f64`` (float64 array in and out, within a few
float64 ulps), that is the user target's numpy function, checked against the mpmath one first.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Callable

import mpmath
import numpy as np


@dataclass(frozen=True)
class Target:
    name: str
    mp_fn: Callable  # mpmath number -> mpmath number
    np_fn: Callable | None  # float64 array -> float64 array, within a few float64 ulps
    default_domain: tuple[float, float]
    description: str = ""
    valid_domain: tuple[float, float] = (-math.inf, math.inf)
    # what the target's values depend on besides its name: for a user target, a hash of its
    # module's source ("" when there is no source file: its values are then never cached on disk)
    fingerprint: str = "builtin"


def _sigmoid_mp(x):
    return 1 / (1 + mpmath.exp(-x))


def _sigmoid_np(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _cbrt_mp(x):
    """The real cube root (mpmath.cbrt gives the principal complex root of a negative number)."""
    return -mpmath.cbrt(-x) if x < 0 else mpmath.cbrt(x)


def _erf_np(x):
    """scipy's erf (Cephes): within 2.3 float64 ulps of mpmath on [0, 4] and at tiny x (checked on
    40,000 float32 inputs), far inside the full-range verifier's 16-ulp guard, and vectorized
    (math.erf through frompyfunc took minutes for 2^32 inputs)."""
    from scipy.special import erf

    return erf(np.asarray(x, np.float64))


BUILTIN: dict[str, Target] = {
    t.name: t
    for t in (
        Target("exp", mpmath.exp, np.exp, (-0.34657359027997264, 0.34657359027997264), "e^x"),
        Target("exp2", lambda x: mpmath.power(2, x), np.exp2, (0.0, 1.0), "2^x"),
        Target("exp10", lambda x: mpmath.power(10, x), lambda x: np.power(10.0, x),
               (-0.1505149978319906, 0.1505149978319906), "10^x"),
        Target("expm1", mpmath.expm1, np.expm1, (-0.34657359027997264, 0.34657359027997264), "e^x - 1"),
        Target("log", mpmath.log, np.log, (0.5, 1.0), "natural logarithm", (0.0, math.inf)),
        Target("log2", lambda x: mpmath.log(x, 2), np.log2, (1.0, 2.0), "base-2 logarithm", (0.0, math.inf)),
        Target("log10", mpmath.log10, np.log10, (1.0, 10.0), "base-10 logarithm", (0.0, math.inf)),
        Target("log1p", mpmath.log1p, np.log1p, (0.0, 1.0), "log(1 + x)", (-1.0, math.inf)),
        Target("erf", mpmath.erf, _erf_np, (0.0, 1.0), "error function"),
        Target("tanh", mpmath.tanh, np.tanh, (0.0, 1.0), "hyperbolic tangent"),
        Target("sin", mpmath.sin, np.sin, (0.0, 1.5707963267948966), "sine"),
        Target("cos", mpmath.cos, np.cos, (0.0, 1.5707963267948966), "cosine"),
        Target("sigmoid", _sigmoid_mp, _sigmoid_np, (-4.0, 4.0), "logistic 1/(1+e^-x)"),
        Target("cbrt", _cbrt_mp, np.cbrt, (1.0, 8.0), "cube root (real: cbrt(-x) = -cbrt(x))"),
    )
}


class TargetError(ValueError):
    pass


def is_user_target(spec: str) -> bool:
    """Whether a target name is a user ``module:function`` (importing it runs the user's code)."""
    return spec not in BUILTIN and ":" in spec


def check_target_name(spec: str) -> None:
    """A target name is a built-in or has the form module:function (nothing is imported)."""
    if spec in BUILTIN:
        return
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr or not all(p.isidentifier() for p in module_name.split(".")) \
            or not attr.isidentifier():
        raise TargetError(f"unknown target {spec!r}; built-in targets: {', '.join(BUILTIN)} "
                          "(or give a user target as module:function)")


#: seconds a user target may take for one value before it is taken for hung
USER_CALL_SECONDS = 20.0


def guarded(name: str, fn: Callable) -> Callable:
    """A user function with its failures turned into one-line ``TargetError`` messages.

    The mathematical failures every target may have (ValueError, ZeroDivisionError,
    OverflowError: a value outside its domain) propagate as they are: callers map them to NaN.
    Anything else the function raises, a value that is not a number, or a call that takes longer
    than ``USER_CALL_SECONDS`` (where a timer signal can tell, on the main thread) names the
    target and the input.
    """

    def call(x):
        where = f"user target {name} at x = {_plain(x)}"
        try:
            with _deadline(USER_CALL_SECONDS, f"{where} did not return within {USER_CALL_SECONDS:g} s"):
                y = fn(x)
        except (ValueError, ZeroDivisionError, OverflowError, TargetError):
            raise
        except Exception as exc:
            raise TargetError(f"{where} raised {type(exc).__name__}: {exc}") from None
        if isinstance(y, bool) or not isinstance(y, (mpmath.mpf, mpmath.mpc, int, float)):
            raise TargetError(f"{where} returned {type(y).__name__}, not a number")
        return y

    return call


def _plain(x) -> str:
    """A number as a user reads it: 0.5, not mpf('0.5') or np.float32(0.5)."""
    try:
        return repr(float(x))
    except (TypeError, ValueError):
        return str(x)


class _deadline:
    """Raise ``TargetError(message)`` if the block runs longer than ``seconds`` (SIGALRM; a no-op
    off the main thread or where there is no such timer)."""

    def __init__(self, seconds: float, message: str):
        self.seconds, self.message = seconds, message
        self.armed = False

    def __enter__(self):
        import signal
        import threading

        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            def expired(signum, frame):
                raise TargetError(self.message)

            self.old = signal.signal(signal.SIGALRM, expired)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        return self

    def __exit__(self, *exc):
        if self.armed:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


def get_target(spec: str) -> Target:
    """A built-in target by name, or a user target given as ``module:function``."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    if ":" not in spec:
        raise TargetError(
            f"unknown target {spec!r}; built-in targets: {', '.join(BUILTIN)} "
            "(or give a user target as module:function)"
        )
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any import failure is their error to see
        raise TargetError(f"cannot import user target module {module_name!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise TargetError(f"user target {spec!r}: {attr!r} is not a function in {module_name!r}")
    mp_fn = guarded(spec, fn)
    np_fn = getattr(module, attr + F64_SUFFIX, None)
    if np_fn is not None:
        np_fn = checked_f64(spec, mp_fn, np_fn)
    return Target(spec, mp_fn, np_fn, (0.0, 1.0), f"user target {spec}", fingerprint=_source_hash(module))


#: a user module's float64 companion of FUNCTION is FUNCTION + this suffix
F64_SUFFIX = "_f64"
#: where the companion is compared with the mpmath function: spread over magnitudes and signs, moderate
#: (a user's mpmath function may itself lose its value to cancellation far out, at 128 bits)
F64_CHECK_POINTS = (0.0, 1e-30, 1e-8, 0.001, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 7.5, 20.0)
#: the relative difference the companion may have from the mpmath value ("a few float64 ulps")
F64_TOLERANCE = 1e-13


def checked_f64(name: str, mp_fn: Callable, np_fn: Callable) -> Callable:
    """A user module's float64 function (``FUNCTION_f64``: float64 array in, float64 array out),
    checked against the mpmath function at ``F64_CHECK_POINTS`` and their negatives wherever the
    mpmath function has a finite value.  With it a user target gets what the built-ins get from
    their numpy functions: 2^22-point dense checks, exhaustive verification and the hard inputs of
    ``--mode cr``; without it, or if it disagrees, a one-line error says so."""
    if not callable(np_fn):
        raise TargetError(f"user target {name}: {name.partition(':')[2]}{F64_SUFFIX} is not a function")
    xs = np.array([s * v for v in F64_CHECK_POINTS for s in (1.0, -1.0)], np.float64)
    try:
        with np.errstate(all="ignore"):
            got = np.asarray(np_fn(xs.copy()), np.float64)
    except Exception as exc:
        raise TargetError(f"user target {name}: {F64_SUFFIX} function raised {type(exc).__name__} on a float64 array: "
                          f"{exc}") from None
    if got.shape != xs.shape:
        raise TargetError(f"user target {name}: {F64_SUFFIX} function returned shape {got.shape} for {xs.shape} inputs")
    for x, y in zip(xs, got):
        try:
            with mpmath.workprec(128):
                want = float(mp_fn(mpmath.mpf(float(x))))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError, TargetError):
            continue  # outside the function's domain (or failing there): not a point to compare at
        if not math.isfinite(want):
            continue
        if not (abs(y - want) <= F64_TOLERANCE * abs(want) or (want == 0.0 and abs(y) <= 1e-300)):
            raise TargetError(f"user target {name}: its {F64_SUFFIX} function gives {y!r} at x = {float(x)!r}, "
                              f"the mpmath function {want!r}")
    return np_fn


def _source_hash(module) -> str:
    """A hash of a module's source file: an edited user target is another function, whose
    reference values must not come from the cache of the old one."""
    import hashlib

    path = getattr(module, "__file__", None)
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16]
    except (OSError, TypeError):
        return ""


def check_domain(target: Target, lo: float, hi: float) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise TargetError(f"domain [{lo}, {hi}] must be finite")
    if not lo < hi:
        raise TargetError(f"domain [{lo}, {hi}] is empty or inverted: need lo < hi")
    vlo, vhi = target.valid_domain
    if lo < vlo or hi > vhi or (lo == vlo and vlo == 0.0 and target.name in ("log", "log2")):
        raise TargetError(f"domain [{lo}, {hi}] leaves {target.name}'s domain ({vlo}, {vhi})")
