"""A C library from several float32 programs: one header, one source, a self-test and a README.

This is how a library engineer takes the work home (``autonumerics export --lib DIR``): every
function keeps the single-function export's guarantee (``backends.export``: bit-exact against the
DSL semantics when built without contraction or fast-math) and gains scalar and array entry
points with external linkage.  The self-test holds, for each function, a sample of inputs with the
results the project's own float32 evaluation gives and the exact values of the target there; it
checks the build bit for bit and checks the sample's ULP error against the bound the function's
verification report states, so a wrong flag or a wrong compiler shows at once.

Pure code generation: the caller supplies programs, samples and references (``search.library``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dsl.program import Program

from .export import export_source
from .export_simd import array_function, vector_functions

CFLAGS = "-O3 -march=native -ffp-contract=off -fno-math-errno"
CFLAGS_NOTE = ("-ffp-contract=off keeps every a*b+c a multiply and an add, as the programs say (GCC "
               "ignores the FP_CONTRACT pragma); -fno-math-errno lets sqrt vectorize; never -ffast-math "
               "(the sources refuse it). -march=native may be any x86-64 level: the array entry points use "
               "explicit AVX-512 intrinsics under x86-64-v4, AVX2 ones under x86-64-v3, a plain loop "
               "otherwise, and the results are the same bits.")


@dataclass(frozen=True)
class LibFunction:
    """One function of the library, with what its self-test checks."""

    name: str  # the C name, e.g. exp_f32
    program: Program  # the complete float32 program (frame included)
    summary: str  # one line: what it computes and how it was verified
    max_ulp: float  # the bound its verification report states
    x: np.ndarray  # sample inputs (float32)
    expected: np.ndarray  # the project's float32 results there (float32)
    exact: np.ndarray  # the target's values there (float64; NaN where it has none)
    inside: str = "float32"  # float64: float in and out, computed in double (a --mode cr export: sin, cos)


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a C identifier")


def _bits(a: np.ndarray) -> str:
    words = [f"0x{int(v):08x}u" for v in np.asarray(a, np.float32).view(np.uint32)]
    return ",\n".join("    " + ", ".join(words[i:i + 6]) for i in range(0, len(words), 6))


def _doubles(a: np.ndarray) -> str:
    out = []
    for v in np.asarray(a, np.float64):
        out.append("NAN" if np.isnan(v) else ("INFINITY" if v > 0 else "-INFINITY") if np.isinf(v) else float(v).hex())
    return ",\n".join("    " + ", ".join(out[i:i + 4]) for i in range(0, len(out), 4))


def header(lib: str, functions: list[LibFunction]) -> str:
    guard = f"AUTONUMERICS_LIB_{lib.upper()}_H"
    lines = [f"/* {lib}.h: float32 functions evolved by AutoNumerics.", " *"]
    for f in functions:
        lines.append(f" * {f.name}: {f.summary}")
    lines += [" *", f" * Build {lib}.c with: cc {CFLAGS} -c {lib}.c", " * " + CFLAGS_NOTE, " */",
              f"#ifndef {guard}", f"#define {guard}", "", "#include <stddef.h>", "",
              "#ifdef __cplusplus", 'extern "C" {', "#endif", ""]
    for f in functions:
        lines += [f"float {f.name}(float x);",
                  f"/* y[i] = {f.name}(x[i]) for i < n; y may be x, else they must not overlap (vectorized) */",
                  f"void {f.name}_array(const float *x, float *y, size_t n);", ""]
    lines += ["#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def source(lib: str, functions: list[LibFunction]) -> str:
    parts = [f"/* {lib}.c: the functions of {lib}.h.  Build: cc {CFLAGS} -c {lib}.c */", "",
             f'#include "{lib}.h"', ""]
    for f in functions:
        io = "float32" if f.inside == "float64" else None
        parts.append(export_source(f.program, "c", f"{f.name}_inline", f.inside, f.summary, io_dtype=io))
        parts.append(f"float {f.name}(float x)\n{{\n    return {f.name}_inline(x);\n}}\n")
        parts.append(vector_functions(f.program, f.name, f.name.upper(), f.inside))
        parts.append(array_function(f"{f.name}_array", f"{f.name}_inline", f.name, dtype=f.inside))
    return "\n".join(parts)


def self_test(lib: str, functions: list[LibFunction]) -> str:
    """A C program that exits 0 only if every function reproduces its sample bit for bit (NaN as
    NaN) and stays within its stated ULP bound there."""
    out = [f"/* {lib}_test.c: checks the build of {lib}.c against each function's recorded sample.",
           f" * cc {CFLAGS} {lib}_test.c {lib}.c -lm -o {lib}_test && ./{lib}_test */",
           "#include <math.h>", "#include <stdint.h>", "#include <stdio.h>", "#include <string.h>",
           f'#include "{lib}.h"', "",
           "static float from_bits(uint32_t b) { float f; memcpy(&f, &b, sizeof f); return f; }",
           "static uint32_t to_bits(float f) { uint32_t b; memcpy(&b, &f, sizeof b); return b; }", "",
           "/* ULP error of y against the exact value e: |y - e| in units of the float32 binade of e */",
           "static double ulp_error(float y, double e)",
           "{",
           "    int ex;",
           "    if (e == 0.0) return y == 0.0f ? 0.0 : INFINITY;",
           "    frexp(e, &ex);",
           "    return fabs((double)y - e) / ldexp(1.0, (ex - 1 - 23 < -149) ? -149 : ex - 1 - 23);",
           "}", "",
           "static int check(const char *name, void (*fn)(const float *, float *, size_t), float (*scalar)(float),",
           "                 const uint32_t *x, const uint32_t *want, const double *exact, size_t n, double bound)",
           "{",
           "    float xs[n], ys[n];",
           "    size_t bad = 0;",
           "    double worst = 0.0;",
           "    for (size_t i = 0; i < n; i++) xs[i] = from_bits(x[i]);",
           "    fn(xs, ys, n);",
           "    for (size_t i = 0; i < n; i++) {",
           "        float w = from_bits(want[i]);",
           "        int same = (isnan(ys[i]) && isnan(w)) || to_bits(ys[i]) == want[i];",
           "        int same_scalar = (isnan(scalar(xs[i])) && isnan(w)) || to_bits(scalar(xs[i])) == want[i];",
           "        if (!same || !same_scalar) {",
           "            if (bad++ < 5) printf(\"%s(%a) = %a, expected %a\\n\", name, xs[i], ys[i], w);",
           "            continue;",
           "        }",
           "        if (isfinite(exact[i]) && exact[i] != 0.0 && isfinite(ys[i])) {",
           "            double u = ulp_error(ys[i], exact[i]);",
           "            if (u > worst) worst = u;",
           "        }",
           "    }",
           "    int ok = bad == 0 && worst <= bound;",
           "    printf(\"%-12s %s: %zu inputs, %zu not bit-identical, max %.4f ULP (bound %.4f)\\n\", name,",
           "           ok ? \"ok  \" : \"FAIL\", n, bad, worst, bound);",
           "    return ok;",
           "}", ""]
    for f in functions:
        out += [f"static const uint32_t {f.name}_x[] = {{", _bits(f.x), "};",
                f"static const uint32_t {f.name}_want[] = {{", _bits(f.expected), "};",
                f"static const double {f.name}_exact[] = {{", _doubles(f.exact), "};", ""]
    out += ["int main(void)", "{", "    int ok = 1;"]
    for f in functions:
        out.append(f"    ok &= check(\"{f.name}\", {f.name}_array, {f.name}, {f.name}_x, {f.name}_want, {f.name}_exact, "
                   f"{len(f.x)}, {float(f.max_ulp)!r});")
    out += ["    printf(ok ? \"all functions ok\\n\" : \"FAILED\\n\");", "    return ok ? 0 : 1;", "}", ""]
    return "\n".join(out)


def readme(lib: str, functions: list[LibFunction]) -> str:
    rows = "\n".join(f"| `{f.name}` | {f.summary} |" for f in functions)
    return f"""# {lib}: float32 functions evolved by AutoNumerics

