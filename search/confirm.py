"""The dense check a program passes before ``--target-error`` ends a search for it.

The search scores float32 programs on its fitness points and a 32K-point validation set; a narrow
error spike between those points can still pass (a 10-op 2^x scored 0.908 ULP measured 1.23 on
2**22 inputs).  A program that reaches the target is therefore checked the way ``export`` would
check it, on 2**22 inputs spread over the domain with the llvmlite kernel (a fraction of a second),
and the search stops only for a program that holds.  One that does not keeps its dense error (see
``Engine.confirm``), so the search goes on looking.
"""

from __future__ import annotations

from fitness.targets import get_target
from fitness.verify import VerifyReport, verify

from .config import RunConfig
from .results import complete_program
from .records import FrontEntry


def dense_check(config: RunConfig, entry: FrontEntry, n_points: int | None = None) -> VerifyReport:
    """Max ULP of the entry's complete program on ``n_points`` inputs over the run's domain."""
    program = complete_program(config, entry)
    return verify(program, get_target(config.target), config.domain[0], config.domain[1], config.dtype,
                  n_dense=n_points, keep_worst=64)
