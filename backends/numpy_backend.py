"""Evaluate a program with numpy, in the program's dtype at every step.

``params`` may carry a leading batch axis, so one call scores a whole population of constant
vectors (a CMA-ES generation, a finite-difference Jacobian) at once: the result then has shape
``(batch, len(x))``.  The walk is the one interpreter's (``dsl.interpret.fold``); the op table is
``dsl.semantics.NUMPY_IMPL``.
"""

from __future__ import annotations

import numpy as np

from dsl.interpret import Semantics, fold
from dsl.program import Program
from dsl.semantics import NUMPY_IMPL, as_dtype


class NumpySemantics(Semantics):
    """Arrays of the dtype; ``exact_fma=False`` makes fma ``a * b + c`` (two roundings)."""

    def __init__(self, dt: np.dtype, xs: np.ndarray, params: np.ndarray | None, exact_fma: bool):
        self.dt, self.xs, self.params, self.exact_fma = dt, xs, params, exact_fma

    def input(self):
        return self.xs

    def const(self, i, value):
        return self.dt.type(value)

    def param(self, i, value, k):
        return self.params[:, k:k + 1] if self.params is not None else self.dt.type(value)

    def apply(self, i, node, args):
        if node.op == "fma" and not self.exact_fma:
            a, b, c = args
            return np.asarray(np.multiply(a, b, dtype=self.dt) + c, self.dt)
        return NUMPY_IMPL[node.op](self.dt, *args)


def evaluate(program: Program, x, dtype="float32", params=None, exact_fma: bool = True) -> np.ndarray:
    """Outputs of ``program`` at ``x``; ``params`` (k,) or (batch, k) overrides its parameters.

    ``exact_fma=False`` computes fma as ``a * b + c`` (two roundings): only for float64 constant
    fitting, where speed matters and a float64 rounding is far below the error being fitted.
    """
    dt = as_dtype(dtype)
    xs = np.asarray(x, dt)
    batch = None
    if params is not None:
        params = np.asarray(params, dt)
        if params.ndim == 1:
            params = params[None, :]
        batch = params.shape[0]
        xs = xs[None, :]
    with np.errstate(all="ignore"):
        out = np.asarray(fold(program, NumpySemantics(dt, xs, params, exact_fma)), dt)
    shape = (batch, xs.shape[-1]) if batch is not None else xs.shape
    return np.broadcast_to(out, shape).astype(dt, copy=True)