| function | what it is |
|---|---|
{rows}

Each function `NAME` has a scalar entry point `float NAME(float x)` and an array entry point
`void NAME_array(const float *x, float *y, size_t n)` (explicit AVX-512 or AVX2 intrinsics where
the build enables them; y may be x itself), declared in `{lib}.h`.

Build and check:

```sh
cc {CFLAGS} -c {lib}.c
cc {CFLAGS} {lib}_test.c {lib}.c -lm -o {lib}_test && ./{lib}_test
```

{CFLAGS_NOTE}

`{lib}_test` recomputes a recorded sample of each function (its worst input, its special values
and spread inputs) and requires the project's own float32 results bit for bit, and an error within
the function's verified ULP bound against the exact values.
"""


def library_sources(lib: str, functions: list[LibFunction]) -> dict[str, str]:
    """File name -> text for the whole library."""
    _check_name(lib)
    names = [f.name for f in functions]
    for n in names:
        _check_name(n)
    if len(set(names)) != len(names):
        raise ValueError(f"two functions share a name: {', '.join(sorted(n for n in set(names) if names.count(n) > 1))}")
    return {f"{lib}.h": header(lib, functions), f"{lib}.c": source(lib, functions),
            f"{lib}_test.c": self_test(lib, functions), "README.md": readme(lib, functions)}
