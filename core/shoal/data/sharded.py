"""``ShardedDataConnector``: a data input split across the workers of a distributed training.

.. code-block:: python

    sdc = ShardedDataConnector.from_dataframe(df)           # on the driver
    PyTorchDistributor(train_func, ...).run(dataset_map={"train": sdc})

    def train_func():                                       # on each worker
        shard = get_context().get_dataset_map()["train"].get_shard()   # this rank's rows only

When the connector is passed in a ``dataset_map`` (or given to an estimator's ``fit``), the core
splits it on the driver and ships each worker a copy holding only that worker's shard. A
connector reached some other way (a global of the training function) splits itself on the
worker, by the caller's rank, when ``get_shard()`` is called. See :mod:`shoal.data.sharding`.
"""

from __future__ import annotations

from typing import Any

from shoal.data.connector import DataConnector


class ShardedDataConnector:
    """A :class:`DataConnector` whose rows are split into one shard per training worker.

    ``equal=True`` gives every shard the same number of rows (dropping the remainder);
    ``equal=False`` (the default) keeps every row, shard sizes differing by at most one.
    """

    def __init__(self, connector: DataConnector | None, *, equal: bool = False) -> None:
        self._connector = connector
        self.equal = bool(equal)
        self._shard: DataConnector | None = None

    @classmethod
    def from_dataframe(cls, df: Any, *, equal: bool = False, **options: Any) -> ShardedDataConnector:
        """Any input ``DataConnector.from_dataframe`` takes (pandas, Polars, Arrow, DuckDB, Snowpark, ...)."""
        return cls(DataConnector.from_dataframe(df, **options), equal=equal)

    @classmethod
    def from_sources(
        cls, sources: Any, session: Any = None, *, equal: bool = False, **options: Any
    ) -> ShardedDataConnector:
        """Files on stages or local paths, as ``DataConnector.from_sources``; shards read only their files."""
        return cls(DataConnector.from_sources(sources, session, **options), equal=equal)

    @classmethod
    def from_ray_dataset(cls, ray_ds: Any, *, equal: bool = False) -> ShardedDataConnector:
        """A ``ray.data.Dataset``, split by rows (see :mod:`shoal.data.sharding`)."""
        return cls(DataConnector.from_ray_dataset(ray_ds), equal=equal)

    from_dataset = from_ray_dataset  # the reference product's name

    @classmethod
    def from_connector(cls, connector: DataConnector, *, equal: bool = False) -> ShardedDataConnector:
        return cls(connector, equal=equal)

    # -- driver side ----------------------------------------------------------------------

    def shards(self, world_size: int, scratch: str | None = None) -> list[DataConnector]:
        """The ``world_size`` shards, in rank order (``scratch``: see
        :func:`shoal.data.sharding.shard_source`)."""
        from shoal.data.sharding import shard_source

        if self._connector is None:
            raise RuntimeError("this ShardedDataConnector holds one worker's shard only; it cannot re-split")
        return [
            DataConnector(source)
            for source in shard_source(self._connector.source, world_size, equal=self.equal, scratch=scratch)
        ]

    def rank_views(self, world_size: int, scratch: str | None = None) -> list[ShardedDataConnector]:
        """One copy per rank that holds only that rank's shard (what the core ships to workers)."""
        views = []
        for shard in self.shards(world_size, scratch):
            view = ShardedDataConnector(None, equal=self.equal)
            view._shard = shard
            views.append(view)
        return views

    # -- worker side ----------------------------------------------------------------------

    def get_shard(self) -> DataConnector:
        """The calling worker's shard, by its rank; ``RuntimeError`` outside a training worker."""
        if self._shard is not None:
            return self._shard
        from shoal.train.ranks import current_rank

        rank = current_rank()
        return self.shards(rank.world_size)[rank.rank]

    @property
    def connector(self) -> DataConnector | None:
        """The whole input (None in a copy that holds one shard)."""
        return self._connector

    def __repr__(self) -> str:
        what = self._connector.source.describe() if self._connector is not None else "one shard"
        return f"ShardedDataConnector({what}, equal={self.equal})"


def as_sharded(data: Any) -> ShardedDataConnector:
    """``data`` if it is a ShardedDataConnector, else one over ``DataConnector.from_dataframe(data)``."""
    if isinstance(data, ShardedDataConnector):
        return data
    return ShardedDataConnector(DataConnector.from_dataframe(data))
