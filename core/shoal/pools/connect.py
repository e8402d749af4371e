"""Connect this process to a compute pool's Ray cluster.

Local pools listen on 127.0.0.1 only. Ray, by default, rewrites ``127.0.0.1`` in an address to
the host's network address and then cannot reach the cluster; setting
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (and the matching constant, when Ray is already
imported) keeps the loopback address. Local pools run with Ray token authentication disabled
(they are reachable from this machine only, see docs/pools.md), so any process can attach.

A process is connected to at most one Ray cluster. A connection shoal made itself moves to
another pool when asked; a connection the user made (``ray.init``) is never taken over: using
another pool then is an error that says which cluster is in use.

Runs on the driver (the submitting process, the CLI) and in job payloads.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from shoal.errors import ConfigError

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
NAMESPACE = "shoal"
_state: dict[str, str | None] = {"owned": None}  # the address of the connection shoal itself made


def prepare_loopback() -> None:
    """Make Ray in this process (and its children) keep 127.0.0.1 addresses."""
    os.environ.update(LOOPBACK_ENV)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False  # type: ignore[attr-defined]


def connected_address() -> str | None:
    """The GCS address this process is connected to, or None."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return str(ray.get_runtime_context().gcs_address)


def connect(address: str, *, loopback: bool = True) -> Any:
    """Connect to the Ray cluster at ``address`` (idempotent); return the ``ray`` module."""
    if loopback:
        prepare_loopback()
    import ray

    current = connected_address()
    if current is not None:
        if current == address:
            return ray
        if current == _state.get("owned"):
            ray.shutdown()  # a connection shoal made itself: move it to the other pool
            current = None
    if current is not None:
        raise ConfigError(
            f"This process is already connected to the Ray cluster at {current}; it cannot also use the "
            f"compute pool at {address}. Use that pool, or call ray.shutdown() first."
        )
    # the driver's log files go into the pool's (private) folders: readable by this user only
    previous_umask = os.umask(0o077)
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)
    finally:
        os.umask(previous_umask)
    _state["owned"] = address
    return ray
