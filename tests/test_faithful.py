"""faithful mode: float32 functions computed in float64, scored by how much of the interval that
rounds to either float32 neighbour of the exact value they use (below 1: within 1 ULP), searched,
verified and exported end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.numpy_backend import evaluate
from fitness.cr import cr_ratio, rounding_room
from fitness.metrics import ulp_errors
from fitness.problem import Problem, ProblemSpec
from fitness.reference import Reference, mp_values
from fitness.targets import get_target
from search.cli import main
from search.config import ConfigError, RunConfig


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUTONUMERICS_CACHE", str(tmp_path_factory.getbasetemp() / "refcache"))


def _exact_values(rng, n: int) -> Reference:
    """Exact values anywhere in binades, on float32 values, next to them and at powers of two."""
    v = np.concatenate([rng.uniform(1, 2, n), np.full(n // 4, 2.0), np.full(n // 4, 1.0),
                        -rng.uniform(1, 2, n // 4)]).astype(np.float32).astype(np.float64)
    spacing = np.spacing(v.astype(np.float32)).astype(np.float64)
    hi = v + rng.uniform(-0.5, 0.5, len(v)) * spacing * np.where(rng.random(len(v)) < 0.5, 1, 0.5)
    hi[: n // 8] = v[: n // 8]  # exactly a float32: only itself is within 1 ULP
    hi[n // 8: n // 4] = v[n // 8: n // 4] + spacing[n // 8: n // 4] * 2.0**-30  # just above one
    return Reference(hi, np.zeros_like(hi))


def test_faithful_ratio_below_one_exactly_where_the_result_is_faithful():
    """r < 1 holds exactly for the float64 values whose float32 rounding is a float32 neighbour of
    the exact value (itself if it is a float32), in the middle of a binade, at its power-of-two
    edges, and where the exact value is a float32 or just beside one; each such result is within
    1 ULP (``ulp_errors``, the measure every report uses).  The converse fails only just above a
    power of two, where the ULP (the binade's spacing) also admits the float below it."""
    rng = np.random.default_rng(0)
    ref = _exact_values(rng, 400)
    spacing = np.spacing(ref.hi.astype(np.float32)).astype(np.float64)
    room = rounding_room(ref, faithful=True)
    for scale in (0.4, 1.2, 2.0, 3.0):
        y = ref.hi[None, :] + rng.uniform(-1, 1, (20, len(ref.hi))) * spacing * scale
        for row in y:
            r = cr_ratio(row, ref, room)
            w = row.astype(np.float32)
            err = ulp_errors(w.astype(np.float64), ref.hi, ref.lo, "float32")
            d = (ref.hi - w.astype(np.float64)) + ref.lo  # f - w
            up = np.nextafter(w, np.float32(np.inf)).astype(np.float64)
            down = np.nextafter(w, np.float32(-np.inf)).astype(np.float64)
            faithful = (d == 0) | ((d > 0) & (up > ref.hi)) | ((d < 0) & (down < ref.hi))
            assert np.array_equal(r < 1.0, faithful), scale
            assert np.all(err[r < 1.0] < 1.0)
    assert np.all(room[1] >= rounding_room(ref)[1]) and np.all(room[2] >= rounding_room(ref)[2])
    # the faithful room is at least half an ulp on each side (no input is hard)
    assert np.all(np.minimum(room[1], room[2]) >= 0.25 * spacing)


def test_faithful_room_at_the_ends_of_the_float32_range():
    """Beside +-FLT_MAX the room is finite on both sides (the boundary half an ulp beyond it)."""
    big = np.array([3.4028234663852886e38 * (1 - 2.0**-30), -3.4028234663852886e38 * (1 - 2.0**-30)])
    for faithful in (False, True):
        _, below, above = rounding_room(Reference(big, np.zeros(2)), faithful)
        assert np.all(np.isfinite(below)) and np.all(np.isfinite(above))
        assert np.all(below > 0) and np.all(above > 0)


def test_faithful_problem_computes_in_float64_without_hard_inputs():
    p = Problem.build(ProblemSpec("exp2", 0.5, 1.0, mode="faithful", n_points=256))
    cr = Problem.build(ProblemSpec("exp2", 0.5, 1.0, mode="cr", n_points=256))
    assert p.spec.eval_dtype == "float64" and p.x.dtype == np.float64
    assert np.array_equal(p.x.astype(np.float32).astype(np.float64), p.x)
    assert len(p.x) < len(cr.x)  # cr adds the inputs nearest a rounding midpoint; faithful has none
    with pytest.raises(ValueError, match="float32"):
        ProblemSpec("exp2", 0.0, 1.0, dtype="float64", mode="faithful")


def test_float64_frames_take_cr_or_faithful_mode():
    RunConfig(target="sin", domain=(-1e30, 1e30), frame="sin", mode="faithful").validate()
    with pytest.raises(ConfigError, match="--mode cr or --mode faithful"):
        RunConfig(target="sin", domain=(-1e30, 1e30), frame="sin", mode="ulp").validate()


def _cli(args: list[str]) -> None:
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code


def test_faithful_run_report_export(tmp_path, capsys):
    """A faithful search keeps every fitness and validation point within 1 ULP after the final
    rounding; its export is checked within 1 ULP and computes as the program does."""
    rd = tmp_path / "run"
    _cli(["run", "--target", "exp2", "--domain", "0.5", "1", "--mode", "faithful", "--budget-evals", "300",
          "--seed", "1", "--max-ops", "10", "--workers", "1", "--quiet", "--run-dir", str(rd)])
    from search.results import load_run

    record = load_run(str(rd))
    best = min(record.front, key=lambda e: e.error)
    assert best.error < 1.0
    prog = record.program(best)
    assert prog.nodes[prog.output].op == "cvt_f32"
    x = np.random.default_rng(2).uniform(0.5, 1, 20_000).astype(np.float32).astype(np.float64)
    ref = mp_values(get_target("exp2"), x)
    y = evaluate(prog, x, "float64")
    assert np.max(ulp_errors(y, ref.hi, ref.lo, "float32")) < 1.0
    _cli(["report", str(rd)])
    assert "faithful ratio" in capsys.readouterr().out
    out = tmp_path / "e.c"
    _cli(["export", str(rd), "--lang", "c", "--out", str(out), "--quiet"])
    rep = json.loads(out.with_name("e.c.verify.json").read_text())
    assert rep["max_ulp"] < 1.0 and "float64 inside" in rep["evaluator"]
    src = out.read_text()
    assert "faithful mode" in src and "static inline float exp2_f32(float x_in)" in src
    lib = tmp_path / "lib"
    _cli(["export", "--lib", str(lib), str(rd), "--quiet"])  # the library takes a faithful run too
    header = (lib / "autonumerics_f32.h").read_text()
    assert "exp2_f32" in header and "x in [0.5, 1.0]" in header
