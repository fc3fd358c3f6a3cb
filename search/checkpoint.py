"""Checkpoints: the engine state plus what identifies the problem, as versioned JSON.

Written atomically (temp file, fsync, rename); the previous checkpoint is kept as
``checkpoint.json.bak``.  Loading checks the format version and the problem hash, and falls back
to the backup when the main file is unreadable.  Never pickle: a run directory from someone else
is only ever parsed as JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fitness.atomic import atomic_write_text

FORMAT_VERSION = 2  # 2: islands, typed cache keys, hits by kind
NAME = "checkpoint.json"


class CheckpointError(ValueError):
    pass


def save(run_dir: str | os.PathLike, payload: dict) -> Path:
    run_dir = Path(run_dir)
    path = run_dir / NAME
    data = dict(payload, format_version=FORMAT_VERSION)
    text = json.dumps(data, separators=(",", ":"))
    if path.exists():
        os.replace(path, run_dir / (NAME + ".bak"))
    atomic_write_text(path, text)
    return path


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path.name} is unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path.name} does not hold a checkpoint object")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path.name} has checkpoint format version {version!r}; this autonumerics reads version "
            f"{FORMAT_VERSION}"
        )
    for key in ("problem_hash", "state", "config"):
        if key not in data:
            raise CheckpointError(f"{path.name} lacks {key!r}")
    return data


def load(run_dir: str | os.PathLike, warn=print) -> dict:
    """The newest readable checkpoint; says so when it had to use the backup."""
    run_dir = Path(run_dir)
    main, backup = run_dir / NAME, run_dir / (NAME + ".bak")
    errors = []
    for path in (main, backup):
        if not path.exists():
            errors.append(f"{path.name} is missing")
            continue
        try:
            data = _read(path)
        except CheckpointError as exc:
            errors.append(str(exc))
            continue
        if path is backup:
            warn(f"warning: {errors[0]}; resuming from the backup {backup.name}")
        return data
    raise CheckpointError(f"no usable checkpoint in {run_dir}: " + "; ".join(errors))
