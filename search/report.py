"""Reports on a run: the Pareto front as a table, and plots (front, error across the domain,
search progress).  Pure formatting of what ``results.load_run`` read; plots use matplotlib's Agg
backend, so no display is needed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fitness.problem import float64_inside

from .results import RunRecord


def _num(v, fmt: str) -> str:
    if v is None:
        return "-"
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return format(v, fmt) if math.isfinite(v) else "inf"


def front_table(record: RunRecord) -> str:
    cfg = record.config
    st = record.stats
    told = int(st.get("n_told", 0))
    hits = int(st.get("n_hits", 0))
    lines = [
        f"run {record.path}: {cfg.target} on [{cfg.domain[0]:g}, {cfg.domain[1]:g}], {cfg.dtype}, {cfg.mode} mode, seed {cfg.seed}",
        f"candidates {told} ({int(st.get('n_evaluated', 0))} fitted, cache hit rate "
        f"{100 * hits / told if told else 0:.1f}%), {float(st.get('elapsed', 0)):.1f} s of search",
    ]
    kinds = st.get("hits") or {}
    if kinds:
        lines.append("cache hits by kind: " + ", ".join(f"{k} {int(kinds.get(k, 0))}" for k in ("structure", "family", "identity"))
                     + f"; fitted programs that converged to a known function: {int(kinds.get('converged', 0))}")
    if st.get("islands"):
        lines.append(f"{st['islands']} island(s) of {cfg.population_size}, {int(st.get('restarts', 0))} restart(s) on stagnation")
    lines.append("")
    col = "ops" if cfg.cost_model == "ops" else "cost"
    if cfg.mode == "cr":
        lines.append("cr mode: the cr ratio, the float64 error before the final rounding over the room the "
                     "correct result's rounding interval leaves (below 1: rounds correctly)")
    if cfg.mode == "faithful":
        lines.append("faithful mode: the faithful ratio, the float64 error before the final rounding over the room "
                     "the interval rounding to either float32 neighbour of the exact value leaves (below 1: within 1 ULP)")
    if cfg.mode != "real":
        first = {"ulp": "max ULP", "cr": "cr ratio", "faithful": "faith. ratio"}[cfg.mode]
        lines.append(f"{col:>4}  {first:>10}  {'mean':>9}  {'corr. rounded':>13}  {'max rel err':>11}  {'id':>7}")
        for e in record.front:
            s = e.summary or {}
            cr = s.get("frac_correctly_rounded")
            lines.append(f"{e.cost:>4g}  {_num(e.error, '10.4g')}  {_num(s.get('mean_ulp'), '9.4g')}  "
                         f"{(_num(100 * cr, '12.3f') + '%') if cr is not None else '-':>13}  "
                         f"{_num(s.get('max_rel_error'), '11.3e')}  {e.id:>7}")
    else:
        lines.append(f"{col:>4}  {'max rel err':>11}  {'digits':>6}  {'id':>7}")
        for e in record.front:
            digits = -math.log10(e.error) if e.error > 0 else float("inf")
            lines.append(f"{e.cost:>4g}  {_num(e.error, '11.3e')}  {_num(digits, '6.2f')}  {e.id:>7}")
    if not record.front:
        lines.append("(no program with a finite error yet)")
    checked = [e for e in record.front if e.dense_ulp is not None]
    if checked:
        lines += ["", "dense checks (2^22 inputs; 2^16 for a target without a float64 function): " + ", ".join(
            f"{e.cost:g} ops {float(e.dense_ulp):.4g} ULP" for e in checked)]
    if cfg.frame_evolve:
        lines += ["", f"frame constants that evolved away from the {cfg.frame!r} frame's defaults:"]
        for e in record.front:
            moved = record.frame_constants(e)
            text = ", ".join(f"{k} = {v:.9g}" for k, v in sorted(moved.items())) or "none"
            lines.append(f"{e.cost:>4g}  {text}")
    return "\n".join(lines)


def plot_run(record: RunRecord, out_dir: str | Path | None = None) -> list[Path]:
    """Write front.png, error.png and progress.png; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from backends.numpy_backend import evaluate
    from fitness.metrics import relative_errors, ulp_errors
    from fitness.points import fitness_points
    from fitness.reference import fast_reference
    from fitness.targets import get_target

    out = Path(out_dir) if out_dir else record.path / "plots"
    out.mkdir(parents=True, exist_ok=True)
    cfg = record.config
    unit = {"ulp": "max ULP error", "cr": "max cr ratio (below 1: correctly rounded)",
            "faithful": "max faithful ratio (below 1: within 1 ULP)"}.get(
        cfg.mode, "max relative error")
    paths = []
    front = record.front

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    allpts = sorted(record.best_per_cost.values(), key=lambda e: e.cost)
    ax.plot([e.cost for e in allpts], [e.error for e in allpts], "o", color="0.7", label="best at each cost")
    ax.step([e.cost for e in front], [e.error for e in front], "o-", where="post", label="Pareto front")
    if cfg.mode != "real":
        ax.axhline(1.0, color="tab:red", lw=0.8, ls="--", label={"ulp": "1 ULP", "cr": "1: correctly rounded", "faithful": "1: within 1 ULP"}[cfg.mode])
    ax.set_yscale("log")
    ax.set_xlabel("cost (operations)" if cfg.cost_model == "ops" else f"measured cost ({cfg.cost_model}, op-count units)")
    ax.set_ylabel(unit)
    ax.set_title(f"{cfg.target} on [{cfg.domain[0]:g}, {cfg.domain[1]:g}], {cfg.dtype}: Pareto front")
    ax.legend()
    fig.tight_layout()
    paths.append(out / "front.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    if front:
        best = min(front, key=lambda e: (e.error, e.cost))
        prog = record.program(best)
        dt = cfg.problem_spec.eval_dtype
        x = np.sort(fitness_points(cfg.domain[0], cfg.domain[1], cfg.dtype if float64_inside(cfg.mode) else dt, n=1 << 15,
                                   seed=3)).astype(dt)  # cr: float32 inputs, computed in float64
        ref = fast_reference(get_target(cfg.target), x, "float32" if dt == "float32" or float64_inside(cfg.mode) else dt)
        y = evaluate(prog, x, dt)
        err = (ulp_errors(y, ref.hi, ref.lo, "float32") if float64_inside(cfg.mode)  # the program ends in its cvt_f32
               else ulp_errors(y, ref.hi, ref.lo, dt) if cfg.mode == "ulp" else relative_errors(y, ref.hi, ref.lo))
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.plot(x, err, ",", alpha=0.6)
        ax.set_xlabel("x")
        ax.set_ylabel("relative error" if cfg.mode == "real" else "ULP error")
        ax.set_title(f"error of the best program ({int(best.cost)} ops, max {np.max(err):.3g})")
        fig.tight_layout()
        paths.append(out / "error.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    if record.history:
        h = np.array(record.history, float)
        best_so_far = np.minimum.accumulate(h[:, 3])
        xs, ys = list(h[:, 0]), list(best_so_far)
        end = float(record.stats.get("n_told", xs[-1]))
        if end > xs[-1]:  # the best error holds until the last candidate
            xs.append(end)
            ys.append(ys[-1])
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.step(xs, ys, where="post")
        ax.set_yscale("log")
        ax.set_xlabel("candidates")
        ax.set_ylabel(f"best {unit}")
        ax.set_title("search progress")
        fig.tight_layout()
        paths.append(out / "progress.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
