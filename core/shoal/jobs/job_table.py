"""What ``list_jobs`` returns: the reference product's DataFrame, which in a notebook shows each
job's status as a coloured badge and the counts by status.

Runs on the driver.
"""

from __future__ import annotations

import pandas as pd


class JobTable(pd.DataFrame):
    """A ``pandas.DataFrame`` of jobs; slices and copies stay job tables."""

    @property
    def _constructor(self) -> type[JobTable]:
        return JobTable

    def _repr_html_(self) -> str | None:
        from shoal.display.objects import jobs_html

        return jobs_html(self)
