"""cr mode: float32 functions computed in float64 and scored by how much of their rounding
interval they use (``fitness.cr``), searched, verified and exported end to end."""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess

import numpy as np
import pytest

from backends.numpy_backend import evaluate
from fitness.cr import cr_ratio, misrounded, rounding_room
from fitness.problem import Problem, ProblemSpec
from fitness.reference import Reference, mp_values
from fitness.targets import get_target
from search.cli import main

CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


def test_cr_ratio_below_one_exactly_where_the_rounding_is_correct():
    """For exact values anywhere in a binade, at its power-of-two edge (half the room below) and
    close to a midpoint, r < 1 holds exactly for the float64 values that round to RN(f)."""
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.uniform(1, 2, 300), np.full(50, 2.0), np.full(50, 1.0)]).astype(np.float32).astype(np.float64)
    spacing = np.spacing(v.astype(np.float32)).astype(np.float64)
    f_hi = v + rng.uniform(-0.499, 0.499, len(v)) * spacing * np.where(rng.random(len(v)) < 0.5, 1, 0.5)
    f_hi[:20] = v[:20] + spacing[:20] * (0.5 - 2.0**-30)  # just inside the midpoint
    ref = Reference(f_hi, np.zeros_like(f_hi))
    rn = rounding_room(ref)[0]  # RN(f): v itself, or its neighbour where the offset crossed a midpoint
    assert np.mean(rn == v) > 0.8
    for scale in (0.1, 0.6, 1.5):
        y = f_hi[None, :] + rng.uniform(-1, 1, (20, len(v))) * spacing * scale
        for row in y:
            r = cr_ratio(row, ref)
            assert np.array_equal(r < 1.0, ~misrounded(row, rn)), scale
    room = rounding_room(ref)
    assert np.all(room[1] > 0) and np.all(room[2] > 0)


def test_cr_ratio_of_special_results():
    ref = Reference(np.array([1e39, 0.0, 3.0e38]), np.zeros(3))  # overflow, a zero, just below FLT_MAX's edge
    r = cr_ratio(np.array([np.inf, 0.0, 3.4e38]), ref)
    assert r[0] == 0.0 and r[1] == 0.0 and np.isfinite(r[2])
    assert np.all(np.isinf(cr_ratio(np.array([3.0e38, 1e-40, 1e39]), ref)[:2]))


def test_cr_problem_computes_in_float64_on_float32_inputs():
    p = Problem.build(ProblemSpec("exp2", 0.5, 1.0, mode="cr", n_points=256))
    assert p.spec.eval_dtype == "float64" and p.x.dtype == np.float64
    assert np.array_equal(p.x.astype(np.float32).astype(np.float64), p.x)
    with pytest.raises(ValueError, match="float32"):
        ProblemSpec("exp2", 0.0, 1.0, dtype="float64", mode="cr")


def _cli(args: list[str]) -> None:
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_cr_run_report_export_verify(tmp_path, capsys):
    rd = tmp_path / "run"
    _cli(["run", "--target", "exp2", "--domain", "0.5", "1", "--mode", "cr", "--budget-evals", "400", "--seed", "1",
          "--max-ops", "12", "--workers", "1", "--quiet", "--run-dir", str(rd)])
    from search.results import load_run

    record = load_run(str(rd))
    best = min(record.front, key=lambda e: e.error)
    assert best.error < 1.0  # correctly rounded on every fitness and validation point
    prog = record.program(best)
    assert prog.nodes[prog.output].op == "cvt_f32"
    out = tmp_path / "e.c"
    _cli(["report", str(rd)])
    assert "cr ratio" in capsys.readouterr().out
    _cli(["export", str(rd), "--lang", "c", "--out", str(out), "--quiet"])
    rep = json.loads(out.with_name("e.c.verify.json").read_text())
    assert rep["frac_correctly_rounded"] == 1.0 and rep["n_misrounded"] == 0 and "float64 inside" in rep["evaluator"]
    src = out.read_text()
    assert "static inline float exp2_f32(float x_in)" in src and "cvt_f32" in src
    wrap = tmp_path / "w.c"
    wrap.write_text(f'#include "{out}"\nvoid run(const float *x, float *y, long n)'
                    "{ for (long i = 0; i < n; i++) y[i] = exp2_f32(x[i]); }\n")
    subprocess.run([CC, "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-o", str(tmp_path / "w.so"), str(wrap), "-lm"],
                   check=True, capture_output=True, text=True)
    fn = ctypes.CDLL(str(tmp_path / "w.so")).run
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
    x = np.random.default_rng(1).uniform(0.5, 1, 200_000).astype(np.float32)
    y = np.empty_like(x)
    fn(x.ctypes.data, y.ctypes.data, len(x))
    exported = record.program(record.best_per_cost[rep["cost"]])
    assert np.array_equal(y, evaluate(exported, x.astype(np.float64), "float64").astype(np.float32))
    ref = mp_values(get_target("exp2"), x[:5000].astype(np.float64))
    assert not misrounded(y[:5000].astype(np.float64), rounding_room(ref)[0]).any()


