"""The index of this workspace's job records: one SQLite file, ``$SHOAL_HOME/jobs/index.sqlite``,
so listing the newest jobs reads a few rows instead of every record and every status document.

The JSON records (:mod:`shoal.jobs.records`) stay the source of truth; the index holds a copy of
each and, once a job has ended, its final status document (a terminal status never changes, so
listing it again needs no read of the stage). Whenever the index and the record files disagree
on which jobs exist (a record written by an older shoal, a file removed by hand, an index
deleted) the index is brought in line with the files before it is used.

SQLite (the standard library's) handles several processes at once: WAL journal, a busy timeout.
Runs on the driver, in any process of the workspace.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INDEX_FILE = "index.sqlite"
UPSERT = "INSERT OR REPLACE INTO jobs (name, created_time, record, final_status) VALUES (?, ?, ?, NULL)"
BUSY_TIMEOUT_S = 30.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    created_time REAL NOT NULL,
    record TEXT NOT NULL,
    final_status TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_time DESC);
"""


@contextmanager
def _connect(folder: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(folder / INDEX_FILE, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(SCHEMA)
        yield connection
    finally:
        connection.close()


def put(folder: Path, name: str, created_time: float, record: dict[str, Any]) -> None:
    """Add or replace the row of ``name`` (its final status is forgotten)."""
    with _connect(folder) as db:
        db.execute(
            UPSERT,
            (name, created_time, json.dumps(record)),
        )


def remove(folder: Path, name: str) -> None:
    with _connect(folder) as db:
        db.execute("DELETE FROM jobs WHERE name = ?", (name,))


def keep_final_statuses(folder: Path, statuses: dict[str, dict[str, Any]]) -> None:
    """Remember the final status documents of ended jobs (one transaction)."""
    with _connect(folder) as db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "UPDATE jobs SET final_status = ? WHERE name = ?",
            [(json.dumps(status), name) for name, status in statuses.items()],
        )
        db.execute("COMMIT")


def newest(folder: Path, limit: int | None) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """The newest ``limit`` jobs (all with None or <= 0): (record, final status or None) each."""
    record_files = _record_names(folder)
    with _connect(folder) as db:
        indexed = {name for (name,) in db.execute("SELECT name FROM jobs")}
        if indexed != record_files:
            _rebuild(db, folder, record_files, indexed)
        query = "SELECT record, final_status FROM jobs ORDER BY created_time DESC"
        rows = db.execute(query + " LIMIT ?", (limit,)) if limit and limit > 0 else db.execute(query)
        return [(json.loads(record), json.loads(final) if final else None) for record, final in rows]


def _record_names(folder: Path) -> set[str]:
    with os.scandir(folder) as entries:
        return {
            entry.name[: -len(".json")]
            for entry in entries
            if entry.name.endswith(".json") and not entry.name.startswith(".")
        }


def _rebuild(db: sqlite3.Connection, folder: Path, record_files: set[str], indexed: set[str]) -> None:
    """Make the index hold exactly the records on disk (rows of files gone are dropped; files
    without a row are read and added; final statuses kept for the rest)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for name in indexed - record_files:
            db.execute("DELETE FROM jobs WHERE name = ?", (name,))
        for name in record_files - indexed:
            try:
                record = json.loads((folder / f"{name}.json").read_text())
                created = float(record["created_time"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # records are written whole (a rename): this one was damaged. The others are
                # listed; the next listing looks at it again
                log.warning("job record %s cannot be read (%s); listing the other jobs", name, exc)
                continue
            db.execute(
                UPSERT,
                (name, created, json.dumps(record)),
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
