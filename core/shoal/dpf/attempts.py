"""Exactly-once files for partition attempts.

An attempt writes its artifacts and its ``train.log`` under names of its own: on local-folder
stages hidden files ``.shoal-tmp-a{attempt}-{name}`` in the partition's folder (listings skip
them, and renaming them is one ``os.replace`` on the same file system); elsewhere the folder
``{run_id}/_shoal/attempts/{index}.{attempt}/``. When the attempt has finished (its function
returned or raised), :meth:`AttemptFiles.commit` replaces the partition's folder with them: files
of any earlier attempt that the new one did not write are removed, then each file is renamed into
place, ``train.log`` last. So a partition's folder always holds the files of exactly one finished
attempt; an attempt that was cut off (its worker or node died, the run was cancelled) never
reaches it; and a ``train.log`` at its final path means the commit is complete. When a node is
lost, its attempts are *fenced* (``_shoal/fences/<index>``) before their partitions run again, so
a worker that outlived its raylet cannot commit an attempt the scheduler has given up on.

Durability: attempt files are written without fsync. A rename is atomic, and the kernel keeps
the data of a killed process, so killed workers, nodes and drivers lose nothing that was
committed; only a crash of the machine itself can, and a resumed run then runs again every DONE
partition whose ``train.log`` is missing. The progress records that say DONE are fsynced
(:mod:`shoal.dpf.progress`).

On stages that are not local folders, files are written through the stage (atomic there) and
committed by copy.

Runs on partition workers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from shoal.dpf import layout
from shoal.stages import Stage
from shoal.stages.backend import TEMP_PREFIX


def attempts_dir(run_id: str) -> str:
    return layout.internal(run_id, "attempts")


def fence_path(run_id: str, index: int) -> str:
    return layout.internal(run_id, "fences", str(index))


def fence_attempts(stage: Stage, run_id: str, attempts: list[tuple[int, int]]) -> None:
    """Record cut-off attempts ``(index, attempt)`` so that they never commit (run by the
    scheduler when a node is lost; rare, so one small write each)."""
    for index, attempt in attempts:
        path = fence_path(run_id, index)
        earlier = stage.read_text(path) if stage.exists(path) else ""
        stage.write_text(path, f"{earlier}{attempt}\n")


class AttemptFiles:
    """The files of one attempt of one partition, until :meth:`commit` or :meth:`discard`."""

    def __init__(self, stage: Stage, run_id: str, folder: str, index: int, attempt: int) -> None:
        self.stage = stage
        self.run_id = run_id
        self.final_dir = layout.artifact_dir(run_id, folder)
        self.staging_dir = f"{attempts_dir(run_id)}/{index}.{attempt}"
        self.attempt = attempt
        self.index = index
        self._root = stage.backend.local_path("")
        self._written: list[str] = []
        self._made = False
        self._fresh = False  # the partition's folder was created by this attempt: nothing earlier in it

    # -- writing -------------------------------------------------------------------------

    def _local(self, folder: str, name: str = "") -> str:
        assert self._root is not None
        path = os.path.join(self._root, *folder.split("/"))
        return os.path.join(path, name) if name else path

    def _staged_name(self, filename: str) -> str:
        return f"{TEMP_PREFIX}a{self.attempt}-{filename}"

    def local_target(self, filename: str) -> str | None:
        """A local path to write ``filename`` to directly, on local-folder stages."""
        if self._root is None:
            return None
        if not self._made:
            self._fresh = _make_dir(self._local(self.final_dir))
            self._made = True
        if filename not in self._written:
            self._written.append(filename)
        return self._local(self.final_dir, self._staged_name(filename))

    def write_bytes(self, filename: str, data: bytes) -> None:
        target = self.local_target(filename)
        if target is not None:
            with open(target, "wb") as handle:
                handle.write(data)
            return
        self.stage.write_bytes(f"{self.staging_dir}/{filename}", data)
        if filename not in self._written:
            self._written.append(filename)

    @contextlib.contextmanager
    def writing(self, filename: str) -> Iterator[str | None]:
        """A local path to write ``filename`` to (None where the stage is not a local folder).

        What is written there becomes this attempt's ``filename`` only when the block ends
        without an exception; a writer that fails part-way leaves the attempt's earlier
        ``filename`` (or none) as it was, and its half-written file is removed."""
        if self._root is None:
            yield None
            return
        written_before = filename in self._written
        staged = self.local_target(filename)
        assert staged is not None
        partial = self._local(self.final_dir, f"{TEMP_PREFIX}w{self.attempt}-{filename}")
        try:
            yield partial
            os.replace(partial, staged)
        except BaseException:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(partial)
            if not written_before:
                self._written.remove(filename)
            raise

    def read_bytes(self, filename: str) -> bytes | None:
        """What this attempt wrote as ``filename``, else what the partition's folder holds, else None."""
        if self._root is not None:
            for local in (
                self._local(self.final_dir, self._staged_name(filename)),
                self._local(self.final_dir, filename),
            ):
                if os.path.isfile(local):
                    with open(local, "rb") as handle:
                        return handle.read()
            return None
        for folder in (self.staging_dir, self.final_dir):
            path = f"{folder}/{filename}"
            if self.stage.exists(path):
                return self.stage.read_bytes(path)
        return None

    def previous_log(self) -> str:
        """The partition's committed ``train.log`` (earlier attempts), or ``""``."""
        if self._fresh:
            return ""
        if self._root is not None:
            try:
                with open(self._local(self.final_dir, layout.LOG_FILE), encoding="utf-8") as handle:
                    return handle.read()
            except FileNotFoundError:
                return ""
        path = f"{self.final_dir}/{layout.LOG_FILE}"
        return self.stage.read_text(path) if self.stage.exists(path) else ""

    # -- the end -------------------------------------------------------------------------

    def fenced(self) -> bool:
        """True when the scheduler gave up on this attempt (its node was lost) and runs the partition
        again: this attempt must not commit."""
        path = fence_path(self.run_id, self.index)
        if self._root is not None:
            local = self._local(path)
            if not os.path.exists(local):
                return False
            with open(local, encoding="ascii") as handle:
                text = handle.read()
        elif self.stage.exists(path):
            text = self.stage.read_text(path)
        else:
            return False
        return any(int(line) == self.attempt for line in text.split() if line.strip())

    def commit(self) -> bool:
        """Make this attempt's files the partition's files (``train.log`` last); False (and the files
        dropped) when the attempt was fenced off."""
        if self.fenced():
            self.discard()
            return False
        names = sorted(self._written, key=lambda name: name == layout.LOG_FILE)
        if self._root is not None:
            self._commit_local(names)
        else:
            self._commit_through_stage(names)
        return True

    def _commit_local(self, names: list[str]) -> None:
        final = self._local(self.final_dir)
        if not self._made:
            os.makedirs(final, exist_ok=True)
        keep = set(names)
        if self._fresh:  # nothing of an earlier attempt can be there
            for name in names:
                os.replace(os.path.join(final, self._staged_name(name)), os.path.join(final, name))
            return
        with os.scandir(final) as entries:
            for entry in entries:
                if entry.name not in keep and not entry.name.startswith(TEMP_PREFIX) and entry.is_file():
                    os.unlink(entry.path)  # an earlier attempt's: never mix
        for name in names:
            os.replace(os.path.join(final, self._staged_name(name)), os.path.join(final, name))

    def _commit_through_stage(self, names: list[str]) -> None:
        keep = {f"{self.final_dir}/{name}" for name in names}
        prefix = self.final_dir + "/"
        for path in self.stage.list(self.final_dir):
            if "/" not in path[len(prefix) :] and path not in keep:
                self.stage.remove(path, missing_ok=True)
        for name in names:
            self.stage.write_bytes(
                f"{self.final_dir}/{name}", self.stage.read_bytes(f"{self.staging_dir}/{name}")
            )
        self.stage.remove(self.staging_dir, missing_ok=True)

    def discard(self) -> None:
        """Drop this attempt's files."""
        if self._root is not None:
            for name in self._written:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._local(self.final_dir, self._staged_name(name)))
        else:
            self.stage.remove(self.staging_dir, missing_ok=True)


def _make_dir(path: str) -> bool:
    """Create the folder ``path`` (and its parents); True when it did not exist before."""
    try:
        os.mkdir(path)
        return True
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return _make_dir(path)
    except FileExistsError:
        return False


def sweep_attempts(stage: Stage, run_id: str) -> int:
    """Remove what cut-off attempts left behind (run by the scheduler when a run ends): the
    ``attempts`` folder, and hidden attempt files and interrupted atomic writes under the run's
    folder. Returns how many files were removed."""
    removed = 0
    stage.remove(attempts_dir(run_id), missing_ok=True)
    stage.remove(layout.internal(run_id, "workers"), missing_ok=True)
    stage.remove(layout.internal(run_id, "fences"), missing_ok=True)
    root = stage.backend.local_path(run_id)
    if root is None or not os.path.isdir(root):
        return removed
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith(TEMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, name))
                    removed += 1
    return removed
