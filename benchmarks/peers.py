"""The exported C kernels (``examples/*_f32.c``) against their peers, speed and accuracy measured
in one process on the same inputs (issue 14, part 1).

    python benchmarks/peers.py [--functions exp,exp2,log] [--rounds 41] [--block-ms 5]
                               [--accuracy-points 4194304] [--quick] [--write] [--baseline REV]

Peers of ``NAME_f32`` (C name ``NAMEf``: exp -> expf, exp2 -> exp2f, log -> logf ...):

- SLEEF u10 (Debian ``libsleef-dev``): ``Sleef_NAMEf8_u10avx2`` and ``Sleef_NAMEf16_u10avx512f``;
- glibc libmvec: ``_ZGVdN8v_NAMEf`` (AVX2) and ``_ZGVeN16v_NAMEf`` (AVX-512), called directly;
- glibc's scalar ``NAMEf`` in a plain loop (no ``-ffast-math``, so GCC keeps the scalar calls:
  the script checks the object for libmvec calls);
- CORE-MATH ``cr_NAMEf`` and RLIBM ``rlibm_NAMEf`` (a double, rounded to float), compiled from
  ``../shared/peers/`` (never copied into the repository);
- numpy's ufunc on float32 arrays, timed from Python (its figure includes one ufunc call's
  overhead per pass over the array, as a numpy user pays it); for the sigmoid, SciPy's ``expit``.

A function no peer library has (``COMPOSED``: the logistic sigmoid) is compared with the composition
a user would write from each peer's own functions, 1/(1 + expf(-x)) with SLEEF's, libmvec's, glibc's,
CORE-MATH's and RLIBM's expf (issue 14: "the best composition of peer functions").

Every C variant is a shared library of its own (a loop over the array in one translation unit, the
repetition loop in another, so the compiler cannot merge repetitions), built once for AVX2
(``-O3 -march=x86-64-v3 -ffp-contract=off``) and, where the CPU has AVX-512, once for AVX-512
(``-march=x86-64-v4``); AVX2-only peers go in the AVX2 build, AVX-512 ones in the AVX-512 build,
scalar ones in both.  A peer that is missing or does not build is skipped with a one-line message.

Method: 16,384 float32 inputs (64 KiB, cache-resident with the output) over each function's typical
range (``RANGES``: exp [-87, 88], exp2 [-126, 127], log, log2 and log10 random bit patterns of
positive normal floats, i.e. log-uniform over the normal range; ``sin_wide`` and ``cos_wide``:
sin and cos again over random finite bit patterns, where each library's large-argument reduction
runs; the others as the table's header says).  Every implementation of one function, of
both builds, is timed round-robin in each of ``--rounds`` rounds (``backends.timing.interleaved``:
order reversed every other round, so the machine's slow phases hit all alike); one round of one
implementation is a block of repetitions over the array lasting about ``--block-ms``, far above the
timer's resolution.  ns/element: median and min over rounds; "x SLEEF": the median over rounds of
the ratio to SLEEF u10 of the same build in the same round.  Accuracy: max ULP
(``fitness.metrics.ulp_errors``: |y - f(x)| over the ulp of the exact value's float32 binade)
against ``fitness.fullrange.reference_f32`` (float64 numpy rounded to float32, mpmath at 128 bits
near rounding midpoints), on the timed inputs and on ``--accuracy-points`` random inputs from the
same distribution.  ``--write`` records the tables in BENCHMARKS.md (section ``peers``).
``--baseline REV`` adds rows for the project's vector functions as git revision REV had them
(those that changed since; and for a correctly rounded file whose scalar part changed, the
GCC-vectorized loop over its scalar function), timed in the same rounds: an export change's
before and after.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import mpmath
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _markdown import ROOT, machine, write_section  # noqa: E402

from backends.export_simd import ISAS, cpu_flags  # noqa: E402
from backends.speed_cost import aligned_empty, output_buffer  # noqa: E402
from backends.timing import interleaved  # noqa: E402
from fitness.fullrange import reference_f32  # noqa: E402
from fitness.metrics import ulp_errors  # noqa: E402
from fitness.targets import BUILTIN, Target  # noqa: E402

N = 16384  # 64 KiB of float32 inputs: input and output stay in L2
CC = "gcc"
PEERS = ROOT.parent / "shared" / "peers"
SLEEF = "SLEEF u10"

# Typical input range of each function: ("uniform", lo, hi) or ("positive",): random bit patterns
# of positive normal floats (log-uniform over the normal range).  A function not listed is skipped.
RANGES: dict[str, tuple] = {
    "exp": ("uniform", -87.0, 88.0),
    "exp2": ("uniform", -126.0, 127.0),
    "exp10": ("uniform", -37.0, 38.0),
    "expm1": ("uniform", -87.0, 88.0),
    "log": ("positive",),
    "log2": ("positive",),
    "log10": ("positive",),
    "tanh": ("uniform", -9.0, 9.0),
    "erf": ("uniform", -4.0, 4.0),
    "sigmoid": ("uniform", -20.0, 20.0),
    "log1p": ("uniform", -0.99, 10.0),
    "cbrt": ("uniform", -1000.0, 1000.0),
    "sin": ("uniform", -100.0, 100.0),
    "cos": ("uniform", -100.0, 100.0),
    "sin_wide": ("finite",),
    "cos_wide": ("finite",),
}
# The same function again over another range (its own table): sin and cos over every finite float,
# where most |x| are beyond 2^20 and each library's large-argument reduction runs.
SAME_AS: dict[str, str] = {"sin_wide": "sin", "cos_wide": "cos"}

# Functions no peer library has: each peer's row is the composition of its own functions that a
# user would write, (the peer function it calls, the scalar C expression in x and that function).
COMPOSED: dict[str, tuple[str, str]] = {
    "sigmoid": ("exp", "1.0f / (1.0f + {f}(-x))"),
}
VECTOR_OPS = {8: ("__m256", "_mm256"), 16: ("__m512", "_mm512")}

# Reference functions the project's targets lack (mpmath truth, float64 numpy first guess).
EXTRA_TARGETS: dict[str, Target] = {
}

BUILDS = {"AVX2": ISAS["avx2"], "AVX-512": ISAS["avx512"]}  # name: the vector level (-march, CPU flags)

DRIVER = """\
#include <stddef.h>
void an_kernel(const float *restrict x, float *restrict y, size_t n);
/* Separate translation unit: the compiler sees an opaque call, so it cannot merge repetitions. */
__attribute__((visibility("default"))) void peers_repeat(const float *x, float *y, size_t n, long reps)
{
    for (long r = 0; r < reps; r++)
        an_kernel(x, y, n);
}
"""


class BuildError(Exception):
    """A peer that is missing or does not build: skipped with this one-line reason."""


@dataclass
class Variant:
    """One C implementation of one function for one build, before it is compiled."""

    label: str
    build: str
    kernel: str  # C source of an_kernel(x, y, n)
    extra: list[tuple[Path, list[str]]] = field(default_factory=list)  # more sources, their own flags
    libs: list[str] = field(default_factory=list)
    scalar_calls: bool = False  # check that GCC did not turn the calls into libmvec calls
    vectorized: bool = False  # check that GCC vectorized the loop (the export's speed depends on it)


@dataclass
class Impl:
    """A runnable implementation: ``run(x, y, reps)`` computes y = f(x) ``reps`` times."""

    label: str
    build: str | None  # None: numpy, shown in every build's table
    run: Callable[[np.ndarray, np.ndarray, int], None]


# --- C sources ----------------------------------------------------------------------------------
def scalar_kernel(prelude: str, call: str) -> str:
    """A plain loop ``y[i] = call(x[i])``."""
    return (f"#define _GNU_SOURCE\n#include <stddef.h>\n{prelude}\n"
            "void an_kernel(const float *restrict x, float *restrict y, size_t n)\n{\n"
            f"    for (size_t i = 0; i < n; i++)\n        y[i] = {call}(x[i]);\n}}\n")


def vector_kernel(prelude: str, call: str, width: int) -> str:
    """A loop over ``width``-float vectors calling ``call``; the tail goes through a padded copy."""
    v = {8: ("__m256", "_mm256_loadu_ps", "_mm256_storeu_ps"),
         16: ("__m512", "_mm512_loadu_ps", "_mm512_storeu_ps")}[width]
    return (f"#define _GNU_SOURCE\n#include <stddef.h>\n#include <string.h>\n#include <immintrin.h>\n{prelude}\n"
            "void an_kernel(const float *restrict x, float *restrict y, size_t n)\n{\n"
            "    size_t i = 0;\n"
            f"    for (; i + {width} <= n; i += {width})\n        {v[2]}(y + i, {call}({v[1]}(x + i)));\n"
            f"    if (i < n) {{\n        float a[{width}] = {{0}}, b[{width}];\n"
            "        memcpy(a, x + i, (n - i) * sizeof *x);\n"
            f"        {v[2]}(b, {call}({v[1]}(a)));\n"
            "        memcpy(y + i, b, (n - i) * sizeof *y);\n    }\n}\n")


def project_function(path: Path) -> str | None:
    """The inlinable function an export defines (``NAME_inline``, else ``NAME``), None if neither:
    GCC vectorizes the loop only over a function it can inline."""
    stem = path.stem
    text = path.read_text()
    for name in (f"{stem}_inline", stem):
        if re.search(rf"static\s+inline\s+float\s+{name}\s*\(\s*float", text):
            return name
    return None


def scalar_peer(name: str, f: str) -> tuple[str, str, str]:
    """(prelude, function to call, label) for the peer's scalar ``f``: ``f`` itself, or for a
    function in ``COMPOSED`` a wrapper that composes it (``f`` is then the peer's base function)."""
    if name not in COMPOSED:
        return "", f, f"`{f}`"
    expr = COMPOSED[name][1].format(f=f)
    return f"static inline float peer_{name}(float x) {{ return {expr}; }}", f"peer_{name}", f"`{expr}`"


def vector_peer(name: str, f: str, width: int) -> tuple[str, str, str]:
    """As ``scalar_peer`` for a vector function of ``width`` floats (only 1/(1 + f(-x)) is composed)."""
    if name not in COMPOSED:
        return "", f, f"`{f}`"
    v, p = VECTOR_OPS[width]
    one = f"{p}_set1_ps(1.0f)"
    body = f"{p}_div_ps({one}, {p}_add_ps({one}, {f}({p}_sub_ps({p}_setzero_ps(), x))))"
    return (f"static inline {v} peer_{name}({v} x) {{ return {body}; }}", f"peer_{name}",
            "`" + COMPOSED[name][1].format(f=f) + "`")


def double_composition(name: str, build: str) -> Variant:
    """The composition at the project's accuracy: in double with SLEEF's double u10 function
    (``Sleef_expd4_u10avx2`` / ``Sleef_expd8_u10avx512f``), rounded to float once at the end.
    The float composition is cheaper but 2.3 ULP off (rounding of 1 + e and of e itself), so a
    user who needs 1 ULP would write this one."""
    base = COMPOSED[name][0]
    width = 8 if build == "AVX2" else 16
    v, p = VECTOR_OPS[width]
    dv, dp, dw = ("__m256d", "_mm256", 4) if width == 8 else ("__m512d", "_mm512", 8)
    half, lo, hi = (("__m128", "_mm256_castps256_ps128(x)", "_mm256_extractf128_ps(x, 1)") if width == 8 else
                    ("__m256", "_mm512_castps512_ps256(x)",
                     "_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))"))
    f = f"Sleef_{base}d{dw}_u10{'avx2' if width == 8 else 'avx512f'}"
    join = ("_mm256_insertf128_ps(_mm256_castps128_ps256(a), b, 1)" if width == 8 else
            "_mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(a)), _mm256_castps_pd(b), 1))")
    prelude = (f"#include <sleef.h>\nstatic inline {half} peer_half({half} x)\n{{\n"
               f"    {dv} one = {dp}_set1_pd(1.0), d = {dp}_cvtps_pd(x);\n"
               f"    return {dp}_cvtpd_ps({dp}_div_pd(one, {dp}_add_pd(one, {f}({dp}_sub_pd({dp}_setzero_pd(), d)))));\n}}\n"
               f"static inline {v} peer_{name}_d({v} x)\n{{\n    {half} a = peer_half({lo}), b = peer_half({hi});\n"
               f"    return {join};\n}}\n")
    expr = COMPOSED[name][1].replace("1.0f", "1.0").format(f=f).replace("(-x)", "(-(double)x)")
    return Variant(f"{SLEEF} `(float)({expr})`, in double", build, vector_kernel(prelude, f"peer_{name}_d", width),
                   libs=["-lsleef"])


def variants(name: str, build: str, peers: Path, notes: list[str]) -> list[Variant]:
    """The C implementations of ``name`` for one build, in table order (project first)."""
    name = SAME_AS.get(name, name)
    export = ROOT / "examples" / f"{name}_f32.c"
    f = f"{COMPOSED[name][0] if name in COMPOSED else name}f"
    out = []
    fn = project_function(export) if export.exists() else None
    if not export.exists():
        notes.append(f"skipped: {name}: no examples/{export.name} (only a correctly rounded export)")
    elif fn is None:
        notes.append(f"skipped: {name}: {export.name} defines no `static inline float {name}_f32_inline(float)`")
    else:
        width = 8 if build == "AVX2" else 16
        vfn = f"{name}_f32_v{width}"
        if re.search(rf"static\s+inline\s+__m\d+\s+{vfn}\s*\(", export.read_text()):
            out.append(Variant(f"AutoNumerics `{vfn}` (examples/{export.name})", build,
                               vector_kernel(f'#include "{export}"', vfn, width), libs=["-lm"]))
        out.append(Variant(f"AutoNumerics `{name}_f32`, GCC-vectorized loop over `{fn}`", build,
                           scalar_kernel(f'#include "{export}"', fn), libs=["-lm"], vectorized=True))
    cr = ROOT / "examples" / "cr" / f"{name}_f32_cr.c"  # correctly rounded (issue 15), if there is one
    fn_cr = project_function(cr) if cr.exists() else None
    width = 8 if build == "AVX2" else 16
    vcr = f"{name}_f32_cr_v{width}"
    if fn_cr is not None and re.search(rf"static\s+inline\s+__m\d+\s+{vcr}\s*\(", cr.read_text()):
        out.append(Variant(f"AutoNumerics `{vcr}`, correctly rounded (examples/cr/{cr.name})", build,
                           vector_kernel(f'#include "{cr}"', vcr, width), libs=["-lm"]))
    if fn_cr is not None:
        out.append(Variant(f"AutoNumerics `{name}_f32_cr`, correctly rounded (examples/cr/{cr.name})", build,
                           scalar_kernel(f'#include "{cr}"', fn_cr), libs=["-lm"], vectorized=True))
    s8 = vector_peer(name, f"Sleef_{f}8_u10avx2", 8)
    s16 = vector_peer(name, f"Sleef_{f}16_u10avx512f", 16)
    m8 = vector_peer(name, f"_ZGVdN8v_{f}", 8)
    m16 = vector_peer(name, f"_ZGVeN16v_{f}", 16)
    sc = scalar_peer(name, f)
    if build == "AVX2":
        out.append(Variant(f"{SLEEF} {s8[2]}", build,
                           vector_kernel("#include <sleef.h>\n" + s8[0], s8[1], 8), libs=["-lsleef"]))
        out.append(Variant(f"glibc libmvec {m8[2]}", build,
                           vector_kernel(f"__m256 _ZGVdN8v_{f}(__m256);\n" + m8[0], m8[1], 8),
                           libs=["-lmvec", "-lm"]))
    else:
        out.append(Variant(f"{SLEEF} {s16[2]}", build,
                           vector_kernel("#include <sleef.h>\n" + s16[0], s16[1], 16), libs=["-lsleef"]))
        out.append(Variant(f"glibc libmvec {m16[2]}", build,
                           vector_kernel(f"__m512 _ZGVeN16v_{f}(__m512);\n" + m16[0], m16[1], 16),
                           libs=["-lmvec", "-lm"]))
    if name in COMPOSED:
        out.append(double_composition(name, build))
    out.append(Variant(f"glibc {sc[2]} (scalar loop)", build, scalar_kernel("#include <math.h>\n" + sc[0], sc[1]),
                       libs=["-lm"], scalar_calls=True))
    out += peer_variants(name, build, peers, notes)
    return out


def peer_variants(name: str, build: str, peers: Path, notes: list[str]) -> list[Variant]:
    """CORE-MATH and RLIBM, compiled from ``peers`` with the flags of its README."""
    base = COMPOSED[name][0] if name in COMPOSED else name
    f = f"{base}f"
    out = []
    core = peers / "core-math" / f"{f}.c"
    if core.exists():
        pre, call, label = scalar_peer(name, f"cr_{f}")
        out.append(Variant(f"CORE-MATH {label}", build, scalar_kernel(f"float cr_{f}(float);\n{pre}", call),
                           extra=[(core, ["-O3"])], libs=["-lm"]))
    elif build == "AVX2":
        notes.append(f"skipped: CORE-MATH {name}: no {core}")
    rl = peers / "rlibm" / f"{f}.c"
    if rl.exists():
        pre, call, label = scalar_peer(name, f"(float)rlibm_{f}")
        out.append(Variant(f"RLIBM {label} (double, rounded)", build,
                           scalar_kernel(f"double rlibm_{f}(float);\n{pre}", call),
                           extra=[(rl, ["-O3", "-std=c17", f"-I{rl.parent}"])], libs=["-lm"]))
    elif build == "AVX2":
        notes.append(f"skipped: RLIBM {name}: no {rl}")
    return out


# --- building -----------------------------------------------------------------------------------
def _gcc(args: list[str]) -> str:
    """Run the compiler (its stderr); a failure becomes a BuildError naming its first error line."""
    try:
        p = subprocess.run([CC, *args], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{CC} failed to run: {exc}") from None
    if p.returncode != 0:
        lines = [ln for ln in p.stderr.splitlines() if "error" in ln] or p.stderr.splitlines() or ["(no message)"]
        raise BuildError(lines[0].strip()[:200])
    return p.stderr


def _has_vector_calls(obj: Path) -> bool:
    """Whether the object calls libmvec (a ``_ZGV`` symbol): then a "scalar" row would not be one."""
    try:
        p = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False  # no nm: the check is skipped
    return "_ZGV" in p.stdout


def _wide_registers(obj: Path) -> bool | None:
    """Whether ``an_kernel`` uses ymm or zmm registers, i.e. GCC vectorized the loop over an
    inlined export (scalar AVX code uses xmm only); None when objdump is missing."""
    try:
        p = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(obj)], capture_output=True, text=True,
                           timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    body = p.stdout.split("<an_kernel>:", 1)[-1].split("\n\n", 1)[0] if "<an_kernel>:" in p.stdout else ""
    return bool(re.search(r"%[yz]mm", body))


def build(v: Variant, march: str, where: Path, notes: list[str]) -> Callable[[np.ndarray, np.ndarray, int], None]:
    """Compile and load one variant as its own shared library; ``run(x, y, reps)``."""
    where.mkdir(parents=True)
    arch = [f"-march={march}", "-fPIC"]
    (where / "kernel.c").write_text(v.kernel)
    (where / "driver.c").write_text(DRIVER)
    _gcc(["-O3", *arch, "-ffp-contract=off", "-fvisibility=hidden", "-c", str(where / "kernel.c"),
          "-o", str(where / "kernel.o")])
    if v.vectorized and _wide_registers(where / "kernel.o") is False:
        notes.append(f"note: {v.label}, {v.build} build: GCC did not vectorize the loop (no ymm/zmm in an_kernel)")
    if v.scalar_calls and _has_vector_calls(where / "kernel.o"):
        raise BuildError("GCC replaced the scalar calls by libmvec calls")
    _gcc(["-O2", *arch, "-c", str(where / "driver.c"), "-o", str(where / "driver.o")])
    objs = [where / "kernel.o", where / "driver.o"]
    for i, (src, flags) in enumerate(v.extra):
        obj = where / f"extra{i}.o"
        _gcc([*flags, *arch, "-fvisibility=hidden", "-c", str(src), "-o", str(obj)])
        objs.append(obj)
    so = where / "lib.so"
    _gcc(["-shared", "-Wl,-z,defs", "-o", str(so), *map(str, objs), *v.libs])
    try:
        fn = ctypes.CDLL(str(so)).peers_repeat
    except OSError as exc:
        raise BuildError(f"cannot load: {exc}") from None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
    fn.restype = None
    return lambda x, y, reps: fn(x.ctypes.data, y.ctypes.data, x.size, reps)


def host_builds(notes: list[str]) -> dict[str, str]:
    """The builds this CPU can run: name -> -march."""
    flags = cpu_flags()
    out = {}
    for name, isa in BUILDS.items():
        if isa.cpu_flags <= flags:
            out[name] = isa.march
        else:
            notes.append(f"skipped: {name} build: the CPU lacks {', '.join(sorted(isa.cpu_flags - flags))}")
    return out


def baseline_variants(name: str, build: str, rev: str, tmp: Path, notes: list[str]) -> list[Variant]:
    """The project's vector functions of ``name`` as git revision ``rev`` had them, where they
    differ from today's: an export change's before and after, timed in one process, round by round
    (the ratio of two separate runs moves with the machine's phases)."""
    width = 8 if build == "AVX2" else 16
    name = SAME_AS.get(name, name)
    out = []
    for rel, vfn in ((f"examples/{name}_f32.c", f"{name}_f32_v{width}"),
                     (f"examples/cr/{name}_f32_cr.c", f"{name}_f32_cr_v{width}")):
        if not (ROOT / rel).exists():
            continue
        res = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{rel}"], capture_output=True, text=True)
        if res.returncode != 0:
            notes.append(f"skipped: {rel} at {rev}: not in that revision")
            continue
        if res.stdout == (ROOT / rel).read_text() or not re.search(rf"static\s+inline\s+__m\d+\s+{vfn}\s*\(", res.stdout):
            continue
        old = tmp / f"baseline-{re.sub(r'[^A-Za-z0-9_.-]', '_', rev)}-{Path(rel).name}"
        old.write_text(res.stdout)
        out.append(Variant(f"AutoNumerics `{vfn}` at {rev} ({rel})", build, vector_kernel(f'#include "{old}"', vfn, width),
                           libs=["-lm"]))
        scalar = vfn.rsplit("_v", 1)[0]
        if rel.startswith("examples/cr/") and _scalar_part(res.stdout, scalar) != _scalar_part((ROOT / rel).read_text(), scalar):
            out.append(Variant(f"AutoNumerics `{scalar}` at {rev}, GCC-vectorized loop ({rel})", build,
                               scalar_kernel(f'#include "{old}"', scalar), libs=["-lm"], vectorized=True))
    return out


def _scalar_part(source: str, name: str) -> str:
    """A correctly rounded file's scalar part: the text before its vector functions."""
    cut = source.find(f"\n/* {name}() on ")
    return source if cut < 0 else source[:cut]


def implementations(name: str, builds: dict[str, str], peers: Path, tmp: Path, notes: list[str],
                    baseline: str | None = None) -> list[Impl]:
    """Every implementation of ``name`` that builds, C variants of each build then numpy (with
    ``baseline``, a git revision, the project's vector functions at that revision too)."""
    out = []
    for bname, march in builds.items():
        extra = baseline_variants(name, bname, baseline, tmp, notes) if baseline else []
        for i, v in enumerate(variants(name, bname, peers, notes) + extra):
            try:
                out.append(Impl(v.label, bname, build(v, march, tmp / f"{name}-{march}-{i}", notes)))
            except BuildError as exc:
                notes.append(f"skipped: {v.label}, {bname} build: {exc}")
    ufunc, label = getattr(np, SAME_AS.get(name, name), None), f"numpy `np.{SAME_AS.get(name, name)}` (float32)"
    if name == "sigmoid":  # numpy has none; SciPy's ufunc is what a numpy user calls
        from scipy.special import expit as ufunc

        label = "SciPy `scipy.special.expit` (float32)"
    if isinstance(ufunc, np.ufunc):
        def run(x, y, reps, ufunc=ufunc):
            for _ in range(reps):
                ufunc(x, out=y)
        out.append(Impl(label, None, run))
    else:
        notes.append(f"skipped: numpy {name}: numpy has no np.{name}")
    return out


# --- measuring ----------------------------------------------------------------------------------
def inputs(name: str, n: int, seed: int) -> np.ndarray:
    """``n`` float32 inputs over the function's typical range (``RANGES``), page-aligned."""
    rng = np.random.default_rng(seed)
    kind = RANGES[name]
    x = aligned_empty(n, np.float32)
    if kind[0] == "uniform":
        x[:] = rng.uniform(kind[1], kind[2], n).astype(np.float32)
    elif kind[0] == "finite":  # every finite float32 bit pattern equally likely (both signs)
        mag = rng.integers(0, 0x7F800000, n, dtype=np.uint32)
        x[:] = (mag | (rng.integers(0, 2, n, dtype=np.uint32) << np.uint32(31))).view(np.float32)
    else:  # every positive normal float32 bit pattern equally likely
        x[:] = rng.integers(0x00800000, 0x7F800000, n, dtype=np.uint32).view(np.float32)
    return x


def reps_for(impl: Impl, x: np.ndarray, y: np.ndarray, block_s: float) -> int:
    """Passes over the array that make one timed block last about ``block_s`` (after warm-up)."""
    reps = 4
    impl.run(x, y, reps)  # warm-up: page faults, caches, lazy binding
    while True:
        t0 = time.perf_counter()
        impl.run(x, y, reps)
        dt = time.perf_counter() - t0
        if dt >= block_s / 4 or reps >= 1 << 24:
            return max(1, int(reps * block_s / max(dt, 1e-9)))
        reps *= 4


def timings(impls: list[Impl], x: np.ndarray, rounds: int, block_s: float) -> dict[str, np.ndarray]:
    """ns/element of each implementation in each round, all timed round-robin in every round."""
    y = output_buffer(x)
    key = {f"{i.build}|{i.label}": i for i in impls}
    reps = {k: reps_for(i, x, y, block_s) for k, i in key.items()}
    fns = {k: (lambda i=i, r=reps[k]: i.run(x, y, r)) for k, i in key.items()}
    with np.errstate(all="ignore"):
        secs = interleaved(fns, rounds, {k: 1 for k in key})
    return {k: secs[k] * 1e9 / (x.size * reps[k]) for k in key}


def describe_range(name: str) -> str:
    kind = RANGES[name]
    return (f"[{kind[1]:g}, {kind[2]:g}]" if kind[0] == "uniform" else "random finite bit patterns (both signs)"
            if kind[0] == "finite" else "random positive normal bit patterns")


def target_of(name: str) -> Target:
    name = SAME_AS.get(name, name)
    return BUILTIN[name] if name in BUILTIN else EXTRA_TARGETS[name]


def max_ulps(impls: list[Impl], target: Target, x: np.ndarray) -> dict[str, float]:
    """Max ULP of each implementation on ``x`` against the correctly rounded reference."""
    _, hi, lo, _ = reference_f32(target, x)
    y = output_buffer(x)
    out = {}
    with np.errstate(all="ignore"):
        for i in impls:
            i.run(x, y, 1)
            out[f"{i.build}|{i.label}"] = float(np.max(ulp_errors(y, hi, lo, "float32")))
    return out


# --- reporting ----------------------------------------------------------------------------------
def _ulp(v: float) -> str:
    return f"{v:.3f}" if math.isfinite(v) else "inf"


def table(name: str, bname: str, march: str, impls: list[Impl], ns: dict, ulp_t: dict, ulp_r: dict,
          n_random: int) -> str:
    """The markdown table of one function and one build (numpy's row in every build's table)."""
    rows = [i for i in impls if i.build in (bname, None)]
    base = next((f"{bname}|{i.label}" for i in rows if i.build == bname and i.label.startswith(SLEEF)), None)
    lines = [f"### {name}, {bname} build (`-O3 -march={march} -ffp-contract=off`)", "",
             f"| implementation | ns/elt median | ns/elt min | x {SLEEF} | max ULP, {N} timed inputs "
             f"| max ULP, {n_random} random inputs |",
             "|---|---:|---:|---:|---:|---:|"]
    for i in rows:
        k = f"{i.build}|{i.label}"
        ratio = f"{np.median(ns[k] / ns[base]):.2f}" if base else "-"
        lines.append(f"| {i.label} | {np.median(ns[k]):.3f} | {np.min(ns[k]):.3f} | {ratio} "
                     f"| {_ulp(ulp_t[k])} | {_ulp(ulp_r[k])} |")
    return "\n".join(lines)


def summary_rows(name: str, bname: str, impls: list[Impl], ns: dict) -> list[str]:
    """One summary line per build: each AutoNumerics row's median per-round ratio to SLEEF u10
    (to the first SLEEF row: for a composed function, the float composition) and, for the
    correctly rounded rows, to CORE-MATH."""
    rows = [i for i in impls if i.build == bname]
    key = lambda i: f"{i.build}|{i.label}"  # noqa: E731
    sleef = next((key(i) for i in rows if i.label.startswith(SLEEF)), None)
    core = next((key(i) for i in rows if i.label.startswith("CORE-MATH")), None)

    def ratio(pred, base) -> str:
        hit = next((key(i) for i in rows if pred(i.label)), None)
        return f"{np.median(ns[hit] / ns[base]):.2f}" if hit and base else "-"

    ours = lambda lab: lab.startswith("AutoNumerics") and "correctly rounded" not in lab  # noqa: E731
    vec = ratio(lambda lab: ours(lab) and "_v" in lab.split("`")[1], sleef)
    loop = ratio(lambda lab: ours(lab) and "GCC-vectorized" in lab, sleef)
    crv = lambda lab: lab.startswith("AutoNumerics") and "correctly rounded" in lab and "_v" in lab.split("`")[1]  # noqa: E731
    return [f"| {name} | {bname} | {vec} | {loop} | {ratio(crv, sleef)} | {ratio(crv, core)} |"]


SUMMARY_HEAD = ("| function | build | `NAME_f32_vW` x SLEEF u10 | GCC-vectorized loop x SLEEF u10 "
                "| correctly rounded `NAME_f32_cr_vW` x SLEEF u10 | correctly rounded x CORE-MATH |\n"
                "|---|---|---:|---:|---:|---:|")


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.splitlines()[0].strip()
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def versions(peers: Path) -> str:
    """Compiler, glibc, SLEEF, numpy and the peers' snapshot commits: what the figures depend on."""
    def commit(d: str) -> str:
        try:
            return (peers / d / "COMMIT").read_text().strip()[:12]
        except OSError:
            return "absent"

    sleef = _version(["dpkg-query", "-W", "-f=${Version}\\n", "libsleef-dev"])
    return (f"{_version([CC, '--version'])}, glibc {platform.libc_ver()[1] or 'unknown'}, SLEEF {sleef}, "
            f"numpy {np.__version__}, CORE-MATH {commit('core-math')}, RLIBM {commit('rlibm')}")


def command(args) -> str:
    parts = ["python", "benchmarks/peers.py", "--functions", ",".join(args.functions), "--rounds", str(args.rounds),
             "--block-ms", f"{args.block_ms:g}", "--accuracy-points", str(args.accuracy_points)]
    if Path(args.peers) != PEERS:
        parts += ["--peers", args.peers]
    if args.section != "peers":
        parts += ["--section", args.section]
    if args.baseline:
        parts += ["--baseline", args.baseline]
    return shlex.join(parts + (["--quick"] if args.quick else []) + (["--write"] if args.write else []))


def discovered() -> list[str]:
    """Functions with an export in examples/: NAME for every examples/NAME_f32.c and every
    correctly rounded examples/cr/NAME_f32_cr.c."""
    found = ({p.name[:-len("_f32.c")] for p in (ROOT / "examples").glob("*_f32.c")}
             | {p.name[:-len("_f32_cr.c")] for p in (ROOT / "examples" / "cr").glob("*_f32_cr.c")})
    return sorted(found | {alias for alias, name in SAME_AS.items() if name in found})


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--functions", default=None, help="comma-separated, e.g. exp,exp2,log (default: every export)")
    ap.add_argument("--rounds", type=int, default=41, help="interleaved rounds (default 41)")
    ap.add_argument("--block-ms", type=float, default=5.0, help="length of one timed block, ms (default 5)")
    ap.add_argument("--accuracy-points", type=int, default=1 << 22, help="random inputs for max ULP (default 2^22)")
    ap.add_argument("--peers", default=str(PEERS), help="folder holding core-math/ and rlibm/")
    ap.add_argument("--quick", action="store_true", help="a smoke test: 3 rounds of 1 ms, 2^16 random inputs")
    ap.add_argument("--write", action="store_true", help="record the tables in BENCHMARKS.md")
    ap.add_argument("--section", default="peers",
                    help="the BENCHMARKS.md section --write replaces (default peers; another name for a partial run)")
    ap.add_argument("--baseline", default=None, metavar="REV",
                    help="also time the project's vector functions as git revision REV had them (where they differ)")
    args = ap.parse_args(argv)
    if args.baseline is not None:
        res = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{args.baseline}^{{commit}}"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            ap.error(f"--baseline {args.baseline!r} is not a git revision of {ROOT}")
    if args.quick:
        if args.write:
            ap.error("--quick is a smoke test; run without --quick to --write")
        args.rounds, args.block_ms, args.accuracy_points = 3, 1.0, 1 << 16
    if args.rounds < 1 or args.block_ms <= 0 or args.accuracy_points < 1:
        ap.error("--rounds, --block-ms and --accuracy-points must be positive")
    found = discovered()
    args.functions = found if args.functions is None else [s.strip() for s in args.functions.split(",") if s.strip()]
    for name in args.functions:
        if name not in found:
            ap.error(f"no examples/{name}_f32.c for function {name!r}; exports found: {', '.join(found) or 'none'}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    peers, notes = Path(args.peers), []
    builds = host_builds(notes)
    tmp = Path(tempfile.mkdtemp(prefix="an-peers-"))
    sections, summary = [], []
    try:
        for name in args.functions:
            if name not in RANGES or (SAME_AS.get(name, name) not in BUILTIN and name not in EXTRA_TARGETS):
                notes.append(f"skipped: {name}: no input range or reference in benchmarks/peers.py (RANGES, EXTRA_TARGETS)")
                continue
            impls = implementations(name, builds, peers, tmp, notes, args.baseline)
            print(f"{name}: timing {len(impls)} implementations, {args.rounds} rounds", file=sys.stderr, flush=True)
            x = inputs(name, N, seed=0)
            ns = timings(impls, x, args.rounds, args.block_ms / 1000)
            target = target_of(name)
            ulp_t = max_ulps(impls, target, x)
            ulp_r = max_ulps(impls, target, inputs(name, args.accuracy_points, seed=1))
            for bname, march in builds.items():
                sections.append(table(name, bname, march, impls, ns, ulp_t, ulp_r, args.accuracy_points))
                summary += summary_rows(name, bname, impls, ns)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    notes = list(dict.fromkeys(notes))  # a note made once per build is said once
    for line in notes:
        print(line, file=sys.stderr)
    quick = " **Quick run (smoke test): not for quoting.**" if args.quick else ""
    ranges = ", ".join(f"{n} {describe_range(n)}" for n in args.functions if n in RANGES)
    head = (f"Machine: {machine()}; {versions(peers)}. Command: `{command(args)}`.{quick} "
            f"{N} cache-resident float32 inputs per function ({ranges}); all implementations of a function "
            f"timed round-robin in each of {args.rounds} rounds, one block of about {args.block_ms:g} ms each; "
            f"ns/elt median and min over rounds; \"x {SLEEF}\" = median per-round ratio to SLEEF u10 of the same "
            f"build. numpy (runtime dispatch, one ufunc call per pass over the array) is the same measurement in "
            f"every build's table. Max ULP against correctly rounded references (float64, mpmath near midpoints).")
    parts = [head, "Summary (median per-round time ratios, same run; below 1 is faster; for the sigmoid, "
             "SLEEF u10 is the float composition 1/(1 + expf(-x)), 2.3 ULP off):\n\n" + SUMMARY_HEAD + "\n"
             + "\n".join(summary)]
    if notes:
        parts.append("\n".join(f"- {s}" for s in notes))
    body = "\n\n".join(parts + sections)
    print(body)
    if args.write:
        what = "" if args.section == "peers" else f": {', '.join(args.functions)}"
        write_section(args.section, "Exported C kernels against SLEEF, libmvec, glibc, CORE-MATH, RLIBM and numpy"
                      f"{what} (issue 14)", body)


if __name__ == "__main__":
    main()
