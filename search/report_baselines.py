"""Digits of precision per operation count: a run's evolved programs beside the classical methods.

``autonumerics report RUN_DIR --baselines`` prints, for each operation count 1..max_ops, the
digits (``-log10`` of the maximum relative error with exact arithmetic) of the most accurate
evolved program costing at most that many operations, beside Taylor, Padé, minimax polynomial
and minimax rational approximations of the same budget.  Every figure, evolved or classical,
comes from the same call, ``fitness.real_error.max_relative_error`` at ``MEASURE_PREC_BITS``, so
all are measured alike (the baselines' own table picks each method's best configuration; its
program is then measured again here).

Two cost models:

- **fma = 1 op** (this project's ``dsl.program.cost``): a degree-n Horner polynomial costs n.
  This is the run's own cost axis when its op set includes ``fma``.
- **paper count** (AutoNumerics-Zero: multiply and add are separate operations): fma costs 2,
  a degree-n Horner polynomial 2n.  Evolved programs are re-costed under it (a run that was not
  allowed fma has the same costs under both models).

Baseline tables are slow to build (the rational Remez exchange at high degree takes a minute or
more), so they are cached as JSON in ``$AUTONUMERICS_CACHE/baselines``; measured digits of
evolved programs are cached in ``RUN_DIR/realmode_digits.json``.  Both files are written
atomically and only ever hold plain JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from dsl.program import Program, cost
from dsl.text import format_program, parse_program
from fitness.atomic import atomic_write_text
from fitness.baselines import METHODS, baseline_table
from fitness.real_error import max_relative_error
from fitness.reference import cache_dir
from fitness.targets import get_target

from .results import RunRecord
from .records import FrontEntry

#: mpmath precision for every measurement here: at 64 bits a relative error near 1e-18 is off by
#: about 2% (the rounding of ~10 operations at 2^-64 each), at 128 bits by nothing visible.
MEASURE_PREC_BITS = 128
MEASURE_POINTS = 4096
CACHE_VERSION = 1
MEASURE_VERSION = 2  # 2: programs with a pole inside the domain measure as undefined
METHOD_TITLES = {"evolved": "evolved", "taylor": "Taylor", "pade": "Padé",
                 "minimax_poly": "minimax poly", "minimax_rational": "minimax rational"}
COST_MODELS = {"fma1": "fma = 1 op (this project's cost)", "paper": "paper count (mul + add = 2 ops, fma = 2)"}


def ops_cost(program: Program, model: str = "fma1") -> float:
    """Operation count of ``program`` under a cost model: ``fma1`` (``dsl.program.cost``) or
    ``paper`` (every fma counted as a multiply and an add)."""
    base = cost(program)
    if model == "fma1":
        return base
    if model != "paper":
        raise ValueError(f"unknown cost model {model!r}; use one of {', '.join(COST_MODELS)}")
    dep, live = program.depends_on_x(), program.live()
    n_fma = sum(1 for i, n in enumerate(program.nodes) if live[i] and dep[i] and n.op == "fma")
    return base + n_fma


@dataclass(frozen=True)
class Measured:
    """One program's real-mode accuracy."""

    program: str  # DSL text
    max_rel_error: float
    digits: float
    label: str = ""  # where it came from: "degree 5", "[3/2]", "seed 1, 10 ops", ...

    def to_dict(self) -> dict:
        return {"program": self.program, "max_rel_error": _json_float(self.max_rel_error),
                "digits": _json_float(self.digits), "label": self.label}

    @classmethod
    def from_dict(cls, d: dict) -> "Measured":
        return cls(d["program"], float(d["max_rel_error"]), float(d["digits"]), d.get("label", ""))


def _json_float(v: float):
    v = float(v)
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else {}
    except (OSError, ValueError):
        return {}


def measure(program: Program, target: str, lo: float, hi: float) -> tuple[float, float]:
    """(max relative error, digits) of ``program`` read as real arithmetic over [lo, hi].

    A program with a division whose denominator vanishes inside [lo, hi] is undefined there as
    a real function (``fitness.real_error.interior_pole``), however well its samples look: its
    error is inf (digits -inf), as the search scores it and as the interval bound finds.
    """
    from fitness.real_error import interior_pole, sample_points

    if interior_pole(program, sample_points(lo, hi, MEASURE_POINTS)) is not None:
        return math.inf, -math.inf
    r = max_relative_error(program, target, lo, hi, n_points=MEASURE_POINTS, prec_bits=MEASURE_PREC_BITS)
    return r.max_rel_error, r.digits


