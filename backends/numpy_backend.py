"""Evaluate a program with numpy, in the program's dtype at every step.

``params`` may carry a leading batch axis, so one call scores a whole population of constant
vectors (a CMA-ES generation, a finite-difference Jacobian) at once: the result then has shape
``(batch, len(x))``.
"""

from __future__ import annotations

import numpy as np

from dsl.program import Program
from dsl.semantics import apply_op, as_dtype


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
    live = program.live()
    values: list = [None] * len(program.nodes)
    p = 0
    with np.errstate(all="ignore"):
        for i, node in enumerate(program.nodes):
            if node.op == "param":
                if params is not None:
                    values[i] = params[:, p : p + 1]
                else:
                    values[i] = dt.type(node.value)
                p += 1
                continue
            if not live[i]:
                continue
            if node.op == "x":
                values[i] = xs
            elif node.op == "const":
                values[i] = dt.type(node.value)
            elif node.op == "fma" and not exact_fma:
                a, b, c = (values[j] for j in node.args)
                values[i] = np.asarray(np.multiply(a, b, dtype=dt) + c, dt)
            else:
                values[i] = apply_op(node.op, dt, *[values[a] for a in node.args])
        out = np.asarray(values[program.output], dt)
    shape = (batch, xs.shape[-1]) if batch is not None else xs.shape
    return np.broadcast_to(out, shape).astype(dt, copy=True)
