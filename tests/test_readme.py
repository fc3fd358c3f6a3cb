"""The README's examples run, so they cannot go stale."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

from search.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_python_api_examples(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path / "cache"))
    globs = {"getfixture": lambda name: {"tmp_path": tmp_path}[name]}
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, globs=globs,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5
    assert result.failed == 0


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    run_cmd, test_cmd = blocks[0].strip(), blocks[1].strip()
    assert run_cmd.startswith("pip install -e . && autonumerics run ")
    assert test_cmd == "pip install -e '.[test]' && pytest -q"
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_readme_run_command_parses(monkeypatch):
    """The README's search command is accepted by the CLI as written (run without executing)."""
    run_cmd = re.findall(r"```sh\n(.*?)\n```", README, re.S)[0].split("&&", 1)[1].split()
    assert run_cmd[0] == "autonumerics"
    calls = {}
    import search.run as run_module

    monkeypatch.setattr(run_module, "run", lambda config, quiet=False: calls.setdefault("config", config) and (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(SystemExit):
        cli.main(args=run_cmd[1:], standalone_mode=False)
    cfg = calls["config"]
    assert cfg.target == "exp2" and cfg.domain == (0.0, 1.0) and cfg.time_limit == 300


@pytest.mark.parametrize("command", ["run", "resume", "report", "export", "verify", "targets"])
def test_every_documented_command_exists(command):
    assert f"autonumerics {command}" in README
    assert command in cli.commands
