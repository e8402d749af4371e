"""Compute-pool definitions, kept in the workspace so every process sees the same pools.

Layout: ``$SHOAL_HOME/pools/<NAME>/pool.json`` holds the definition (:class:`PoolRecord`);
the pool's backend keeps its running state (addresses, process ids) in the same folder.
Pool names follow the stage rules: case-insensitive identifiers, stored upper-case.

Runs on the driver (and on the job supervisor of a local pool, same machine).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from shoal.errors import ConfigError, RecordError, ShoalError
from shoal.localfiles import write_atomically
from shoal.workspace import shoal_home

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")


class PoolNotFoundError(ShoalError, LookupError):
    """No compute pool of that name."""


class PoolExistsError(ShoalError, ValueError):
    """A compute pool of that name exists already."""


@dataclass(frozen=True)
class PoolRecord:
    """What a compute pool is: its size limits, node family, backend and backend options."""

    name: str
    backend: str
    min_nodes: int
    max_nodes: int
    instance_family: str
    options: dict[str, Any] = field(default_factory=dict)
    created_on: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def canonical_pool_name(name: str) -> str:
    """Upper-case pool name; accepts ``db.schema.name`` (only the last part counts)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"A compute pool name must be a non-empty string, got {name!r}")
    last = name.strip().split(".")[-1]
    if not _IDENTIFIER.match(last):
        raise ConfigError(
            f"Invalid compute pool name {name!r}: use letters, digits, '_' or '$', "
            f"starting with a letter or '_'."
        )
    return last.upper()


def pools_root() -> Path:
    """The workspace's pools folder, not created here: looking a pool up writes nothing."""
    return shoal_home() / "pools"


def pool_dir(name: str) -> Path:
    """The state folder of pool ``name`` (created)."""
    path = pools_root() / canonical_pool_name(name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(record: PoolRecord, *, exist_ok: bool = False) -> None:
    """Record a new pool; an existing one is an error unless ``exist_ok``."""
    folder = pools_root() / record.name
    if (folder / "pool.json").exists() and not exist_ok:
        raise PoolExistsError(
            f"Compute pool {record.name!r} exists already. Use it, or drop it first with "
            f"shoal.drop_compute_pool({record.name!r})."
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / "pool.json", record.to_json())


def new_record(
    name: str, *, backend: str, min_nodes: int, max_nodes: int, instance_family: str, options: dict[str, Any]
) -> PoolRecord:
    return PoolRecord(
        name=canonical_pool_name(name),
        backend=backend,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        instance_family=instance_family.upper(),
        options=dict(options),
        created_on=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def load(name: str) -> PoolRecord:
    """The pool called ``name``; a clear error listing the pools when there is none."""
    canonical = canonical_pool_name(name)
    path = pools_root() / canonical / "pool.json"
    if not path.exists():
        existing = ", ".join(r.name for r in load_all()) or "(none yet)"
        raise PoolNotFoundError(
            f"Compute pool {canonical!r} does not exist. Existing pools: {existing}. Create it with "
            f"shoal.create_compute_pool({canonical!r}, max_nodes=...) or "
            f"`shoal pool create {canonical} --max-nodes N`."
        )
    return _read(path)


def _read(path: Path) -> PoolRecord:
    """The record in ``path``; a :class:`RecordError` naming the file when it cannot be read."""
    try:
        return PoolRecord(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:  # cut short, edited by hand, or from another version
        name = path.parent.name
        raise RecordError(
            f"The record of compute pool {name!r} ({path}) cannot be read ({type(exc).__name__}: "
            f"{exc}). Fix the file, or drop the pool (`shoal pool drop {name}`) and create it again."
        ) from None


def load_all() -> list[PoolRecord]:
    """Every pool of the workspace; an unreadable record is skipped with a warning (so that
    one bad file does not hide the other pools), and fails when that pool is used (:func:`load`)."""
    records = []
    for path in sorted(pools_root().glob("*/pool.json")):
        try:
            records.append(_read(path))
        except RecordError as exc:
            log.warning("%s", exc)
    return records


def delete(name: str) -> None:
    shutil.rmtree(pools_root() / canonical_pool_name(name), ignore_errors=True)
