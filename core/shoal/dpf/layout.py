"""Where a DPF run keeps things on its stage.

``@{stage}/{run_id}/{partition_id}/...`` holds each partition's artifacts and ``train.log``
(the reference's fixed layout). shoal's own bookkeeping lives beside them, under
``{run_id}/_shoal/``:

- ``run.json``: the run's definition (function, mode, options) and its status/heartbeat;
- ``partitions.json``: the partitions (id, index, input files), written once by partitioning;
- ``partitions/<index>.json``: each partition's latest record (status, attempts, timings, error);
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


def run_dir(run_id: str) -> str:
    return run_id


def internal(run_id: str, *parts: str) -> str:
    return "/".join([run_id, INTERNAL, *parts])


def partition_dir(run_id: str, partition_id: str) -> str:
    return f"{run_id}/{partition_id}"


def record_path(run_id: str, index: int) -> str:
    return internal(run_id, "partitions", f"{index:06d}.json")


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
