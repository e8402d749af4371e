"""Creating, finding and dropping stages, and working on files by location (``@stage/path``).

These functions combine the catalog (:mod:`shoal.stages.catalog`), the name rules
(:mod:`shoal.stages.names`) and the backends from plugins. Every check that can fail (name,
URL, backend for the scheme, optional packages) runs before the catalog is changed, so a failed
``create_stage`` leaves no entry behind.

Runs on the driver, and on workers that resolve stage names or locations.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any, BinaryIO, Literal, overload

from shoal.errors import ConfigError, StageExistsError, StageNotFoundError
from shoal.stages import catalog
from shoal.stages.backend import AtomicWriter
from shoal.stages.catalog import StageInfo
from shoal.stages.names import parse_location, parse_stage_name
from shoal.stages.paths import file_url_to_path, is_within, normalize_url, path_to_file_url
from shoal.stages.stage import Stage, StageFile, open_backend
from shoal.workspace import workspace_dir

log = logging.getLogger(__name__)

MANAGED_STAGES_DIR = "stages"


def _stage_of(info: StageInfo) -> Stage:
    return Stage(info.name, info.url, managed=info.managed)


def _not_found(name: str, entries: dict[str, StageInfo]) -> StageNotFoundError:
    existing = ", ".join(sorted(entries)) if entries else "(none yet)"
    return StageNotFoundError(
        f"Stage {name!r} does not exist. Existing stages: {existing}. Create it with "
        f"shoal.create_stage({name!r}) or `shoal stage create {name}`."
    )


def create_stage(name: str, url: str | os.PathLike[str] | None = None, *, exist_ok: bool = False) -> Stage:
    """Create a stage and record it in the catalog.

    Without ``url`` the stage is *managed*: shoal keeps its files in ``$SHOAL_HOME/stages/<NAME>``
    and deletes them with the stage. With ``url`` the stage is *external*: any URL whose scheme a
    backend serves (``file:///abs/path``, ``memory://bucket/x``, ``s3://bucket/prefix``), or an
    absolute local path; dropping the stage leaves that data alone.

    Raises :class:`~shoal.errors.StageExistsError` when the name is taken, unless ``exist_ok``
    and the existing stage has the same URL (or no ``url`` is given); and
    :class:`~shoal.errors.ConfigError` for a bad name, a relative path or an unknown URL scheme.
    """
    canonical = parse_stage_name(name)
    managed = url is None
    if url is None:
        folder = workspace_dir(MANAGED_STAGES_DIR) / canonical
        stage_url = path_to_file_url(str(folder))
    else:
        stage_url = normalize_url(url)
    backend = open_backend(stage_url)
    local_root = backend.local_path("")
    if not managed and local_root and os.path.exists(local_root) and not os.path.isdir(local_root):
        raise ConfigError(f"Stage URL {stage_url} points to a file, not a folder ({local_root}).")
    with catalog.edit() as entries:
        existing = entries.get(canonical)
        if existing is not None:
            if exist_ok and (url is None or existing.url == stage_url):
                return _stage_of(existing)
            if exist_ok:
                raise StageExistsError(
                    f"Stage {canonical!r} exists already with URL {existing.url}, not {stage_url}. "
                    f"Drop it first (shoal.drop_stage({canonical!r})) or choose another name."
                )
            raise StageExistsError(
                f"Stage {canonical!r} exists already (URL {existing.url}). Use "
                f"shoal.get_stage({canonical!r}), pass exist_ok=True, or drop it first with "
                f"shoal.drop_stage({canonical!r})."
            )
        if managed and local_root is not None:
            os.makedirs(local_root, exist_ok=True)
        info = StageInfo(name=canonical, url=stage_url, managed=managed, created_on=catalog.utc_now())
        entries[canonical] = info
    stage = _stage_of(info)
    stage._backend = backend
    return stage


def list_stages() -> list[StageInfo]:
    """Every stage in the catalog, sorted by name."""
    return sorted(catalog.read_catalog().values(), key=lambda info: info.name)


def get_stage(name_or_location: str | Stage) -> Stage:
    """The stage called ``name_or_location`` (``"s"``, ``"@S"``, ``"db.sch.s"``; a path after ``/``
    is ignored). Raises :class:`~shoal.errors.StageNotFoundError` naming the existing stages."""
    if isinstance(name_or_location, Stage):
        return name_or_location
    canonical, _ = parse_location(name_or_location)
    entries = catalog.read_catalog()
    info = entries.get(canonical)
    if info is None:
        raise _not_found(canonical, entries)
    return _stage_of(info)


def resolve_location(location: str) -> tuple[Stage, str]:
    """Split ``"@stage/inner/path"`` into the :class:`Stage` and the normalized inner path (``""``
    for the root)."""
    canonical, path = parse_location(location)
    return get_stage(canonical), path


def drop_stage(name: str, *, missing_ok: bool = False) -> None:
    """Remove a stage from the catalog.

    A managed stage's folder is deleted with it; an external stage's data is left where it is.
    Raises :class:`~shoal.errors.StageNotFoundError` when there is no such stage, unless
    ``missing_ok``.
    """
    canonical = parse_stage_name(name)
    with catalog.edit() as entries:
        info = entries.pop(canonical, None)
        if info is None:
            if missing_ok:
                return
            raise _not_found(canonical, entries)
        if info.managed:
            _delete_managed_data(info)


def _delete_managed_data(info: StageInfo) -> None:
    """Delete a managed stage's folder, but only if it is inside ``$SHOAL_HOME/stages``."""
    stages_root = os.path.realpath(workspace_dir(MANAGED_STAGES_DIR))
    try:
        folder = os.path.realpath(file_url_to_path(info.url))
    except ConfigError:
        folder = ""
    if not folder or folder == stages_root or not is_within(folder, stages_root):
        log.warning(
            "Stage %s is marked managed but its URL %s is not inside %s; its data was left in place.",
            info.name,
            info.url,
            stages_root,
        )
        return
    open_backend(info.url).destroy()


# -- files by location ------------------------------------------------------------------------


def put(local_path: str | os.PathLike[str], location: str) -> list[str]:
    """Upload a local file, folder or glob into the stage folder ``location`` (see :meth:`Stage.put`)."""
    stage, path = resolve_location(location)
    return stage.put(local_path, path)


def get(location: str, local_dir: str | os.PathLike[str]) -> list[str]:
    """Download the file or folder at ``location`` into ``local_dir`` (see :meth:`Stage.get`)."""
    stage, path = resolve_location(location)
    return stage.get(path, local_dir)


def list_files(location: str, pattern: str = "*") -> list[str]:
    """Files under ``location`` matching ``pattern``, relative to the stage root (see :meth:`Stage.list`)."""
    stage, path = resolve_location(location)
    return stage.list(path, pattern)


def remove(location: str, *, missing_ok: bool = False) -> int:
    """Delete the file or folder at ``location``; return the number of files removed."""
    stage, path = resolve_location(location)
    return stage.remove(path, missing_ok=missing_ok)


@overload
def open_file(location: str, mode: Literal["rb"] = "rb") -> BinaryIO: ...
@overload
def open_file(location: str, mode: Literal["wb"]) -> AtomicWriter: ...
@overload
def open_file(location: str, mode: Literal["r", "w"]) -> io.TextIOWrapper: ...
@overload
def open_file(location: str, mode: str) -> Any: ...


def open_file(location: str, mode: str = "rb") -> StageFile:
    """Open the file at ``location`` (``"@stage/dir/file"``); writes are atomic (see :meth:`Stage.open`)."""
    stage, path = resolve_location(location)
    return stage.open(path, mode)
