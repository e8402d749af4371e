"""Tabular data in, any shape out: :class:`DataConnector` and the :class:`DataSource` contract.

Quick tour::

    from shoal.data import DataConnector

    dc = DataConnector.from_dataframe(pandas_df)              # or Polars, Arrow, DuckDB, Snowpark, Ray
    dc = DataConnector.from_sql("SELECT * FROM sales")          # the embedded DuckDB warehouse
    dc = DataConnector.from_sources(["@features/train/"])       # parquet/CSV files on a stage
    dc.to_pandas(limit=10); dc.to_arrow(); dc.to_batches(1024)
    dc.to_torch_dataset(batch_size=32); dc.to_ray_dataset()

Input kinds are contributed by plugins through the ``shoal_data_sources`` hook; the built-in ones
live in ``shoal.plugins.data_sources``. See ``docs/data.md``.

Importing this package imports neither pyarrow, pandas, torch, Ray, DuckDB, Snowpark nor Polars:
each is imported by the method that needs it. Runs on the driver and on workers.
"""

from __future__ import annotations

from shoal.data.connector import DataConnector
from shoal.data.sharded import ShardedDataConnector
from shoal.data.source import DataSource

__all__ = ["DataConnector", "DataSource", "ShardedDataConnector"]
