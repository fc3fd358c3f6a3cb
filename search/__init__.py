"""The search: regularized evolution, the equivalence cache, executors, checkpoints, the CLI.

The public Python API lives in ``search.api`` and is re-exported here.
"""

from .api import RunConfig, RunRecord, RunResult, export, load_run, resume, run, verify

__all__ = ["RunConfig", "RunResult", "RunRecord", "run", "resume", "load_run", "export", "verify"]
