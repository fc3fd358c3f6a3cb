"""Picking a winner from a run's front, confirming its error densely, and writing it as code.

A program is exported as meeting ``max_ulp`` only after its error was confirmed on far more
inputs than the search scored (``fitness.verify``: 2**22 spread float32 inputs, or every float32
with ``exhaustive``).  Entries are tried from the cheapest up; the first that passes is written,
with a header saying what it approximates, where, how accurately, and how that was checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from backends.export import export_source
from backends.export_simd import simd_entry_points
from dsl.program import Program
from dsl.text import format_program
from fitness.atomic import atomic_write_text
from fitness.problem import float64_inside
from fitness.verify import VerifyReport

from . import policy
from .results import ExportError, RunRecord
from .records import FrontEntry

EXTENSIONS = {"c": "c", "numpy": "py", "jax": "py", "llvm": "ll"}
LANGS = tuple(EXTENSIONS)


@dataclass(frozen=True)
class Exported:
    program: Program
    entry: FrontEntry
    report: VerifyReport | None
    path: Path
    source: str


def header_text(record: RunRecord, entry: FrontEntry, report: VerifyReport | None, note: str = "") -> str:
    cfg = record.config
    lines = [
        f"{cfg.target} on [{cfg.domain[0]!r}, {cfg.domain[1]!r}], {cfg.dtype}, "
        + (f"{int(entry.cost)} operations" if cfg.cost_model == "ops"
           else f"measured cost {entry.cost:g} ({cfg.cost_model}, in op-count units)"),
        "Discovered by AutoNumerics (regularized evolution with functional hashing).",
    ]
    if cfg.frame:
        moved = record.frame_constants(entry)
        lines.append(f"Range reduction: the {cfg.frame!r} frame around the evolved core"
                     + (" (operations counted in the core)" if cfg.cost_model == "ops" else "")
                     + (", evolved frame constants: " + ", ".join(f"{k} = {float(v).hex()}" for k, v in sorted(moved.items()))
                        if moved else "") + ".")
    if cfg.mode == "cr":
        lines.append("Mixed precision: float32 in and out, computed in float64 with one final rounding "
                     "(searched in cr mode for correct rounding: every fitness, validation and hard input kept "
                     "inside its rounding interval).")
    if cfg.mode == "faithful":
        lines.append("Mixed precision: float32 in and out, computed in float64 with one final rounding "
                     "(searched in faithful mode: every fitness and validation input rounds to a float32 "
                     "neighbour of its exact value, within 1 ULP).")
    if cfg.mode == "real":
        summ = entry.summary or {}
        lines.append(f"Real-number mode: max relative error {summ.get('max_rel_error', entry.error):.4g} on the fitness points.")
    if report is not None:
        lines.append(f"Verified: {report.describe()}.")
    else:
        lines.append(f"Not verified beyond the {cfg.n_points}-point fitness set (max {entry.error:.4g}).")
    if note:
        lines.append(note)
    return "\n".join(lines)


def choose_and_verify(record: RunRecord, max_ulp: float | None, max_ops: float | None, exhaustive: bool,
                      progress: Callable[[int, int], None] | None = None) -> tuple[FrontEntry, VerifyReport | None]:
    """The entry to export and its verification (``search.policy``): in real mode the most accurate
    (within ``max_ops``; real mode is not checked in float32); with ``max_ops`` the most accurate
    within it, checked; else the cheapest entry that holds ``max_ulp`` (default 1) on the check."""
    cfg = record.config
    if cfg.mode == "real":
        return policy.most_accurate(record, max_ops), None
    if max_ops is not None:
        best = policy.most_accurate(record, max_ops)
        rep = policy.check(record, best, exhaustive, progress=progress)
        if max_ulp is not None and rep.max_ulp > max_ulp:
            raise ExportError(f"the best program with <= {max_ops:g} operations reaches {rep.max_ulp:.4f} ULP "
                              f"on dense verification, above --max-ulp {max_ulp:g}")
        return best, rep
    front = record.front
    if not front:
        raise ExportError(f"run {record.path} has no finite-error program on its front yet")
    if cfg.mode == "cr":
        e, rep, _, _ = choose_correctly_rounded(record, exhaustive, progress)
        return e, rep
    # faithful mode too: its front errors are faithful ratios, below 1 within 1 ULP
    limit = 1.0 if max_ulp is None else max_ulp
    tried = []
    for e in sorted(front, key=lambda e: e.cost):
        if e.error > limit:
            continue
        rep = policy.check(record, e, exhaustive, progress=progress)
        if rep.max_ulp <= limit and _specials_ok(rep):
            return e, rep
        tried.append(f"{int(e.cost)} ops: {rep.max_ulp:.4f} ULP")
    detail = f" (dense check: {'; '.join(tried)})" if tried else ""
    best = min(e.error for e in front)
    raise ExportError(f"no program on the front is within {limit:g} ULP{detail}; best on the fitness points: {best:.4g} ULP")


def choose_correctly_rounded(record: RunRecord, exhaustive: bool, progress=None
                             ) -> tuple[FrontEntry, VerifyReport, Program, tuple[float, ...]]:
    """cr mode: the cheapest front program correctly rounded on every input of its check, tried
    from the cheapest with a cr ratio of at most 1 on the fitness points.  An exhaustive check of a
    complete (framed) function that finds at most ``fitness.cr.MAX_EXCEPTIONS`` misrounded inputs,
    and every special value right, gets them as exceptions (``fitness.cr.with_exceptions``), and
    the patched program is checked on every input again.  Returns (entry, report, program, the
    exception inputs)."""
    from fitness.cr import MAX_EXCEPTIONS, with_exceptions
    from fitness.fullrange import reference_f32
    from fitness.targets import get_target

    front = record.front
    tried = []
    for e in sorted(front, key=lambda e: e.cost):
        if e.error > 1.0:  # the cr ratio: misrounds a fitness point (exactly 1: a tie, maybe an exception)
            continue
        rep = policy.check(record, e, exhaustive, progress=progress)
        program = record.program(e)
        if rep.frac_correctly_rounded == 1.0 and _specials_ok(rep):
            return e, rep, program, ()
        bad = tuple(getattr(rep, "misrounded_inputs", ()))
        n_bad = getattr(rep, "n_misrounded", -1)
        if 0 < n_bad <= MAX_EXCEPTIONS and len(bad) == n_bad and _specials_ok(rep):
            x = np.array(bad, np.float32)
            cr, *_ = reference_f32(get_target(record.config.target), x)
            patched = with_exceptions(program, x.astype(np.float64), cr.astype(np.float64))
            rep = policy.check_program(record, patched, exhaustive, progress=progress)
            if rep.frac_correctly_rounded == 1.0 and _specials_ok(rep):
                return e, rep, patched, tuple(float(v) for v in x)
        tried.append(f"{int(e.cost)} ops: {n_bad if n_bad >= 0 else '?'} misrounded")
    detail = f" ({'; '.join(tried)})" if tried else ""
    raise ExportError("no program on the front is correctly rounded on every input checked" + detail
                      + f"; best cr ratio on the fitness points: {min(e.error for e in front):.4g} (at most 1 needed)")


def _specials_ok(rep) -> bool:
    """Full-range reports also check special values (inf, NaN, signed zeros, overflow)."""
    ok = getattr(rep, "specials_ok", True)
    return ok() if callable(ok) else bool(ok)


def export_run(record: RunRecord, lang: str, name: str, out: str | None = None, max_ulp: float | None = None,
               max_ops: float | None = None, exhaustive: bool = False,
               progress: Callable[[int, int], None] | None = None) -> Exported:
    if lang not in EXTENSIONS:
        raise ExportError(f"unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    note, exceptions = "", ()
    if record.config.mode == "cr" and max_ops is None:
        entry, report, program, exceptions = choose_correctly_rounded(record, exhaustive, progress)
        if exceptions:
            note = (f"Exceptions: {len(exceptions)} input(s) whose exact value lies within a float64 rounding of a "
                    "float32 midpoint get their correctly rounded value by select: "
                    + ", ".join(float(v).hex() for v in exceptions) + ".")
    else:
        entry, report = choose_and_verify(record, max_ulp, max_ops, exhaustive, progress)
        program = record.program(entry)
    dtype = policy.eval_dtype(record.config)
    io = "float32" if float64_inside(record.config.mode) else None
    try:
        source = export_source(program, lang, name, dtype, header_text(record, entry, report, note), io_dtype=io)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    if lang == "c" and (dtype == "float32" or io == "float32"):  # float in and out: vector entry points too
        source += simd_entry_points(program, name, dtype)
    path = Path(out) if out else record.path / "exports" / f"{name}.{EXTENSIONS[lang]}"
    try:
        atomic_write_text(path, source)
        if report is not None:
            atomic_write_text(path.with_name(path.name + ".verify.json"),
                              json.dumps({"candidate": entry.id, "cost": entry.cost, "target": record.config.target,
                                          "function": name, "domain": list(record.config.domain),
                                          "program": format_program(program), **report.to_dict(),
                                          **({"exceptions": list(exceptions)} if exceptions else {})}, indent=1))
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Exported(program, entry, report, path, source)
