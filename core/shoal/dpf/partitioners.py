"""Custom partitioners: partition SQL-mode input by something other than one column's values.

A :class:`Partitioner` names the input columns it reads and gives a DuckDB SQL expression that
computes each row's partition key; the run's input is partitioned by that expression with one
DuckDB partitioned write (in-memory inputs are scanned by DuckDB in place). Partitioners are
contributed through the ``shoal_partitioners`` hook and picked by name with :func:`partitioner`,
or built directly and passed as ``DPF.run(partition_by=...)``.

Built-ins (plugin ``shoal.plugins.partitioners``): ``hash_buckets(column, buckets)``,
``derived_key(expression, columns)``, ``fixed_size_chunks(rows)``.

Runs on the driver (partitioning happens before any node is reserved).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


def quote_identifier(name: str) -> str:
    """A DuckDB/ANSI quoted identifier: ``my"col`` -> ``"my""col"``."""
    return '"' + name.replace('"', '""') + '"'


class Partitioner(ABC):
    """Computes each row's partition key as a DuckDB SQL expression."""

    #: input columns the expression reads (checked against the input before anything runs)
    columns: tuple[str, ...] = ()

    @abstractmethod
    def expression(self) -> str:
        """A DuckDB SQL expression over the input's columns (quote them with ``quote_identifier``)."""

    def describe(self) -> str:
        return f"{type(self).__name__}({self.expression()})"


class HashBuckets(Partitioner):
    """``buckets`` partitions of roughly equal size: ``hash(column) % buckets`` (ids ``0``..``buckets-1``)."""

    def __init__(self, column: str, buckets: int) -> None:
        if not isinstance(buckets, int) or buckets < 1:
            raise ValueError(f"buckets must be a positive integer, got {buckets!r}")
        self.columns = (column,)
        self.buckets = buckets

    def expression(self) -> str:
        return f"hash({quote_identifier(self.columns[0])}) % {self.buckets}"


class DerivedKey(Partitioner):
    """Any SQL expression, e.g. ``strftime("DAY", '%Y-%m')``; ``columns`` lists what it reads."""

    def __init__(self, expression: str, columns: tuple[str, ...] | list[str] = ()) -> None:
        if not isinstance(expression, str) or not expression.strip():
            raise ValueError("derived_key needs a non-empty SQL expression")
        self._expression = expression
        self.columns = tuple(columns)

    def expression(self) -> str:
        return self._expression


class FixedSizeChunks(Partitioner):
    """Consecutive chunks of ``rows`` rows in the input's order (ids ``0``, ``1``, ...)."""

    def __init__(self, rows: int) -> None:
        if not isinstance(rows, int) or rows < 1:
            raise ValueError(f"rows must be a positive integer, got {rows!r}")
        self.rows = rows

    def expression(self) -> str:
        return f"(row_number() OVER () - 1) // {self.rows}"


def partitioner(name: str, **options: Any) -> Partitioner:
    """The partitioner called ``name`` (from any plugin), built with ``options``."""
    from shoal import hooks

    built = hooks.get_partitioner(name).factory(**options)
    if not isinstance(built, Partitioner):
        raise TypeError(
            f"partitioner {name!r} built {type(built).__name__}, not a shoal.dpf.partitioners.Partitioner"
        )
    return built
