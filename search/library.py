"""The functions of a C library (``autonumerics export --lib DIR SOURCE...``), gathered from run
directories and verification reports, with the samples their self-test checks.

A source is a run directory (its program is chosen and verified as ``export`` does) or a
verification report written beside an export (``NAME.c.verify.json``, as ``examples/`` holds): it
names the target, the complete program and the verified bound, so a library can be rebuilt from
the reports alone.  Nothing in a source is imported or run but the program text it holds, parsed
as DSL; a user ``module:function`` target is evaluated only when the user names it (``--target``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from backends.export_lib import LibFunction, library_sources
from backends.numpy_backend import evaluate
from dsl.program import Program
from dsl.text import DSLSyntaxError, parse_program
from fitness.atomic import atomic_write_text
from fitness.reference import mp_values
from fitness.targets import get_target

from .results import ExportError, RunDirError

N_SPREAD = 512  # sample inputs per function beside its worst input and special values
SLACK_ULP = 1e-6  # the sample's exact values are float64: the bound allows for that rounding


def _ordered(v: np.float32) -> int:
    """Float32 bits as an integer that orders like the value (negatives below zero)."""
    i = int(np.array([v], np.float32).view(np.int32)[0])
    return i if i >= 0 else -(i & 0x7FFFFFFF)


def _spread(lo: float, hi: float, full_range: bool, seed: int) -> np.ndarray:
    """Inputs over the function's range: random bit patterns for a whole-range function (NaNs,
    infinities and subnormals included), else half even by value and half by bit pattern."""
    rng = np.random.default_rng(seed)
    if full_range:
        return rng.integers(0, 2**32, N_SPREAD, dtype=np.uint64).astype(np.uint32).view(np.float32)
    a, b = np.float32(lo), np.float32(hi)
    by_value = rng.uniform(float(a), float(b), N_SPREAD // 2).astype(np.float32)
    keys = rng.integers(_ordered(a), _ordered(b) + 1, N_SPREAD - N_SPREAD // 2)
    by_bits = np.where(keys < 0, (-keys) | 0x80000000, keys).astype(np.uint32).view(np.float32)
    return np.clip(np.concatenate([by_value, by_bits]), a, b).astype(np.float32)


def _special_inputs(target: str) -> list[np.float32]:
    from fitness.special import FULL_RANGE

    spec = FULL_RANGE.get(target)
    return [c.input32() for c in spec.cases] if spec else []


def lib_function(name: str, target: str, program: Program, max_ulp: float, summary: str, lo: float, hi: float,
                 full_range: bool, worst_x: float | None) -> LibFunction:
    """A function with its self-test sample: worst input, special values, spread inputs."""
    tgt = get_target(target)
    extra = ([np.float32(worst_x)] if worst_x is not None and math.isfinite(worst_x) else []) + (
        _special_inputs(tgt.name) if full_range else [])
    x = np.concatenate([np.array(extra, np.float32), _spread(lo, hi, full_range, seed=len(name) * 7919)])
    # a --mode cr export ends in its one rounding to float32 and is computed in double (sin, cos)
    inside = "float64" if program.nodes[program.output].op == "cvt_f32" else "float32"
    with np.errstate(all="ignore"):
        expected = (evaluate(program, x, "float32") if inside == "float32"
                    else evaluate(program, x.astype(np.float64), "float64").astype(np.float32))
    with np.errstate(all="ignore"):
        exact = mp_values(tgt, x.astype(np.float64)).hi
    return LibFunction(name, program, summary, float(max_ulp) + SLACK_ULP, x, expected, exact, inside)


def from_report(path: Path, allowed_user_targets: set[str]) -> LibFunction:
    """A function from a verification report (``NAME.c.verify.json``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rep = data.get("report", data)
        target, program_text = str(data["target"]), data["program"]
        name = str(data.get("function") or path.name.split(".")[0])
        max_ulp, method = float(rep["max_ulp"]), str(rep["method"])
        worst = rep.get("worst_x")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunDirError(f"{path}: not a verification report with a program ({type(exc).__name__}: {exc})") from None
    _check_target(target, allowed_user_targets, path)
    try:
        program = parse_program(program_text)
    except (DSLSyntaxError, TypeError) as exc:
        raise RunDirError(f"{path}: its program does not parse ({exc})") from None
    full = method == "full-range"
    lo, hi = (-math.inf, math.inf) if full else _domain(rep, data, path)
    if not full and data.get("passed") is False:
        raise ExportError(f"{path}: its program did not pass verification")
    summary = (f"{target}(x), {'every float32 input' if full else f'x in [{lo!r}, {hi!r}]'}: max {max_ulp:.4f} ULP, "
               f"verified on {_what(method, rep)}")
    return lib_function(name, target, program, max_ulp, summary, lo, hi, full,
                        float(worst) if isinstance(worst, (int, float)) else None)


def _domain(rep: dict, data: dict, path: Path) -> tuple[float, float]:
    dom = rep.get("domain") or data.get("domain")
    if not (isinstance(dom, list) and len(dom) == 2):
        raise RunDirError(f"{path}: the report does not say its domain")
    return float(dom[0]), float(dom[1])


def _what(method: str, rep: dict) -> str:
    return {"full-range": "all 2^32 float32 inputs, special values included",
            "exhaustive": "every float32 input of the domain"}.get(method, f"{rep.get('n_points', '?')} inputs (dense)")


def _check_target(target: str, allowed: set[str], where) -> None:
    if ":" in target and target not in allowed:
        raise ExportError(f"{where} is for the user target {target}; name it with --target {target} "
                          "to evaluate it (a target named only in a file is never imported)")


def from_run(run_dir: str, allowed_user_targets: set[str], max_ulp: float | None, exhaustive: bool,
             progress=None) -> LibFunction:
    """A function from a run directory: the program ``export`` would write, verified the same way."""
    from .exporting import choose_and_verify
    from .results import load_run

    record = load_run(run_dir)
    cfg = record.config
    _check_target(cfg.target, allowed_user_targets, run_dir)
    if cfg.dtype != "float32" or cfg.mode not in ("ulp", "faithful"):
        # a cr export may carry exceptions the front's program lacks: the library takes its report
        raise ExportError(f"{run_dir}: a library holds float32 functions searched in ulp or faithful mode "
                          "(for a cr run, export it and pass its .verify.json)")
    entry, rep = choose_and_verify(record, max_ulp, None, exhaustive, progress)
    full = rep.method == "full-range"
    lo, hi = (-math.inf, math.inf) if full else (float(cfg.domain[0]), float(cfg.domain[1]))
    name = cfg.target.split(":")[-1] + "_f32"
    summary = (f"{cfg.target}(x), {'every float32 input' if full else f'x in [{lo!r}, {hi!r}]'}: max "
               f"{rep.max_ulp:.4f} ULP, verified on {_what(rep.method, rep.to_dict())}")
    return lib_function(name, cfg.target, record.program(entry), rep.max_ulp, summary, lo, hi, full, rep.worst_x)


def write_library(out: str | Path, sources: list[str], lib: str = "autonumerics_f32", target: str | None = None,
                  max_ulp: float | None = None, exhaustive: bool = False, progress=None) -> list[Path]:
    """Write the library's files into ``out``; returns their paths."""
    if not sources:
        raise ExportError("--lib needs at least one run directory or verification report")
    allowed = {target} if target else set()
    functions = []
    for s in sources:
        p = Path(s)
        if p.is_dir():
            functions.append(from_run(s, allowed, max_ulp, exhaustive, progress))
        elif p.is_file():
            functions.append(from_report(p, allowed))
        else:
            raise ExportError(f"{s}: no such run directory or verification report")
    try:
        files = library_sources(lib, functions)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    out = Path(out)
    written = []
    for fname, text in files.items():
        try:
            atomic_write_text(out / fname, text)
        except OSError as exc:
            raise ExportError(f"cannot write {out / fname}: {exc.strerror or exc}") from None
        written.append(out / fname)
    return written
