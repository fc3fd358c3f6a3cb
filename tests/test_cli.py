"""The ``autonumerics`` command line: user mistakes get one ``error:`` line and exit status 2, a
failed command leaves a run directory as it was, and a run can be reported and exported to C that
computes exactly what the program computes."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends.numpy_backend import evaluate
from fitness.points import from_ordinal, to_ordinal
from search import checkpoint
from search.cli import main
from search.config import RunConfig
from search.results import load_run
from search.run import run

CC = shutil.which("cc") or shutil.which("gcc")
TINY_TOML = "n_points = 256\npopulation_size = 8\ntournament_size = 4\nmax_ops = 6\n"
SAFETY = ["--budget-evals", "20", "--time-limit", "10", "--workers", "1"]
TINY_ARGS = ["--budget-evals", "60", "--time-limit", "60", "--workers", "1", "--quiet"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


def cli(args: list[str]) -> tuple[int, str, str]:
    """Run the CLI in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def cli_subprocess(args: list[str], cwd: Path) -> tuple[int, str, str]:
    exe = shutil.which("autonumerics")
    cmd = [exe] if exe else [sys.executable, "-m", "search.cli"]
    p = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=120,
                       env=dict(os.environ))
    return p.returncode, p.stdout, p.stderr


def assert_user_error(result: tuple[int, str, str], *words: str) -> str:
    code, out, err = result
    assert "Traceback" not in err and "Traceback" not in out, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert code == 2, (code, err)
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    return lines[0]


