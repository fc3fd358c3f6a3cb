"""The examples' explicit SIMD entry points against their scalar code, on all 2^32 float32 inputs.

    python benchmarks/simd_exact.py [--names exp,log] [--regenerate] [--write]

``--regenerate`` first rewrites each ``examples/NAME_f32.c`` from its report's recorded program
(``full_range.c_example``, the example's own header kept), and the vector part of each
``examples/cr/NAME_f32_cr.c`` (float64 inside: AVX-512 only) from the program in its header: the
programs, and so every figure of the verification reports, are unchanged; only C text is new.

Then, for each vector ISA this CPU runs (``backends.export_simd.ISAS``), each example is built
with ``-O3 -march=LEVEL -ffp-contract=off`` and a C driver compares ``NAME_array`` (the vector
function, 16 or 8 lanes at a time) with a scalar loop over ``NAME_inline`` (``NAME`` for the
correctly rounded ones) on every one of the
2^32 bit patterns, bit for bit, any NaN equal to any NaN.  The export is bit-exact by
construction (``tests/test_export_simd.py`` checks each op); this is the whole-function proof.
``--write`` records the result in BENCHMARKS.md (section ``simd_exact``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends.export_simd import ISAS, cpu_flags, isas_for, simd_entry_points  # noqa: E402
from dsl.text import parse_program  # noqa: E402
from full_range import c_example  # noqa: E402
from reframe_examples import header_of  # noqa: E402

from _markdown import machine, write_section  # noqa: E402

CC = shutil.which("cc") or shutil.which("gcc") or "cc"

DRIVER = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "%(path)s"
int main(void)
{
    const size_t N = (size_t)1 << 20;
    uint32_t *x = malloc(N * 4);
    float *y = malloc(N * 4);
    unsigned long long bad = 0;
    for (uint64_t s = 0; s < ((uint64_t)1 << 32); s += N) {
        for (size_t i = 0; i < N; i++) x[i] = (uint32_t)(s + i);
        %(name)s_array((const float *)x, y, N);
        for (size_t i = 0; i < N; i++) {
            float xi, z = 0;
            memcpy(&xi, &x[i], 4);
            z = %(scalar)s(xi);
            uint32_t a, b;
            memcpy(&a, &y[i], 4);
            memcpy(&b, &z, 4);
            if (a != b && !(isnan(y[i]) && isnan(z))) {
                if (bad < 3) printf("x=0x%%08x vector 0x%%08x scalar 0x%%08x\n", x[i], a, b);
                bad++;
            }
        }
    }
    printf("%%llu\n", bad);
    return 0;
}
"""


def regenerate(path: Path) -> None:
    report = json.loads(path.with_name(path.name + ".verify.json").read_text())
    if path.parent.name == "cr":  # an `autonumerics export` file: its scalar part, then the vector part anew
        text = path.read_text()
        cut = text.find(f"\n/* {path.stem}() on ")
        scalar = text if cut < 0 else text[:cut]
        path.write_text(scalar + simd_entry_points(parse_program(report["program"]), path.stem, "float64"))
        return
    path.write_text(c_example(parse_program(report["program"]), path.stem, header_of(path.read_text())))


def differences(path: Path, march: str, work: Path) -> tuple[int, float]:
    src = work / f"{path.stem}_{march}.c"
    scalar = path.stem if path.parent.name == "cr" else f"{path.stem}_inline"
    src.write_text(DRIVER % {"path": path, "name": path.stem, "scalar": scalar})
    exe = work / f"{path.stem}_{march}"
    # The scalar loop must stay scalar code of the same bits: -fno-tree-vectorize keeps GCC from
    # vectorizing the driver's loop over NAME_inline (it would be right either way).
    subprocess.run([CC, "-O3", f"-march={march}", "-ffp-contract=off", "-fno-tree-vectorize", str(src), "-o", str(exe),
                    "-lm"], check=True, capture_output=True, text=True)
    t0 = time.perf_counter()
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    return int(out[-1]), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", default="", help="comma-separated (default: every examples/*_f32.c)")
    ap.add_argument("--regenerate", action="store_true", help="rewrite the examples' C from their reports first")
    ap.add_argument("--write", action="store_true", help="record the table in BENCHMARKS.md")
    args = ap.parse_args()
    paths = sorted((ROOT / "examples").glob("*_f32.c")) + sorted((ROOT / "examples" / "cr").glob("*_f32_cr.c"))
    if args.names:
        wanted = {f"{n}_f32" for n in args.names.split(",")} | {f"{n}_f32_cr" for n in args.names.split(",")}
        paths = [p for p in paths if p.stem in wanted]
    if args.regenerate:
        for p in paths:
            regenerate(p)
            print(f"regenerated {p.relative_to(ROOT)}", file=sys.stderr)
    isas = [s for s in ISAS.values() if s.cpu_flags <= cpu_flags()]
    if not isas:
        raise SystemExit("this CPU runs neither AVX2 nor AVX-512 code: nothing to compare")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in paths:
            cells = []
            for s in isas:
                if p.parent.name == "cr" and s.name not in isas_for("float64"):
                    cells.append("(no vector function)")
                    continue
                bad, secs = differences(p, s.march, Path(tmp))
                print(f"{p.stem} {s.march}: {bad} differences ({secs:.0f} s)", file=sys.stderr, flush=True)
                cells.append(str(bad))
            rows.append(f"| `{p.stem}` | " + " | ".join(cells) + " |")
    head = "| function | " + " | ".join(f"inputs differing, `{s.suffix}` (`-march={s.march}`)" for s in isas) + " |"
    table = "\n".join([head, "|---|" + "---:|" * len(isas), *rows])
    print(table)
    if args.write:
        body = (f"Machine: {machine()}. Command: `python benchmarks/simd_exact.py{' --names ' + args.names if args.names else ''}`. "
                "Each example's `NAME_array` (explicit intrinsics, `backends/export_simd.py`) against a scalar loop "
                "over `NAME_inline` (`NAME` for the correctly rounded ones) on all 2^32 float32 bit patterns, bit for bit (any NaN equal to any NaN), "
                "built with `-O3 -march=LEVEL -ffp-contract=off`.\n\n" + table)
        write_section("simd_exact", "Explicit SIMD entry points against the scalar code on all 2^32 inputs (issue 14)",
                      body)


if __name__ == "__main__":
    main()
