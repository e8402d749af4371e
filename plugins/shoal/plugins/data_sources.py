"""Built-in plugin: the data sources ``DataConnector.from_dataframe`` (and DPF) accept.

Each source is named ``<shape>.<library>`` and recognises its objects by class name and module
(``accepts`` never imports the library); its factory converts or wraps the object into a
``shoal.data.DataSource``. Block this plugin (``SHOAL_BLOCKED_PLUGINS=data_sources``) to replace
them all, or add a source for another kind of object with your own plugin (``docs/data.md``).

Runs on the driver, and on workers that rebuild the plugin manager.
"""

from __future__ import annotations

from collections.abc import Iterator

from shoal.contributions import DataSourceSpec
from shoal.data.duckdb_sources import accepts_duckdb_relation, duckdb_relation_source
from shoal.data.frame_sources import (
    accepts_arrow_dataset,
    accepts_arrow_table,
    accepts_pandas,
    accepts_polars,
    accepts_record_batches,
    arrow_dataset_source,
    arrow_table_source,
    pandas_source,
    polars_source,
    record_batches_source,
)
from shoal.data.ray_sources import accepts_ray_dataset, ray_dataset_source
from shoal.data.snowpark_sources import accepts_snowpark, snowpark_source
from shoal.hookspecs import hookimpl


@hookimpl
def shoal_data_sources() -> Iterator[DataSourceSpec]:
    yield DataSourceSpec(
        name="dataframe.pandas",
        accepts=accepts_pandas,
        factory=pandas_source,
        description="pandas DataFrame (converted to Arrow; index dropped unless preserve_index=True)",
    )
    yield DataSourceSpec(
        name="dataframe.polars",
        accepts=accepts_polars,
        factory=polars_source,
        description="Polars DataFrame or LazyFrame (collected)",
    )
    yield DataSourceSpec(
        name="dataframe.snowpark",
        accepts=accepts_snowpark,
        factory=snowpark_source,
        description="Snowpark DataFrame (local_testing: materialized; real session: one query, re-run)",
    )
    yield DataSourceSpec(
        name="dataframe.duckdb",
        accepts=accepts_duckdb_relation,
        factory=duckdb_relation_source,
        description="DuckDB relation (streamed on the driver, shipped to workers as Arrow)",
    )
    yield DataSourceSpec(
        name="table.arrow",
        accepts=accepts_arrow_table,
        factory=arrow_table_source,
        description="pyarrow Table or RecordBatch",
    )
    yield DataSourceSpec(
        name="batches.arrow",
        accepts=accepts_record_batches,
        factory=record_batches_source,
        description="list of pyarrow RecordBatches",
    )
    yield DataSourceSpec(
        name="dataset.arrow",
        accepts=accepts_arrow_dataset,
        factory=arrow_dataset_source,
        description="pyarrow.dataset.Dataset (streamed; columns=/filter= scan options)",
    )
    yield DataSourceSpec(
        name="dataset.ray",
        accepts=accepts_ray_dataset,
        factory=ray_dataset_source,
        description="ray.data.Dataset (streamed with iter_batches)",
    )
