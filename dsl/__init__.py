"""The AutoNumerics program language: straight-line programs over one input ``x``.

Public surface: ``Program``/``Node`` (the data), ``parse_program``/``format_program`` (text form),
``canonicalize``/``structural_hash`` (equivalence), ``cost`` (operation count), ``mutate``, and the
op table ``OPS``.
"""

from .canonical import canonicalize, structural_hash
from .mutate import mutate, random_program
from .ops import ALL_OPS, CORE_OPS, OPS, Op, op_set_from_names
from .program import Node, Program, cost, dead_code_removed
from .text import DSLSyntaxError, format_number, format_program, parse_number, parse_program

__all__ = [
    "ALL_OPS", "CORE_OPS", "OPS", "Op", "op_set_from_names", "Node", "Program", "cost",
    "dead_code_removed", "canonicalize", "structural_hash", "mutate", "random_program",
    "DSLSyntaxError", "format_number", "format_program", "parse_number", "parse_program",
]
