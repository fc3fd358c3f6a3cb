"""The ``autonumerics`` command line.  It parses arguments and calls library functions; every user
mistake ends in one line on stderr, ``error: ...``, and exit status 2 (never a traceback)."""

from __future__ import annotations

import math
import sys

import click

from dsl.ops import CORE_OPS
from dsl.text import DSLSyntaxError
from fitness.targets import BUILTIN, TargetError

from .checkpoint import CheckpointError
from .config import ConfigError, RunConfig, default_workers, load_toml
from .bench import BenchError
from .results import ExportError, RunDirError

USER_ERRORS = (ConfigError, TargetError, DSLSyntaxError, CheckpointError, RunDirError)


class UserError(click.ClickException):
    exit_code = 2


def _user_errors(fn):
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (*USER_ERRORS, ExportError, BenchError) as exc:
            raise UserError(str(exc)) from None

    return wrapper


def _progress_bar(label: str, quiet: bool):
    """A click progress bar fed by (done, total) callbacks; one bar per check, as export may walk several.

    click draws nothing to a pipe or a log file and then ends without a newline, so there a check
    announces itself in one line instead."""
    state: dict = {"bar": None, "done": 0}

    def cb(done: int, total: int) -> None:
        if quiet:
            return
        if state["bar"] is None:
            if sys.stderr.isatty():
                state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr)
                state["bar"].__enter__()
            else:
                click.echo(f"{label} {total:,} inputs", err=True)
                state["bar"] = False
            state["done"] = 0
        if state["bar"]:
            state["bar"].update(done - state["done"])
        state["done"] = done
        if done >= total:
            if state["bar"]:
                state["bar"].__exit__(None, None, None)
            state["bar"] = None

    return cb


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="autonumerics")
def cli():
    """AutoNumerics: evolve fast, accurate implementations of mathematical functions."""


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file with run options (CLI options override it).")
@click.option("--target", help="Function to approximate: a built-in name (see 'autonumerics targets') or module:function.")
@click.option("--domain", nargs=2, type=float, metavar="LO HI", help="Interval of inputs.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), help="Output dtype (default float32).")
@click.option("--mode", type=click.Choice(["ulp", "real", "cr", "faithful"]),
              help="ulp: max ULP in dtype; real: max relative error over the reals; cr: a float32 function computed "
                   "in float64, scored by its cr ratio (error over its rounding interval's room; below 1: correctly "
                   "rounded); faithful: the same, scored against the interval that rounds to either float32 "
                   "neighbour of the exact value (below 1: within 1 ULP).")
@click.option("--max-ops", type=int, help="Largest program cost considered (default 10).")
@click.option("--ops", help="Comma-separated operations the search may use (default: " + ",".join(CORE_OPS) + ").")
@click.option("--budget-evals", type=int, help="Stop after this many candidates (default: no limit, the time limit ends the run).")
@click.option("--time-limit", type=float, help="Stop after this many seconds (default 600).")
@click.option("--target-error", type=float, help="Stop once a program within this error is on the front.")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--workers", type=int, help="Worker processes (default: all cores).")
@click.option("--population-size", type=int, help="Population size P of each island (default 64).")
@click.option("--tournament-size", type=int, help="Tournament size S (default 8).")
@click.option("--islands", type=int, help="Sub-populations evolving apart, each of --population-size (default 4).")
@click.option("--migration-every", type=int, help="Candidates between migrations of front programs between islands (default 400).")
@click.option("--epoch-size", type=int, help="Candidates a worker breeds and evaluates per island epoch (0: the driver "
              "breeds every candidate; default: 64 on Dask and from 8 workers, else 0).")
@click.option("--stagnation", type=int, help="Candidates without a front improvement before an island restarts (default 6000).")
@click.option("--cost", "cost_model", type=click.Choice(["ops", "llvm", "xla"]), help="Cost axis of the front (default ops).")
@click.option("--checkpoint-every", type=float, help="Seconds between checkpoints (default 60).")
@click.option("--eval-timeout", type=float, help="Seconds before a hung evaluation is abandoned (default 120).")
@click.option("--scheduler", help="Dask scheduler address tcp://HOST:PORT to run workers on.")
@click.option("--dask-local", type=int, help="Start a local Dask cluster with this many workers.")
@click.option("--frame", help="Range-reduction frame the search fills in (e.g. exp: x = k ln2 + r).")
@click.option("--frame-evolve", is_flag=True, default=None, help="Evolve the frame's own constants too (split of ln2, "
              "reduction interval; see 'autonumerics targets').")
@click.option("--no-cache", is_flag=True, default=False, help="Disable the functional-equivalence cache (for comparisons).")
@click.option("--run-dir", help="Run directory (default runs/TARGET-DTYPE-sSEED-TIME).")
@click.option("--quiet", is_flag=True, help="No progress line.")
@_user_errors
def run(config_file, quiet, no_cache, **opts):
    """Start a search."""
    from .run import run as run_search

    data = load_toml(config_file) if config_file else {}
    cfg_keys = {k.replace("-", "_") for k in data}
    for key, value in opts.items():
        if value is not None:
            data[key] = list(value) if key == "domain" else value
    if "ops" in data and isinstance(data["ops"], str):
        data["ops"] = [o.strip() for o in data["ops"].split(",") if o.strip()]
    if no_cache:
        data["caching"] = False
    if "workers" not in data and "workers" not in cfg_keys:
        data["workers"] = default_workers()
    config = RunConfig.from_dict(data)
    result = run_search(config, quiet=quiet)
    _finish_message(result, quiet)


TARGET_HELP = ("The run's target again, when it is a user module:function: a run directory's word is never "
               "enough to import code.")


def _named_target(record, named, command: str) -> None:
    from .run import check_named_target

    check_named_target(record.config, named, command)


def _finish_message(result, quiet: bool) -> None:
    click.echo(f"stopped ({result.why or result.stopped}) after {result.candidates} candidates "
               f"({result.evaluated} fitted, cache hit rate {100 * result.hit_rate:.1f}%) in {result.elapsed:.1f} s")
    for e in result.front:
        click.echo(f"  {e.cost:>4g} ops  {e.error:.4g}")
    if result.stopped == "interrupted":
        click.echo(f"checkpoint written; continue with: autonumerics resume {result.run_dir}")
    else:
        click.echo(f"run directory: {result.run_dir}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--budget-evals", type=int, help="New total candidate budget.")
@click.option("--time-limit", type=float, help="Seconds for this session.")
@click.option("--workers", type=int, help="Worker processes.")
@click.option("--target", help=TARGET_HELP)
@click.option("--quiet", is_flag=True)
@_user_errors
def resume(run_dir, budget_evals, time_limit, workers, target, quiet):
    """Continue a run from its checkpoint."""
    from .run import resume as resume_search

    result = resume_search(run_dir, budget_evals=budget_evals, time_limit=time_limit, workers=workers, quiet=quiet,
                           target=target)
    _finish_message(result, quiet)


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--plot", is_flag=True, help="Write PNG plots into RUN_DIR/plots.")
@click.option("--baselines", is_flag=True, help="Compare with baselines: float32 minimax shapes polished in float32 "
              "(float32 ulp mode, max ULP on 2^22 inputs), Taylor, Pade and minimax digits (real mode).")
@click.option("--target", help=TARGET_HELP)
@_user_errors
def report(run_dir, plot, baselines, target):
    """Show a run's Pareto front."""
    from .report import front_table, plot_run
    from .results import load_run

    record = load_run(run_dir)
    if plot or baselines:  # these evaluate the target
        _named_target(record, target, f"autonumerics report {run_dir}{' --plot' if plot else ''}"
                                      f"{' --baselines' if baselines else ''}")
    click.echo(front_table(record))
    if baselines:
        cfg = record.config
        click.echo("")
        if cfg.mode == "ulp" and cfg.dtype == "float32" and not cfg.frame:
            from .report_f32 import f32_baseline_report

            click.echo(f32_baseline_report(record, progress=lambda m: click.echo(m, err=True)))
        else:
            from .report_baselines import baseline_report

            click.echo(baseline_report(record, plot=plot))
    if plot:
        for p in plot_run(record):
            click.echo(f"wrote {p}")


@cli.command()
@click.argument("sources", nargs=-1, required=True, metavar="RUN_DIR [SOURCE...]")
@click.option("--lang", type=click.Choice(["c", "numpy", "jax", "llvm"]), default="c", show_default=True)
@click.option("--max-ulp", type=float, help="Export the cheapest program within this many ULP (default 1).")
@click.option("--max-ops", type=float, help="Export the most accurate program with at most this many operations.")
@click.option("--name", default=None, help="Function name (default TARGET_DTYPE, e.g. exp2_f32).")
@click.option("--out", type=click.Path(dir_okay=False), help="Output file (default RUN_DIR/exports/NAME.EXT).")
@click.option("--exhaustive", is_flag=True, help="Verify on every float32 input of the domain (slow).")
@click.option("--lib", "lib_dir", type=click.Path(file_okay=False),
              help="Write one C library (header, source, self-test, README) into this directory, from every "
                   "SOURCE: run directories and NAME.c.verify.json reports.")
@click.option("--lib-name", default="autonumerics_f32", show_default=True, help="With --lib: the files' base name.")
@click.option("--target", help=TARGET_HELP)
@click.option("--quiet", is_flag=True)
@_user_errors
def export(sources, lang, max_ulp, max_ops, name, out, exhaustive, lib_dir, lib_name, target, quiet):
    """Verify and export a program from a run's front (with --lib: a C library from several runs)."""
    from .exporting import export_run
    from .results import load_run

    if lib_dir is not None:
        from .library import write_library

        if lang != "c" or max_ops is not None or name is not None or out is not None:
            raise UserError("--lib writes C from each source's cheapest program within --max-ulp; "
                            "--lang, --max-ops, --name and --out do not apply")
        for path in write_library(lib_dir, list(sources), lib_name, target, max_ulp, exhaustive,
                                  progress=_progress_bar("verifying", quiet)):
            click.echo(f"wrote {path}")
        return
    if len(sources) != 1:
        raise UserError("export takes one run directory (several only with --lib)")
    run_dir = sources[0]
    record = load_run(run_dir)
    _named_target(record, target, f"autonumerics export {run_dir}")
    if name is None:
        base = record.config.target.split(":")[-1]
        name = f"{base}_f32" if record.config.dtype == "float32" else f"{base}_f64"
    if max_ulp is not None and not (max_ulp >= 0 and math.isfinite(max_ulp)):
        raise UserError("--max-ulp must be a finite number >= 0")
    done = export_run(record, lang, name, out, max_ulp, max_ops, exhaustive,
                      progress=_progress_bar("verifying", quiet))
    if done.report is not None:
        click.echo(f"{done.entry.cost:g}-op program: {done.report.describe()}")
    click.echo(f"wrote {done.path}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--exhaustive", is_flag=True, help="Check every float32 input in the domain (for a framed run: all "
              "2^32 float32 bit patterns, special values included).")
@click.option("--max-ops", type=float, help="Verify the most accurate program with at most this many operations.")
@click.option("--bound", is_flag=True, help="Rigorous interval-arithmetic bound of the relative error (real mode).")
@click.option("--full-range", is_flag=True, help="With --exhaustive: all 2^32 float32 inputs and the special values, "
              "also for a run without a frame (a free search with the reduction ops).")
@click.option("--workers", type=int, help="Processes for an exhaustive check (default: 1; all cores for 2^32 inputs).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the report as JSON here.")
@click.option("--target", help=TARGET_HELP)
@click.option("--quiet", is_flag=True)
@_user_errors
def verify(run_dir, exhaustive, max_ops, bound, full_range, workers, json_out, target, quiet):
    """Verify the front's most accurate program (or the best within --max-ops)."""
    from fitness.targets import get_target

    from . import policy
    from .results import load_run

    record = load_run(run_dir)
    _named_target(record, target, f"autonumerics verify {run_dir}")
    cfg = record.config
    entry = policy.most_accurate(record, max_ops)
    if bound:
        from fitness.bounds import relative_error_bound

        b = relative_error_bound(record.program(entry), get_target(cfg.target), cfg.domain[0], cfg.domain[1])
        click.echo(f"{int(entry.cost)}-op program: max relative error <= {b.upper_bound:.4g} (rigorous, "
                   f"{b.n_intervals} intervals{'' if b.converged else ', not converged'}); sampled max {b.sampled_max:.4g}")
        return
    full_range = policy.is_full_range(cfg, exhaustive, full_range)
    rep = policy.check(record, entry, exhaustive, full_range, workers, progress=_progress_bar("verifying", quiet))
    click.echo(f"{int(entry.cost)}-op program (candidate {entry.id}): {rep.describe()}; "
               f"{rep.seconds:.1f} s with the {rep.evaluator} evaluator")
    if full_range and not rep.specials_ok:
        for ex in rep.special_examples[:5]:
            click.echo(f"  special-value mismatch: x = {ex[0]}: got {ex[1]}, expected {ex[2]}")
        for m in rep.special_case_mismatches[:5]:
            click.echo(f"  special case wrong: x = {m['x']}: got {m['got']}, expected {m['expected']} ({m['why']})")
    if json_out:
        import json
        from pathlib import Path

        Path(json_out).write_text(json.dumps({"candidate": entry.id, "cost": entry.cost, **rep.to_dict()},
                                             indent=1), encoding="utf-8")


@cli.command()
def targets():
    """List the built-in targets."""
    click.echo(f"{'name':<9} {'default domain':<26} description")
    for t in BUILTIN.values():
        dom = f"[{t.default_domain[0]:.6g}, {t.default_domain[1]:.6g}]"
        click.echo(f"{t.name:<9} {dom:<26} {t.description}")
    click.echo("\nAny importable module:function taking and returning an mpmath number is a user target.")
    from fitness.frames import FITTED, FRAMES, MOVED
    from fitness.special import describe_specs

    click.echo("\nRange-reduction frames (run --frame NAME; the search evolves the core):")
    for f in FRAMES.values():
        click.echo(f"{f.name:<9} core ~ {f.core_target}")
        click.echo(f"{'':<9} {f.description}")
        if f.name in MOVED:
            click.echo(f"{'':<9} --frame-evolve: fits {', '.join(FITTED[f.name])}; moves {', '.join(MOVED[f.name])}")
    click.echo("\nFull-range float32 targets (frame, search domain, special values checked by verify --exhaustive):")
    for line in describe_specs():
        click.echo(line)
    click.echo("Add one with fitness.special.register(FullRangeSpec(...)).")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--max-ulp", type=float, default=1.0, show_default=True,
              help="Bench the cheapest program confirmed within this many ULP (as export picks it).")
