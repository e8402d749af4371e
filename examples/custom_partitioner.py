"""Worked example: a custom partitioner, as a plugin and used directly.

``MonthPartitioner`` partitions daily rows by calendar month of a date column, a key that no
column holds. Installed as a plugin (an entry point in the ``shoal`` group pointing at this
module) it is picked by name: ``shoal.dpf.partitioner("month", column="DAY")``; without
installing anything, pass an instance: ``DPF(...).run(partition_by=MonthPartitioner("DAY"), ...)``.

    .venv/bin/python examples/custom_partitioner.py      # runs on the default local pool

Runs on the driver (partitioning happens before any node is reserved).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shoal import hookimpl
from shoal.contributions import PartitionerSpec
from shoal.dpf.partitioners import Partitioner, quote_identifier


class MonthPartitioner(Partitioner):
    """Partition id ``YYYY-MM`` of the date column ``column``."""

    def __init__(self, column: str) -> None:
        self.columns = (column,)

    def expression(self) -> str:
        return f"strftime({quote_identifier(self.columns[0])}, '%Y-%m')"


@hookimpl
def shoal_partitioners() -> Iterator[PartitionerSpec]:
    yield PartitionerSpec(
        name="month", factory=MonthPartitioner, description="calendar month of a date column"
    )


def monthly_total(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    context.upload_to_stage({"days": len(frame), "units": int(frame["UNITS"].sum())}, "total.pkl")


def main() -> None:
    import pandas as pd

    from shoal.dpf import DPF

    days = pd.date_range("2026-01-01", "2026-03-31", freq="D")
    sales = pd.DataFrame({"DAY": days, "UNITS": range(len(days))})
    run = DPF(monthly_total, "examples").run(
        partition_by=MonthPartitioner("DAY"),
        dataframe=sales,
        run_id="monthly",
        on_existing_artifacts="overwrite",
    )
    print(run.wait())
    for month, detail in sorted(run.partition_details.items()):
        print(month, detail.stage_artifacts_manager.get("total.pkl"))


if __name__ == "__main__":
    main()
