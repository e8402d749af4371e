"""Where a DPF run keeps things on its stage.

``@{stage}/{run_id}/{partition_id}/...`` holds each partition's artifacts and ``train.log``
(the reference's fixed layout). shoal's own bookkeeping lives beside them, under
``{run_id}/_shoal/``:

- ``run.json``: the run's definition (mode, options, pool, job) with its :class:`~shoal.dpf.specs.RunSpec`;
- ``function.pkl``: the user's function, pickled once;
- ``partitions.json``: the partitions (id, index, input files and row groups), written once by
  partitioning;
- ``progress/``: the progress record, appended events (:mod:`shoal.dpf.progress`);
- ``attempts/``: files of attempts still running (:mod:`shoal.dpf.attempts`), swept when a run ends;
- ``input/``: the partitioned input (parquet files), in SQL mode;
- ``cancel``: present when a cancel was requested.

Runs on the driver, the run scheduler and partition workers.
"""

from __future__ import annotations

import json
from typing import Any

from shoal.errors import StagePathError
from shoal.stages import Stage

INTERNAL = "_shoal"
LOG_FILE = "train.log"
FUNCTION_FILE = "function.pkl"


def run_dir(run_id: str) -> str:
    return run_id


def internal(run_id: str, *parts: str) -> str:
    return "/".join([run_id, INTERNAL, *parts])


def partition_dir(run_id: str, partition_id: str) -> str:
    return f"{run_id}/{partition_id}"


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not run_id.strip():
        raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
    if "/" in run_id or run_id in (".", "..") or run_id.startswith(INTERNAL):
        raise ValueError(
            f"run_id {run_id!r} must be a single folder name (no '/', not '.', '..' or '_shoal...')"
        )
    return run_id


def check_flat_filename(filename: object) -> str:
    """Artifact names are flat: a partition id may contain '/', a file name may not."""
    if not isinstance(filename, str) or not filename or filename in (".", ".."):
        raise ValueError(f"artifact filename must be a non-empty name, got {filename!r}")
    if "/" in filename or "\\" in filename:
        raise StagePathError(
            f"artifact filename {filename!r} contains a path; use a flat name such as 'model.pkl' "
            f"(artifacts go to the partition's own folder already)"
        )
    return filename


def read_json(stage: Stage, path: str, default: Any = None) -> Any:
    if not stage.exists(path):
        return default
    return json.loads(stage.read_text(path))


def write_json(stage: Stage, path: str, value: Any) -> None:
    stage.write_text(path, json.dumps(value, indent=1, sort_keys=True, default=str))
