"""Reading a finished (or running) run directory: its config, front and statistics.

Everything here only parses JSON, and a user target named in the directory is never imported:
a run directory from someone else is safe to report on and export from (commands that need the
target's values, such as export and verify, ask the user to name a user target themselves).  A file that is missing, truncated or altered gives a ``RunDirError`` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dsl.program import Program
from dsl.text import DSLSyntaxError, parse_program
from fitness.problem import float64_inside

from . import checkpoint
from .config import ConfigError, RunConfig
from .front import pareto
from .records import FrontEntry


if TYPE_CHECKING:
    from .engine import EngineState


class RunDirError(ValueError):
    pass


class ExportError(ValueError):
    """No program of the run meets the export's requirements, or the export cannot be written."""


@dataclass(frozen=True)
class RunRecord:
    path: Path
    config: RunConfig
    best_per_cost: dict[float, FrontEntry]
    stats: dict
    history: list[list[float]]

    @property
    def front(self) -> list[FrontEntry]:
        return pareto(self.best_per_cost)

    def core(self, entry: FrontEntry) -> Program:
        """The program the search evolved (inside the frame, for a framed run)."""
        return core_program(entry)

    def program(self, entry: FrontEntry) -> Program:
        """The complete program: the evolved one, composed with the run's frame if it has one."""
        return complete_program(self.config, entry)

    def frame_constants(self, entry: FrontEntry) -> dict[str, float]:
        """The frame constants the entry's program uses that differ from the frame's defaults."""
        if not self.config.frame or not isinstance(entry.frame, dict):
            return {}
        from fitness.frames import get_frame

        defaults = get_frame(self.config.frame).constants
        return {k: float(v) for k, v in entry.frame.items() if float(v) != defaults.get(k)}


def core_program(entry: FrontEntry) -> Program:
    try:
        return parse_program(entry.program)
    except (DSLSyntaxError, KeyError, TypeError) as exc:
        raise RunDirError(f"front entry {entry.id} holds an invalid program: {exc}") from None


def complete_program(config: RunConfig, entry: FrontEntry) -> Program:
    """An entry's program as it runs: the evolved one, inside the run's frame (with the entry's own
    frame constants) if the run has one; in cr mode followed by its one rounding to float32
    (``cvt_f32``: the search scores the float64 value before it)."""
    core = core_program(entry)
    prog = core
    if config.frame:
        from fitness.frames import FrameError, compose

        constants = entry.frame
        try:
            if constants is not None and not isinstance(constants, dict):
                raise FrameError("not a table of constants")
            prog = compose(config.frame, core, constants, float64=float64_inside(config.mode))
        except (FrameError, TypeError, ValueError) as exc:
            raise RunDirError(f"front entry {entry.id} holds invalid frame constants: {exc}") from None
    if float64_inside(config.mode):
        from fitness.cr import rounded_once

        prog = rounded_once(prog)
    return prog


@dataclass(frozen=True)
class Checkpoint:
    """A run directory's newest readable checkpoint, parsed and checked (``read_checkpoint``)."""

    path: Path
    config: RunConfig  # with the target unresolved: a user target is not imported
    state: "EngineState"
    problem_hash: str


def read_checkpoint(path: str | Path, warn=lambda m: None) -> Checkpoint:
    """The one reader of checkpoints: ``resume``, ``report``, ``export`` and ``verify`` accept and
    refuse the same files, with a ``RunDirError`` naming what is wrong."""
    from .engine import EngineState, check_frame_constants

    p = Path(path)
    if not p.is_dir():
        raise RunDirError(f"run directory {p} does not exist")
    try:
        data = checkpoint.load(p, warn=warn)
    except checkpoint.CheckpointError as exc:
        raise RunDirError(str(exc)) from None
    try:
        config = RunConfig.from_dict(data["config"], resolve_target=False)  # never imports a user target
    except (ConfigError, TypeError) as exc:
        raise RunDirError(f"{p / checkpoint.NAME}: invalid config: {exc}") from None
    if not isinstance(data["state"], dict):
        raise RunDirError(f"{p / checkpoint.NAME}: malformed state: not an object")
    try:
        state = EngineState.from_dict(data["state"])
        if config.frame_evolve:
            check_frame_constants(state, config.frame)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{p / checkpoint.NAME}: malformed state: {exc}") from None
    if not isinstance(data["problem_hash"], str):
        raise RunDirError(f"{p / checkpoint.NAME}: malformed problem hash")
    return Checkpoint(p, config, state, data["problem_hash"])


def load_run(path: str) -> RunRecord:
    ck = read_checkpoint(path)
    st = ck.state
    best = dict(st.best_per_cost)
    stats = {"n_told": st.n_told, "n_evaluated": st.n_evaluated, "n_hits": st.n_hits, "n_failed": st.n_failed,
             "elapsed": st.elapsed, "restarts": st.restarts, "hits": dict(st.hits), "islands": len(st.islands)}
    history = [list(map(float, h)) for h in st.history]
    return RunRecord(ck.path, ck.config, best, stats, history)


