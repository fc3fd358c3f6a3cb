"""Target properties read from values (symmetry, zeros, unit slope) and the growth templates that
use them: chains in x² for symmetric targets, in t = x - z near a zero, and the seeds."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from backends.numpy_backend import evaluate
from dsl.canonical import canonicalize
from dsl.growth import (Hints, apply_growth, grow_horner_in, grow_horner_out, grow_rational, grow_square, moves_for, seed_program,
                        shift_of, shifted_input)
from dsl.mutate import mutate
from dsl.ops import CORE_OPS
from dsl.program import cost
from dsl.text import format_program, parse_program
from fitness.problem import Problem, ProblemSpec
from fitness.targets import guarded
from fitness.properties import domain_center, search_hints, symmetry, unit_slope, zeros
from fitness.targets import Target, get_target


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


def _user(name, fn):
    return Target(name, fn, None, (0.0, 1.0))


# --- properties from values -----------------------------------------------------------------------
def test_symmetry_is_read_from_values_not_names():
    assert symmetry(get_target("sin"), -1.0, 1.0) == "odd"
    assert symmetry(get_target("erf"), -2.0, 2.0) == "odd"
    assert symmetry(get_target("cos"), -1.0, 1.0) == "even"
    assert symmetry(get_target("exp"), -0.3, 0.3) is None
    # a domain that holds 0 on one side only: probed at -x outside it
    assert symmetry(get_target("sin"), -1.0, 2.0) == "odd"
    assert symmetry(get_target("erf"), 0.0, 1.0) == "odd"
    assert symmetry(get_target("cos"), 0.0, 1.5707963267948966) == "even"
    assert symmetry(get_target("exp2"), 0.0, 1.0) is None
    assert symmetry(get_target("sin"), 0.5, 1.0) is None  # 0 is not in the domain
    assert symmetry(get_target("log"), 0.0, 1.0) is None  # undefined at -x: no parity
    # user functions, with names that say nothing
    assert symmetry(_user("m:f", lambda x: x * mpmath.exp(-x * x)), -3.0, 3.0) == "odd"
    assert symmetry(_user("m:g", lambda x: 1 / (1 + x * x)), -3.0, 3.0) == "even"
    assert symmetry(_user("m:h", lambda x: x + x * x), -1.0, 1.0) is None
    assert symmetry(_user("m:k", lambda x: mpmath.sin(x) + 1), -1.0, 1.0) == "odd_offset"  # odd plus a constant


def _zeros(target, lo, hi):
    p = Problem.build(ProblemSpec(target, lo, hi))
    return zeros(p.target, p.x, p.ref, "float32")


def test_zeros_are_found_between_and_at_points():
    (z,) = _zeros("log", 0.70710677, 1.4142135)
    assert (z.hi, z.lo, z.unit_slope) == (1.0, 0.0, True)
    (z,) = _zeros("cos", 0.5, 3.0)  # pi/2, not a float: hi + lo is it to ~2^-48
    assert z.hi == float(np.float32(math.pi / 2)) and z.lo != 0.0
    assert abs((z.hi + z.lo) - math.pi / 2) < 1e-13
    assert not z.unit_slope
    assert _zeros("exp2", 0.0, 1.0) == ()
    assert [z.hi for z in _zeros("sin", 0.5, 7.0)] == [float(np.float32(math.pi)), float(np.float32(2 * math.pi))]


def test_unit_slope():
    assert unit_slope(get_target("sin"), 0.0) and unit_slope(get_target("tanh"), 0.0)
    assert unit_slope(get_target("log"), 1.0)
    assert not unit_slope(get_target("erf"), 0.0)  # 2/sqrt(pi)


def test_hints_for_a_problem():
    h = search_hints(Problem.build(ProblemSpec("sin", -1.0, 1.0)))
    assert h == Hints("odd", (), (), True)
    h = search_hints(Problem.build(ProblemSpec("erf", -2.0, 2.0)))
    assert h.symmetry == "odd" and not h.odd_unit_slope
    h = search_hints(Problem.build(ProblemSpec("log", 0.70710677, 1.4142135)))
    assert h.symmetry is None and h.zeros == ((1.0, 0.0),) and h.unit_slope == (True,)
    assert not search_hints(Problem.build(ProblemSpec("exp2", 0.0, 1.0))).any
    assert not search_hints(Problem.build(ProblemSpec("exp", -87.0, 88.0, frame="exp"))).any  # a frame's core
    # ... whose own zeros are read from the frame's core reference: the sigmoid frame's e^r - 1
    h = search_hints(Problem.build(ProblemSpec("sigmoid", -104.0, 20.0, frame="sigmoid")))
    assert h.symmetry is None and h.zeros == ((0.0, 0.0),) and h.unit_slope == (True,)
    # one-sided domains: the parity's shapes, unless the domain has zeros of its own away from 0
    h = search_hints(Problem.build(ProblemSpec("erf", 0.0, 1.0)))
    assert h.symmetry == "odd" and h.zeros == () and not h.odd_unit_slope and h.odd_near_identity
    assert not search_hints(Problem.build(ProblemSpec("erf", -2.0, 2.0))).odd_near_identity  # erf(2)/2 ~ 0.5
    h = search_hints(Problem.build(ProblemSpec("tanh", 0.0, 1.0)))
    assert h.symmetry == "odd" and h.odd_unit_slope
    assert search_hints(Problem.build(ProblemSpec("cos", 0.0, 1.5707963267948966))).symmetry == "even"
    h = search_hints(Problem.build(ProblemSpec("sin", 0.0, 4.0)))
    assert h.symmetry is None and any(abs(z[0] - 3.1415927) < 1e-6 for z in h.zeros)


def test_a_user_target_that_fails_outside_its_domain_has_no_parity():
    def f(x):
        if x < 0:
            raise RuntimeError("only x >= 0")  # not a math error: a TargetError through guarded()
        return mpmath.sqrt(x) * x

    assert symmetry(_user("m:f", guarded("m:f", f)), 0.0, 1.0) is None


# --- growth in the chain variable -----------------------------------------------------------------
ODD = parse_program("s = mul x x\nc1 = param 0.1\nc0 = param 1.0\np = fma s c1 c0\ny = mul x p\nreturn y")
EVEN = parse_program("s = mul x x\nc1 = param -0.5\nc0 = param 1.0\ny = fma s c1 c0\nreturn y")
X = np.linspace(-1.0, 1.0, 41)


def _parity(program) -> str | None:
    y, ym = evaluate(program, X, "float64"), evaluate(program, -X, "float64")
    if np.array_equal(ym, -y):
        return "odd"
    if np.array_equal(ym, y):
        return "even"
    return None


@pytest.mark.parametrize("parent,kind", [(ODD, "odd"), (EVEN, "even")])
def test_growth_keeps_a_symmetric_programs_parity(parent, kind):
    assert _parity(parent) == kind
    grew = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        for move in (grow_horner_in, grow_rational, grow_horner_out, grow_square):
            child = move(parent, rng, CORE_OPS, kind)
            if child is None:
                assert kind == "odd" and move in (grow_horner_out, grow_square)
                continue
            child = canonicalize(child, "float64")
            assert _parity(child) == kind, (move.__name__, format_program(child))
            grew += 1
    assert grew >= 40
    # a chain in x² grows one degree in x² per step: one more op, and x*x stays one node
    child = canonicalize(grow_horner_in(parent, np.random.default_rng(0), CORE_OPS, kind), "float64")
    assert cost(child) == cost(parent) + 1
    assert sum(1 for n in child.nodes if n.op == "mul" and n.args == (0, 0)) == 1
    assert set(moves_for("odd")) == {"grow_horner_in", "grow_rational"}


def test_mutation_with_templates_keeps_an_odd_program_odd_when_it_grows():
    rng = np.random.default_rng(4)
    seen = 0
    for _ in range(300):
        child, kind = mutate(ODD, rng, CORE_OPS, 10, "float64", templates=True, symmetry="odd")
        if kind.startswith("grow_"):
            assert _parity(child) == "odd"
            seen += 1
    assert seen > 10


def test_a_chain_near_a_zero_grows_in_t():
    """With the factor t = x - 1 in the program, the innermost step multiplies by t, not x."""
    parent = parse_program("one = const 1\nt = sub x one\nc1 = param -0.5\nc0 = param 1.0\n"
                           "p = fma t c1 c0\ny = mul p t\nreturn y")
    child = canonicalize(grow_horner_in(parent, np.random.default_rng(0), CORE_OPS, None, ((1.0, 0.0),)), "float64")
    xs = np.linspace(0.7, 1.4, 15)
    np.testing.assert_array_equal(evaluate(child, xs, "float64"), evaluate(parent, xs, "float64"))
    t = [i for i, n in enumerate(child.nodes) if n.op == "sub"]
    assert len(t) == 1 and any(n.op == "fma" and t[0] in n.args[:2] and child.nodes[n.args[1 - n.args.index(t[0])]].op
                               == "param" for n in child.nodes if n.op == "fma" and t[0] in n.args[:2])
    # without the factor in the program the chain stays in x
    plain = parse_program("c1 = param -0.5\nc0 = param 1.0\ny = fma x c1 c0\nreturn y")
    grown = canonicalize(grow_horner_in(plain, np.random.default_rng(0), CORE_OPS, None, ((1.0, 0.0),)), "float64")
    assert not any(n.op == "sub" for n in grown.nodes)


def test_seeds_have_the_targets_shape():
    rng = np.random.default_rng(0)
    shapes = set()
    for _ in range(40):
        odd = seed_program(rng, CORE_OPS, Hints("odd", (), (), True))
        assert _parity(odd) == "odd"
        shapes.add(format_program(odd.with_params([0.0] * len(odd.params))))
        assert _parity(seed_program(rng, CORE_OPS, Hints("even"))) == "even"
    assert len(shapes) == 2  # x (c1 s + c0) and x + x s c1
    z = seed_program(rng, CORE_OPS, Hints(None, ((1.0, 0.0),), (True,)))
    assert evaluate(z, np.array([1.0]), "float64")[0] == 0.0
    assert seed_program(rng, CORE_OPS, Hints()) is None
    assert seed_program(rng, ("add", "sub"), Hints("odd")) is None


# --- a domain away from 0: chains in x - c -----------------------------------------------------------
def test_a_domain_away_from_zero_gets_a_center():
    assert domain_center(3.0, 4.0) == 3.5 and domain_center(-4.0, -2.0) == -3.0
    assert domain_center(0.0, 1.0) == 0.0 and domain_center(-1.0, 2.0) == 0.0
    c = domain_center(0.1, 1.0)
    assert 0.5 < c < 0.6 and float(np.float32(c)) == c  # a short float32 literal near the middle
    h = search_hints(Problem.build(ProblemSpec("exp", 3.0, 4.0)))
    assert h.symmetry is None and h.zeros == () and h.center == 3.5 and h.any
    # a zero in the domain gives the factor's variable instead; a domain holding 0 gets no center
    assert search_hints(Problem.build(ProblemSpec("log", 0.5, 2.0))).center == 0.0
    assert search_hints(Problem.build(ProblemSpec("exp2", 0.0, 1.0))).center == 0.0


def test_shifted_input_substitutes_x_minus_c():
    p = parse_program("c1 = param 0.5\nc0 = param 2.0\nq = fma x c1 c0\ny = mul q x\nreturn y")
    shifted = shifted_input(p, 3.5)
    xs = np.linspace(3.0, 4.0, 33)
    np.testing.assert_array_equal(evaluate(shifted, xs, "float64"), evaluate(p, xs - 3.5, "float64"))
    assert cost(shifted) == cost(p) + 1 and shift_of(shifted) == 3.5 and shift_of(p) is None


def test_a_centered_seed_grows_in_t():
    rng = np.random.default_rng(0)
    seed = seed_program(rng, CORE_OPS, Hints(center=3.5))
    assert shift_of(seed) == 3.5 and cost(seed) == 2
    xs = np.linspace(3.0, 4.0, 17)
    for _ in range(3):  # each innermost step multiplies by t and keeps the function
        child = canonicalize(grow_horner_in(seed, rng, CORE_OPS, None, ()), "float64")
        np.testing.assert_array_equal(evaluate(child, xs, "float64"), evaluate(seed, xs, "float64"))
        assert cost(child) == cost(seed) + 1 and sum(n.op == "sub" for n in child.nodes) == 1
        seed = child.with_params([0.25] * len(child.params))
    # a Horner step at the output and a rational denominator grow in t as well
    out = canonicalize(grow_horner_out(seed, rng, CORE_OPS, None, ()), "float64")
    rat = canonicalize(grow_rational(seed, rng, CORE_OPS, None, ()), "float64")
    for grown, more in ((out, 1), (rat, 2)):  # fma; fma and div
        assert sum(n.op == "sub" for n in grown.nodes) == 1 and cost(grown) == cost(seed) + more
    assert seed_program(rng, ("add", "mul", "fma"), Hints(center=3.5)) is None  # no sub offered


# --- odd about a point (0, c) -----------------------------------------------------------------------
def test_a_target_odd_about_its_value_at_zero_is_read_from_values():
    assert symmetry(get_target("sigmoid"), -4.0, 4.0) == "odd_offset"
    assert symmetry(get_target("mpmath:erfc"), -2.0, 2.0) == "odd_offset"
    assert symmetry(get_target("exp"), -1.0, 1.0) is None
    assert symmetry(get_target("sin"), -1.0, 1.0) == "odd"  # c = 0 is plain odd
    h = search_hints(Problem.build(ProblemSpec("sigmoid", -4.0, 4.0)))
    assert h == Hints("odd_offset", offset=0.5)


def _point_symmetric(program, c: float) -> bool:
    y, ym = evaluate(program, X, "float64"), evaluate(program, -X, "float64")
    return bool(np.allclose(y + ym, 2 * c, rtol=0, atol=1e-12))


def test_odd_offset_seeds_and_growth_stay_odd_about_the_offset():
    hints = Hints("odd_offset", offset=0.5)
    rng = np.random.default_rng(3)
    seed = seed_program(rng, CORE_OPS, hints)
    out = seed.nodes[seed.output]
    assert out.op == "fma" and 0 in out.args[:2] and seed.nodes[out.args[2]].value == 0.5
    assert _point_symmetric(seed, 0.5)
    grew = 0
    for s in range(20):
        rng = np.random.default_rng(s)
        child = seed
        for move in (grow_rational, grow_horner_in, grow_horner_in, grow_rational):
            nxt = move(child, rng, CORE_OPS, "odd_offset")
            if nxt is not None:
                child, grew = canonicalize(nxt, "float64"), grew + 1
        assert _point_symmetric(child, 0.5), format_program(child)
        assert any(n.op == "div" for n in child.nodes)  # the rational went under the last fma
        last = child.nodes[child.output]
        assert last.op == "fma" and 0 in last.args[:2]
    assert grew >= 60
    assert grow_horner_out(seed, rng, CORE_OPS, "odd_offset") is None
    assert grow_square(seed, rng, CORE_OPS, "odd_offset") is None


def test_odd_offset_programs_without_x_squared_grow_in_x():
    """A program bred from a random start (no x²) grows a rational in x: c + x·P(x²) cancels
    where the target is small next to c, a rational in x does not."""
    plain = parse_program("c1 = param 0.2\nc0 = param 0.5\ny = fma x c1 c0\nreturn y")
    rng = np.random.default_rng(0)
    rat = canonicalize(apply_growth(plain, "grow_rational", rng, CORE_OPS, (), "odd_offset"), "float64")
    deeper = canonicalize(apply_growth(rat, "grow_horner_in", rng, CORE_OPS, (), "odd_offset"), "float64")
    for child in (rat, deeper):
        assert not any(n.op == "mul" and n.args == (0, 0) for n in child.nodes)
        np.testing.assert_array_equal(evaluate(child, X, "float64"), evaluate(plain, X, "float64"))
    assert cost(rat) == cost(plain) + 2 and cost(deeper) == cost(rat) + 1
    # the parity seed keeps its shape
    seed = seed_program(np.random.default_rng(3), CORE_OPS, Hints("odd_offset", offset=0.5))
    grown = canonicalize(apply_growth(seed, "grow_rational", rng, CORE_OPS, (), "odd_offset"), "float64")
    assert _point_symmetric(grown, 0.5)
