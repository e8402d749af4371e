"""Can every node of a pool reach a stage? Checked when a job is submitted, before anything is
written.

A stage kept in local folders (``file://`` or a managed stage under ``SHOAL_HOME``) is the same
folder for every node only when the nodes share one file system: a local pool (one machine), or
a ``ray`` pool created with ``shares_filesystem=True`` (an NFS mount on every host). On a pool
whose nodes are on several hosts, each host would write its artifacts, logs and results to its
own disk, and the caller would never see them: :func:`check_stage_reaches_nodes` refuses it.

Runs on the driver.
"""

from __future__ import annotations

from typing import Any

from shoal.errors import ConfigError


def check_stage_reaches_nodes(stage: Any, backend: Any, pool: str) -> None:
    """Raise :class:`~shoal.errors.ConfigError` when ``stage`` keeps its files in local folders
    and ``backend``'s nodes (those up now) are on more than one host, unless the pool says that
    its hosts share a file system."""
    if getattr(backend, "shares_filesystem", False) or stage.backend.local_path("") is None:
        return
    hosts = sorted({node.address for node in backend.nodes() if node.address})
    if len(hosts) <= 1:
        return
    raise ConfigError(
        f"stage {stage.name} keeps its files in a local folder ({stage.url}), but compute pool {pool} "
        f"has nodes on {len(hosts)} hosts ({', '.join(hosts[:5])}): each host would write its "
        f"artifacts, logs and results to its own disk. Use a stage every host reaches, on an object "
        f"store (shoal.create_stage(NAME, url='s3://bucket/prefix'), or gs://), or, when that folder "
        f"is on a file system every host mounts, create the pool with shares_filesystem=True."
    )
