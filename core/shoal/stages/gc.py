"""Sweep what killed writers left on a stage: ``.shoal-tmp-*`` files of interrupted writes.

Atomic writes (``stage.open("w")``, ``write_bytes``) and partition attempts write under names
starting with :data:`~shoal.stages.backend.TEMP_PREFIX` and rename on success. A writer killed
mid-write leaves its temporary file behind; listings skip it, but it takes space. DPF sweeps its
own run's folder when the run ends and on resume; :func:`sweep_temp_files` (``shoal stage gc``)
sweeps a whole stage. A file younger than ``older_than_s`` may belong to a live writer and is
never touched; a file whose age the backend cannot tell is never touched either.

Runs on the driver (the CLI, or the user's process).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from shoal.errors import ConfigError
from shoal.stages.stage import Stage

#: Temporary files younger than this may still be written: ``shoal stage gc`` leaves them.
DEFAULT_MIN_AGE_S = 300.0


@dataclass(frozen=True)
class SweptFile:
    """A temporary file :func:`sweep_temp_files` removed (or would remove, with ``dry_run``)."""

    path: str  # relative to the stage root
    size: int
    age_s: float


def sweep_temp_files(
    stage: Stage, under: str = "", *, older_than_s: float = DEFAULT_MIN_AGE_S, dry_run: bool = False
) -> list[SweptFile]:
    """Remove the temporary files of interrupted writes under ``under`` (the whole stage by
    default) that are older than ``older_than_s`` seconds; return what was removed."""
    if not isinstance(older_than_s, (int, float)) or older_than_s < 0:
        raise ConfigError(f"older_than_s must be a number of seconds >= 0, got {older_than_s!r}")
    now = time.time()
    swept = []
    for path, size, mtime in stage.backend.temp_files(stage._path(under) if under else ""):
        age = now - mtime
        if age < older_than_s:
            continue
        if not dry_run:
            try:
                stage.backend.remove_file(path)
            except FileNotFoundError:  # its writer finished or another sweep got there first
                continue
        swept.append(SweptFile(path, size, age))
    return swept
