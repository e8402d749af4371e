"""Split a run's input into partitions before any node is reserved.

SQL mode: partition a table or query by a column.
- DuckDB input (a relation, or a DataConnector over a DuckDB query): one partitioned parquet
  write by the DuckDB engine (``COPY ... PARTITION_BY``), hive-style, into ``_shoal/input/``.
- in-memory input (pandas, Polars, Arrow, a Snowpark ``local_testing`` DataFrame, any other
  DataConnector): sorted by the key with Arrow and sliced, one parquet file per partition.
Identifiers are always quoted, so a ``partition_by`` value can never inject SQL. An unknown
column, an empty input, or a key column that cannot be partitioned fails here, before the run
reserves anything.

Stage mode: one partition per file matching the pattern; the partition id is the file's path
relative to the stage root.

Runs on the driver (the process that calls ``DPF.run``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.dpf import layout
from shoal.dpf.partitioners import quote_identifier
from shoal.stages import Stage

NULL_PARTITION = "__NULL__"


@dataclass
class PartitionInput:
    """One partition: its id and the stage files (``@stage/path``) holding its rows."""

    partition_id: str
    index: int
    files: list[str] = field(default_factory=list)
    rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition_id": self.partition_id,
            "index": self.index,
            "files": self.files,
            "rows": self.rows,
        }


DERIVED_KEY = "__shoal_partition__"


def partition_with_partitioner(
    stage: Stage, run_id: str, partitioner: Any, relation: Any
) -> list[PartitionInput]:
    """Partition by a :class:`~shoal.dpf.partitioners.Partitioner`'s key expression, with DuckDB."""
    columns = list(relation.columns)
    missing = [c for c in partitioner.columns if c not in columns]
    if missing:
        raise ValueError(
            f"partitioner {partitioner.describe()} reads column(s) {', '.join(missing)} that the input "
            f"lacks; its columns are: {', '.join(columns)}"
        )
    keyed = relation.select(f"*, ({partitioner.expression()}) AS {quote_identifier(DERIVED_KEY)}")
    return partition_with_duckdb(stage, run_id, DERIVED_KEY, keyed, keep_key=False)


def _unknown_column(column: str, columns: list[str]) -> ValueError:
    return ValueError(
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


def _finish(stage: Stage, run_id: str, folder: Path, in_place: bool) -> list[str]:
    """Upload (if needed) the written files; return their stage paths relative to the stage root."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet"))
    if not in_place:
        for rel in files:
            stage.write_bytes(layout.internal(run_id, "input", rel), (folder / rel).read_bytes())
        shutil.rmtree(folder, ignore_errors=True)
    return [layout.internal(run_id, "input", rel) for rel in files]


def partition_with_duckdb(
    stage: Stage, run_id: str, column: str, relation: Any, *, keep_key: bool = True
) -> list[PartitionInput]:
    """A partitioned parquet write of a DuckDB relation by DuckDB itself (hive layout).

    ``keep_key=False`` leaves the key column out of the data files (a derived key)."""
    columns = list(relation.columns)
    if column not in columns:
        raise _unknown_column(column, columns)
    if not relation.limit(1).fetchall():
        raise ValueError("the input has no rows: there is nothing to partition")
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
        key = NULL_PARTITION if value == "__HIVE_DEFAULT_PARTITION__" else value
        by_key.setdefault(key, []).append(f"@{stage.name}/{path}")
    return [PartitionInput(key, i, by_key[key]) for i, key in enumerate(sorted(by_key))]


def partition_arrow(stage: Stage, run_id: str, column: str, table: Any) -> list[PartitionInput]:
    """Sort by the key with Arrow, slice, write one parquet file per partition."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if column not in table.column_names:
        raise _unknown_column(column, table.column_names)
    if table.num_rows == 0:
        raise ValueError("the input has no rows: there is nothing to partition")
    keys = table.column(column)
    if pa.types.is_nested(keys.type) or pa.types.is_binary(keys.type):
        raise ValueError(
            f"partition_by column {column!r} has type {keys.type}, which cannot name a partition"
        )
    ordered = table.take(pc.sort_indices(table, sort_keys=[(column, "ascending", "at_end")]))
    values = ordered.column(column).to_pylist()
    labels = np.array([NULL_PARTITION if v is None else str(v) for v in values], dtype=object)
    boundaries = [0, *(np.flatnonzero(labels[1:] != labels[:-1]) + 1).tolist(), len(labels)]
    folder, in_place = _local_target(stage, run_id)
    result: list[PartitionInput] = []
    for index, (start, stop) in enumerate(itertools.pairwise(boundaries)):
        name = f"p{index:06d}.parquet"
        pq.write_table(ordered.slice(start, stop - start), os.path.join(folder, name))
        path = layout.internal(run_id, "input", name)
        result.append(PartitionInput(str(labels[start]), index, [f"@{stage.name}/{path}"], stop - start))
    _finish(stage, run_id, folder, in_place)
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
    return [PartitionInput(path, i, [f"@{stage.name}/{path}"]) for i, path in enumerate(sorted(files))]