def snapshot(d: Path) -> dict[str, str]:
    """Every path under ``d`` with its content hash (directories as 'dir')."""
    out = {}
    for p in sorted(d.rglob("*")):
        out[str(p.relative_to(d))] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """One finished tiny run, shared by the read-only tests (copy it before changing it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))
        d = tmp_path_factory.mktemp("cli") / "base"
        run(RunConfig(target="exp2", domain=(0.0, 1.0), budget_evals=40, population_size=8, tournament_size=4,
                      n_points=256, time_limit=60, workers=1, max_ops=6, seed=1, run_dir=str(d)), quiet=True)
    return d


@pytest.fixture
def tiny_toml(tmp_path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY_TOML)
    return p


# --- bad input: one line, exit status 2 ----------------------------------------------------------
@pytest.mark.parametrize("args,words", [
    (["--target", "nosuch"], ["unknown target"]),
    (["--target", "nosuchmodule_xyz:fn"], ["cannot import"]),
    (["--domain", "0", "0"], ["domain"]),
    (["--domain", "1", "0"], ["domain"]),
    (["--domain", "0", "inf"], ["finite"]),
    (["--domain", "-inf", "1"], ["finite"]),
    (["--domain", "nan", "1"], ["finite"]),
    (["--domain", "0", "x"], ["domain"]),
    (["--target", "log", "--domain", "-1", "1"], ["domain"]),
    (["--budget-evals", "0"], ["budget"]),
    (["--budget-evals", "-5"], ["budget"]),
    (["--workers", "-1"], ["workers"]),
    (["--workers", "0"], ["workers"]),
    (["--time-limit", "0"], ["time-limit"]),
    (["--time-limit", "nan"], ["time-limit"]),
    (["--population-size", "8", "--tournament-size", "9"], ["tournament"]),
    (["--max-ops", "0"], ["max-ops"]),
    (["--ops", "add,frob"], ["frob"]),
    (["--seed", "-1"], ["seed"]),
    (["--target-error", "-1"], ["target-error"]),
    (["--dtype", "float16"], ["dtype"]),
    (["--no-such-option"], ["no-such-option"]),
])
def test_run_bad_input(tmp_path, args, words):
    rd = tmp_path / "never"
    # (a budget first, so that a command that wrongly succeeds ends quickly; later options win)
    assert_user_error(cli(["run", "--run-dir", rd, "--quiet", *SAFETY, *args]), *words)
    assert not rd.exists()


def test_run_dir_under_a_regular_file(tmp_path):
    f = tmp_path / "afile"
    f.write_text("not a directory")
    assert_user_error(cli(["run", "--run-dir", f / "sub", "--workers", "1", "--quiet"]), "run directory")
    assert f.read_text() == "not a directory"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through chmod 0o500")
def test_run_dir_in_read_only_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert_user_error(cli(["run", "--run-dir", ro / "sub", "--workers", "1", "--quiet"]), "run directory")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("text,words", [
    ("n_points = = 3\n", ["not valid TOML"]),
    ("[section\n", ["not valid TOML"]),
    ("frobnicate = 1\n", ["unknown configuration key", "frobnicate"]),
    ("seed = \"many\"\n", ["seed"]),
    ("domain = [0, \"a\"]\n", ["domain"]),
    ("domain = [1, 0]\n", ["domain"]),
    ("ops = 5\n", ["ops"]),
    ("caching = 3\n", ["caching"]),
])
def test_run_bad_config_file(tmp_path, text, words):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    rd = tmp_path / "never"
    assert_user_error(cli(["run", "--config", cfg, "--run-dir", rd, "--workers", "1", "--quiet", *SAFETY]), *words)
    assert not rd.exists()


def test_run_config_file_unreadable(tmp_path):
    assert_user_error(cli(["run", "--config", tmp_path / "missing.toml", "--quiet"]), "does not exist")
    bad = tmp_path / "binary.toml"
    bad.write_bytes(b"\xff\xfe\x00")
    assert_user_error(cli(["run", "--config", bad, "--quiet"]), "config file")


@pytest.mark.parametrize("command", [["report"], ["export"], ["resume", "--quiet"], ["verify", "--quiet"]])
def test_commands_on_missing_dir(tmp_path, command):
    assert_user_error(cli([command[0], tmp_path / "missing", *command[1:]]), "does not exist")
    assert not (tmp_path / "missing").exists()


GARBAGE = {
    "truncated": None,  # the first half of a real checkpoint
    "empty": b"",
    "text": b"garbage, not json",
    "binary": b"\xff\xfe\x00\x01garbage",
    "json_list": b"[]",
    "json_number": b"42",
    "wrong_version": b'{"format_version": 99, "problem_hash": "x", "state": {}, "config": {}}',
    "lacks_state": b'{"format_version": 2, "problem_hash": "x", "config": {}}',
}


def _garbage_dir(base: Path, dest: Path, content: bytes | None) -> Path:
    shutil.copytree(base, dest)
    ck = dest / checkpoint.NAME
    if content is None:
        data = ck.read_bytes()
        content = data[: len(data) // 2]
    ck.write_bytes(content)
    bak = dest / (checkpoint.NAME + ".bak")
    if bak.exists():
        bak.unlink()
    return dest


@pytest.mark.parametrize("kind", list(GARBAGE))
@pytest.mark.parametrize("command", [["report"], ["export", "--max-ulp", "1e9", "--quiet"], ["resume", "--quiet"]])
def test_commands_on_garbage_checkpoint(base_run, tmp_path, kind, command):
    d = _garbage_dir(base_run, tmp_path / "g", GARBAGE[kind])
    before = snapshot(d)
    assert_user_error(cli([command[0], d, *command[1:]]), "checkpoint")
    assert snapshot(d) == before


def _edited(base: Path, dest: Path, edit) -> Path:
    d = _garbage_dir(base, dest, b"")
    data = json.loads((base / checkpoint.NAME).read_text())
    edit(data)
    (d / checkpoint.NAME).write_text(json.dumps(data))
    return d


EDITS = {
    "state_list": lambda d: d.__setitem__("state", []),
    "front_entry_not_object": lambda d: d["state"].__setitem__("best_per_cost", [5]),
    "front_error_text": lambda d: d["state"]["best_per_cost"][0].__setitem__("error", "a"),
    "bad_program": lambda d: [e.__setitem__("program", "retur x") for e in d["state"]["best_per_cost"]],
    "domain_text": lambda d: d["config"].__setitem__("domain", "ab"),
    "unknown_config_key": lambda d: d["config"].__setitem__("frob", 1),
    "problem_hash": lambda d: d.__setitem__("problem_hash", "0" * 24),
}


@pytest.mark.parametrize("kind", list(EDITS))
def test_resume_and_report_on_edited_checkpoint(base_run, tmp_path, kind):
    # one checkpoint reader (search.results.read_checkpoint): every command refuses the same files
    for command in (["report"], ["resume", "--quiet"], ["export", "--max-ulp", "1e9", "--quiet"]):
        d = _edited(base_run, tmp_path / f"e-{command[0]}", EDITS[kind])
        before = snapshot(d)
        code, out, err = cli([command[0], d, *command[1:]])
        if kind == "problem_hash" and command[0] != "resume":
            assert code == 0  # report and export do not need the problem's identity
            continue
        assert_user_error((code, out, err))
        assert snapshot(d) == before


BUG_EDITS = {
    "config_list": lambda d: d.__setitem__("config", []),
    "population_text": lambda d: d["state"]["islands"][0].__setitem__("population", "x"),
    "population_entry_garbage": lambda d: d["state"]["islands"][0].__setitem__("population", [{"x": 1}]),
    "islands_text": lambda d: d["state"].__setitem__("islands", "x"),
    "no_islands": lambda d: d["state"].__setitem__("islands", []),
    "hits_garbage": lambda d: d["state"].__setitem__("hits", {"structure": "many"}),
    "rng_state_garbage": lambda d: d["state"].__setitem__("rng_state", {"bit_generator": "PCG64", "state": 5}),
    "rng_state_text": lambda d: d["state"].__setitem__("rng_state", "abc"),
    "pending_garbage": lambda d: d["state"].__setitem__("pending", [{"id": 1}]),
    "cache_number": lambda d: d["state"].__setitem__("cache", 5),
    "front_error_text": EDITS["front_error_text"],
}


@pytest.mark.parametrize("kind", list(BUG_EDITS))
def test_resume_on_malformed_checkpoint_state(base_run, tmp_path, kind):
    d = _edited(base_run, tmp_path / "e", BUG_EDITS[kind])
    before = snapshot(d)
    code, out, err = cli(["resume", d, "--budget-evals", "60", "--time-limit", "20", "--quiet"])
    assert_user_error((code, out, err))
    assert snapshot(d) == before


def test_report_on_checkpoint_with_list_config(base_run, tmp_path):
    d = _edited(base_run, tmp_path / "e", BUG_EDITS["config_list"])
    assert_user_error(cli(["report", d]))


@pytest.mark.parametrize("args", [
    ["--target", "exp2", "--domain", "0", "2000"],
    ["--target", "mpmath:log", "--domain", "-1", "1"],
])
def test_run_on_domain_where_target_is_not_finite(tmp_path, tiny_toml, args):
    rd = tmp_path / "never"
    assert_user_error(cli(["run", "--config", tiny_toml, "--run-dir", rd, *args, *TINY_ARGS]), "finite")
    assert not rd.exists()


@pytest.mark.parametrize("domain", [["1e-46", "2e-46"], ["1e39", "1e40"]])
def test_run_on_domain_without_float32_values(tmp_path, tiny_toml, domain):
    rd = tmp_path / "never"
    assert_user_error(cli(["run", "--config", tiny_toml, "--run-dir", rd, "--domain", *domain, *TINY_ARGS]))
    assert not rd.exists()


def test_export_unknown_language(base_run):
    before = snapshot(base_run)
    assert_user_error(cli(["export", base_run, "--lang", "fortran"]), "fortran")
    assert snapshot(base_run) == before


@pytest.mark.parametrize("args,words", [
    (["run", "--run-dir", "{d}", "--workers", "1", "--quiet"], ["already holds a run"]),
    (["resume", "{d}", "--workers", "-1", "--quiet"], ["workers"]),
    (["resume", "{d}", "--budget-evals", "0", "--quiet"], ["budget"]),
    (["resume", "{d}", "--time-limit", "-1", "--quiet"], ["time-limit"]),
    (["export", "{d}", "--max-ulp", "1e-12", "--quiet"], ["within"]),
    (["export", "{d}", "--max-ulp", "-1", "--quiet"], ["max-ulp"]),
    (["export", "{d}", "--max-ulp", "nan", "--quiet"], ["max-ulp"]),
    (["export", "{d}", "--max-ops", "-1", "--quiet"], ["operations"]),
    (["export", "{d}", "--lang", "fortran"], ["fortran"]),
    (["export", "{d}", "--exhaustive", "--max-ulp", "1e-12", "--quiet"], ["within"]),
    (["verify", "{d}", "--max-ops", "-1", "--quiet"], ["no program"]),
    (["report", "{d}", "--frob"], ["frob"]),
])
def test_failed_command_changes_no_file(base_run, args, words):
    before = snapshot(base_run)
    assert_user_error(cli([a.format(d=base_run) for a in args]), *words)
    assert snapshot(base_run) == before


def test_failed_run_with_bad_config_changes_no_file(base_run, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("budget_evals = 0\n")
    before = snapshot(base_run)
    assert_user_error(cli(["run", "--config", cfg, "--run-dir", base_run, "--quiet"]), "budget")
    assert snapshot(base_run) == before


def test_errors_in_a_real_process(base_run, tmp_path):
    """The installed command itself: one line on stderr, status 2, no traceback."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text("frobnicate = 1\n")
    g = _garbage_dir(base_run, tmp_path / "g", b"\x00garbage")
    cases = [
        (["run", "--target", "nosuch", "--quiet"], "unknown target"),
        (["run", "--config", cfg, "--quiet"], "frobnicate"),
        (["report", g], "checkpoint"),
        (["export", base_run, "--lang", "fortran"], "fortran"),
    ]
    before = snapshot(base_run)
    for args, word in cases:
        assert_user_error(cli_subprocess(args, tmp_path), word)
    assert snapshot(base_run) == before
    assert not (tmp_path / "runs").exists()


