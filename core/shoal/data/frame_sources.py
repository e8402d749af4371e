"""Data sources for in-memory frames: pandas, Polars, Arrow tables, lists of record batches and
Arrow datasets. Each becomes an Arrow source once, on the driver; the frame itself is not kept.

The ``accepts_*`` predicates recognise an object by the module and name of its class (or a base
class), so asking "is this a Polars frame?" never imports Polars.

Runs on the driver (where frames are handed in) and on workers (which only see Arrow data).
"""

from __future__ import annotations

from typing import Any

from shoal.data.arrow_sources import ArrowDatasetSource, ArrowTableSource, table_from_batches


def is_instance_by_name(obj: object, module_prefix: str, *class_names: str) -> bool:
    """True when ``obj``'s class, or a base class, is named one of ``class_names`` and lives in a
    module starting with ``module_prefix`` (``"pandas"`` matches ``pandas.core.frame``)."""
    for cls in type(obj).__mro__:
        module = getattr(cls, "__module__", "") or ""
        if cls.__name__ in class_names and (
            module == module_prefix or module.startswith(module_prefix + ".")
        ):
            return True
    return False


# -- pandas ------------------------------------------------------------------------------------


def accepts_pandas(obj: object) -> bool:
    return is_instance_by_name(obj, "pandas", "DataFrame")


def pandas_source(df: Any, *, preserve_index: bool = False) -> ArrowTableSource:
    """A pandas DataFrame; its index is dropped unless ``preserve_index`` (then it becomes columns)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(df, preserve_index=preserve_index)
    return ArrowTableSource(table, origin="pandas DataFrame")


# -- Polars ------------------------------------------------------------------------------------


def accepts_polars(obj: object) -> bool:
    return is_instance_by_name(obj, "polars", "DataFrame", "LazyFrame")


def polars_source(df: Any) -> ArrowTableSource:
    """A Polars DataFrame, or a LazyFrame (collected here, once)."""
    if is_instance_by_name(df, "polars", "LazyFrame"):
        return ArrowTableSource(df.collect().to_arrow(), origin="Polars LazyFrame (collected)")
    return ArrowTableSource(df.to_arrow(), origin="Polars DataFrame")


# -- Arrow -------------------------------------------------------------------------------------


def accepts_arrow_table(obj: object) -> bool:
    return is_instance_by_name(obj, "pyarrow", "Table", "RecordBatch")


def arrow_table_source(table: Any) -> ArrowTableSource:
    """A ``pyarrow.Table`` or a single ``pyarrow.RecordBatch``."""
    import pyarrow as pa

    if isinstance(table, pa.RecordBatch):
        return ArrowTableSource(pa.Table.from_batches([table]), origin="pyarrow RecordBatch")
    return ArrowTableSource(table, origin="pyarrow Table")


def accepts_record_batches(obj: object) -> bool:
    """A non-empty list or tuple whose items are all ``pyarrow.RecordBatch``."""
    return (
        isinstance(obj, (list, tuple))
        and len(obj) > 0
        and all(is_instance_by_name(item, "pyarrow", "RecordBatch") for item in obj)
    )


def record_batches_source(batches: Any) -> ArrowTableSource:
    """A list of record batches sharing one schema."""
    return ArrowTableSource(table_from_batches(batches), origin=f"{len(batches)} pyarrow RecordBatches")


def accepts_arrow_dataset(obj: object) -> bool:
    return is_instance_by_name(obj, "pyarrow", "Dataset")


def arrow_dataset_source(dataset: Any, **scan_options: Any) -> ArrowDatasetSource:
    """A ``pyarrow.dataset.Dataset``; ``scan_options`` (``columns``, ``filter``) go to ``to_batches``."""
    return ArrowDatasetSource(dataset, **scan_options)
