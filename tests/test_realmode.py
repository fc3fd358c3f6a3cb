"""Real-number mode: paper programs, error refinement, interval bounds and classical baselines."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from dsl.program import cost
from dsl.text import parse_program
from fitness.baselines import baseline_table, minimax_polynomial, minimax_rational, pade, taylor
from fitness.bounds import relative_error_bound
from fitness.paper_programs import PAPER_DOMAIN, PAPER_ERRORS, PAPER_TARGET, paper_program
from fitness.real_error import evaluate_mp, max_relative_error, relative_errors_f64
from fitness.targets import Target, get_target

EXP2 = get_target("exp2")


# --- the paper's programs ---------------------------------------------------------------------------
@pytest.mark.parametrize("ops", sorted(PAPER_ERRORS))
def test_paper_program_digits_match_the_paper(ops):
    program = paper_program(ops)
    assert cost(program) == ops
    result = max_relative_error(program, PAPER_TARGET, *PAPER_DOMAIN)
    assert abs(result.digits - (-math.log10(PAPER_ERRORS[ops]))) <= 0.1
    if ops == 10:
        assert result.digits >= 14.0
        assert result.scan == "mpmath"  # 3.6e-15 is too close to float64 rounding to scan in float64


def test_real_mode_does_not_depend_on_the_working_precision():
    """64 bits already stand in for exact arithmetic at the 10-op program's 3.6e-15."""
    program = paper_program(10)
    at64 = max_relative_error(program, PAPER_TARGET, 0.5, 1.0, n_points=256)
    at160 = max_relative_error(program, PAPER_TARGET, 0.5, 1.0, n_points=256, prec_bits=160)
    assert at64.max_rel_error == pytest.approx(at160.max_rel_error, rel=1e-3)


# --- the maximum: refinement and failures ------------------------------------------------------------
@pytest.mark.parametrize("ops", [3, 5, 10])
def test_refinement_never_reports_less_than_the_dense_scan(ops):
    program = paper_program(ops)
    dense = max_relative_error(program, PAPER_TARGET, 0.25, 1.0, n_points=64, refine=False)
    refined = max_relative_error(program, PAPER_TARGET, 0.25, 1.0, n_points=64)
    assert refined.max_rel_error >= dense.max_rel_error


def test_refinement_finds_the_peak_between_sparse_samples():
    """On [0.05, 0.95] the largest errors sit at interior extrema, which 24 samples miss."""
    approx = minimax_polynomial("exp2", 0.0, 1.0, 6)
    dense = max_relative_error(approx.program, EXP2, 0.05, 0.95, n_points=24, refine=False)
    refined = max_relative_error(approx.program, EXP2, 0.05, 0.95, n_points=24)
    assert refined.max_rel_error > dense.max_rel_error
    assert refined.max_rel_error == pytest.approx(approx.levelled_error, rel=1e-3)


@pytest.mark.parametrize(
    "text, lo, hi",
    [
        ("a = sub x 2\nb = sqrt a\nreturn b", 0.0, 1.0),  # sqrt of a negative number everywhere
        ("a = sub x x\nb = div a a\nreturn b", 0.0, 1.0),  # 0/0 everywhere
        ("a = div 1 x\nreturn a", 0.0, 1.0),  # a pole at a sampled endpoint
        ("a = sub x 0.75\nb = sqrt a\nreturn b", 0.5, 1.0),  # NaN on part of the domain
    ],
)
def test_undefined_programs_have_infinite_error(text, lo, hi):
    result = max_relative_error(parse_program(text), EXP2, lo, hi, n_points=128)
    assert result.max_rel_error == math.inf
    assert result.digits == -math.inf


def test_evaluate_mp_reads_operations_as_real_arithmetic():
    text = "a = fma x x -1\nb = select_lt x 0.5 a x\nc = floor b\nd = add b c\nreturn d"
    program = parse_program(text)
    with mpmath.workprec(200):
        x = mpmath.mpf(0.3) + mpmath.mpf(2) ** -70  # not a float64; x*x needs 140 bits, exact here
        expected = x * x - 1 + mpmath.floor(x * x - 1)
        assert evaluate_mp(program, x) == expected
        assert mpmath.isnan(evaluate_mp(parse_program("a = div x 0\nreturn a"), 1))


def test_relative_errors_f64_scores_a_batch_of_parameter_vectors():
    program = paper_program(3)
    x = np.linspace(0.0, 1.0, 101)
    base = np.array(program.params)
    batch = np.stack([base, base * 1.001, base * [1, 1, np.nan]])
    errs = relative_errors_f64(program, x, np.exp2(x), params=batch)
    assert errs.shape == (3, 101)
    assert np.allclose(errs[0], relative_errors_f64(program, x, np.exp2(x)))
    assert errs[1].max() > errs[0].max()
    assert np.all(errs[2] == np.inf)


# --- the rigorous bound --------------------------------------------------------------------------------
@pytest.mark.parametrize("name, lo, hi", [("exp2", 0.0, 1.0), ("log", 0.5, 1.0), ("erf", 0.0, 1.0)])
def test_interval_bound_encloses_the_sampled_maximum(name, lo, hi):
    approx = minimax_polynomial(name, lo, hi, 4)
    bound = relative_error_bound(approx.program, name, lo, hi, time_limit=20)
    assert math.isfinite(bound.upper_bound)
    assert bound.converged
    assert bound.sampled_max <= bound.upper_bound <= 1.2 * bound.sampled_max


