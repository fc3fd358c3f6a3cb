"""Measured cost (``backends.speed_cost``) and ``autonumerics bench`` (``search.bench``).

Timings on a shared machine are noisy, so the only timing assertions are sanity ones: finite,
positive, and a degree-12 polynomial (which spills registers, ~20-30 op-equivalents here) costing
more than one fma.  Everything else is about plumbing: caching, models, tables, user errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from backends import speed_cost
from backends.speed_cost import SpeedCostError, horner_program, measure, measured_cost, program_cost
from dsl.program import cost as op_cost
from dsl.text import parse_program

ONE_OP = parse_program("c0 = param 0.75\nc1 = param 1.25\nt = fma x c0 c1\nreturn t\n")


@pytest.fixture(autouse=True)
def _fresh_cache():
    speed_cost.cache_clear()
    yield
    speed_cost.cache_clear()


def test_llvm_cost_is_finite_positive_and_orders_sizes():
    big = measured_cost(horner_program(12), "float32", "llvm")
    small = measured_cost(ONE_OP, "float32", "llvm")
    mid = measured_cost(horner_program(4), "float32", "llvm")
    for c in (big, small, mid):
        assert math.isfinite(c) and c >= 0
    assert mid > 0 and big > 0
    assert big > small


def test_measure_reports_its_ingredients():
    m = measure(horner_program(6), "float32", "llvm", (0.0, 1.0), rounds=9)
    assert m.model == "llvm" and m.dtype == "float32" and m.rounds == 9
    assert m.ref_ratio > 1.0  # the 8-fma reference is slower than the 1-fma one
    assert m.ns_per_element > 0 and m.ref_ns_per_element > 0 and m.seconds > 0
    assert m.ref_ratio > speed_cost.MIN_REF_RATIO  # compute-bound: the scale is readable
    assert m.cost == speed_cost.quantize(m.raw, "llvm")


def test_cache_same_program_and_same_structure():
    a = measured_cost(horner_program(5), "float32", "llvm")
    info = speed_cost.cache_info()
    assert info["misses"] == 1 and info["size"] == 1
    assert measured_cost(horner_program(5), "float32", "llvm") == a
    # other fitted values, same structure: the cache key masks parameters
    other = horner_program(5, coeffs=[0.5, 0.25, 0.125, 0.3, 0.7, 0.9])
    assert measured_cost(other, "float32", "llvm") == a
    info = speed_cost.cache_info()
    assert info["hits"] == 2 and info["misses"] == 1
    # another model, dtype or domain is another key
    assert speed_cost.cache_key(other) != speed_cost.cache_key(other, "float32", "xla")
    assert speed_cost.cache_key(other) != speed_cost.cache_key(other, "float64")
    assert speed_cost.cache_key(other) != speed_cost.cache_key(other, domain=(-1.0, 1.0))


def test_xla_model_on_cpu():
    c = measured_cost(horner_program(4), "float32", "xla", (0.0, 1.0))
    assert math.isfinite(c) and c > 0
    assert c == speed_cost.quantize(c, "xla")  # on the model's grid


def test_float64_and_the_looped_xla_kernel_compute_the_program():
    from backends.numpy_backend import evaluate

    x = np.linspace(0.0, 1.0, 257)
    p = horner_program(3)
    call = speed_cost.xla_raw_callable(p, x, "float64", repeat=4)
    call()  # runs inside x64 mode
    llvm = speed_cost.llvm_raw_callable(p, x, "float64")
    llvm()
    kernel, xs, out = llvm.keep
    np.testing.assert_array_equal(out, evaluate(p, x, "float64"))
    assert math.isfinite(measured_cost(p, "float64", "llvm"))


def test_program_cost_models_and_errors():
    p = horner_program(3)
    assert program_cost(p, "float32", "ops") == op_cost(p) == 3.0
    with pytest.raises(SpeedCostError):
        measured_cost(p, "float32", "gpu")
    with pytest.raises(SpeedCostError):
        program_cost(p, "float32", "cycles")
    assert speed_cost.quantize(-0.3, "llvm") == 0.0
    assert speed_cost.quantize(3.37, "llvm") == 3.25
    assert math.isnan(speed_cost.quantize(float("nan"), "xla"))


# --- autonumerics bench ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from search.config import RunConfig
    from search.run import run

    root = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTONUMERICS_CACHE", str(root / "cache"))
        cfg = RunConfig(target="exp2", domain=(0.0, 1.0), budget_evals=60, population_size=8, tournament_size=4,
                        n_points=256, workers=1, run_dir=str(root / "run"))
        run(cfg, quiet=True)
        yield root / "run"


def test_bench_run_table(tiny_run, monkeypatch):
    from search.bench import bench_run
    from search.results import load_run

    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tiny_run.parent / "cache"))
    record = load_run(str(tiny_run))
    text = bench_run(record, max_ulp=1e12, sizes=(4096,), rounds=3, block_s=0.0005)
    for word in ("llvmlite", "copy", "np.exp2", "jnp.exp2", "numpy evaluator", "XLA", "4K (cache-resident"):
        assert word in text, word
    rows = [ln for ln in text.splitlines() if ln.startswith("| 4K")]
    assert len(rows) == 7  # copy, np.exp2, jnp.exp2, numpy evaluator, llvmlite, XLA, XLA x64
    assert all("x |" in ln for ln in rows)  # every row has its ratio to the copy floor


def test_bench_user_errors(tiny_run, tmp_path, monkeypatch):
    from search.bench import BenchError, bench_run
    from search.cli import bench
    from search.results import load_run

    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tiny_run.parent / "cache"))
    record = load_run(str(tiny_run))
    with pytest.raises(BenchError):
        bench_run(record, max_ulp=0.0, sizes=(1024,))  # nothing on a 60-candidate front is exact
    with pytest.raises(BenchError):
        bench_run(record, sizes=(0,))
    with pytest.raises(BenchError):
        bench_run(record, backends=("cuda",))
    runner = CliRunner()
    res = runner.invoke(bench, [str(tmp_path / "missing")])
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(bench, [str(tiny_run), "--sizes", "16K,lots"])
    assert res.exit_code == 2 and "--sizes" in res.output
    res = runner.invoke(bench, [str(tiny_run), "--max-ulp", "1e12", "--sizes", "2048", "--backends", "llvm",
                                "--rounds", "2", "--block-ms", "0.5", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "llvmlite" in res.output and "memory copy" in res.output and "XLA" not in res.output
