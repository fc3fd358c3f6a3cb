"""The functions a search can approximate.

Each built-in target pairs an mpmath function (the truth, evaluated at >= 100 bits) with a
float64 numpy function (a fast first guess used only for dense verification, where every value
that could round differently is recomputed with mpmath).  A user target is any importable
``module:function`` taking and returning an mpmath number; it is imported only when the user
names it.
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


def _sigmoid_mp(x):
    return 1 / (1 + mpmath.exp(-x))


def _sigmoid_np(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


_erf_vec = np.frompyfunc(math.erf, 1, 1)


def _erf_np(x):
    return _erf_vec(np.asarray(x, np.float64)).astype(np.float64)


BUILTIN: dict[str, Target] = {
    t.name: t
    for t in (
        Target("exp", mpmath.exp, np.exp, (-0.34657359027997264, 0.34657359027997264), "e^x"),
        Target("exp2", lambda x: mpmath.power(2, x), np.exp2, (0.0, 1.0), "2^x"),
        Target("log", mpmath.log, np.log, (0.5, 1.0), "natural logarithm", (0.0, math.inf)),
        Target("log2", lambda x: mpmath.log(x, 2), np.log2, (1.0, 2.0), "base-2 logarithm", (0.0, math.inf)),
        Target("erf", mpmath.erf, _erf_np, (0.0, 1.0), "error function"),
        Target("tanh", mpmath.tanh, np.tanh, (0.0, 1.0), "hyperbolic tangent"),
        Target("sin", mpmath.sin, np.sin, (0.0, 1.5707963267948966), "sine"),
        Target("cos", mpmath.cos, np.cos, (0.0, 1.5707963267948966), "cosine"),
        Target("sigmoid", _sigmoid_mp, _sigmoid_np, (-4.0, 4.0), "logistic 1/(1+e^-x)"),
    )
}


class TargetError(ValueError):
    pass


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
    return Target(spec, fn, None, (0.0, 1.0), f"user target {spec}")


def check_domain(target: Target, lo: float, hi: float) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise TargetError(f"domain [{lo}, {hi}] must be finite")
    if not lo < hi:
        raise TargetError(f"domain [{lo}, {hi}] is empty or inverted: need lo < hi")
    vlo, vhi = target.valid_domain
    if lo < vlo or hi > vhi or (lo == vlo and vlo == 0.0 and target.name in ("log", "log2")):
        raise TargetError(f"domain [{lo}, {hi}] leaves {target.name}'s domain ({vlo}, {vhi})")
