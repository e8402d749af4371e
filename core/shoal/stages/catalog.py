"""The persistent stage catalog: ``$SHOAL_HOME/catalog/stages.json``.

The catalog maps canonical stage names to :class:`StageInfo` records. It is read fresh on every
call (another process may have changed it) and changed only inside :func:`edit`, which holds a
``filelock.FileLock`` on ``stages.json.lock`` and replaces the file atomically (temporary file,
fsync, ``os.replace``), so concurrent processes never lose an entry and a reader never sees a
half-written file.

File format (version 1)::

    {"version": 1, "stages": {"MODELS": {"url": "file:///...", "managed": true,
                                         "created_on": "2025-01-31T12:00:00+00:00"}}}

Runs on the driver, and on workers that resolve stage names (workers of a local compute pool
share the driver's ``SHOAL_HOME``).

A job's processes on other hosts have a workspace, and a catalog, of their own. So that a
``@STAGE`` name means the same in a job as where it was submitted, the submitter sends its
catalog along to pools whose nodes do not share its file system (:func:`catalog_for_jobs`, in the
variable :data:`CALLER_STAGES_VAR` of the job's processes and Ray workers), and :func:`read_catalog`
there adds the stages the local catalog does not have. Stages whose URL holds a password are left
out: Ray's runtime-env agent logs the variables it sets.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from shoal.errors import ConfigError, StageError
from shoal.localfiles import write_atomically
from shoal.workspace import workspace_dir

CATALOG_VERSION = 1
CATALOG_FILE = "stages.json"
#: The submitter's catalog, in a job's processes (the catalog file's JSON).
CALLER_STAGES_VAR = "SHOAL_CALLER_STAGES"
LOCK_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class StageInfo:
    """One catalog entry: a stage's canonical name, root URL, whether shoal manages its folder, and
    when it was created (ISO-8601, UTC)."""

    name: str
    url: str
    managed: bool
    created_on: str


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string, e.g. ``2025-01-31T12:00:00+00:00``."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def catalog_path() -> Path:
    """Path of the catalog file of the current workspace (its folder is created)."""
    return workspace_dir("catalog") / CATALOG_FILE


def _decode(path: Path, raw: str) -> dict[str, StageInfo]:
    try:
        document = json.loads(raw)
        if not isinstance(document, dict) or not isinstance(document.get("stages"), dict):
            raise ValueError("expected an object with a 'stages' object")
        if document.get("version") != CATALOG_VERSION:
            raise ValueError(f"unsupported version {document.get('version')!r} (expected {CATALOG_VERSION})")
        entries: dict[str, StageInfo] = {}
        for name, entry in document["stages"].items():
            entries[name] = StageInfo(
                name=name,
                url=str(entry["url"]),
                managed=bool(entry["managed"]),
                created_on=str(entry["created_on"]),
            )
        return entries
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"The stage catalog {path} is damaged ({type(exc).__name__}: {exc}). Fix it by hand, or move it "
            f"away to start with an empty catalog (the stages' data is not in it)."
        ) from exc


def _encode(entries: dict[str, StageInfo]) -> str:
    stages: dict[str, Any] = {
        name: {"url": info.url, "managed": info.managed, "created_on": info.created_on}
        for name, info in sorted(entries.items())
    }
    return json.dumps({"version": CATALOG_VERSION, "stages": stages}, indent=2) + "\n"


def read_catalog() -> dict[str, StageInfo]:
    """Every stage in the catalog, by canonical name (read from disk now; no lock needed); in a
    job on a host of its own, with the submitter's stages that the local catalog lacks."""
    path = catalog_path()
    try:
        entries = _decode(path, path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        entries = {}
    caller = os.environ.get(CALLER_STAGES_VAR)
    if caller:
        for name, info in _decode(Path(f"${CALLER_STAGES_VAR}"), caller).items():
            entries.setdefault(name, info)
    return entries


def catalog_for_jobs() -> str:
    """The catalog as a job's processes get it in :data:`CALLER_STAGES_VAR`: every stage whose
    URL holds no password."""
    from urllib.parse import urlsplit

    def has_password(url: str) -> bool:
        try:
            return urlsplit(url).password is not None
        except ValueError:
            return True

    return _encode({name: info for name, info in read_catalog().items() if not has_password(info.url)})


def lookup(name: str) -> StageInfo | None:
    """The entry of the canonical stage ``name``, or None."""
    return read_catalog().get(name)


@contextlib.contextmanager
def edit() -> Iterator[dict[str, StageInfo]]:
    """Lock the catalog and yield its entries as a dict to change in place.

    On a normal exit the dict is written back atomically if it changed; if the block raises,
    nothing is written. Keep the block short: other processes wait for the lock.
    """
    path = catalog_path()
    lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_SECONDS)
    try:
        lock.acquire()
    except Timeout as exc:
        raise StageError(
            f"Timed out after {LOCK_TIMEOUT_SECONDS:.0f} s waiting for the stage catalog lock "
            f"{lock.lock_file}; another shoal process holds it."
        ) from exc
    try:
        entries = read_catalog()
        before = dict(entries)
        yield entries
        if entries != before:
            write_atomically(path, _encode(entries))
    finally:
        lock.release()
