"""The scalar C of the examples whose ldexp is one multiply by 2**k (the program bounds k:
``backends.live_lanes.one_multiply_ldexps``) against the same program exported with the general
ldexp, on all 2^32 float32 inputs, bit for bit (any NaN equal to any NaN).

    python benchmarks/one_multiply_exact.py [--names sigmoid_f32]

Why: ``simd_exact.py`` compares an example's vector code with its scalar code, and both take the
one-multiply form, so it cannot see whether that form is right; this compares the scalar code
with the translation that does not use it.  Built with ``-O3 -march=x86-64 -ffp-contract=off``
(scalar code, any x86-64 host).  An example none of whose ldexps take the form is skipped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import backends.export as export  # noqa: E402
from backends.live_lanes import one_multiply_ldexps  # noqa: E402
from dsl.text import parse_program  # noqa: E402
from simd_exact import CC, DRIVER, mixed  # noqa: E402

WRAPPER = """\
%(generic)s
%(shortcut)s
#include <stddef.h>
static void %(name)s_generic_array(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = %(name)s_generic(x[i]);
}
"""


def differences(name: str, work: Path) -> tuple[int, float] | None:
    """(inputs differing, seconds), or None when the example has no one-multiply ldexp."""
    program = parse_program(json.loads((ROOT / "examples" / f"{name}.c.verify.json").read_text())["program"])
    if not one_multiply_ldexps(program):
        return None
    shortcut = export.export_source(program, "c", f"{name}_shortcut", "float32")
    with mock.patch.object(export, "one_multiply_ldexps", return_value=frozenset()):
        generic = export.export_source(program, "c", f"{name}_generic", "float32")
    assert "_ldexp_live(" in shortcut and "_ldexp_live(" not in generic
    header = work / f"{name}_both.h"
    header.write_text(WRAPPER % {"generic": generic, "shortcut": shortcut, "name": name})
    src, exe = work / f"{name}.c", work / name
    src.write_text(DRIVER % {"path": header, "name": f"{name}_generic", "scalar": f"{name}_shortcut"})
    subprocess.run([CC, "-O3", "-march=x86-64", "-ffp-contract=off", str(src), "-o", str(exe), "-lm"],
                   check=True, capture_output=True, text=True)
    t0 = time.perf_counter()
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    return int(out[-1]), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", default="", help="comma-separated example stems (default: every example computed in float32)")
    args = ap.parse_args()
    names = args.names.split(",") if args.names else sorted(
        p.stem for p in (ROOT / "examples").glob("*_f32.c") if not mixed(p))
    for name in names:
        path = ROOT / "examples" / f"{name}.c"
        if not path.with_name(path.name + ".verify.json").exists():
            raise SystemExit(f"examples/{name}.c.verify.json: no such example")
        if mixed(path):
            raise SystemExit(f"examples/{name}.c computes in float64: this check is for float32 programs")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            res = differences(name, Path(tmp))
            if res is None:
                print(f"{name}: no one-multiply ldexp; skipped")
            else:
                print(f"{name}: {res[0]} differing inputs of 2^32 ({res[1]:.0f} s)")


if __name__ == "__main__":
    main()