@click.option("--sizes", default="16K,10M", show_default=True,
              help="Comma-separated buffer sizes in elements (K = 1024, M = 10**6).")
@click.option("--backends", "backend_list", default="numpy,llvm,xla", show_default=True,
              help="Comma-separated subset of numpy,llvm,xla.")
@click.option("--front", "whole_front", is_flag=True, help="Also bench every other program on the front.")
@click.option("--exhaustive", is_flag=True, help="Verify the winner on every float32 input (slow).")
@click.option("--rounds", type=int, default=21, show_default=True,
              help="Interleaved rounds per buffer size (medians are over rounds).")
@click.option("--block-ms", type=float, default=4.0, show_default=True,
              help="Milliseconds per timed block (at least one call).")
@click.option("--xla-repeat", type=int, default=64, show_default=True,
              help="Kernel runs per XLA call for the extra cache-resident XLA row (1: no such row).")
@click.option("--target", help=TARGET_HELP)
@click.option("--quiet", is_flag=True)
@_user_errors
def bench(run_dir, max_ulp, sizes, backend_list, whole_front, exhaustive, rounds, block_ms, xla_repeat, target, quiet):
    """Time the exported winner under numpy, llvmlite and XLA beside the platform's function."""
    from .bench import BenchError, bench_run, parse_sizes
    from .results import load_run

    record = load_run(run_dir)
    _named_target(record, target, f"autonumerics bench {run_dir}")
    if rounds < 1 or not (block_ms > 0):
        raise BenchError("--rounds must be at least 1 and --block-ms positive")
    if xla_repeat < 1:
        raise BenchError("--xla-repeat must be at least 1")
    backends = tuple(b.strip() for b in backend_list.split(",") if b.strip())
    log = None if quiet else (lambda m: click.echo(m, err=True))
    click.echo(bench_run(record, max_ulp, parse_sizes(sizes), backends, whole_front=whole_front,
                         exhaustive=exhaustive, rounds=rounds, block_s=block_ms / 1e3, xla_repeat=xla_repeat,
                         log=log))


def main(argv: list[str] | None = None) -> None:
    try:
        rv = cli.main(args=argv, prog_name="autonumerics", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code if isinstance(exc, UserError) else 2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
