"""Run configuration: what to search for and how hard, fixed for the life of a run.

A ``RunConfig`` is built from CLI options or a TOML file (same keys as the CLI long options, with
``-`` or ``_``), validated once, and written into the run directory as ``config.json``.  It never
changes during a run; ``resume`` may only extend budgets and change the worker count.
"""

from __future__ import annotations

import math
import os

import numpy as np
from dataclasses import asdict, dataclass, field, fields, replace

from dsl.ops import CORE_OPS, op_set_from_names
from fitness.problem import MODES, ProblemSpec, float64_inside
from fitness.targets import Target, TargetError, check_domain, check_target_name, get_target, is_user_target

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib

COST_MODELS = ("ops", "llvm", "xla")


class ConfigError(ValueError):
    """A user mistake in the run's configuration (reported as one line, exit status 2)."""


@dataclass(frozen=True)
class RunConfig:
    target: str = "exp2"
    domain: tuple[float, float] = (0.0, 1.0)
    dtype: str = "float32"
    mode: str = "ulp"
    max_ops: int = 10
    ops: tuple[str, ...] = CORE_OPS
    population_size: int = 64
    tournament_size: int = 8
    budget_evals: int | None = None  # None: no candidate budget (the time limit ends the run)
    time_limit: float = 600.0
    target_error: float | None = None
    seed: int = 0
    workers: int = 1
    batch_size: int = 1
    n_points: int = 2048
    cost_model: str = "ops"
    checkpoint_every: float = 60.0
    eval_timeout: float = 120.0
    scheduler: str | None = None
    dask_local: int | None = None
    run_dir: str = ""
    caching: bool = True
    frame: str = ""
    frame_evolve: bool = False
    islands: int = 4
    migration_every: int = 400  # candidates between migrations (each island gets its neighbour's front)
    stagnation: int = 6000  # candidates without a front improvement before an island restarts
    epoch_size: int | None = None  # candidates per island epoch in a worker; 0: candidates; None: auto
    # False for a configuration read from a run directory: a user target is then checked by name
    # only, never imported (a run directory from someone else must not run code); not saved
    resolve_target: bool = field(default=True, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        lo, hi = self.domain
        try:
            if self.resolve_target or not is_user_target(self.target):
                check_domain(get_target(self.target), float(lo), float(hi))
            else:
                check_target_name(self.target)
                check_domain(Target(self.target, None, None, (0.0, 1.0)), float(lo), float(hi))
        except TargetError as exc:
            raise ConfigError(str(exc)) from None
        if self.dtype in ("float32", "float64"):
            from fitness.points import clamp_domain

            with np.errstate(over="ignore"):
                a, b = clamp_domain(float(lo), float(hi), self.dtype)
            if not (math.isfinite(a) and math.isfinite(b) and a <= b):
                raise ConfigError(f"domain [{lo}, {hi}] holds no finite {self.dtype} value")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.cost_model not in COST_MODELS:
            raise ConfigError(f"cost must be one of {', '.join(COST_MODELS)}, got {self.cost_model!r}")
        try:
            op_set_from_names(self.ops)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        checks = [
            (self.max_ops >= 1, "max-ops must be at least 1"),
            (self.population_size >= 2, "population size must be at least 2"),
            (2 <= self.tournament_size <= self.population_size, "tournament size must be in [2, population size]"),
            (self.budget_evals is None or self.budget_evals >= 1, "budget-evals must be at least 1"),
            (self.time_limit > 0 and math.isfinite(self.time_limit), "time-limit must be a positive number of seconds"),
            (self.target_error is None or self.target_error >= 0, "target-error must be >= 0"),
            (self.workers >= 1, "workers must be at least 1"),
            (self.batch_size >= 1, "batch-size must be at least 1"),
            (self.n_points >= 16, "n-points must be at least 16"),
            (self.checkpoint_every > 0, "checkpoint-every must be positive"),
            (self.eval_timeout > 0, "eval-timeout must be positive"),
            (self.seed >= 0, "seed must be >= 0"),
            (self.islands >= 1, "islands must be at least 1"),
            (self.migration_every >= 1, "migration-every must be at least 1"),
            (self.stagnation >= 1, "stagnation must be at least 1"),
            (self.epoch_size is None or self.epoch_size >= 0, "epoch-size must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self.problem_spec  # noqa: B018 - validates the frame name
        if self.frame:
            from fitness.frames import get_frame

            if get_frame(self.frame).target != self.target:
                raise ConfigError(f"frame {self.frame!r} is for target {get_frame(self.frame).target!r}, not {self.target!r}")
            if get_frame(self.frame).float64_only and not float64_inside(self.mode):
                raise ConfigError(f"frame {self.frame!r} computes in float64 (its reduction is exact only there): "
                                  "use --mode cr or --mode faithful (float32 in and out, float64 inside)")

    @property
    def problem_spec(self) -> ProblemSpec:
        try:
            return ProblemSpec(self.target, float(self.domain[0]), float(self.domain[1]), self.dtype, self.mode,
                               self.n_points, self.frame, self.frame_evolve)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["resolve_target"]
        d["domain"] = list(self.domain)
        d["ops"] = list(self.ops)
        return d

    @classmethod
    def from_dict(cls, data: dict, resolve_target: bool = True) -> "RunConfig":
        """Options from a TOML table or a run directory's JSON; with ``resolve_target=False`` (a
        run directory's word) a user target is checked by name and not imported."""
        if not isinstance(data, dict):
            raise ConfigError(f"a configuration must be a table of options, not {type(data).__name__}")
        names = {f.name for f in fields(cls)} - {"resolve_target"}
        clean = {}
        for key, value in data.items():
            k = key.replace("-", "_")
            if k == "cost":
                k = "cost_model"
            if k not in names:
                raise ConfigError(f"unknown configuration key {key!r}")
            clean[k] = value
        if "domain" in clean:
            dom = clean["domain"]
            if not (isinstance(dom, (list, tuple)) and len(dom) == 2 and all(isinstance(v, (int, float)) for v in dom)):
                raise ConfigError("domain must be a list of two numbers [lo, hi]")
            clean["domain"] = (float(dom[0]), float(dom[1]))
        if "ops" in clean:
            if not (isinstance(clean["ops"], (list, tuple)) and all(isinstance(o, str) for o in clean["ops"])):
                raise ConfigError("ops must be a list of operation names")
            clean["ops"] = tuple(clean["ops"])
        for f in fields(cls):
            if f.name in clean and f.name not in ("domain", "ops"):
                clean[f.name] = _coerce(f.name, f.type, clean[f.name])
        return cls(**clean, resolve_target=resolve_target)

    def replace(self, **changes) -> "RunConfig":
        return replace(self, **changes)


def _coerce(name: str, type_text, value):
    text = str(type_text)
    if value is None:
        if "None" in text:
            return None
        raise ConfigError(f"{name} may not be empty")
    if text.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if text.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if text.startswith("bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if text.startswith("str"):
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    return value


def load_toml(path: str | os.PathLike) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))

