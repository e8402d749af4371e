"""Instance families: how big one node of a compute pool is.

The names and sizes follow the reference product's CPU and GPU families. On a local pool the
sizes are *logical* Ray resources (a 6-CPU node on a 2-core laptop is allowed; it only changes
how many tasks Ray runs at once). Override or add families with the pool option
``families={"NAME": {"cpus": .., "memory_gb": .., "gpus": ..}}`` or per pool with
``cpus_per_node=`` / ``memory_gb_per_node=``.

Runs on the driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.errors import ConfigError


@dataclass(frozen=True)
class InstanceFamily:
    """Resources of one node."""

    name: str
    cpus: float
    memory_gb: float
    gpus: int = 0


FAMILIES: dict[str, InstanceFamily] = {
    f.name: f
    for f in (
        InstanceFamily("CPU_X64_XS", cpus=1, memory_gb=6),
        InstanceFamily("CPU_X64_S", cpus=3, memory_gb=13),
        InstanceFamily("CPU_X64_M", cpus=6, memory_gb=28),
        InstanceFamily("CPU_X64_SL", cpus=14, memory_gb=54),
        InstanceFamily("CPU_X64_L", cpus=28, memory_gb=116),
        InstanceFamily("HIGHMEM_X64_S", cpus=6, memory_gb=58),
        InstanceFamily("HIGHMEM_X64_M", cpus=28, memory_gb=240),
        InstanceFamily("GPU_NV_S", cpus=6, memory_gb=27, gpus=1),
        InstanceFamily("GPU_NV_M", cpus=44, memory_gb=178, gpus=4),
        InstanceFamily("GPU_NV_L", cpus=92, memory_gb=1112, gpus=8),
    )
}

DEFAULT_FAMILY = "CPU_X64_XS"


def resolve_family(name: str, options: Mapping[str, Any] | None = None) -> InstanceFamily:
    """The family ``name`` (case-insensitive), with the pool's overrides applied."""
    options = options or {}
    table = dict(FAMILIES)
    for extra_name, spec in (options.get("families") or {}).items():
        try:
            table[extra_name.upper()] = InstanceFamily(
                extra_name.upper(),
                cpus=float(spec["cpus"]),
                memory_gb=float(spec["memory_gb"]),
                gpus=int(spec.get("gpus", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"families[{extra_name!r}] must be a mapping with 'cpus', 'memory_gb' and optional 'gpus'; "
                f"got {spec!r}"
            ) from exc
    family = table.get(str(name).upper())
    if family is None:
        raise ConfigError(f"Unknown instance family {name!r}. Choose one of: {', '.join(sorted(table))}.")
    cpus = options.get("cpus_per_node")
    memory = options.get("memory_gb_per_node")
    if cpus is not None or memory is not None:
        family = InstanceFamily(
            family.name,
            cpus=float(cpus) if cpus is not None else family.cpus,
            memory_gb=float(memory) if memory is not None else family.memory_gb,
            gpus=family.gpus,
        )
    if family.cpus <= 0 or family.memory_gb <= 0:
        raise ConfigError(f"Instance family {family.name}: cpus and memory must be positive, got {family}")
    if family.cpus != int(family.cpus):
        raise ConfigError(
            f"Instance family {family.name}: a node's cpus must be a whole number (Ray's nodes take no "
            f"fractions of a CPU), got {family.cpus:g}. Use 1 or more; a task can still ask for part "
            f"of a CPU."
        )
    return family