def test_targets_lists_builtins():
    code, out, err = cli(["targets"])
    assert code == 0 and not err
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    for name in ("exp2", "exp", "log", "log2", "erf"):
        assert name in names
    exp2 = next(line for line in out.splitlines() if line.startswith("exp2 "))
    assert "[0, 1]" in exp2


# --- end to end -----------------------------------------------------------------------------------
WRAPPER = r"""
#include "{header}"
void run_all(const float *x, float *y, long n)
{{
    for (long i = 0; i < n; i++) y[i] = {name}(x[i]);
}}
"""


def _c_kernel(c_file: Path, name: str, workdir: Path):
    wrapper = workdir / f"wrap_{name}.c"
    wrapper.write_text(WRAPPER.format(header=c_file.resolve(), name=name))
    lib = workdir / f"lib{name}.so"
    subprocess.run([CC, "-O2", "-ffp-contract=off", "-fPIC", "-shared", "-o", str(lib), str(wrapper), "-lm"],
                   check=True, capture_output=True, text=True)
    so = ctypes.CDLL(str(lib))
    so.run_all.restype = None
    so.run_all.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]

    def fn(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        y = np.empty_like(x)
        so.run_all(x.ctypes.data, y.ctypes.data, x.size)
        return y

    return fn


def _inputs(lo: float, hi: float, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    oa, ob = to_ordinal(np.array([lo, hi], np.float32), "float32")
    x = np.concatenate([rng.uniform(lo, hi, n // 2).astype(np.float32),
                        from_ordinal(rng.integers(oa, ob + 1, n - n // 2 - 4), "float32"),
                        np.array([lo, hi, np.nextafter(np.float32(hi), np.float32(0)), -0.0], np.float32)])
    assert x.size == n and np.all((x >= lo) & (x <= hi))
    return x


@pytest.mark.skipif(CC is None, reason="no C compiler")
def test_end_to_end_run_report_export_c(tmp_path, tiny_toml):
    rd = tmp_path / "run"
    code, out, err = cli(["run", "--config", tiny_toml, "--target", "exp2", "--domain", "0", "1",
                          "--seed", "2", "--run-dir", rd, *TINY_ARGS])
    assert code == 0, err
    assert "run directory" in out and (rd / checkpoint.NAME).exists()

    code, out, err = cli(["report", rd])
    assert code == 0, err
    lines = out.splitlines()
    assert "exp2" in lines[0] and "candidates 60" in out
    header = next(i for i, line in enumerate(lines) if "max ULP" in line)
    rows = [line.split() for line in lines[header + 1:] if line.strip()]
    record = load_run(str(rd))
    assert len(rows) == len(record.front) >= 1
    assert [float(r[0]) for r in rows] == [e.cost for e in record.front]

    code, out, err = cli(["export", rd, "--lang", "c", "--max-ulp", "1e9", "--quiet"])
    assert code == 0, err
    c_file = rd / "exports" / "exp2_f32.c"
    assert c_file.exists() and f"wrote {c_file}" in out
    # the most accurate program as well (the cheapest within 1e9 ULP may be a bare constant)
    code, out, err = cli(["export", rd, "--lang", "c", "--max-ops", "6", "--max-ulp", "1e9", "--name", "best",
                          "--out", tmp_path / "best.c", "--quiet"])
    assert code == 0, err

    for path, name in ((c_file, "exp2_f32"), (tmp_path / "best.c", "best")):
        # compiles on its own, warnings as errors
        subprocess.run([CC, "-O2", "-ffp-contract=off", "-Wall", "-Werror", "-c", "-x", "c", str(path),
                        "-o", str(tmp_path / f"{name}.o")], check=True, capture_output=True, text=True)
        verified = json.loads(path.with_name(path.name + ".verify.json").read_text())
        entry = next(e for e in record.best_per_cost.values() if e.id == verified["candidate"])
        program = record.program(entry)
        fn = _c_kernel(path, name, tmp_path)
        x = _inputs(0.0, 1.0, 100_000)
        got = fn(x)
        want = evaluate(program, x, "float32")
        same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
        assert same.all(), (name, x[~same][:5], got[~same][:5], want[~same][:5])
    best = next(e for e in record.best_per_cost.values()
                if e.id == json.loads((tmp_path / "best.c.verify.json").read_text())["candidate"])
    assert best.cost >= 1  # a program that reads x was compared, not only a constant


def test_export_to_a_pipe_says_what_it_verifies_in_whole_lines(base_run, tmp_path):
    # click's bar draws nothing to a pipe and ends without a newline, which ran into the next line of a log
    code, out, err = cli(["export", base_run, "--lang", "c", "--max-ulp", "1e9", "--out", tmp_path / "e.c"])
    assert code == 0, err
    lines = err.splitlines()
    assert lines and all(line.startswith("verifying ") and line.endswith(" inputs") for line in lines)
    assert err.endswith("\n")
