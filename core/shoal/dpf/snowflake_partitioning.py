"""SQL-mode partitioning of a Snowpark DataFrame on a real Snowflake session.

Snowflake does the split, as the issue asks: one ``COPY INTO <location> ... PARTITION BY`` of the
frame's query into a temporary Snowflake stage, then the files are fetched with ``GET`` and put
on the run's shoal stage under ``_shoal/input/``, where workers read them.

* The partition expression is built here, never from user text: the column is resolved against
  ``df.columns`` and written as a double-quoted identifier (interior quotes doubled), so a
  ``partition_by`` value cannot inject SQL.
* Each partition folder is named ``k<HEX of TO_VARCHAR(value)>`` (``null`` for NULL), so any key
  (``/``, spaces, unicode, the empty string) is a safe path and decodes back to its exact text.
* Files are listed with ``LIST`` and fetched one folder at a time into their own local folder
  (``GET`` does not promise to keep sub-folders), a few folders in parallel.

Runs on the driver. It needs a Snowflake account, so the tests drive it with a stand-in session
that runs the same statements on DuckDB (tests/test_dpf_snowflake_partitioning.py says so).
"""

from __future__ import annotations

import binascii
import secrets
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from shoal.dpf import layout
from shoal.dpf.partitioning import NULL_PARTITION, PartitionInput, check_keys
from shoal.errors import ConfigError
from shoal.stages import Stage

NULL_FOLDER = "null"
GET_THREADS = 8


def resolve_column(name: str, columns: list[str]) -> str:
    """The frame's own spelling of ``name``: as given, as a quoted identifier, or upper-cased."""
    from shoal.data.snowpark_sources import snowflake_spelling

    found = snowflake_spelling(name, columns)
    if found is not None:
        return found
    raise ValueError(
        f"partition_by column {name!r} is not in the input; its columns are: {', '.join(columns)}"
    )


def quoted(column: str) -> str:
    """A Snowflake identifier for a column as ``df.columns`` spells it."""
    if len(column) >= 2 and column.startswith('"') and column.endswith('"'):
        return column
    return '"' + column.replace('"', '""') + '"'


def partition_expression(column: str) -> str:
    """The SQL ``PARTITION BY`` expression: ``k`` + hex of the value's text, or ``null``."""
    return f"COALESCE('k' || HEX_ENCODE(TO_VARCHAR({quoted(column)})), '{NULL_FOLDER}')"


def folder_key(folder: str) -> str:
    """The partition id for a folder written by :func:`partition_expression`."""
    if folder == NULL_FOLDER:
        return NULL_PARTITION
    if not folder.startswith("k"):
        raise ValueError(f"unexpected partition folder {folder!r} in the Snowflake unload")
    return binascii.unhexlify(folder[1:]).decode("utf-8")


def partition_with_snowflake(
    stage: Stage, run_id: str, column: str, df: Any, before_write: Callable[[], None] | None = None
) -> list[PartitionInput]:
    """Partition a Snowpark DataFrame by ``column`` with Snowflake's partitioned unload.

    The keys are checked once Snowflake named the folders, and ``before_write`` runs before the
    first file reaches the shoal stage."""
    from snowflake.snowpark.functions import sql_expr

    resolved = resolve_column(column, list(df.columns))
    if not df.limit(1).collect():
        raise ConfigError("the input has no rows: there is nothing to partition")
    session = df.session
    transfer = f"SHOAL_DPF_{secrets.token_hex(6).upper()}"
    session.sql(f"CREATE TEMPORARY STAGE {transfer}").collect()
    local = Path(tempfile.mkdtemp(prefix="shoal-dpf-snowflake-"))
    try:
        df.write.copy_into_location(
            f"@{transfer}/input/",
            partition_by=sql_expr(partition_expression(resolved)),
            file_format_type="parquet",
            header=True,
            overwrite=True,
        )
        folders = _listed_folders(session, transfer)
        check_keys(column, [None if folder == NULL_FOLDER else folder_key(folder) for folder in folders])
        if before_write is not None:
            before_write()

        def fetch(folder: str) -> None:
            session.file.get(f"@{transfer}/input/{folder}/", str(local / folder))

        with ThreadPoolExecutor(max_workers=GET_THREADS) as pool:
            list(pool.map(fetch, folders))
        return _to_stage(stage, run_id, local, folders)
    finally:
        shutil.rmtree(local, ignore_errors=True)
        session.sql(f"DROP STAGE IF EXISTS {transfer}").collect()


def _listed_folders(session: Any, transfer: str) -> list[str]:
    """The partition folders under ``@transfer/input/`` (LIST names start with the stage name)."""
    folders: set[str] = set()
    for row in session.sql(f"LIST @{transfer}/input/").collect():
        name = str(row["name"])
        parts = name.split("/")
        if "input" not in parts:
            raise ValueError(f"unexpected file {name!r} in the Snowflake unload")
        after = parts[parts.index("input") + 1 :]
        if len(after) >= 2:
            folders.add(after[0])
    return sorted(folders)


def _to_stage(stage: Stage, run_id: str, local: Path, folders: list[str]) -> list[PartitionInput]:
    """Put the fetched files on the shoal stage, one folder per partition, in key order."""
    keyed = sorted((folder_key(folder), folder) for folder in folders)
    result: list[PartitionInput] = []
    for index, (key, folder) in enumerate(keyed):
        files = sorted(p for p in (local / folder).rglob("*") if p.is_file())
        if not files:
            raise RuntimeError(f"GET fetched no file for partition {key!r} from the Snowflake unload")
        paths = []
        for number, path in enumerate(files):
            target = layout.internal(run_id, "input", f"p{index:06d}", f"part{number:04d}.parquet")
            stage.write_bytes(target, path.read_bytes())
            paths.append(f"@{stage.name}/{target}")
        result.append(PartitionInput(key, index, tuple(paths)))
    return result
