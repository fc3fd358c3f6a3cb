"""The Python API: everything the CLI does, as functions on dataclasses.

    from search.api import RunConfig, run, resume, load_run, export, verify
    result = run(RunConfig(target="exp2", domain=(0.0, 1.0), time_limit=120, run_dir="runs/demo"))
    record = load_run(result.run_dir)
    best = record.program(record.front[-1])
    print(export(best, "c", "exp2_f32"))
    print(verify(best, "exp2", 0.0, 1.0).describe())
"""

from __future__ import annotations

from dsl.program import Program
from fitness.targets import Target, get_target
from fitness.verify import VerifyReport
from fitness.verify import verify as _verify

from .config import RunConfig
from .results import RunRecord, load_run
from .run import RunResult, resume, run


def export(program: Program, lang: str, name: str, dtype: str = "float32", header: str = "") -> str:
    """Source code of ``program`` in ``lang`` (c, numpy, jax or llvm): see ``backends.export``."""
    from backends.export import export_source  # imports JAX: only when exporting

    return export_source(program, lang, name, dtype, header)


def verify(program: Program, target: str | Target, lo: float, hi: float, dtype: str = "float32",
           exhaustive: bool = False, **kwargs) -> VerifyReport:
    """Max ULP and fraction correctly rounded on spread inputs (``fitness.verify.dense_size``:
    2**22 for a target with a float64 function), or on every float32."""
    t = get_target(target) if isinstance(target, str) else target
    return _verify(program, t, lo, hi, dtype, exhaustive=exhaustive, **kwargs)


__all__ = ["RunConfig", "RunResult", "RunRecord", "run", "resume", "load_run", "export", "verify"]
