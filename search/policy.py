"""The one verify/export policy: which program of a run is checked, in which dtype, on which
inputs, and when a check covers all 2^32 float32 bit patterns.  ``verify``, ``export`` and
``bench`` all ask here, so they cannot disagree.

- The dtype a run's programs compute in is its problem's (``ProblemSpec.eval_dtype``: float64 for
  real mode, the run's dtype otherwise).
- A dense check uses ``fitness.verify.dense_size`` inputs spread over the domain.
- ``--exhaustive`` checks every float of the domain; for a framed run (a complete float32
  function) or with ``full_range``, every one of the 2^32 float32 bit patterns and the target's
  special values, on all cores unless told otherwise.
"""

from __future__ import annotations

from typing import Callable

from fitness.problem import float64_inside
from fitness.targets import get_target
from fitness.verify import VerifyReport, verify

from .config import RunConfig, default_workers
from .results import ExportError, RunRecord
from .records import FrontEntry



def eval_dtype(config: RunConfig) -> str:
    """The dtype the run's programs compute in."""
    return config.problem_spec.eval_dtype


def most_accurate(record: RunRecord, max_ops: float | None = None) -> FrontEntry:
    """The front's most accurate entry costing at most ``max_ops`` (ExportError if none)."""
    cands = [e for e in record.front if max_ops is None or e.cost <= max_ops]
    if not cands:
        raise ExportError("no program on the front" + (f" has at most {max_ops:g} operations" if max_ops is not None
                                                      else f" of run {record.path} has a finite error yet"))
    return min(cands, key=lambda e: (e.error, e.cost))


def is_full_range(config: RunConfig, exhaustive: bool, full_range: bool = False) -> bool:
    """Whether a check covers all 2^32 float32 bit patterns with special values."""
    if full_range and not (exhaustive and config.dtype == "float32" and config.mode != "real"):
        raise ExportError("--full-range needs --exhaustive and a float32 ulp-mode (or cr- or faithful-mode) run")
    return bool(exhaustive and (config.frame or full_range) and config.mode != "real")


def check(record: RunRecord, entry: FrontEntry, exhaustive: bool = False, full_range: bool = False,
          workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Verify one entry's complete program the way every command does."""
    return check_program(record, record.program(entry), exhaustive, full_range, workers, progress)


def check_program(record: RunRecord, program, exhaustive: bool = False, full_range: bool = False,
                  workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Verify a complete program of the run (an entry's, or one patched with exceptions)."""
    cfg = record.config
    if exhaustive and cfg.dtype != "float32":
        raise ExportError("exhaustive verification is for float32 programs only")
    full = is_full_range(cfg, exhaustive, full_range)
    if workers is None:
        workers = default_workers() if full else 1
    if workers < 1:
        raise ExportError("--workers must be at least 1")
    try:
        if float64_inside(cfg.mode):  # float32 in and out, float64 inside: checked as the float32 function it is
            return verify(program, get_target(cfg.target), cfg.domain[0], cfg.domain[1], "float32",
                          exhaustive=exhaustive, progress=progress, full_range=full, workers=workers,
                          compute="float64")
        return verify(program, get_target(cfg.target), cfg.domain[0], cfg.domain[1], eval_dtype(cfg),
                      exhaustive=exhaustive, progress=progress, full_range=full, workers=workers)
    except ValueError as exc:  # a user target without a float64 function cannot be checked on 2^32 inputs
        if not full:
            raise
        raise ExportError(str(exc)) from None