def test_hard_inputs_are_the_nearest_to_a_midpoint_and_join_the_fitness_set():
    from fitness.cr import hard_inputs, midpoint_margin
    from fitness.points import all_floats

    target = get_target("exp2")
    lo, hi = 0.5, 0.5 + 2.0**-12  # 2^11 float32 inputs
    hard = hard_inputs(target, lo, hi, k=16, chunk=1 << 8)
    x = np.concatenate(list(all_floats(lo, hi, "float32"))).astype(np.float64)
    m = midpoint_margin(x.astype(np.float32), np.exp2(x))
    assert len(hard) >= 16 and np.all((hard >= lo) & (hard <= hi))
    # every chunk of 2^8 inputs gave its hardest two: the hardest overall are among them
    assert set(np.sort(x[np.argsort(m)[:4]])) <= set(hard)
    assert np.array_equal(hard_inputs(target, lo, hi, k=16, chunk=1 << 8), hard)  # from the cache now
    exact = mp_values(target, hard)
    assert np.all(np.min(rounding_room(exact)[1:], axis=0) / np.spacing(np.float32(1.5)) < 0.05)
    p = Problem.build(ProblemSpec("exp2", lo, hi, mode="cr", n_points=64))
    assert set(hard_inputs(target, lo, hi)) <= set(p.x) and set(hard_inputs(target, lo, hi)) <= set(p.x[p.fit_idx])


def test_exceptions_replace_the_result_at_exactly_those_inputs():
    from dsl.program import Node, Program
    from fitness.cr import with_exceptions

    prog = Program((Node("x"), Node("mul", (0, 0)), Node("cvt_f32", (1,))))  # x^2 in float64, rounded
    a = np.array([0.75, -3.0, np.float32(1e-40)], np.float64)
    patched = with_exceptions(prog, a, np.array([7.0, 8.0, 9.0]))
    x32 = np.array([0.75, np.nextafter(np.float32(0.75), np.float32(1)), -3.0, np.float32(1e-40),
                    np.float32(1.1e-40), 0.0, np.nan, np.inf], np.float32)
    x = x32.astype(np.float64)
    got, plain = evaluate(patched, x, "float64"), evaluate(prog, x, "float64")
    assert list(got[[0, 2, 3]]) == [7.0, 8.0, 9.0]
    keep = [1, 4, 5, 6, 7]
    assert np.array_equal(got[keep], plain[keep], equal_nan=True)


USER_MODULE = '''
import mpmath
import numpy as np

def softplus(x):
    return mpmath.log(1 + mpmath.exp(x))

def softplus_f64(x):
    return np.logaddexp(0.0, x)

def nof64(x):
    return mpmath.exp(x)

def off(x):
    return mpmath.exp(x)

def off_f64(x):
    return np.exp(x) * (1 + 1e-9)

def notfn(x):
    return mpmath.exp(x)

notfn_f64 = 3.0
'''


def test_a_user_target_with_a_float64_companion_gets_hard_inputs(tmp_path, monkeypatch):
    """A user module's FUNCTION_f64 is the target's float64 function once it agrees with the mpmath
    one: then --mode cr gets hard inputs for it; a wrong or non-callable one is a one-line error."""
    from fitness.cr import hard_inputs, midpoint_margin
    from fitness.points import all_floats
    from fitness.targets import TargetError

    (tmp_path / "cr_user_mod.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    target = get_target("cr_user_mod:softplus")
    assert target.np_fn is not None and get_target("cr_user_mod:nof64").np_fn is None
    assert len(hard_inputs(get_target("cr_user_mod:nof64"), 0.5, 0.75)) == 0
    lo, hi = 0.5, 0.5 + 2.0**-12
    hard = hard_inputs(target, lo, hi, k=16, chunk=1 << 8)
    x = np.concatenate(list(all_floats(lo, hi, "float32"))).astype(np.float64)
    m = midpoint_margin(x.astype(np.float32), np.logaddexp(0.0, x))
    assert len(hard) >= 16 and set(np.sort(x[np.argsort(m)[:4]])) <= set(hard)
    for name, says in (("off", "gives"), ("notfn", "is not a function")):
        with pytest.raises(TargetError, match=says) as err:
            get_target(f"cr_user_mod:{name}")
        assert "\n" not in str(err.value)
