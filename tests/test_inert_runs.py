"""A run directory from someone else never makes the tool import code, and a user target that
fails is a one-line error naming it and the input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from search import checkpoint
from search.cli import main
from search.config import RunConfig
from search.run import run

TINY = dict(domain=(0.1, 1.0), budget_evals=30, population_size=8, tournament_size=4, n_points=64,
            time_limit=60.0, workers=1, max_ops=4, islands=1)

MODULE = '''
import mpmath
from pathlib import Path
Path({marker!r}).write_text("imported")
def f(x):
    return mpmath.exp(x) - 1
'''

FAILING = '''
import mpmath
def raises(x):
    raise RuntimeError("boom")
def text(x):
    return "a string"
def hangs(x):
    while True:
        pass
def late(x):
    if x > 0.5:
        raise KeyError("no value here")
    return x
'''


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


def _module(tmp_path: Path, monkeypatch, name: str, text: str) -> None:
    (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)


def _cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_a_foreign_run_directory_never_imports_its_target(tmp_path, monkeypatch, capsys):
    rd = tmp_path / "run"
    run(RunConfig(target="exp2", domain=(0.1, 1.0), **{k: v for k, v in TINY.items() if k != "domain"},
                  run_dir=str(rd)), quiet=True)
    marker = tmp_path / "marker.txt"
    _module(tmp_path, monkeypatch, "evilmod", MODULE.format(marker=str(marker)))
    # someone edits the run directory to name their module
    for name in (checkpoint.NAME, checkpoint.NAME + ".bak", "config.json"):
        path = rd / name
        if path.exists():
            data = json.loads(path.read_text())
            (data["config"] if "config" in data else data)["target"] = "evilmod:f"
            path.write_text(json.dumps(data))
    code, out, err = _cli(capsys, "report", str(rd))
    assert code == 0 and "evilmod:f" in out
    for argv in (["resume", str(rd)], ["export", str(rd), "--max-ulp", "1e9", "--quiet"], ["verify", str(rd)],
                 ["report", str(rd), "--plot"], ["bench", str(rd)]):
        code, _out, err = _cli(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)
        assert "--target evilmod:f" in err
    assert not marker.exists(), "a command imported the module a run directory named"
    # a target that is not the run's own is refused too
    code, _out, err = _cli(capsys, "resume", str(rd), "--target", "exp2")
    assert code == 2 and "is not this run's target" in err
    assert not marker.exists()


def test_resume_with_the_user_target_named_again(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "marker.txt"
    _module(tmp_path, monkeypatch, "usermod", MODULE.format(marker=str(marker)))
    rd = tmp_path / "run"
    run(RunConfig(target="usermod:f", **TINY, run_dir=str(rd)), quiet=True)
    code, out, _err = _cli(capsys, "resume", str(rd), "--budget-evals", "40", "--target", "usermod:f", "--quiet")
    assert code == 0 and "40 candidates" in out
    code, out, _err = _cli(capsys, "export", str(rd), "--max-ulp", "1e9", "--target", "usermod:f", "--quiet",
                           "--out", str(tmp_path / "f.c"))
    assert code == 0 and (tmp_path / "f.c").exists()


@pytest.mark.parametrize("fn,expected", [
    ("raises", "user target failing:raises at x = 0.10000000149011612 raised RuntimeError: boom"),
    ("text", "user target failing:text at x = 0.10000000149011612 returned str, not a number"),
    ("late", "raised KeyError: 'no value here'"),
    ("hangs", "user target failing:hangs at x = 0.10000000149011612 did not return within 0.5 s"),
])
def test_a_failing_user_target_is_a_one_line_error(tmp_path, monkeypatch, capsys, fn, expected):
    import fitness.targets

    monkeypatch.setattr(fitness.targets, "USER_CALL_SECONDS", 0.5)
    _module(tmp_path, monkeypatch, "failing", FAILING)
    code, _out, err = _cli(capsys, "run", "--target", f"failing:{fn}", "--domain", "0.1", "1", "--time-limit", "5",
                           "--workers", "1", "--run-dir", str(tmp_path / "r"), "--quiet")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert expected in err, err
    assert not (tmp_path / "r").exists()  # a bad problem leaves no run directory behind


def test_a_system_function_as_target_is_a_one_line_error(tmp_path, capsys):
    code, _out, err = _cli(capsys, "run", "--target", "os:system", "--domain", "0", "1", "--time-limit", "5",
                           "--run-dir", str(tmp_path / "r"), "--quiet")
    assert code == 2 and err.count("\n") == 1 and "user target os:system at x = 0.0 raised TypeError" in err


def test_numbers_in_messages_are_plain(tmp_path, capsys):
    code, _out, err = _cli(capsys, "run", "--target", "exp", "--domain", "0", "800", "--time-limit", "5",
                           "--run-dir", str(tmp_path / "r"), "--quiet")
    assert code == 2 and "np.float" not in err and "exp is not finite at x = " in err
