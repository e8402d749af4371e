"""The Ray Dataset data source: ``ray.data.Dataset`` streamed with ``iter_batches``.

The dataset stays a Ray dataset: reading it runs its plan on the Ray cluster the process is
connected to, and pickling it (to ship a ``DataConnector`` to a Ray task) keeps it lazy, so it is
readable by processes connected to the same cluster.

Runs on the driver and on Ray workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shoal.data.arrow_sources import DEFAULT_BATCH_ROWS
from shoal.data.frame_sources import is_instance_by_name
from shoal.data.source import DataSource

if TYPE_CHECKING:
    import pyarrow as pa


def accepts_ray_dataset(obj: object) -> bool:
    return is_instance_by_name(obj, "ray.data", "Dataset")


class RayDatasetSource(DataSource):
    """A ``ray.data.Dataset``."""

    kind = "ray dataset"

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self._schema: pa.Schema | None = None

    def schema(self) -> pa.Schema:
        if self._schema is None:
            import pyarrow as pa

            described = self.dataset.schema()
            base = getattr(described, "base_schema", None)
            if isinstance(base, pa.Schema):
                self._schema = base
            else:  # a pandas- or numpy-backed schema: ask the data itself
                first = next(self._tables(1), None)
                self._schema = first.schema if first is not None else pa.schema([])
        return self._schema

    def _tables(self, batch_size: int | None) -> Iterator[pa.Table]:
        yield from self.dataset.iter_batches(
            batch_size=batch_size or DEFAULT_BATCH_ROWS, batch_format="pyarrow", prefetch_batches=1
        )

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        schema = self.schema()
        for table in self._tables(batch_size):
            if not table.schema.equals(schema, check_metadata=False):
                table = table.cast(schema)
            for batch in table.combine_chunks().to_batches():
                if batch.num_rows:
                    yield batch

    def count_rows(self) -> int:
        return int(self.dataset.count())

    def describe(self) -> str:
        return f"{self.kind} ({type(self.dataset).__name__}): {len(self.schema())} columns"


def ray_dataset_source(dataset: Any) -> RayDatasetSource:
    return RayDatasetSource(dataset)