class DigitsCache:
    """Measured digits of programs, keyed by (target, domain, program text), in one JSON file."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.data = _read_json(self.path) if self.path else {}
        self.data.setdefault("version", CACHE_VERSION)
        self.data.setdefault("entries", {})
        self.dirty = False

    def measure(self, program: Program | str, target: str, lo: float, hi: float, label: str = "") -> Measured:
        text = program if isinstance(program, str) else format_program(program)
        key = _key(target, float(lo).hex(), float(hi).hex(), MEASURE_PREC_BITS, MEASURE_POINTS, MEASURE_VERSION, text)
        hit = self.data["entries"].get(key)
        if hit is not None:
            try:
                return Measured(text, float(hit[0]), float(hit[1]), label)
            except (TypeError, ValueError, IndexError):
                pass
        err, digits = measure(parse_program(text), target, lo, hi)
        self.data["entries"][key] = [_json_float(err), _json_float(digits)]
        self.dirty = True
        return Measured(text, err, digits, label)

    def save(self) -> None:
        if self.path and self.dirty:
            try:
                atomic_write_text(self.path, json.dumps(self.data))
                self.dirty = False
            except OSError:
                pass  # a read-only run directory costs time, not correctness


# --- baselines -----------------------------------------------------------------------------------
def baselines(target: str, lo: float, hi: float, max_ops: int, use_fma: bool,
              methods: Sequence[str] = METHODS, cache: bool = True) -> dict[str, dict[int, Measured]]:
    """``{method: {ops: Measured}}`` for ops 1..max_ops: the best approximation of each method
    within each budget (``fitness.baselines.baseline_table``), measured by ``measure``.

    Cached on disk per (target, domain, cost model, methods): a cached table built for a larger
    ``max_ops`` serves smaller requests.
    """
    path = cache_dir() / "baselines" / f"{target.replace(':', '_').replace('/', '_')}-" \
        f"{_key(target, float(lo).hex(), float(hi).hex(), bool(use_fma), list(methods), MEASURE_PREC_BITS)}.json"
    data = _read_json(path) if cache else {}
    if int(data.get("max_ops", 0)) < max_ops:
        rows = baseline_table(target, lo, hi, max_ops, methods=methods, use_fma=use_fma)
        digits = DigitsCache(None)
        table: dict[str, dict[str, dict]] = {}
        for row in rows:
            m = digits.measure(row.program, target, lo, hi, label=row.config)
            table.setdefault(row.method, {})[str(row.ops)] = m.to_dict()
        data = {"version": CACHE_VERSION, "target": target, "lo": lo, "hi": hi, "use_fma": bool(use_fma),
                "max_ops": max_ops, "methods": list(methods), "table": table}
        if cache:
            try:
                atomic_write_text(path, json.dumps(data, indent=1))
            except OSError:
                pass
    out: dict[str, dict[int, Measured]] = {}
    for method in methods:
        col = data["table"].get(method, {})
        out[method] = {int(k): Measured.from_dict(v) for k, v in col.items() if int(k) <= max_ops}
    return out


# --- evolved programs ----------------------------------------------------------------------------
def best_by_ops(measured: Iterable[tuple[float, Measured]], max_ops: int) -> dict[int, tuple[float, Measured]]:
    """For each ops in 1..max_ops, the most accurate (cost, Measured) with cost <= ops."""
    items = sorted(measured, key=lambda cm: cm[0])
    out: dict[int, tuple[float, Measured]] = {}
    for k in range(1, max_ops + 1):
        fitting = [(c, m) for c, m in items if c <= k and not math.isnan(m.digits)]
        if fitting:
            out[k] = max(fitting, key=lambda cm: (cm[1].digits, -cm[0]))
    return out


def evolved_programs(record: RunRecord) -> list[tuple[Program, FrontEntry]]:
    """Every best-per-cost program of a run (not only the front: re-costing can reorder them)."""
    out = []
    for c in sorted(record.best_per_cost):
        entry = record.best_per_cost[c]
        if math.isfinite(entry.error):
            out.append((record.program(entry), entry))
    return out


def evolved_column(record: RunRecord, model: str, digits: DigitsCache) -> list[tuple[float, Measured]]:
    cfg = record.config
    lo, hi = float(cfg.domain[0]), float(cfg.domain[1])
    out = []
    for program, entry in evolved_programs(record):
        c = ops_cost(program, model)
        m = digits.measure(program, cfg.target, lo, hi, label=f"{c:g} ops")
        out.append((c, m))
    return out


# --- formatting ----------------------------------------------------------------------------------
def _fmt_digits(d: float | None) -> str:
    if d is None:
        return "-"
    if math.isinf(d):
        return "exact" if d > 0 else "undef"
    return f"{d:.2f}"


def digits_table(columns: dict[str, dict[int, Measured]], max_ops: int, markdown: bool = False,
                 extra: dict[str, dict[int, str]] | None = None) -> str:
    """Digits per ops, one column per method; ``extra`` adds text columns (bounds, notes)."""
    extra = extra or {}
    names = list(columns) + list(extra)
    titles = [METHOD_TITLES.get(n, n) for n in names]
    rows = []
    for k in range(1, max_ops + 1):
        cells = [str(k)]
        for n in columns:
            m = columns[n].get(k)
            cells.append("-" if m is None else _fmt_digits(m.digits) + (f" ({m.label})" if m.label else ""))
        for n in extra:
            cells.append(extra[n].get(k, "-"))
        rows.append(cells)
    head = ["ops"] + titles
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head)] + [fmt(r) for r in rows])


def plot_digits(tables: dict[str, dict[str, dict[int, Measured]]], max_ops: int, path: Path, title: str) -> Path:
    """PNG of digits vs operation count, one line per method, one panel per cost model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(6.4 * len(tables), 4.6), squeeze=False)
    styles = {"evolved": dict(color="black", lw=2.4, marker="o"), "taylor": dict(ls="--", marker="."),
              "pade": dict(ls="--", marker="."), "minimax_poly": dict(ls="-", marker="s", ms=4),
              "minimax_rational": dict(ls="-", marker="^", ms=4)}
    for ax, (model, columns) in zip(axes[0], tables.items()):
        for name, col in columns.items():
            ks = [k for k in range(1, max_ops + 1) if k in col and math.isfinite(col[k].digits)]
            if ks:
                ax.plot(ks, [col[k].digits for k in ks], label=METHOD_TITLES.get(name, name),
                        **styles.get(name, dict(marker="x")))
        ax.set_xlabel("operations (at most)")
        ax.set_ylabel("digits of precision (-log10 max relative error)")
        ax.set_title(COST_MODELS.get(model, model), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def baseline_report(record: RunRecord, plot: bool = False) -> str:
    """The run's best digits per operation count beside each classical method's (see the module
    doc); with ``plot`` also writes ``RUN_DIR/plots/digits.png``."""
    cfg = record.config
    lo, hi = float(cfg.domain[0]), float(cfg.domain[1])
    target = cfg.target
    max_ops = int(cfg.max_ops)
    if getattr(cfg, "frame", ""):
        return (f"baselines: not available for a run inside the range-reduction frame {cfg.frame!r} "
                "(the classical methods approximate the whole domain without reduction)")
    get_target(target)
    notes = []
    if cfg.mode != "real":
        notes.append(f"(a {cfg.mode}-mode run: its programs are measured here as real arithmetic too)")
    models = ["fma1", "paper"] if "fma" in cfg.ops else ["paper"]
    if "fma" not in cfg.ops:
        notes.append("(the run's op set has no fma: its costs are the paper's count)")
    digits = DigitsCache(record.path / "realmode_digits.json")
    tables: dict[str, dict[str, dict[int, Measured]]] = {}
    out = [f"digits of precision (-log10 max relative error, exact arithmetic, mpmath at "
           f"{MEASURE_PREC_BITS} bits) for {target} on [{lo:g}, {hi:g}], by operation count", *notes]
    try:
        for model in models:
            evolved = best_by_ops(evolved_column(record, model, digits), max_ops)
            columns = {"evolved": {k: m for k, (_c, m) in evolved.items()}}
            columns.update(baselines(target, lo, hi, max_ops, use_fma=(model == "fma1")))
            tables[model] = columns
            out += ["", f"cost model: {COST_MODELS[model]}", digits_table(columns, max_ops)]
    finally:
        digits.save()
    if plot:
        path = plot_digits(tables, max_ops, record.path / "plots" / "digits.png",
                           f"{target} on [{lo:g}, {hi:g}]: digits vs operations")
        out += ["", f"wrote {path}"]
    return "\n".join(out)
