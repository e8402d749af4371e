"""Where a DPF run keeps things on its stage.

``@{stage}/{run_id}/{partition_id}/...`` holds each partition's artifacts and ``train.log``
(the reference's fixed layout), the partition id as a safe, reversible folder name
(:mod:`shoal.dpf.folders`; kept in ``PartitionInput.folder``). shoal's own bookkeeping lives
beside them, under
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

import dataclasses
import json
import re
from typing import Any

from shoal.dpf.folders import folders_of
from shoal.dpf.specs import PartitionInput
from shoal.errors import ConfigError, RecordError, StagePathError
from shoal.stages import Stage

INTERNAL = "_shoal"
LOG_FILE = "train.log"
FUNCTION_FILE = "function.pkl"


def run_dir(run_id: str) -> str:
    return run_id


def internal(run_id: str, *parts: str) -> str:
    return "/".join([run_id, INTERNAL, *parts])


def run_ids(stage: Stage) -> list[str]:
    """The ids of the runs (DPF and many-model) on ``stage``: the folders with a run definition."""
    suffix = internal("", "run.json")  # "/_shoal/run.json"
    definitions = stage.list("", pattern="run.json")
    return sorted(p[: -len(suffix)] for p in definitions if p.endswith(suffix) and p.count("/") == 2)


#: The longest folder name most file systems take (bytes).
MAX_FOLDER_NAME = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def artifact_dir(run_id: str, folder: str) -> str:
    """``{run_id}/{folder}``: where a partition's artifacts and log go. ``folder`` is the
    partition's (``PartitionInput.folder``/``TaskSpec.folder``, see :mod:`shoal.dpf.folders`),
    never its raw key."""
    return f"{run_id}/{folder}"


def with_folders(parts: list[PartitionInput]) -> list[PartitionInput]:
    """``parts`` with the folder of each decided for the whole run (driver, before the run is
    written): keys that differ only in case get folders of their own."""
    chosen = folders_of(p.partition_id for p in parts)
    return [dataclasses.replace(p, folder=chosen[p.partition_id]) for p in parts]


def check_partition_ids(ids: list[Any]) -> None:
    """Refuse partition ids that are not strings (driver, after partitioning, before any node).

    Every string is a valid key: :mod:`shoal.dpf.folders` gives any key a folder of its own."""
    for pid in ids:
        if not isinstance(pid, str):
            raise ConfigError(
                f"partition id {pid!r} is a {type(pid).__name__}; partition ids are strings. Pass "
                f"partition_ids as their file paths relative to stage_location."
            )


def check_run_id(run_id: object) -> str:
    """A run id names one folder on the stage: refuse anything else before a run starts."""
    if not isinstance(run_id, str) or not run_id.strip():
        raise ConfigError(f"run_id must be a non-empty string, got {run_id!r}")
    problem = None
    if "/" in run_id or "\\" in run_id:
        problem = "contains a path separator ('/' or '\\')"
    elif run_id in (".", ".."):
        problem = "is '.' or '..'"
    elif run_id.startswith((INTERNAL, ".", "~")):
        problem = "starts with '_shoal', '.' or '~' (reserved)"
    elif _CONTROL.search(run_id):
        problem = "contains a control character"
    elif run_id != run_id.strip():
        problem = "starts or ends with white space"
    elif len(run_id.encode("utf-8")) > MAX_FOLDER_NAME:
        problem = f"is longer than {MAX_FOLDER_NAME} bytes"
    if problem:
        raise ConfigError(
            f"run_id {run_id!r} {problem}; a run id names a single folder on the stage. Use letters, "
            f"digits and '_-.', e.g. 'sales_v2'."
        )
    return run_id


def check_flat_filename(filename: object) -> str:
    """Artifact names are flat: a partition id may contain '/', a file name may not."""
    if not isinstance(filename, str) or not filename or filename in (".", ".."):
        raise ConfigError(
            f"artifact filename must be a non-empty file name other than '.' and '..', got {filename!r}; "
            f"use a flat name such as 'model.pkl'"
        )
    if _CONTROL.search(filename):
        raise ConfigError(
            f"artifact filename {filename!r} contains a control character (a NUL byte, a newline...); "
            f"use a plain name such as 'model.pkl'"
        )
    if "/" in filename or "\\" in filename:
        raise StagePathError(
            f"artifact filename {filename!r} contains a path; use a flat name such as 'model.pkl' "
            f"(artifacts go to the partition's own folder already)"
        )
    return filename


def read_json(stage: Stage, path: str, default: Any = None) -> Any:
    """A JSON record of a run, or ``default`` when it is absent.

    A record that is not valid JSON (a truncated write, a disk that filled up) raises
    :class:`~shoal.errors.RecordError` naming the file and the run."""
    if not stage.exists(path):
        return default
    text = stage.read_text(path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise unreadable_record(stage, path, f"not valid JSON: {exc}; {len(text)} bytes") from exc


def unreadable_record(stage: Stage, path: str, why: str) -> RecordError:
    """The error for a run record that cannot be read: which file, which run, what to do."""
    run_id = path.split("/", 1)[0]
    return RecordError(
        f"@{stage.name}/{path}, a record of DPF run {run_id!r}, cannot be read ({why}). It was cut "
        f"short or changed by hand. Restore it from a backup, or start the run again under a new "
        f"run_id (or the same one with on_existing_artifacts='overwrite')."
    )


def write_json(stage: Stage, path: str, value: Any) -> None:
    stage.write_text(path, json.dumps(value, indent=1, sort_keys=True, default=str))
