"""The DSL: text round-trip, parser errors, canonical form, structural hash and the cost model."""

from __future__ import annotations

import builtins
import math
import re
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.numpy_backend import evaluate
from dsl.canonical import canonicalize, structural_hash
from dsl.mutate import mutate, random_program
from dsl.ops import ALL_OPS, CORE_OPS
from dsl.program import Node, Program, cost
from dsl.text import DSLSyntaxError, format_number, format_program, parse_number, parse_program

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _bits(a, dtype) -> np.ndarray:
    a = np.asarray(a, dtype)
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _same(a, b, dtype) -> bool:
    """Bit-identical, except that any NaN equals any NaN."""
    a, b = np.asarray(a, dtype), np.asarray(b, dtype)
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(np.all(both_nan | (_bits(a, dtype) == _bits(b, dtype))))


# --- program generators ------------------------------------------------------------------------
@st.composite
def random_programs(draw, ops=CORE_OPS):
    """A random program, then a chain of random mutations of it."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    prog = random_program(rng, ops, draw(st.integers(1, 6)))
    for _ in range(draw(st.integers(0, 6))):
        prog, _kind = mutate(prog, rng, ops, max_ops=12)
    return prog


ANY_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 2.0**-149, -(2.0**-149),
                     2.0**-126 - 2.0**-149, 1.7976931348623157e308, 0.1]),
)


@st.composite
def programs_with_constants(draw):
    """A random program whose leaves get hypothesis floats (params and literal constants)."""
    prog = draw(random_programs())
    nodes = list(prog.nodes)
    for i, n in enumerate(nodes):
        if n.is_leaf and n.op != "x":
            op = draw(st.sampled_from(["param", "const"]))
            nodes[i] = Node(op, (), draw(ANY_FLOAT))
    extra = draw(st.lists(ANY_FLOAT, max_size=3))
    nodes += [Node("const", (), v) for v in extra]  # dead constants: formatted and parsed too
    return Program(tuple(nodes), prog.output)


def _const_only(prog: Program) -> Program:
    """The same program with every trainable parameter turned into a literal constant."""
    return Program(tuple(Node("const", (), n.value) if n.op == "param" else n for n in prog.nodes), prog.output)


# --- text round trip ---------------------------------------------------------------------------
@FAST
@given(programs_with_constants())
def test_format_parse_format_is_identical(prog):
    text = format_program(prog)
    again = parse_program(text)
    assert format_program(again) == text
    # every constant comes back bit for bit (NaN as NaN)
    assert len(again.nodes) == len(prog.nodes) and again.output == prog.output
    for a, b in zip(prog.nodes, again.nodes):
        assert a.op == b.op and a.args == b.args
        if math.isnan(a.value):
            assert math.isnan(b.value)
        else:
            assert np.float64(a.value).view(np.uint64) == np.float64(b.value).view(np.uint64)
    if all(math.isfinite(n.value) for n in prog.nodes):
        assert again == prog


@FAST
@given(random_programs(ALL_OPS))
def test_parse_of_format_equals_program(prog):
    assert parse_program(format_program(prog, comment="a comment\non two lines")) == prog


@given(st.floats(allow_nan=False))
@settings(max_examples=200, deadline=None)
def test_format_number_round_trips_bits(v):
    back = parse_number(format_number(v))
    assert np.float64(back).view(np.uint64) == np.float64(v).view(np.uint64)


def test_numbers_in_all_spellings():
    assert parse_number("0x1p-149") == 2.0**-149
    assert parse_number("-0x1.8p1") == -3.0
    assert parse_number("0x.8") == 0.5
    assert parse_number("1e-3") == 1e-3
    assert parse_number(".5") == 0.5
    assert parse_number("-inf") == -math.inf and parse_number("+inf") == math.inf
    assert math.isnan(parse_number("nan"))
    assert str(parse_number("-0.0")) == "-0.0"
    assert parse_number("1e99999") == math.inf  # decimal overflow: IEEE gives inf
    assert parse_number("0x1p99999") == math.inf  # hex overflow likewise (not an OverflowError)
    assert parse_number("-0x1p99999") == -math.inf
    assert parse_number("0x1p-99999") == 0.0
    for bad in ("1.2.3", "0x", "0x1p", "1e", "e5", "0xg", "\u0661.5", "0x1p\u0661", "1_000", "--1", "nan0"):
        assert parse_number(bad) is None, bad


def test_inline_numbers_become_constants():
    p = parse_program("y = fma x 0x1.8p1 -2.5  # comment\nreturn y\n")
    assert [n.op for n in p.nodes] == ["x", "const", "const", "fma"]
    assert p.nodes[1].value == 3.0 and p.nodes[2].value == -2.5
    assert parse_program("return x") == Program((Node("x"),), 0)


# --- parser errors -----------------------------------------------------------------------------
ERRORS = [
    # (text, line, column, words in the message)
    ("a = mul x x\nb = frobnicate a\nreturn b\n", 2, 5, "unknown operation"),
    ("a = add x\nreturn a\n", 1, 5, "argument"),
    ("a = neg x x\nreturn a\n", 1, 5, "argument"),
    ("a = const\nreturn a\n", 1, 5, "exactly one number"),
    ("a = add\nreturn a\n", 1, 5, "argument"),
    ("a =\nreturn a\n", 1, 1, "expected"),
    ("a = const 1 2\nreturn a\n", 1, 5, "exactly one number"),
    ("a = add x y\nreturn a\n", 1, 11, "undefined name"),
    ("a = add x x\nreturn b\n", 2, 8, "undefined name"),
    ("a = add x x\na = mul x x\nreturn a\n", 2, 1, "assigned once"),
    ("  x = add x x\nreturn x\n", 1, 3, "the input"),
    ("a = add x x\n", 1, 1, "missing 'return"),
    ("", 1, 1, "missing 'return"),
    ("a = add x x\nreturn a\n\n  b = mul x x\n", 4, 3, "follow 'return'"),
    ("a = add x x\nreturn a\nreturn a\n", 3, 1, "follow 'return'"),
    ("a = const 1.2.3\nreturn a\n", 1, 11, "invalid number"),
    ("a = param 0xZZ\nreturn a\n", 1, 11, "invalid number"),
    ("a = add x 1.2.3\nreturn a\n", 1, 11, "invalid operand"),
    ("return a b\n", 1, 1, "exactly one name"),
    ("a mul x x\nreturn a\n", 1, 1, "expected"),
    ("1a = mul x x\nreturn 1a\n", 1, 1, "invalid name"),
]


@pytest.mark.parametrize("text,line,column,words", ERRORS)
def test_parser_errors_carry_line_and_column(text, line, column, words):
    with pytest.raises(DSLSyntaxError) as info:
        parse_program(text)
    err = info.value
    assert (err.line, err.column) == (line, column), str(err)
    assert words in err.message
    assert str(err).startswith(f"line {line}, column {column}: ")


def test_parser_never_evaluates_text(monkeypatch, tmp_path):
    marker = tmp_path / "pwned"

    def forbidden(*a, **k):
        raise AssertionError("the parser called eval/exec/compile")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, forbidden)
    payloads = [
        "a = __import__('os')\nreturn a\n",
        f"a = add x __import__('os').system('touch {marker}')\nreturn a\n",
        f"return __import__('os').system('touch {marker}')\n",
        "a = const __import__('os')\nreturn a\n",
        "a = eval x\nreturn a\n",
        "a = const 1e3;import os\nreturn a\n",
        "a = add x x\nreturn (lambda: a)()\n",
    ]
    for text in payloads:
        with pytest.raises(DSLSyntaxError):
            parse_program(text)
    assert not marker.exists()
    with pytest.raises(DSLSyntaxError):
        parse_program(None)  # type: ignore[arg-type]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
@settings(max_examples=300, deadline=None)
def test_fuzz_random_text_raises_only_syntax_errors(text):
    try:
        prog = parse_program(text)
    except DSLSyntaxError:
        return
    assert isinstance(prog, Program)


@given(st.text(alphabet=string.printable, max_size=200))
@settings(max_examples=300, deadline=None)
def test_fuzz_printable_text_raises_only_syntax_errors(text):
    try:
        parse_program(text)
    except DSLSyntaxError:
        pass


_EDIT_ALPHABET = string.printable + "\u0661\u00a0\u2028=#"
_TOKENS = ["0x1p99999", "-0x1p99999", "0x1p-99999", "1e400", "-1e400", "0x1p\u0661", "\u0661", "\u0661.5", "0x",
           "1e", "nan", "-nan", "inf", "-inf", "+inf", "0x1.fffffffffffffp1023", "x", "v1", "return", "const",
           "param", "fma", "select_lt", "=", "#", "__import__('os')", "", "1.5.5", "0x1.8p+1", "-0.0"]


@st.composite
def mutated_program_text(draw):
    text = format_program(draw(random_programs(ALL_OPS)), comment="c")
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "swap_lines", "dup_line", "number", "token"]))
        pos = draw(st.integers(0, max(0, len(text) - 1)))
        if kind == "insert":
            text = text[:pos] + draw(st.text(_EDIT_ALPHABET, min_size=1, max_size=4)) + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 5)):]
        elif kind == "replace":
            text = text[:pos] + draw(st.sampled_from(_EDIT_ALPHABET)) + text[pos + 1:]
        elif kind == "token":  # replace one whole token, so that the line keeps its shape
            spans = [m.span() for m in re.finditer(r"[^\s=]+", text)]
            if spans:
                a, b = spans[draw(st.integers(0, len(spans) - 1))]
                text = text[:a] + draw(st.sampled_from(_TOKENS)) + text[b:]
        elif kind == "number":
            text = text[:pos] + draw(st.sampled_from(
                [" 0x1p99999 ", " 1e400 ", " -0x1.fffp-1080 ", " nan ", " inf ", " 0x ", " 1e "])) + text[pos:]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.insert(j, lines[i])
            text = "\n".join(lines)
    return text


@given(mutated_program_text())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fuzz_mutated_program_text_raises_only_syntax_errors(text):
    try:
        prog = parse_program(text)
    except DSLSyntaxError:
        return
    assert parse_program(format_program(prog)) == prog or any(math.isnan(n.value) for n in prog.nodes)


# --- canonical form ----------------------------------------------------------------------------
def _equiv(*texts: str) -> None:
    progs = [parse_program(t) for t in texts]
    canons = [canonicalize(p) for p in progs]
    hashes = {structural_hash(p) for p in progs}
    assert all(c == canons[0] for c in canons), [format_program(c) for c in canons]
    assert len(hashes) == 1


def test_canonical_commutative_reordering():
    _equiv("a = mul x 3\nb = add a x\nreturn b", "a = mul 3 x\nb = add x a\nreturn b")
    _equiv("a = fma x 2 1\nreturn a", "a = fma 2 x 1\nreturn a")
    # fma's addend is not commutative with its factors
    assert structural_hash(parse_program("a = fma x 2 1\nreturn a")) != structural_hash(
        parse_program("a = fma x 1 2\nreturn a"))
    # sub and div are not commutative
    assert structural_hash(parse_program("a = sub x 2\nreturn a")) != structural_hash(
        parse_program("a = sub 2 x\nreturn a"))


def test_canonical_dead_code_and_duplicates():
    _equiv(
        "a = mul x x\nb = add a 1\nreturn b",
        "d = sqrt x\na = mul x x\ne = div d a\nb = add a 1\nf = neg b\nreturn b",
    )
    _equiv(
        "a = mul x x\nb = add a a\nreturn b",
        "a = mul x x\na2 = mul x x\nb = add a a2\nreturn b",
        "a2 = mul x x\na = mul x x\nb = add a2 a\nreturn b",
    )
    canon = canonicalize(parse_program("a = mul x x\na2 = mul x x\nb = add a a2\nreturn b"))
    assert [n.op for n in canon.nodes] == ["x", "mul", "add"]


def test_canonical_ssa_renumbering():
    _equiv(
        "s = mul x x\nt = sqrt x\nu = add s t\nreturn u",
        "t = sqrt x\ns = mul x x\nu = add s t\nreturn u",
        "zz = sqrt x\nk = const 7\nyy = mul x x\nout = add zz yy\nreturn out",
    )


def test_constant_folding_is_bit_exact_in_float32():
    p = parse_program("k = mul 0.1 3\ny = mul x k\nreturn y")
    c = canonicalize(p, "float32")
    folded = [n for n in c.nodes if n.op == "const"]
    assert len(folded) == 1
    expect = np.multiply(np.float32(0.1), np.float32(3), dtype=np.float32)
    assert folded[0].value == float(expect)
    assert np.float32(folded[0].value).view(np.uint32) == expect.view(np.uint32)
    # a product where float32 folding and the float64 product rounded to float32 differ
    k = [n for n in canonicalize(parse_program("k = mul 0.2 0.3\ny = mul x k\nreturn y")).nodes if n.op == "const"]
    want = np.multiply(np.float32(0.2), np.float32(0.3), dtype=np.float32)
    assert want != np.float32(0.2 * 0.3) and np.float32(k[0].value).view(np.uint32) == want.view(np.uint32)
    # float32 rounding of the folded chain: (0.1f * 3f) + 1e-8f differs from the float64 value
    p2 = parse_program("k = mul 0.1 3\nk2 = add k 1e-8\nk3 = div k2 7\ny = mul x k3\nreturn y")
    f32 = np.float32
    want = np.divide(np.add(np.multiply(f32(0.1), f32(3), dtype=f32), f32(1e-8), dtype=f32), f32(7), dtype=f32)
    got = [n for n in canonicalize(p2, "float32").nodes if n.op == "const"]
    assert len(got) == 1 and np.float32(got[0].value).view(np.uint32) == want.view(np.uint32)
    # in float64 the same program folds to the float64 value
    got64 = [n for n in canonicalize(p2, "float64").nodes if n.op == "const"]
    assert got64[0].value == (0.1 * 3 + 1e-8) / 7
    # folding an fma rounds once
    p3 = parse_program("k = fma 0x1.001p0 0x1.001p0 -1\ny = mul x k\nreturn y")
    got3 = [n for n in canonicalize(p3, "float32").nodes if n.op == "const"]
    assert got3[0].value == 2.0**-11 + 2.0**-24  # exact product, one rounding
    p4 = parse_program("k = mul 0x1.001p0 0x1.001p0\nk2 = sub k 1\ny = mul x k2\nreturn y")
    got4 = [n for n in canonicalize(p4, "float32").nodes if n.op == "const"]
    assert got4[0].value == 2.0**-11  # two roundings


def test_constant_folding_equivalences():
    _equiv("k = mul 0.1 3\ny = mul x k\nreturn y",
           "y = mul 0x1.333334p-2 x\nreturn y")
    _equiv("a = add 1 1\nb = mul a x\nreturn b", "b = mul x 2\nreturn b")


def test_param_only_subexpressions_collapse_to_one_param():
    a = parse_program("p = param 2\nq = param 3\nr = mul p q\ns = add r p\ny = mul x s\nreturn y")
    b = parse_program("p = param 0.5\ny = mul p x\nreturn y")
    ca, cb = canonicalize(a), canonicalize(b)
    assert sum(n.op == "param" for n in ca.nodes) == 1
    assert ca.params == (8.0,)  # the collapsed parameter keeps the folded value as its seed
    assert structural_hash(a) == structural_hash(b)  # parameter values are masked
    assert canonicalize(ca.with_params([0.5])) == cb
    # param combined with a literal constant is still one parameter
    c = parse_program("p = param 2\nk = add p 1\ny = mul x k\nreturn y")
    assert structural_hash(c) == structural_hash(b)
    # fma(param, const, e) spans the same family as add(param, e)
    d = parse_program("p = param 2\ny = fma p 3 x\nreturn y")
    e = parse_program("p = param 1\ny = add x p\nreturn y")
    assert structural_hash(d) == structural_hash(e)
    # distinct params are never merged, even with equal values
    f = parse_program("p = param 1\nq = param 1\na = mul x p\nb = mul x q\ny = add a b\nreturn y")
    assert sum(n.op == "param" for n in canonicalize(f).nodes) == 2


def test_equal_valued_params_are_not_merged():
    """Two trainable constants that happen to hold equal values are still two slots: merging the
    sub-expressions that read them would change the family of functions the program spans."""
    p = parse_program("p = param 1\nq = param 1\na = mul x p\nb = mul x q\ny = sub a b\nreturn y")
    c = canonicalize(p)
    assert sum(n.op == "param" for n in c.nodes) == 2
    assert [n.op for n in c.nodes].count("mul") == 2
    assert all(c.live()), format_program(c)  # no dead nodes in a canonical form
    assert structural_hash(p) == structural_hash(p.with_params([1.0, 2.0]))
    assert canonicalize(c) == c


@st.composite
def programs_with_equal_params(draw):
    """``op(R, R')`` where ``R'`` is a copy of a random program ``R`` with its own parameters, and every
    parameter takes one of a few values, so that equal values in distinct slots are common."""
    prog = draw(random_programs(ALL_OPS))
    n = len(prog.nodes)
    copy = [Node(nd.op, tuple(a + n - 1 if a > 0 else 0 for a in nd.args), nd.value) for nd in prog.nodes[1:]]
    op = draw(st.sampled_from(["add", "sub", "mul", "div"]))
    out2 = prog.output + n - 1 if prog.output > 0 else 0
    both = Program(prog.nodes + tuple(copy) + (Node(op, (prog.output, out2)),))
    values = [draw(st.sampled_from([0.0, 1.0, -1.0])) for _ in both.param_indices]
    return both.with_params(values)


@FAST
@given(programs_with_equal_params())
def test_canonical_form_has_no_dead_nodes_and_keeps_params(prog):
    canon = canonicalize(prog)
    assert all(canon.live()), format_program(canon)
    assert canonicalize(canon) == canon
    # as many trainable slots as with all-distinct values (parameter-only collapsing aside)
    distinct = canonicalize(prog.with_params(np.arange(1, len(prog.params) + 1) * 0.1234567))
    assert len(canon.param_indices) == len(distinct.param_indices)
    assert structural_hash(canon) == structural_hash(distinct)


def test_literal_constants_are_not_masked():
    assert structural_hash(parse_program("y = mul x 2\nreturn y")) != structural_hash(
        parse_program("y = mul x 3\nreturn y"))
    assert structural_hash(parse_program("y = mul x 0.0\nreturn y")) != structural_hash(
        parse_program("y = mul x -0.0\nreturn y"))


@FAST
@given(random_programs(ALL_OPS))
def test_canonicalize_is_idempotent(prog):
    for dt in ("float32", "float64"):
        once = canonicalize(prog, dt)
        twice = canonicalize(once, dt)
        assert format_program(twice) == format_program(once)
        assert structural_hash(once, dt) == structural_hash(prog, dt)


@FAST
@given(random_programs(ALL_OPS), st.integers(0, 2**32 - 1))
def test_canonicalize_preserves_the_function_without_params(prog, seed):
    rng = np.random.default_rng(seed)
    const_prog = _const_only(prog)
    for dt in ("float32", "float64"):
        canon = canonicalize(const_prog, dt)
        assert not canon.param_indices
        npdt = np.dtype(dt)
        x = np.concatenate([
            rng.uniform(-4, 4, 300).astype(npdt),
            rng.integers(0, 2**31 if dt == "float32" else 2**63, 200).astype(
                np.uint32 if dt == "float32" else np.uint64).view(npdt),
            np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0], npdt),
        ])
        assert _same(evaluate(const_prog, x, dt), evaluate(canon, x, dt), dt), format_program(const_prog)


def test_canonicalize_folding_keeps_nan_and_inf_constants():
    p = parse_program("k = div 0 0\na = add x k\nreturn a")
    c = canonicalize(p)
    assert any(n.op == "const" and math.isnan(n.value) for n in c.nodes)
    p = parse_program("k = mul 1e30 1e30\na = add x k\nreturn a")
    c = canonicalize(p, "float32")
    assert any(n.op == "const" and n.value == math.inf for n in c.nodes)
    assert canonicalize(p, "float64").nodes[1].value == 1e30 * 1e30


# --- cost model --------------------------------------------------------------------------------
def test_cost_model():
    assert cost(parse_program("a = fma x x x\nreturn a")) == 1.0
    assert cost(parse_program("a = mul x x\nb = add a x\nreturn b")) == 2.0
    # operations on constants alone count 0 (a compiler folds them), params included
    assert cost(parse_program("k = mul 2 3\nk2 = sqrt k\ny = add x k2\nreturn y")) == 1.0
    assert cost(parse_program("p = param 2\nq = mul p p\ny = mul x q\nreturn y")) == 1.0
    # dead code counts 0
    assert cost(parse_program("d = mul x x\nd2 = sqrt d\ny = add x 1\nreturn y")) == 1.0
    # leaves cost nothing
    assert cost(parse_program("return x")) == 0.0
    assert cost(parse_program("p = param 1\nreturn p")) == 0.0
    # a shared subexpression counts once
    assert cost(parse_program("a = mul x x\nb = add a a\nreturn b")) == 2.0


@FAST
@given(random_programs(ALL_OPS))
def test_cost_of_canonical_form_never_exceeds(prog):
    assert cost(canonicalize(prog)) <= cost(prog)
