"""The :class:`DataSource` contract: what a ``DataSourceSpec.factory(obj, **options)`` returns.

A data source reads one input (a table in memory, files on a stage, a DuckDB query, a Ray
dataset...) as a stream of ``pyarrow.RecordBatch`` with one schema. ``DataConnector`` wraps
exactly one source and builds every output (pandas, Arrow, exact-size batches, torch, Ray) from
:meth:`DataSource.iter_batches`, so a source only has to stream Arrow.

Two rules every source follows:

* **stream when the input can stream**: ``iter_batches`` must not read the whole input before
  yielding its first batch when the input is files or a query;
* **pickle small**: a ``DataConnector`` is shipped to Ray workers, so a source pickles as what a
  worker needs to read the data again (paths, a query, a stage name), or as Arrow data when the
  input only exists in the driver's memory. A live connection or session is never pickled.

Runs on the driver and on workers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


class DataSource(ABC):
    """One readable input, as Arrow record batches. Subclass it in a plugin to add an input kind."""

    #: Short name of the kind of source, shown by ``describe()`` and ``DataConnector.data_sources``.
    kind: str = "source"

    @abstractmethod
    def schema(self) -> pa.Schema:
        """The Arrow schema of every batch ``iter_batches`` yields (also when there are no rows)."""

    @abstractmethod
    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        """Yield the rows as record batches with :meth:`schema`, in a stable order.

        ``batch_size`` is a hint (at most that many rows per batch is preferred, not required;
        ``DataConnector.to_batches`` re-slices to exact sizes). Each call starts from the first
        row again. Sources over files or queries stream: they read as the caller iterates.
        """

    def to_arrow(self) -> pa.Table:
        """Every row as one ``pyarrow.Table`` (default: collected from :meth:`iter_batches`)."""
        import pyarrow as pa

        return pa.Table.from_batches(list(self.iter_batches()), schema=self.schema())

    def num_rows(self) -> int | None:
        """The number of rows if it is known without reading the data (metadata), else ``None``."""
        return None

    def count_rows(self) -> int:
        """The number of rows, reading the data if needed (default: count through :meth:`iter_batches`)."""
        known = self.num_rows()
        if known is not None:
            return known
        return sum(batch.num_rows for batch in self.iter_batches())

    def shuffled(self, rng: np.random.Generator) -> DataSource:
        """This source reading its parts (files, fragments) in a random order, for shuffling.

        The default is ``self``: rows are then shuffled only by ``DataConnector``'s shuffle window.
        """
        return self

    def describe(self) -> str:
        """One line saying what is read, for ``DataConnector.data_sources`` and ``repr``."""
        return self.kind

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"
