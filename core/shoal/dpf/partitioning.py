"""Split a run's input into partitions before any node is reserved.

SQL mode: partition a table or query by a column.
- DuckDB input (a relation, or a DataConnector over a DuckDB query): one partitioned parquet
  write by the DuckDB engine (``COPY ... PARTITION_BY``), hive-style, into ``_shoal/input/``.
- in-memory input (pandas, Polars, Arrow, a Snowpark ``local_testing`` DataFrame, any other
  DataConnector): sorted by the key with Arrow and sliced; each partition is a run of record
  batches of a few Arrow IPC files, which workers memory-map and read without copying.
Identifiers are always quoted, so a ``partition_by`` value can never inject SQL. An unknown
column, an empty input, or a key column that cannot be partitioned fails here, before the run
reserves anything.

Stage mode: one partition per file matching the pattern; the partition id is the file's path
relative to the stage root.

Runs on the driver (the process that calls ``DPF.run``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoal.dpf import layout
from shoal.dpf.partitioners import quote_identifier
from shoal.dpf.specs import PartitionInput
from shoal.errors import ConfigError
from shoal.stages import Stage

NULL_PARTITION = "__NULL__"
#: In-memory inputs go to a few large Arrow IPC files, a partition's rows as consecutive record
#: batches (thousands of small files cost far more to write, list and open; IPC is written and
#: memory-mapped without encoding); a file ends after this many batches or bytes.
BATCHES_PER_FILE = 512
BYTES_PER_FILE = 256 * 2**20


DERIVED_KEY = "__shoal_partition__"


def _nothing() -> None:
    return None


def _null_clash(column: str) -> ConfigError:
    return ConfigError(
        f"partition_by column {column!r} holds both NULL and the text {NULL_PARTITION!r}, which is the "
        f"id shoal gives the partition of NULL keys: the two would share one partition. Replace one of "
        f"them first, e.g. COALESCE({column}, '<none>')."
    )


def check_keys(column: str, keys: list[Any]) -> None:
    """Refuse partition keys that cannot name partitions: before anything is written (driver)."""
    texts = [str(k) for k in keys if k is not None]
    if NULL_PARTITION in texts and len(texts) < len(keys):
        raise _null_clash(column)


#: DuckDB's folder name for NULL keys in a hive-partitioned write.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _hive_can_name(column: str, keys: list[Any]) -> bool:
    """True when DuckDB's hive folders (``column=value``) can hold these keys one apiece: each
    name fits a file system, no two differ only in case (they would merge on macOS or Windows),
    and no text key reads as DuckDB's NULL folder. Otherwise the Arrow path, which names no file
    after a key, partitions the input."""
    names = [f"{column}={urllib.parse.quote(str(k), safe='')}" for k in keys if k is not None]
    if any(len(name.encode("utf-8")) > layout.MAX_FOLDER_NAME for name in names):
        return False
    if len({name.casefold() for name in names}) < len(names):
        return False
    return HIVE_NULL not in {str(k) for k in keys if k is not None}


def partition_with_partitioner(
    stage: Stage,
    run_id: str,
    partitioner: Any,
    relation: Any,
    before_write: Callable[[], None] = _nothing,
) -> list[PartitionInput]:
    """Partition by a :class:`~shoal.dpf.partitioners.Partitioner`'s key expression, with DuckDB."""
    columns = list(relation.columns)
    missing = [c for c in partitioner.columns if c not in columns]
    if missing:
        raise ConfigError(
            f"partitioner {partitioner.describe()} reads column(s) {', '.join(missing)} that the input "
            f"lacks; its columns are: {', '.join(columns)}"
        )
    keyed = relation.select(f"*, ({partitioner.expression()}) AS {quote_identifier(DERIVED_KEY)}")
    return partition_with_duckdb(stage, run_id, DERIVED_KEY, keyed, keep_key=False, before_write=before_write)


def _unknown_column(column: str, columns: list[str]) -> ConfigError:
    return ConfigError(
        f"partition_by column {column!r} is not in the input; its columns are: {', '.join(columns)}"
    )


def _local_target(stage: Stage, run_id: str) -> tuple[Path, bool]:
    """A local folder for ``_shoal/input`` (the stage's own when it is a local folder)."""
    root = stage.backend.local_path("")
    if root:
        folder = Path(root) / layout.internal(run_id, "input")
        folder.mkdir(parents=True, exist_ok=True)
        return folder, True
    return Path(tempfile.mkdtemp(prefix="shoal-dpf-input-")), False


