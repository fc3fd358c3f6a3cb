"""Templated growth moves of ``dsl.mutate`` (real-number mode): Horner extensions, squaring and
division by a new Horner chain (rationals)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from backends.numpy_backend import evaluate
from dsl.canonical import canonicalize
from dsl.mutate import (GROW_MOVES, _grow_horner_in, _grow_horner_out, _grow_rational, _grow_square, mutate,
                        random_program)
from dsl.ops import CORE_OPS
from dsl.program import cost
from dsl.text import format_program, parse_program

NOFMA = tuple(o for o in CORE_OPS if o != "fma")

CHAIN = parse_program("""
v1 = param 0.25
v2 = param 0.5
v3 = fma x v1 v2
v4 = param 1.0
v5 = fma x v3 v4
return v5
""")


def _walk_horner(program, i) -> tuple[int, int]:
    """(degree in x, innermost node) of a Horner chain fma(x, inner, c) (either factor order) at node i."""
    degree = 0
    while program.nodes[i].op == "fma":
        a, b, _c = program.nodes[i].args
        if a == 0 and program.nodes[b].op != "x":
            i = b
        elif b == 0:
            i = a
        else:
            break
        degree += 1
    return degree, i


def _fma_chain_depth(program) -> int:
    """Length of the Horner chain fma(x, inner, c) / fma(inner, x, c) ending at the output."""
    depth, i = _walk_horner(program, program.output)
    return depth + (1 if program.nodes[i].op == "param" else 0)


def _walk(ops, templates, seed=0, n=40, steps=25, max_ops=12):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        prog = random_program(rng, ops, int(rng.integers(1, 4)), "float64")
        for _ in range(steps):
            prog, kind = mutate(prog, rng, ops, max_ops, "float64", templates=templates)
            out.append((format_program(prog), kind))
    return out


@pytest.mark.parametrize("ops", [CORE_OPS, NOFMA], ids=["fma", "nofma"])
def test_templates_give_valid_canonical_programs_within_max_ops(ops):
    rng = np.random.default_rng(3)
    kinds = collections.Counter()
    for _ in range(30):
        prog = random_program(rng, ops, 2, "float64")
        for _ in range(30):
            prog, kind = mutate(prog, rng, ops, 7, "float64", templates=True)
            kinds[kind] += 1
            assert cost(prog) <= 7
            assert canonicalize(prog, "float64") == prog
            assert parse_program(format_program(prog)) == prog
            assert all(n.op in ops for n in prog.nodes if not n.is_leaf)
    for move in GROW_MOVES:
        assert kinds[move] > 0, kinds


def test_horner_out_extends_the_chain_at_the_output():
    child = canonicalize(_grow_horner_out(CHAIN, np.random.default_rng(0), CORE_OPS), "float64")
    out = child.nodes[child.output]
    assert out.op == "fma" and 0 in out.args[:2] and child.nodes[out.args[2]].op == "param"
    assert cost(child) == cost(CHAIN) + 1
    assert _fma_chain_depth(child) == _fma_chain_depth(CHAIN) + 1
    # without fma: a mul then an add
    child = canonicalize(_grow_horner_out(CHAIN, np.random.default_rng(0), NOFMA), "float64")
    out = child.nodes[child.output]
    assert out.op == "add" and cost(child) == cost(CHAIN) + 2
    assert any(child.nodes[a].op == "mul" and 0 in child.nodes[a].args for a in out.args)


def test_horner_in_deepens_the_chain_and_keeps_the_function():
    x = np.linspace(0.0, 1.0, 101)
    before = evaluate(CHAIN, x, "float64")
    seen_deeper = False
    for seed in range(10):
        child = canonicalize(_grow_horner_in(CHAIN, np.random.default_rng(seed), CORE_OPS), "float64")
        assert cost(child) == cost(CHAIN) + 1
        assert len(child.params) == len(CHAIN.params) + 1 and 0.0 in child.params
        np.testing.assert_array_equal(evaluate(child, x, "float64"), before)  # new coefficient starts at 0
        seen_deeper |= _fma_chain_depth(child) == _fma_chain_depth(CHAIN) + 1
    assert seen_deeper
    child = canonicalize(_grow_horner_in(CHAIN, np.random.default_rng(0), NOFMA), "float64")
    assert cost(child) == cost(CHAIN) + 2
    np.testing.assert_array_equal(evaluate(child, x, "float64"), before)
    # nothing to deepen in a program without constants
    assert _grow_horner_in(parse_program("v1 = mul x x\nreturn v1"), np.random.default_rng(0), CORE_OPS) is None


def test_square_squares_the_output():
    child = canonicalize(_grow_square(CHAIN, np.random.default_rng(0), CORE_OPS), "float64")
    out = child.nodes[child.output]
    assert out.op == "mul" and out.args[0] == out.args[1]
    x = np.linspace(0.0, 1.0, 11)
    np.testing.assert_array_equal(evaluate(child, x, "float64"), evaluate(CHAIN, x, "float64") ** 2)
    assert _grow_square(CHAIN, np.random.default_rng(0), ("add", "fma")) is None


def _denominator(program):
    """The divisor node of a program whose output is a division, or None."""
    out = program.nodes[program.output]
    return out.args[1] if out.op == "div" else None


def _horner_degree(program, i) -> int:
    """Degree in x of a Horner chain fma(x, inner, c) (either factor order) rooted at node i."""
    return _walk_horner(program, i)[0]


def test_rational_divides_the_output_by_a_new_chain_and_keeps_the_function():
    x = np.linspace(0.0, 1.0, 101)
    child = canonicalize(_grow_rational(CHAIN, np.random.default_rng(0), CORE_OPS), "float64")
    den = _denominator(child)
    assert den is not None
    q = child.nodes[den]
    # q = fma(x, c, 1): a trainable c (starting at 0) and the literal 1
    assert q.op == "fma" and 0 in q.args[:2]
    c = q.args[1] if q.args[0] == 0 else q.args[0]
    assert child.nodes[c].op == "param" and child.nodes[c].value == 0.0
    assert child.nodes[q.args[2]].op == "const" and child.nodes[q.args[2]].value == 1.0
    assert cost(child) == cost(CHAIN) + 2
    assert len(child.params) == len(CHAIN.params) + 1
    np.testing.assert_array_equal(evaluate(child, x, "float64"), evaluate(CHAIN, x, "float64"))
    assert parse_program(format_program(child)) == child
    # without fma: a mul, an add and the division
    child = canonicalize(_grow_rational(CHAIN, np.random.default_rng(0), NOFMA), "float64")
    assert child.nodes[child.output].op == "div" and cost(child) == cost(CHAIN) + 3
    np.testing.assert_array_equal(evaluate(child, x, "float64"), evaluate(CHAIN, x, "float64"))
    # no division (or no way to build the chain): no move
    assert _grow_rational(CHAIN, np.random.default_rng(0), ("add", "mul", "fma")) is None
    assert _grow_rational(CHAIN, np.random.default_rng(0), ("div", "sqrt")) is None


def test_horner_in_deepens_a_rationals_denominator_too():
    rational = canonicalize(_grow_rational(CHAIN, np.random.default_rng(0), CORE_OPS), "float64")
    x = np.linspace(0.0, 1.0, 101)
    before = evaluate(rational, x, "float64")
    num_deg, den_deg = _horner_degree(rational, rational.nodes[rational.output].args[0]), 1
    assert _horner_degree(rational, _denominator(rational)) == den_deg
    grew = collections.Counter()
    for seed in range(40):
        child = canonicalize(_grow_horner_in(rational, np.random.default_rng(seed), CORE_OPS), "float64")
        np.testing.assert_array_equal(evaluate(child, x, "float64"), before)  # new coefficient starts at 0
        assert cost(child) == cost(rational) + 1
        out = child.nodes[child.output]
        assert out.op == "div"
        if _horner_degree(child, _denominator(child)) == den_deg + 1:
            grew["denominator"] += 1
        if _horner_degree(child, out.args[0]) == num_deg + 1:
            grew["numerator"] += 1
    assert grew["denominator"] >= 8 and grew["numerator"] >= 8, grew


def test_rational_within_max_ops_and_deterministic():
    rng = np.random.default_rng(1)
    seen = 0
    for _ in range(300):
        child, kind = mutate(CHAIN, rng, CORE_OPS, 3, "float64", templates=True)
        assert cost(child) <= 3  # CHAIN costs 2: the +2 division never fits
        assert kind != "grow_rational"
        child, kind = mutate(CHAIN, rng, CORE_OPS, 4, "float64", templates=True)
        assert cost(child) <= 4
        seen += kind == "grow_rational"
    assert seen > 0
    a = _grow_rational(CHAIN, np.random.default_rng(0), CORE_OPS)
    b = _grow_rational(CHAIN, np.random.default_rng(99), CORE_OPS)
    assert a == b  # the move draws nothing: its child depends on the parent alone
    walk = _walk(CORE_OPS, True, seed=8, n=10)
    assert walk == _walk(CORE_OPS, True, seed=8, n=10)
    assert any(kind == "grow_rational" for _text, kind in walk)


def test_templates_never_exceed_max_ops():
    full = parse_program("""
    v1 = param 1.0
    v2 = fma x x v1
    v3 = fma v2 x v1
    v4 = fma v3 x v1
    return v4
    """)
    assert cost(full) == 3
    rng = np.random.default_rng(0)
    for _ in range(300):
        child, _kind = mutate(full, rng, CORE_OPS, 3, "float64", templates=True)
        assert cost(child) <= 3


def test_templates_are_deterministic_for_a_seed():
    assert _walk(CORE_OPS, True, seed=5, n=10) == _walk(CORE_OPS, True, seed=5, n=10)
    assert _walk(CORE_OPS, True, seed=5, n=10) != _walk(CORE_OPS, True, seed=6, n=10)


@pytest.mark.parametrize("ops", [CORE_OPS, NOFMA], ids=["fma", "nofma"])
def test_templates_off_is_the_plain_mutation(ops):
    a, b = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(20):
        pa = random_program(a, ops, 2, "float32")
        pb = random_program(b, ops, 2, "float32")
        for _ in range(20):
            pa, ka = mutate(pa, a, ops, 9, "float32")
            pb, kb = mutate(pb, b, ops, 9, "float32", templates=False)
            assert (pa, ka) == (pb, kb)
            assert ka not in GROW_MOVES
    assert a.bit_generator.state == b.bit_generator.state


def test_templates_off_matches_recorded_children():
    """Children of the plain mutation for a fixed seed, recorded before templates existed."""
    rng = np.random.default_rng(2024)
    prog = random_program(rng, CORE_OPS, 3, "float32")
    kinds = []
    for _ in range(15):
        prog, kind = mutate(prog, rng, CORE_OPS, 12, "float32")
        kinds.append(kind)
    assert kinds == RECORDED_KINDS
    assert format_program(prog) == RECORDED_PROGRAM


RECORDED_KINDS = ["rewire", "insert", "insert", "insert", "insert", "remove", "insert", "insert", "insert", "insert",
                  "remove", "remove", "remove", "identity", "insert"]
RECORDED_PROGRAM = "v1 = param 0x0.0p+0\nv2 = sqrt x\nv3 = add v1 v2\nv4 = mul v3 x\nreturn v4\n"


def test_zero_factor_makes_the_program_vanish_at_the_targets_zero():
    from fitness.problem import target_zeros
    from fitness.targets import get_target

    assert target_zeros(get_target("log"), 0.5, 1.0) == (1.0,)
    assert target_zeros(get_target("erf"), 0.0, 1.0) == (0.0,)
    assert target_zeros(get_target("exp2"), 0.0, 1.0) == ()
    parent = parse_program("v1 = param 0.3\nv2 = param 1.5\nv3 = fma x v1 v2\nreturn v3\n")
    seen = set()
    for seed in range(200):
        child, kind = mutate(parent, np.random.default_rng(seed), ("add", "sub", "mul", "fma"), 12, "float64",
                             templates=True, zeros=(1.0,))
        if kind != "grow_zero_factor":
            continue
        seen.add(kind)
        x = np.array([0.5, 0.75, 1.0])
        y = evaluate(child, x, "float64")
        assert y[-1] == 0.0  # exactly zero at the zero
        assert np.allclose(y[:2], evaluate(parent, x[:2], "float64") * (x[:2] - 1.0))
        assert cost(child) == cost(parent) + 2
    assert seen
    # without zeros the draws are those of the templates alone
    a = [mutate(parent, np.random.default_rng(s), ("add", "mul", "fma"), 12, "float64", templates=True) for s in range(30)]
    b = [mutate(parent, np.random.default_rng(s), ("add", "mul", "fma"), 12, "float64", templates=True, zeros=())
         for s in range(30)]
    assert a == b
