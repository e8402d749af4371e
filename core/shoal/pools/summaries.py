"""What ``list_compute_pools`` and ``describe_compute_pool`` return: a list and a dict, as
before, that show themselves in a notebook.

Runs on the driver.
"""

from __future__ import annotations

from typing import Any


class PoolList(list[dict[str, Any]]):
    """Every pool, one dict each (name, state, backend, nodes, family, created_on)."""

    def _repr_html_(self) -> str:
        from shoal.display.objects import pools_html

        return pools_html(self)


class PoolDescription(dict[str, Any]):
    """One pool in detail (``describe_compute_pool``)."""

    def _repr_html_(self) -> str:
        from shoal.display.objects import pool_html

        return pool_html(self)
