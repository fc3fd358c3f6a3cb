"""The AutoNumerics-Zero paper's published programs for 2^x on (0, 1], in the DSL's text form.

Constants are ``param`` nodes holding the paper's printed values (17 significant digits, so the
nearest float64 is exactly the paper's double).  ``PAPER_ERRORS`` holds the maximum relative
errors the paper measured (long double, about 202k points) for comparison with
``fitness.real_error``.

Operation counts by ``dsl.program.cost`` (every x-dependent operation is 1): 2, 3, 5 and 10,
the same as the paper's counts; the ``^8`` of the 10-op program is three squarings.

The domain is (0, 1]: the 5- and 10-op programs divide by x, which real arithmetic leaves
undefined at 0 (IEEE float64 happens to give the right limit through infinities), so
``PAPER_DOMAIN`` starts at the smallest positive double.  The relative error is continuous up to
0, so nothing is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsl.program import Program
from dsl.text import parse_program

PAPER_TARGET = "exp2"
PAPER_DOMAIN = (5e-324, 1.0)

PROGRAM_2_OPS = """\
# 2^x ~ c1 / (x + c2)
c1 = param -2.1258595374472384
c2 = param -2.0413845597733418
d = add x c2
y = div c1 d
return y
"""

PROGRAM_3_OPS = """\
# 2^x ~ c1 / (x + c2) + c3
c1 = param -8.387819235563974
c2 = param -3.4355225277901402
c3 = param -1.4427239805682266
d = add x c2
q = div c1 d
y = add q c3
return y
"""

PROGRAM_5_OPS = """\
# 2^x ~ c2 / (c4 + x + c1 / x) - c3
c1 = param 25.596749740144819
c2 = param 17.746150088734609
c3 = param -0.99999366143081858
c4 = param -8.8505996518073289
a = div c1 x
b = add x c4
s = add b a
q = div c2 s
y = sub q c3
return y
"""

PROGRAM_10_OPS = """\
# u = x + c3 / x;  2^x ~ (c4 / (c2 + c1 / u + u) - c5)^8, the 8th power as three squarings
c1 = param 15141.981176922711
c2 = param -250.55247494972059
c3 = param 5783.5330096027765
c4 = param 501.10494991027866
c5 = param -0.99999999999999956
a = div c3 x
u = add x a
b = div c1 u
s = add b c2
t = add s u
q = div c4 t
y = sub q c5
y2 = mul y y
y4 = mul y2 y2
y8 = mul y4 y4
return y8
"""


@dataclass(frozen=True)
class PaperProgram:
    """One published program: its DSL text, the paper's operation count and measured error."""

    ops: int
    text: str
    paper_max_rel_error: float

    @property
    def program(self) -> Program:
        return parse_program(self.text)


PAPER_PROGRAMS: dict[int, PaperProgram] = {
    p.ops: p
    for p in (
        PaperProgram(2, PROGRAM_2_OPS, 4.1e-2),
        PaperProgram(3, PROGRAM_3_OPS, 1.2e-3),
        PaperProgram(5, PROGRAM_5_OPS, 6.3e-6),
        PaperProgram(10, PROGRAM_10_OPS, 3.6e-15),
    )
}

PAPER_ERRORS: dict[int, float] = {ops: p.paper_max_rel_error for ops, p in PAPER_PROGRAMS.items()}


def paper_program(ops: int) -> Program:
    """The paper's program with ``ops`` operations (2, 3, 5 or 10)."""
    try:
        return PAPER_PROGRAMS[ops].program
    except KeyError:
        known = sorted(PAPER_PROGRAMS)
        raise ValueError(f"the paper publishes programs with {known} operations, not {ops}") from None
