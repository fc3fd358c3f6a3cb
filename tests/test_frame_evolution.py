"""The frame open to evolution: frame constants fitted with the core and moved by mutations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.numpy_backend import evaluate
from dsl.text import parse_program
from fitness.evaluate import fit_and_score, score
from fitness.frames import (FITTED, MOVED, SPLIT_RANGE, FrameError, compose, evolvable, evolvable_constants,
                            frame_constants, get_frame, mutate_constants)
from fitness.problem import Problem, ProblemSpec
from search import checkpoint
from search.cache import frame_key, functional_hash
from search.cli import cli
from search.config import ConfigError, RunConfig
from search.report import front_table
from search.results import RunDirError, load_run
from search.run import resume, run

LOG = dict(target="log", domain=(0.25, 4.0), frame="log", frame_evolve=True, population_size=12,
           tournament_size=4, n_points=256, max_ops=6, time_limit=300.0, workers=1, seed=3, islands=1)
CORE = "v1 = param -0.5\nv2 = param 0.33\nv3 = param -0.25\nv4 = fma x v3 v2\nv5 = fma x v4 v1\nreturn v5\n"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


# --- moves between valid frames ------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), frame=st.sampled_from(["exp", "log", "log2"]), steps=st.integers(1, 6))
def test_frame_moves_stay_valid_and_keep_split_constants_exact(seed, frame, steps):
    rng = np.random.default_rng(seed)
    consts = evolvable_constants(frame)
    for _ in range(steps):
        new, name = mutate_constants(frame, consts, rng)
        assert name in MOVED[frame]
        assert set(new) == set(evolvable(frame))
        frame_constants(frame, new)  # passes the frame's exactness checks
        changed = {k for k in new if new[k] != consts[k]}
        assert name in changed and changed <= {name, *FITTED[frame]}
        if "LN2_HI" in changed:
            m, _ = math.frexp(new["LN2_HI"])
            assert m * 2**15 == int(m * 2**15)
            assert abs(mpmath.mpf(new["LN2_HI"]) + mpmath.mpf(new["LN2_LO"]) - mpmath.ln2) < 1e-22
        if "INV_LN2_HI" in changed:
            assert new["INV_LN2_HI"] == float(np.float32(new["INV_LN2_HI"]))
            assert abs(mpmath.mpf(new["INV_LN2_HI"]) + mpmath.mpf(new["INV_LN2_LO"]) - 1 / mpmath.ln2) < 1e-22
        if "SPLIT" in new:
            lo, hi = SPLIT_RANGE[frame]
            assert new["SPLIT"] == consts["SPLIT"] or lo <= new["SPLIT"] <= hi
        consts = new


def test_log_split_must_exceed_the_high_part_of_ln2():
    with pytest.raises(FrameError, match="SPLIT must exceed LN2_HI"):
        frame_constants("log", {"SPLIT": 0.69})


def test_a_frame_without_evolvable_constants_is_refused():
    assert evolvable("exp2") == ()
    assert mutate_constants("exp2", {}, np.random.default_rng(0)) == ({}, "")
    with pytest.raises(ValueError, match="no constants to evolve"):
        ProblemSpec("exp2", -126, 127.5, frame="exp2", frame_evolve=True)
    with pytest.raises(ValueError, match="needs a frame"):
        ProblemSpec("log", 0.5, 1.0, frame_evolve=True)
    with pytest.raises(ConfigError, match="needs a frame"):
        RunConfig(target="log", domain=(0.5, 1.0), frame_evolve=True)


def test_cli_refuses_frame_evolution_without_a_frame(tmp_path):
    from click.testing import CliRunner

    res = CliRunner().invoke(cli, ["run", "--target", "log", "--domain", "0.5", "1", "--frame-evolve",
                                   "--run-dir", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 2
    assert "needs a frame" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


def test_problem_hash_of_a_fixed_frame_is_unchanged_by_the_option():
    spec = ProblemSpec("log", 0.25, 4.0, frame="log", n_points=64)
    assert "frame_evolve" not in spec.to_dict()  # checkpoints written before the option still resume
    assert ProblemSpec("log", 0.25, 4.0, frame="log", n_points=64, frame_evolve=True).to_dict()["frame_evolve"]


# --- fitting and scoring -------------------------------------------------------------------------
def test_fit_tunes_the_low_part_with_the_core_and_scores_in_the_candidates_frame():
    spec = ProblemSpec("log", 0.25, 4.0, frame="log", n_points=512, frame_evolve=True)
    problem = Problem.build(spec)
    moved = dict(evolvable_constants("log"), SPLIT=float(np.float32(0.75)))
    scored = fit_and_score(parse_program(CORE), problem, seed=1, frame_constants=moved)
    assert set(scored.frame) == set(evolvable("log"))
    assert scored.frame["SPLIT"] == moved["SPLIT"] and scored.frame["LN2_HI"] == moved["LN2_HI"]
    assert scored.frame["LN2_LO"] == float(np.float32(scored.frame["LN2_LO"]))  # what float32 code uses
    # the stored program and frame constants reproduce the score exactly
    again = score(scored.program, problem, scored.frame)
    assert again.error == scored.error
    full = compose("log", scored.program, scored.frame)
    assert np.array_equal(evaluate(full, problem.x, "float32"), evaluate(problem.realize(scored.program, scored.frame),
                                                                         problem.x, "float32"), equal_nan=True)
    # another SPLIT is another function of x: the frame is really in the scored program
    other = score(scored.program, problem, evolvable_constants("log"))
    assert other.error != scored.error


def test_one_core_in_two_frames_has_two_cache_keys():
    prog = parse_program(CORE)
    probes = np.linspace(-0.29, 0.41, 17)
    a, b = evolvable_constants("log"), dict(evolvable_constants("log"), SPLIT=0.75)
    assert frame_key(a) != frame_key(b) and frame_key(None) == ""
    assert functional_hash(prog, probes) + frame_key(a) != functional_hash(prog, probes) + frame_key(b)


# --- the search ----------------------------------------------------------------------------------
def _state(run_dir: Path) -> dict:
    st = json.loads((run_dir / checkpoint.NAME).read_text())["state"]
    st.pop("elapsed")
    st["history"] = [h[:1] + h[2:] for h in st["history"]]
    return st


def test_search_evolves_the_frame_and_resumes_bit_exactly(tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    run(RunConfig(**LOG, budget_evals=200, run_dir=str(whole)), quiet=True)
    run(RunConfig(**LOG, budget_evals=80, run_dir=str(parts)), quiet=True)
    resume(parts, budget_evals=200, quiet=True)
    a, b = _state(whole), _state(parts)
    assert a == b
    # frame moves happened and their programs were fitted (children inheriting them: below)
    moved = [e for e in a["cache"]["entries"].values()
             if any(e["frame"][k] != get_frame("log").constants[k] for k in MOVED["log"] if k in e["frame"])]
    assert moved
    record = load_run(str(whole))
    problem = Problem.build(record.config.problem_spec)
    # a failed dense check adds hard points to the validation set: entries scored after it carry
    # them, earlier ones do not, and a checked entry keeps its dense error when that is larger
    problems = [problem] + ([problem.with_hard_points(a["hard_points"])] if a["hard_points"] else [])
    for entry in record.front:
        assert set(entry.frame) == set(evolvable("log"))
        # the record's complete program is the one the search scored
        y = evaluate(record.program(entry), problem.x, "float32")
        ref = evaluate(problem.realize(record.core(entry), entry.frame), problem.x, "float32")
        assert np.array_equal(y, ref, equal_nan=True)
        scores = [score(record.core(entry), p, entry.frame).error for p in problems]
        allowed = set(scores) | ({max(e, entry.dense_ulp) for e in scores} if entry.dense_ulp is not None else set())
        assert entry.error in allowed, (entry.error, scores, entry.dense_ulp)


def test_run_record_refuses_invalid_frame_constants(tmp_path):
    run(RunConfig(**LOG, budget_evals=20, run_dir=str(tmp_path / "r")), quiet=True)
    record = load_run(str(tmp_path / "r"))
    table = front_table(record)
    assert "frame constants that evolved away from the 'log' frame's defaults:" in table
    assert all(f"{e.cost:>4g}  " in table.split("defaults:")[1] for e in record.front)
    entry = record.front[0].replace(frame={"LN2_HI": math.log(2)})  # too many bits for an exact k * LN2_HI
    with pytest.raises(RunDirError, match="invalid frame constants"):
        record.program(entry)
    with pytest.raises(RunDirError, match="invalid frame constants"):
        record.program(entry.replace(frame={"NOPE": 1.0}))


def test_resume_refuses_broken_frame_constants_in_one_line(tmp_path, capsys):
    from search.cli import main

    rd = tmp_path / "r"
    run(RunConfig(**LOG, budget_evals=30, run_dir=str(rd)), quiet=True)
    data = json.loads((rd / checkpoint.NAME).read_text())
    data["state"]["islands"][0]["population"][0]["frame"] = {"SPLIT": 0.6, "LN2_HI": 0.693145751953125}  # SPLIT below LN2_HI
    (rd / checkpoint.NAME).write_text(json.dumps(data))
    (rd / (checkpoint.NAME + ".bak")).unlink(missing_ok=True)
    with pytest.raises(SystemExit) as info:
        main(["resume", str(rd), "--budget-evals", "60", "--quiet"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "SPLIT must exceed LN2_HI" in err


def test_children_inherit_a_moved_frame():
    """Children of a program whose frame moved carry its frame (asked candidates, fake scores)."""
    from search.engine import Engine

    cfg = RunConfig(**LOG, budget_evals=400, run_dir="unused")
    eng = Engine(cfg, Problem.build(cfg.problem_spec))
    default = get_frame("log").constants["SPLIT"]
    inherited = 0
    rng = np.random.default_rng(0)
    while eng.state.n_told < 400:
        for c in eng.ask(1):
            if c.mutation not in ("frame", "random") and c.frame["SPLIT"] != default:
                inherited += 1
            eng.tell([{"id": c.id, "program": c.program, "error": float(rng.uniform(1, 100)),
                       "cost": 1.0 + len(c.program.splitlines()) % 6, "frame": c.frame}])
    assert inherited > 0

