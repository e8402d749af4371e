"""``PartitionContext``: what a partition function gets besides its data, and the artifacts
manager of a finished partition.

Runs on partition workers (context) and wherever a run is inspected (artifacts manager).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cloudpickle

from shoal.dpf import layout
from shoal.dpf.attempts import AttemptFiles
from shoal.dpf.folders import folder_of
from shoal.stages import Stage, resolve_location

T = TypeVar("T")


def _default_write(obj: Any, local_path: str) -> None:
    with open(local_path, "wb") as handle:
        handle.write(cloudpickle.dumps(obj))


def _default_read(local_path: str) -> Any:
    with open(local_path, "rb") as handle:
        return pickle.load(handle)


class PartitionContext:
    """Given to ``func(data_connector, context)`` once per partition attempt.

    Artifacts go to the attempt's own folder first and reach the partition's folder when the
    attempt ends (:mod:`shoal.dpf.attempts`); ``download_from_stage`` sees this attempt's files,
    then the partition's committed ones."""

    def __init__(
        self,
        stage: Stage,
        run_id: str,
        partition_id: str,
        session_runner: Callable[[Callable[[Any], Any]], Any] | None = None,
        files: AttemptFiles | None = None,
        folder: str | None = None,
    ) -> None:
        self._stage = stage
        self._run_id = run_id
        self._partition_id = partition_id
        self._folder = folder or folder_of(partition_id)
        self._session_runner = session_runner
        self._files = files

    def __getstate__(self) -> dict[str, Any]:
        # a context captured by a with_session function travels to the session host: without the
        # worker's session runner and open files, which only make sense in the worker
        return {**self.__dict__, "_session_runner": None, "_files": None}

    @property
    def partition_id(self) -> str:
        return self._partition_id

    @property
    def stage_path_prefix(self) -> str:
        """``@STAGE/run_id/partition_id``: where this partition's artifacts go."""
        return f"@{self._stage.name}/{layout.artifact_dir(self._run_id, self._folder)}"

    def upload_to_stage(
        self, obj: Any, filename: str, write_function: Callable[[Any, str], None] | None = None
    ) -> str:
        """Save ``obj`` as ``filename`` in the partition's folder (cloudpickle unless ``write_function``)."""
        layout.check_flat_filename(filename)
        files = self._files
        if files is not None:
            # a writer that raises part-way commits nothing: the attempt keeps what it had
            with files.writing(filename) as target:
                if target is not None:  # a local-folder stage: straight to the attempt's file
                    (write_function or _default_write)(obj, target)
                    return f"{self.stage_path_prefix}/{filename}"
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, filename)
            (write_function or _default_write)(obj, local)
            data = Path(local).read_bytes()
        if files is not None:
            files.write_bytes(filename, data)
        else:  # outside a run's worker: straight to the partition's folder
            self._stage.write_bytes(f"{layout.artifact_dir(self._run_id, self._folder)}/{filename}", data)
        return f"{self.stage_path_prefix}/{filename}"

    def download_from_stage(
        self, filename: str, stage_path: str | None = None, read_function: Callable[[str], Any] | None = None
    ) -> Any:
        """Load ``filename`` from this partition's folder, or from ``stage_path`` (``@stage/dir``)."""
        layout.check_flat_filename(filename)
        if stage_path is None:
            if self._files is not None:
                data = self._files.read_bytes(filename)
            else:
                path = f"{layout.artifact_dir(self._run_id, self._folder)}/{filename}"
                data = self._stage.read_bytes(path) if self._stage.exists(path) else None
            if data is None:
                raise FileNotFoundError(f"{filename!r} is not in {self.stage_path_prefix}/")
        else:
            stage, folder = resolve_location(stage_path)
            data = stage.read_bytes(f"{folder}/{filename}" if folder else filename)
        if read_function is None:
            return pickle.loads(data)
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, filename)
            Path(local).write_bytes(data)
            return read_function(local)

    def with_session(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(session)`` with the run's session (see docs/dpf.md) and return its result."""
        if self._session_runner is None:
            raise RuntimeError(
                "This run has no session: pass one to DPF(..., session=...) or run from SQL mode"
            )
        result: T = self._session_runner(fn)
        return result


class StageArtifactsManager:
    """The files a partition left in its folder."""

    def __init__(self, stage: Stage, run_id: str, folder: str) -> None:
        """``folder`` is the partition's (``PartitionInput.folder``), not its key."""
        self._stage = stage
        self._folder = layout.artifact_dir(run_id, folder)

    def path_of(self, filename: str) -> str:
        """``filename``'s path on the stage, in the partition's folder."""
        return f"{self._folder}/{filename}"

    def list(self) -> list[str]:
        """File names in the partition's folder (``train.log`` included)."""
        prefix = self._folder + "/"
        return sorted(p[len(prefix) :] for p in self._stage.list(self._folder) if "/" not in p[len(prefix) :])

    def get(self, filename: str, read_function: Callable[[str], Any] | None = None) -> Any:
        layout.check_flat_filename(filename)
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, filename)
            Path(local).write_bytes(self._stage.read_bytes(f"{self._folder}/{filename}"))
            return (read_function or _default_read)(local)

    def download(self, filename: str, local_dir: str | os.PathLike[str]) -> str:
        layout.check_flat_filename(filename)
        target = Path(local_dir)
        target.mkdir(parents=True, exist_ok=True)
        destination = target / filename
        destination.write_bytes(self._stage.read_bytes(f"{self._folder}/{filename}"))
        return str(destination)
