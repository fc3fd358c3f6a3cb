"""``autonumerics export --lib``: one C library from several functions, with a self-test that
passes on a right build and fails on a wrong one; ``examples/lib`` is that library for ``examples/``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from search.cli import cli as main

ROOT = Path(__file__).resolve().parent.parent
REPORTS = sorted((ROOT / "examples").glob("*_f32.c.verify.json"))
CC = shutil.which("cc") or shutil.which("gcc")
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-std=c99", "-Wall", "-Werror"]
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")


def _export(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["export", *args])
    return res.exit_code, res.output


def _build_and_test(d: Path, flags=FLAGS) -> subprocess.CompletedProcess:
    exe = d / "selftest"
    build = subprocess.run([CC, *flags, str(d / "autonumerics_f32_test.c"), str(d / "autonumerics_f32.c"), "-lm",
                            "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    return subprocess.run([str(exe)], capture_output=True, text=True)


@needs_cc
def test_library_from_the_examples_builds_and_passes_its_self_test(tmp_path):
    code, out = _export("--lib", str(tmp_path), *map(str, REPORTS), "--quiet")
    assert code == 0, out
    assert {p.name for p in tmp_path.iterdir()} == {"autonumerics_f32.h", "autonumerics_f32.c",
                                                   "autonumerics_f32_test.c", "README.md"}
    header = (tmp_path / "autonumerics_f32.h").read_text()
    assert len(REPORTS) >= 3
    for n in (p.name.split("_f32")[0] for p in REPORTS):
        assert f"float {n}_f32(float x);" in header
        assert f"void {n}_f32_array(const float *x, float *y, size_t n);" in header
    for flags in (FLAGS, ["-O2", "-ffp-contract=off", "-std=c99"]):
        run = _build_and_test(tmp_path, flags)
        assert run.returncode == 0, run.stdout
        assert "all functions ok" in run.stdout and run.stdout.count(" ok  :") == len(REPORTS)


@needs_cc
def test_the_self_test_fails_on_a_wrong_build(tmp_path):
    """A build that does not reproduce a recorded result (here: the record is changed) fails."""
    code, out = _export("--lib", str(tmp_path), *map(str, REPORTS), "--quiet")
    assert code == 0, out
    src = tmp_path / "autonumerics_f32_test.c"
    text = src.read_text()
    first = text.index("_want[] = {") + len("_want[] = {\n    ")
    src.write_text(text[:first] + ("0x00000001u" if text[first:first + 11] != "0x00000001u" else "0x00000002u")
                   + text[first + 11:])  # one recorded result changed by an ulp or more
    run = _build_and_test(tmp_path)
    assert run.returncode == 1 and "FAIL" in run.stdout and "FAILED" in run.stdout


def test_examples_lib_is_the_library_of_the_examples(tmp_path):
    code, out = _export("--lib", str(tmp_path), *map(str, REPORTS), "--quiet")
    assert code == 0, out
    shipped = ROOT / "examples" / "lib"
    for p in tmp_path.iterdir():
        assert (shipped / p.name).read_text() == p.read_text(), f"examples/lib/{p.name} is stale: regenerate it"


@needs_cc
def test_library_from_a_run_directory(tmp_path):
    from search.config import RunConfig
    from search.run import run

    rd = tmp_path / "run"
    run(RunConfig(target="exp2", domain=(0.0, 1.0), seed=1, budget_evals=40, population_size=16,
                  tournament_size=4, islands=1, run_dir=str(rd)), quiet=True)
    code, out = _export("--lib", str(tmp_path / "lib"), str(rd), "--max-ulp", "1e9", "--quiet")
    assert code == 0, out
    assert "x in [0.0, 1.0]" in (tmp_path / "lib" / "autonumerics_f32.h").read_text()
    if CC is not None:
        assert _build_and_test(tmp_path / "lib").returncode == 0


def test_lib_errors_are_one_line(tmp_path):
    code, out = _export("--lib", str(tmp_path / "l"), str(tmp_path / "nope"))
    assert code != 0 and "no such run directory or verification report" in out and "Traceback" not in out
    bad = tmp_path / "user.c.verify.json"
    data = json.loads(REPORTS[0].read_text())
    bad.write_text(json.dumps(dict(data, target="mymod:f")))
    code, out = _export("--lib", str(tmp_path / "l"), str(bad))
    assert code != 0 and "--target mymod:f" in out and "Traceback" not in out
    code, out = _export("--lib", str(tmp_path / "l"), str(REPORTS[0]), "--max-ops", "3")
    assert code != 0 and "do not apply" in out
    (tmp_path / "garbage.json").write_text("{]")
    code, out = _export("--lib", str(tmp_path / "l"), str(tmp_path / "garbage.json"))
    assert code != 0 and "not a verification report" in out and "Traceback" not in out
    code, out = _export(str(REPORTS[0].parent), str(REPORTS[0].parent))
    assert code != 0 and "several only with --lib" in out
