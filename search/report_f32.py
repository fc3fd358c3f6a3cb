"""``report --baselines`` for a float32 ulp-mode run: the evolved front beside the float32
baselines (``fitness.baselines_f32``) at every cost, all measured on one dense set.

Every figure is the max ULP on the same 2^22 inputs spread over the domain (``fitness.verify``,
dense), for the best evolved program costing at most k operations and for the best hand-written
shape costing at most k.  A baseline that beats the front at some cost is printed as such: it
is a finding about the search, not something to hide.

Baseline tables take tens of seconds to build (a Remez fit and a float32 polish per shape), so
they are cached as JSON in ``$AUTONUMERICS_CACHE/baselines_f32``; the dense errors of a run's
programs are cached in ``RUN_DIR/f32_dense.json``.  Both only ever hold plain JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dsl.text import format_program, parse_program
from fitness.atomic import atomic_write_text
from fitness.baselines_f32 import F32Baseline, f32_baselines
from fitness.problem import Problem
from fitness.reference import cache_dir
from fitness.targets import get_target
from fitness.verify import dense_size, verify

from .results import RunRecord

CACHE_VERSION = 1


@dataclass(frozen=True)
class Row:
    """One cost of the table: the best evolved and the best baseline costing at most ``ops``."""

    ops: int
    evolved: float | None  # dense max ULP
    evolved_cost: float | None
    baseline: float | None
    baseline_label: str = ""


def dense_ulp(program, target: str, lo: float, hi: float, n_points: int | None = None) -> float:
    """Max ULP of a float32 program on ``n_points`` inputs spread over [lo, hi] (default: the
    dense check's, ``fitness.verify.dense_size``)."""
    return float(verify(program, get_target(target), lo, hi, "float32", n_dense=n_points).max_ulp)


class DenseCache:
    """Dense errors of programs, keyed by (target, domain, points, program text), in one JSON file."""

    def __init__(self, path: Path | None, target: str, lo: float, hi: float, n_points: int | None = None):
        self.path, self.target, self.lo, self.hi, self.n_points = path, target, lo, hi, n_points
        self.data = _read(path) if path else {}
        self.data.setdefault("version", CACHE_VERSION)
        self.data.setdefault("entries", {})

    def __call__(self, program) -> float:
        text = program if isinstance(program, str) else format_program(program)
        key = json.dumps([self.target, float(self.lo).hex(), float(self.hi).hex(), self.n_points, text])
        if key not in self.data["entries"]:
            self.data["entries"][key] = _json(dense_ulp(parse_program(text), self.target, self.lo, self.hi,
                                                        self.n_points))
        return float(self.data["entries"][key])

    def save(self) -> None:
        if self.path:
            try:
                atomic_write_text(self.path, json.dumps(self.data))
            except OSError:
                pass  # a read-only folder costs time, not correctness


def _json(v: float):
    return float(v) if math.isfinite(v) else "inf"


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else {}
    except (OSError, ValueError):
        return {}


def _code_fingerprint() -> str:
    """A hash of the code that decides the baseline set and its fits: a cached table from other
    code (a shape added, a fit changed) is never taken for this code's."""
    import hashlib
    import inspect

    from fitness import baselines_f32, fit, minimax, properties

    text = "".join(inspect.getsource(m) for m in (baselines_f32, fit, minimax, properties))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def baseline_rows(problem: Problem, max_ops: int, dense: DenseCache, cache: bool = True,
                  progress: Callable[[str], None] | None = None) -> list[tuple[F32Baseline, float]]:
    """Every float32 baseline within ``max_ops`` with its dense error (cached per problem)."""
    spec = problem.spec
    name = spec.target.replace(":", "_").replace("/", "_")
    path = cache_dir() / "baselines_f32" / (
        f"{name}-{float(spec.lo).hex()}-{float(spec.hi).hex()}-{spec.n_points}-{max_ops}-v{CACHE_VERSION}"
        f"-{_code_fingerprint()}.json")
    data = _read(path) if cache else {}
    if not data:
        if progress:
            progress(f"fitting float32 baselines for {spec.target} on [{spec.lo:g}, {spec.hi:g}] "
                     f"(Remez, float32 polish, once per problem; cached)")
        rows = []
        for b in f32_baselines(problem, max_ops):
            d = b.to_dict()
            d["dense"] = _json(dense(b.program))
            rows.append(d)
        data = {"version": CACHE_VERSION, "rows": rows}
        if cache:
            try:
                atomic_write_text(path, json.dumps(data, indent=1))
            except OSError:
                pass
    return [(F32Baseline(r["method"], r["config"], float(r["cost"]), parse_program(r["program"]), float(r["error"])),
             float(r["dense"])) for r in data["rows"]]


def table(evolved: list[tuple[float, float]], baselines: list[tuple[F32Baseline, float]], max_ops: int) -> list[Row]:
    """Rows 1..max_ops from (cost, dense error) of evolved programs and (baseline, dense error)."""
    rows = []
    for k in range(1, max_ops + 1):
        ev = [(e, c) for c, e in evolved if c <= k and math.isfinite(e)]
        bl = [(e, b.cost, f"{b.method} {b.config}") for b, e in baselines if b.cost <= k and math.isfinite(e)]
        best_e = min(ev) if ev else None
        best_b = min(bl) if bl else None
        rows.append(Row(k, best_e[0] if best_e else None, best_e[1] if best_e else None,
                        best_b[0] if best_b else None, best_b[2] if best_b else ""))
    return rows


def cheapest_within(rows: list[Row], limit: float = 1.0) -> tuple[int | None, int | None]:
    """(evolved, baseline): the smallest cost at which each is within ``limit`` ULP."""
    ev = next((r.ops for r in rows if r.evolved is not None and r.evolved <= limit), None)
    bl = next((r.ops for r in rows if r.baseline is not None and r.baseline <= limit), None)
    return ev, bl


def format_rows(rows: list[Row], markdown: bool = False) -> str:
    def num(v):
        return "-" if v is None else f"{v:.4g}"

    head = ["ops", "evolved max ULP", "baseline max ULP", "baseline", "note"]
    body = []
    for r in rows:
        note = ""
        if r.evolved is not None and r.baseline is not None and r.baseline < r.evolved:
            note = "baseline better"
        body.append([str(r.ops), num(r.evolved), num(r.baseline), r.baseline_label or "-", note])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if i < 3 else "---" for i in range(len(head))) + "|"]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    return "\n".join("  ".join(c.rjust(w) if i < 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
                     .rstrip() for cells in [head] + body)


def f32_baseline_report(record: RunRecord, progress: Callable[[str], None] | None = None) -> str:
    cfg = record.config
    lo, hi = float(cfg.domain[0]), float(cfg.domain[1])
    problem = Problem.build(cfg.problem_spec)
    dense = DenseCache(record.path / "f32_dense.json", cfg.target, lo, hi)
    try:
        base = baseline_rows(problem, int(cfg.max_ops), DenseCache(None, cfg.target, lo, hi), progress=progress)
        evolved = [(float(c), dense(e.program)) for c, e in sorted(record.best_per_cost.items())
                   if math.isfinite(e.error)]
    finally:
        dense.save()
    rows = table(evolved, base, int(cfg.max_ops))
    ev, bl = cheapest_within(rows)
    out = [f"float32 max ULP on {dense_size(get_target(cfg.target))} inputs spread over [{lo:g}, {hi:g}] for {cfg.target}: the best "
           "evolved program and the best float32 baseline (Remez or the search's fitter on a textbook shape, "
           "coefficients rounded to float32 and polished) costing at most each number of operations",
           "", format_rows(rows), "",
           f"cheapest within 1 ULP: evolved {ev if ev is not None else 'none'}, baseline {bl if bl is not None else 'none'}"]
    worse = [r.ops for r in rows if r.evolved is not None and r.baseline is not None and r.baseline < r.evolved]
    if worse:
        out.append(f"a baseline beats the front at {len(worse)} cost(s): {', '.join(map(str, worse))} ops")
    return "\n".join(out)
