"""The default compute pool: where DPF runs and estimators go when no pool is named.

Chosen, in order: :func:`set_default_compute_pool`, the ``SHOAL_COMPUTE_POOL`` environment
variable, else a local pool named ``DEFAULT``, created on first use and sized to this machine
(one 1-CPU node per core, 2 to 4 nodes). Runs on the driver.
"""

from __future__ import annotations

import logging
import os

from shoal.pools import records

log = logging.getLogger(__name__)

_chosen: dict[str, str | None] = {"name": None}
DEFAULT_POOL = "DEFAULT"


def set_default_compute_pool(name: str | None) -> None:
    """Use pool ``name`` by default in this process (None: back to the environment / DEFAULT)."""
    _chosen["name"] = records.canonical_pool_name(name) if name is not None else None


def default_compute_pool() -> str:
    """The name of the default pool, creating the local ``DEFAULT`` pool if it is the one chosen."""
    name = _chosen["name"] or os.environ.get("SHOAL_COMPUTE_POOL") or None
    if name:
        return records.canonical_pool_name(name)
    try:
        records.load(DEFAULT_POOL)
    except records.PoolNotFoundError:
        from shoal.pools.api import create_compute_pool

        nodes = max(2, min(4, os.cpu_count() or 2))
        create_compute_pool(
            DEFAULT_POOL, min_nodes=1, max_nodes=nodes, initially_suspended=True, exist_ok=True
        )
        log.warning(
            "no compute pool was named, so shoal created the local pool %s (up to %d nodes on this "
            "machine); it starts when first used and keeps running after this process: stop it with "
            "`shoal pool stop %s` or shoal.stop_compute_pool(%r), or name a pool with "
            "set_default_compute_pool or SHOAL_COMPUTE_POOL",
            DEFAULT_POOL,
            nodes,
            DEFAULT_POOL,
            DEFAULT_POOL,
        )
    return DEFAULT_POOL
