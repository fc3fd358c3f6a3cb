"""Long checks, out of the default run: `pytest -m slow`.

The issue-2 acceptance: from scratch, within 10 minutes of search on this 2-core machine, a
float32 program for 2^x on [0, 1] that is within 1 ULP on *every* float32 in [0, 1]
(1,065,353,217 inputs, checked exhaustively with the llvmlite kernel).
"""

from __future__ import annotations

import pytest

from search.config import RunConfig, default_workers
from search.exporting import export_run
from search.results import load_run
from search.run import run


@pytest.mark.slow
def test_exp2_within_one_ulp_on_every_float32_within_ten_minutes(tmp_path):
    rd = tmp_path / "exp2"
    # no target error: the whole 10 minutes fill the front, and export walks it from the cheapest
    # program up until one passes the exhaustive check (a program can be within 1 ULP on the
    # search's 35K points and not on all 1e9: a run stopped at its first such program failed)
    res = run(RunConfig(target="exp2", domain=(0.0, 1.0), time_limit=600.0, budget_evals=10**7,
                        workers=default_workers(), seed=1, run_dir=str(rd)), quiet=True)
    assert res.elapsed <= 620
    done = export_run(load_run(str(rd)), "c", "exp2_f32", max_ulp=1.0, exhaustive=True)
    assert done.report.method == "exhaustive"
    assert done.report.n_points == 1_065_353_217
    assert done.report.max_ulp <= 1.0