def test_interval_bound_recovers_from_an_underestimated_sampled_maximum():
    """Rigorous lower bounds found on the way raise a far too small 'observed' maximum."""
    approx = minimax_polynomial("exp2", 0.0, 1.0, 3)
    bound = relative_error_bound(approx.program, "exp2", 0.0, 1.0, sampled_max=1e-12)
    assert bound.converged
    assert bound.sampled_max <= approx.levelled_error * (1 + 1e-9)
    assert bound.sampled_max >= 0.9 * approx.levelled_error
    assert approx.levelled_error <= bound.upper_bound


def test_interval_bound_out_of_budget_is_still_a_bound():
    approx = minimax_polynomial("exp2", 0.0, 1.0, 5)
    bound = relative_error_bound(approx.program, "exp2", 0.0, 1.0, max_evaluations=1)
    assert not bound.converged
    assert bound.upper_bound >= approx.levelled_error


def test_interval_bound_of_a_program_with_a_pole_is_infinite():
    program = parse_program("a = sub x 0.5\nb = div 1 a\nreturn b")
    bound = relative_error_bound(program, "exp2", 0.0, 1.0, max_evaluations=200, time_limit=10)
    assert bound.upper_bound == math.inf


def test_interval_bound_needs_a_series_form_of_the_target():
    user = Target("user", mpmath.exp, None, (0.0, 1.0))
    with pytest.raises(ValueError, match="no rigorous bound"):
        relative_error_bound(paper_program(2), user, 0.0, 1.0)


@pytest.mark.slow
def test_interval_bound_of_the_ten_op_paper_program():
    bound = relative_error_bound(paper_program(10), PAPER_TARGET, *PAPER_DOMAIN, time_limit=120)
    assert bound.converged
    assert bound.sampled_max <= bound.upper_bound <= 2 * bound.sampled_max
    assert bound.elapsed_s < 120


# --- classical baselines ---------------------------------------------------------------------------------
def _signed_extrema(program, target, lo, hi, n=2001):
    """Largest |error| of each constant-sign run of the signed relative error on a fine grid."""
    with mpmath.workprec(80):
        errs = []
        for x in np.linspace(lo, hi, n):
            errs.append(float(evaluate_mp(program, x) / target.mp_fn(mpmath.mpf(x)) - 1))
    runs: list[float] = []
    for e in errs:
        if runs and (runs[-1] >= 0) == (e >= 0):
            runs[-1] = e if abs(e) > abs(runs[-1]) else runs[-1]
        else:
            runs.append(e)
    return runs


@pytest.mark.parametrize("degree", [3, 5])
def test_minimax_polynomial_equioscillates_and_beats_taylor(degree):
    approx = minimax_polynomial("exp2", 0.0, 1.0, degree)
    assert approx.cost == degree
    extrema = _signed_extrema(approx.program, EXP2, 0.0, 1.0)
    assert len(extrema) == degree + 2
    mags = [abs(e) for e in extrema]
    assert max(mags) <= 1.01 * min(mags)
    minimax = max_relative_error(approx.program, EXP2, 0.0, 1.0)
    classic = max_relative_error(taylor("exp2", 0.0, 1.0, degree).program, EXP2, 0.0, 1.0)
    assert minimax.digits > classic.digits + 0.5


def test_pade_and_rational_minimax_give_valid_programs():
    p = pade("exp2", 0.0, 1.0, 2, 2)
    r = minimax_rational("exp2", 0.0, 1.0, 2, 2)
    assert p.cost == r.cost == 5
    dp = max_relative_error(p.program, EXP2, 0.0, 1.0)
    dr = max_relative_error(r.program, EXP2, 0.0, 1.0)
    assert 4.0 < dp.digits < dr.digits
    assert dr.max_rel_error == pytest.approx(r.levelled_error, rel=1e-2)
    assert len(_signed_extrema(r.program, EXP2, 0.0, 1.0)) == 2 + 2 + 2


@pytest.mark.parametrize("name, lo, hi, expected_cost", [("log", 0.5, 1.0, 6), ("erf", 0.0, 1.0, 5)])
def test_rational_minimax_factors_out_a_zero_of_the_target(name, lo, hi, expected_cost):
    """log vanishes at 1 and erf at 0: the program is t*N(t)/D(t), whose relative error is finite."""
    r = minimax_rational(name, lo, hi, 2, 2)
    assert r.zero == (1.0 if name == "log" else 0.0)
    assert r.cost == expected_cost  # the subtraction t = x - 1 costs one op; t = x is free
    measured = max_relative_error(r.program, name, lo, hi)
    assert measured.max_rel_error == pytest.approx(r.levelled_error, rel=1e-2)


def test_baseline_table_is_monotone_and_minimax_wins():
    rows = baseline_table("exp2", 0.0, 1.0, 4, n_points=512)
    by = {(r.method, r.ops): r for r in rows}
    for method in ("taylor", "pade", "minimax_poly", "minimax_rational"):
        digits = [by[method, k].digits for k in range(1, 5) if (method, k) in by]
        assert digits and digits == sorted(digits)
        assert all(by[method, k].cost <= k for k in range(1, 5) if (method, k) in by)
    for k in range(1, 5):
        assert by["minimax_poly", k].digits > by["taylor", k].digits
    assert by["minimax_rational", 4].digits >= by["pade", 4].digits
    # the rational [0/1] c/(1 + b x) beats the paper's 2-op program of the same form
    assert by["minimax_rational", 2].digits > -math.log10(PAPER_ERRORS[2])
