"""How the compute-pool names that reference code uses map to local pools: a pool that does not
exist is created on first use, as a local pool whose size is configurable.

``SHOAL_COMPAT_POOL_NODES`` (default 3) is the ``max_nodes`` of a pool created this way (at
least the job's ``target_instances``); its instance family is the local default. Stage names
(``@DB.SCHEMA.STAGE``, ``payload_stage``) need nothing here: shoal creates a missing stage on
first use already.

Runs on the driver.
"""

from __future__ import annotations

import os

DEFAULT_POOL_NODES = 3


def default_pool_nodes() -> int:
    raw = os.environ.get("SHOAL_COMPAT_POOL_NODES", str(DEFAULT_POOL_NODES))
    try:
        nodes = int(raw)
    except ValueError:
        nodes = 0
    if nodes < 1:
        raise ValueError(f"SHOAL_COMPAT_POOL_NODES must be a positive integer, got {raw!r}")
    return nodes


def ensure_pool(name: str, target_instances: int = 1) -> str:
    """The canonical name of pool ``name``, created as a local pool if it does not exist."""
    from shoal.pools import records
    from shoal.pools.api import create_compute_pool

    canonical = records.canonical_pool_name(name)
    try:
        records.load(canonical)
    except records.PoolNotFoundError:
        nodes = max(default_pool_nodes(), int(target_instances or 1))
        create_compute_pool(canonical, min_nodes=1, max_nodes=nodes, initially_suspended=True, exist_ok=True)
    return canonical
