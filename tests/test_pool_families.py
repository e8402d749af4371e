"""Instance families and a pool's overrides (docs/pools.md, "Instance families"): the node sizes
a pool asks Ray for. No Ray: the families resolve on the driver, and a suspended pool keeps them
in its record."""

from __future__ import annotations

import pytest

import shoal
from shoal.errors import ConfigError
from shoal.pools.families import resolve_family


@pytest.mark.parametrize(
    ("name", "cpus", "memory_gb"),
    [("CPU_X64_XS", 1, 6), ("cpu_x64_s", 3, 13), ("CPU_X64_M", 6, 28), ("CPU_X64_L", 28, 116)],
)
def test_the_documented_families(name: str, cpus: float, memory_gb: float) -> None:
    family = resolve_family(name)
    assert (family.cpus, family.memory_gb, family.gpus) == (cpus, memory_gb, 0)


def test_a_pool_overrides_a_family_and_adds_its_own() -> None:
    bigger = resolve_family("CPU_X64_S", {"cpus_per_node": 2, "memory_gb_per_node": 4})
    assert (bigger.name, bigger.cpus, bigger.memory_gb) == ("CPU_X64_S", 2.0, 4.0)
    tiny = resolve_family("tiny", {"families": {"TINY": {"cpus": 1, "memory_gb": 1}}})
    assert (tiny.cpus, tiny.memory_gb, tiny.gpus) == (1.0, 1.0, 0)
    with pytest.raises(ConfigError, match=r"Unknown instance family 'HUGE'\. Choose one of: .*CPU_X64_XS"):
        resolve_family("HUGE")
    with pytest.raises(ConfigError, match=r"families\['BAD'\] must be a mapping with 'cpus', 'memory_gb'"):
        resolve_family("BAD", {"families": {"BAD": {"cpus": 1}}})


def test_a_pool_keeps_its_family_and_overrides() -> None:
    shoal.create_compute_pool(
        "SIZED", max_nodes=2, instance_family="CPU_X64_S", cpus_per_node=2, initially_suspended=True
    )
    described = shoal.describe_compute_pool("SIZED")
    assert described["state"] == "SUSPENDED"
    assert described["instance_family"] == "CPU_X64_S"
    assert described["options"]["cpus_per_node"] == 2


@pytest.mark.parametrize(
    "options",
    [
        {"instance_family": "TINY", "families": {"TINY": {"cpus": 0.5, "memory_gb": 1}}},
        {"cpus_per_node": 1.5},
    ],
    ids=["family", "override"],
)
def test_a_fraction_of_a_cpu_per_node_is_refused_before_anything_is_written(options: dict) -> None:
    """Ray's nodes take whole CPUs: a node given 0.5 used to die at start with Ray's "Resource
    quantities must all be whole numbers", leaving its temporary folder."""
    from shoal.workspace import shoal_home

    with pytest.raises(ConfigError, match=r"a node's cpus must be a whole number .* got (0\.5|1\.5)"):
        shoal.create_compute_pool("HALF", max_nodes=1, **options)
    assert not (shoal_home() / "pools").exists(), "no pool record, no node"