def _finish(stage: Stage, run_id: str, folder: Path, in_place: bool, suffix: str = ".parquet") -> list[str]:
    """Upload (if needed) the written files; return their stage paths relative to the stage root."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob(f"*{suffix}"))
    if not in_place:
        for rel in files:
            stage.write_bytes(layout.internal(run_id, "input", rel), (folder / rel).read_bytes())
        shutil.rmtree(folder, ignore_errors=True)
    return [layout.internal(run_id, "input", rel) for rel in files]


def partition_with_duckdb(
    stage: Stage,
    run_id: str,
    column: str,
    relation: Any,
    *,
    keep_key: bool = True,
    before_write: Callable[[], None] = _nothing,
) -> list[PartitionInput]:
    """A partitioned parquet write of a DuckDB relation by DuckDB itself (hive layout).

    ``keep_key=False`` leaves the key column out of the data files (a derived key). The distinct
    keys are read first (one scan of the key column) and checked before anything is written."""
    columns = list(relation.columns)
    if column not in columns:
        raise _unknown_column(column, columns)
    if not relation.limit(1).fetchall():
        raise ConfigError("the input has no rows: there is nothing to partition")
    keys = [row[0] for row in relation.select(quote_identifier(column)).distinct().fetchall()]
    check_keys(column, keys)
    if not _hive_can_name(column, keys):
        return partition_arrow(
            stage, run_id, column, relation.to_arrow_table(), before_write, keep_key=keep_key
        )
    before_write()
    folder, in_place = _local_target(stage, run_id)
    relation.write_parquet(
        str(folder), partition_by=[column], write_partition_columns=keep_key, overwrite=True
    )
    files = _finish(stage, run_id, folder, in_place)
    by_key: dict[str, list[str]] = {}
    prefix = layout.internal(run_id, "input") + "/"
    for path in files:
        key_dir = path[len(prefix) :].split("/", 1)[0]
        value = urllib.parse.unquote(key_dir.split("=", 1)[1])
        key = NULL_PARTITION if value == HIVE_NULL else value
        by_key.setdefault(key, []).append(f"@{stage.name}/{path}")
    return [PartitionInput(key, i, tuple(by_key[key])) for i, key in enumerate(sorted(by_key))]


def partition_arrow(
    stage: Stage,
    run_id: str,
    column: str,
    table: Any,
    before_write: Callable[[], None] = _nothing,
    *,
    keep_key: bool = True,
) -> list[PartitionInput]:
    """Sort by the key with Arrow (unless it is sorted already) and write each partition as record
    batches of a few Arrow IPC files; workers memory-map them and read their batches without a copy.

    No file is named after a key, so any key works here. ``keep_key=False`` leaves the key column
    out of the data files (a derived key)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if column not in table.column_names:
        raise _unknown_column(column, table.column_names)
    if table.num_rows == 0:
        raise ConfigError("the input has no rows: there is nothing to partition")
    keys = table.column(column)
    if pa.types.is_nested(keys.type) or pa.types.is_binary(keys.type):
        raise ConfigError(
            f"partition_by column {column!r} has type {keys.type}, which cannot name a partition; "
            f"partition by a column of numbers, text or dates, or derive one with a Partitioner"
        )
    # pandas' index metadata means nothing for slices, and rebuilding it costs more than a small
    # partition's to_pandas() itself
    table = table.replace_schema_metadata(None)
    order = pc.sort_indices(table, sort_keys=[(column, "ascending", "at_end")])
    if not pc.all(pc.equal(order, pa.array(np.arange(len(order), dtype=np.uint64)))).as_py():
        table = table.take(order)  # the one copy, and only when the input is not grouped already
    runs = pc.run_end_encode(table.column(column).combine_chunks())
    ends = runs.run_ends.to_numpy().tolist()
    values = runs.values.to_pylist()
    check_keys(column, values)
    labels = [NULL_PARTITION if v is None else str(v) for v in values]
    before_write()
    if not keep_key:
        table = table.drop_columns([column])
    folder, in_place = _local_target(stage, run_id)
    result: list[PartitionInput] = []
    writer: Any = None
    sink: Any = None
    name, batches, size, files = "", 0, 0, 0
    try:
        start = 0
        for index, (stop, label) in enumerate(zip(ends, labels, strict=True)):
            if writer is None or batches >= BATCHES_PER_FILE or size >= BYTES_PER_FILE:
                if writer is not None:
                    writer.close()
                    sink.close()
                name, batches, size, files = f"part-{files:05d}.arrow", 0, 0, files + 1
                sink = pa.OSFile(os.path.join(folder, name), "wb")
                writer = pa.ipc.new_file(sink, table.schema)
            piece = table.slice(start, stop - start)
            pieces = piece.to_batches()
            for batch in pieces:
                writer.write_batch(batch)
            path = layout.internal(run_id, "input", name)
            result.append(
                PartitionInput(label, index, (f"@{stage.name}/{path}",), stop - start, (batches, len(pieces)))
            )
            batches += len(pieces)
            size += piece.nbytes
            start = stop
    finally:
        if writer is not None:
            writer.close()
            sink.close()
    _finish(stage, run_id, folder, in_place, suffix=".arrow")
    return result


def partition_stage_files(
    stage: Stage, inner: str, pattern: str, partition_ids: list[str] | None
) -> list[PartitionInput]:
    """Stage mode: one partition per file; the id is the path relative to the stage root."""
    if partition_ids is not None:
        missing = [pid for pid in partition_ids if not stage.exists(pid)]
        if missing:
            raise ValueError(f"partition_ids not found on @{stage.name}: {', '.join(missing[:10])}")
        files = list(partition_ids)
    else:
        files = stage.list(inner, pattern=pattern)
    if not files:
        where = f"@{stage.name}/{inner}" if inner else f"@{stage.name}"
        raise ValueError(f"no files match {pattern!r} under {where}: there is nothing to partition")
    return [PartitionInput(path, i, (f"@{stage.name}/{path}",)) for i, path in enumerate(sorted(files))]
