"""The README's first command, as a new user runs it, over several seeds, with its export checked
on every float32 of the domain.

    python benchmarks/readme_run.py [--seeds 0 1 2 3 4] [--time-limit 300] [--max-ops 6] [--write]
    python benchmarks/readme_run.py --target sin --domain -1 1 --seeds 0 1 --section readme_sin --write

Each seed runs ``autonumerics run --target exp2 --domain 0 1 --time-limit 300`` (or the target,
domain and ``--search-max-ops`` given) in a subprocess of this checkout's CLI (``--seed`` and
``--run-dir`` are the only options added), then ``autonumerics export RUN_DIR --exhaustive``: the
cheapest program of the front that holds 1 ULP on every float32 of the domain is written as C.  A
seed passes when that program costs at most ``--max-ops`` operations (issue 12: exp2 on [0, 1] at 6
ops or fewer in at least 4 of 5 seeds).  Each seed's progress output is kept in
``ROOT/TARGET-sSEED.out`` for the README.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _markdown import ROOT, machine, write_section  # noqa: E402

CLI = [sys.executable, "-c", "from search.cli import main; main()"]


def plain(v: float) -> str:
    """A number as a user types it: the shortest text that reads back as the same float."""
    return repr(float(v)).removesuffix(".0")


def command(args) -> list[str]:
    """The user's command, as typed (without --seed and --run-dir)."""
    cmd = ["run", "--target", args.target, "--domain", plain(args.domain[0]), plain(args.domain[1])]
    if args.search_max_ops is not None:
        cmd += ["--max-ops", str(args.search_max_ops)]
    return cmd + ["--time-limit", f"{args.time_limit:g}"]


def one(seed: int, args, root: Path) -> dict:
    """Run, export exhaustively, and read what the run and the export said."""
    rd = root / f"{args.target}-s{seed}"
    out = root / f"{args.target}-s{seed}.out"
    if not (rd / "checkpoint.json").exists():
        with out.open("w") as fh:
            subprocess.run(CLI + command(args) + ["--seed", str(seed), "--run-dir", str(rd)],
                           cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, check=True)
    t0 = time.perf_counter()
    exp = subprocess.run(CLI + ["export", str(rd), "--exhaustive", "--quiet", "--name", "result"], cwd=ROOT,
                         capture_output=True, text=True)
    export_s = time.perf_counter() - t0
    stop = [json.loads(line) for line in (rd / "events.jsonl").read_text().splitlines()
            if json.loads(line).get("event") == "stop"][-1]
    row = {"seed": seed, "candidates": stop["candidates"], "why": stop["why"], "elapsed": stop["elapsed"],
           "export_s": export_s, "exported": exp.returncode == 0, "message": (exp.stderr or exp.stdout).strip()}
    report = rd / "exports" / "result.c.verify.json"
    if exp.returncode == 0 and report.exists():
        rep = json.loads(report.read_text())
        row.update(cost=rep["cost"], max_ulp=rep["max_ulp"], n_points=rep.get("n_points"), program=rep["program"])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="exp2")
    ap.add_argument("--domain", type=float, nargs=2, default=[0.0, 1.0])
    ap.add_argument("--search-max-ops", type=int, default=None, help="the run's --max-ops (default: its own)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--time-limit", type=float, default=300.0)
    ap.add_argument("--max-ops", type=float, default=6.0)
    ap.add_argument("--root", default=str(ROOT / "runs" / "readme_run"))
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    ap.add_argument("--section", default="readme_run", help="BENCHMARKS.md section to write")
    args = ap.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in args.seeds:
        row = one(s, args, root)
        print(json.dumps({k: v for k, v in row.items() if k != "program"}), flush=True)
        rows.append(row)
    (root / "results.json").write_text(json.dumps(rows, indent=1))
    where = f"[{plain(args.domain[0])}, {plain(args.domain[1])}]"
    lines = [f"| seed | candidates | stopped | exported ops | max ULP, every float32 of {where} | export time (s) | within 1 ULP at <= "
             f"{args.max_ops:g} ops |", "|---:|---:|---|---:|---:|---:|---|"]
    passed = 0
    for r in rows:
        ok = r["exported"] and r.get("cost", float("inf")) <= args.max_ops
        passed += ok
        lines.append(f"| {r['seed']} | {r['candidates']} | {r['why']} | {r['cost']:g} | "
                     f"{r['max_ulp']:.4f} | {r['export_s']:.0f} | {'yes' if ok else '**no**'} |" if r["exported"] else
                     f"| {r['seed']} | {r['candidates']} | {r['why']} | none | - | {r['export_s']:.0f} | **no** ({r['message']}) |")
    lines += ["", f"- {passed} of {len(rows)} seeds export a program within 1 ULP on every float32 of {where} at "
              f"<= {args.max_ops:g} ops", "- the exported programs:"]
    lines += [f"  - seed {r['seed']}: `{'; '.join(r['program'].strip().splitlines())}`" for r in rows if r.get("program")]
    body = (f"Machine: {machine()}. Command: `python benchmarks/readme_run.py {' '.join(sys.argv[1:])}`: for each "
            f"seed, `autonumerics {' '.join(command(args))}` (plus `--seed` and "
            "`--run-dir`, every other option at its default, so all cores), then "
            "`autonumerics export RUN_DIR --exhaustive`, which writes the cheapest front program that holds 1 ULP "
            "on every float32 of the domain.\n\n" + "\n".join(lines))
    print(body)
    if args.write:
        write_section(args.section, f"`autonumerics {' '.join(command(args))}` over {len(rows)} seeds, exports checked "
                      "on every float32 (issue 12)", body)


if __name__ == "__main__":
    main()
