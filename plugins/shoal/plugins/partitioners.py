"""Built-in plugin: the partitioners ``hash_buckets``, ``derived_key`` and ``fixed_size_chunks``.

Runs on the driver, where SQL-mode input is partitioned.
"""

from __future__ import annotations

from collections.abc import Iterator

from shoal.contributions import PartitionerSpec
from shoal.dpf.partitioners import DerivedKey, FixedSizeChunks, HashBuckets
from shoal.hookspecs import hookimpl


@hookimpl
def shoal_partitioners() -> Iterator[PartitionerSpec]:
    yield PartitionerSpec(name="hash_buckets", factory=HashBuckets, description="hash(column) % buckets")
    yield PartitionerSpec(name="derived_key", factory=DerivedKey, description="any DuckDB SQL expression")
    yield PartitionerSpec(name="fixed_size_chunks", factory=FixedSizeChunks, description="chunks of N rows")
