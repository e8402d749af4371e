"""How many partition workers each node of a run's job gets.

Runs in the run's scheduler (plain Python).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from shoal.dpf.entities import ExecutionOptions
from shoal.errors import ConfigError
from shoal.jobs.context import JobNode


def plan_slots(nodes: Sequence[JobNode], options: ExecutionOptions) -> list[str]:
    """One node id per worker slot, node by node.

    ``num_cpus_per_worker=None``: one worker per CPU of each node (a worker uses one CPU);
    otherwise ``node CPUs // num_cpus_per_worker`` workers per node, and with
    ``num_gpus_per_worker`` also no more than ``node GPUs // num_gpus_per_worker``. The first node
    is the job's head; ``use_head_node=False`` leaves it out.
    """
    chosen = list(nodes)
    if not options.use_head_node:
        if len(chosen) < 2:
            raise ConfigError("use_head_node=False needs a job of at least 2 nodes; this one has 1")
        chosen = chosen[1:]
    cpus = options.num_cpus_per_worker
    gpus = options.num_gpus_per_worker or 0
    slots: list[str] = []
    for node in chosen:
        by_cpu = (
            math.floor(node.cpus + 1e-9)
            if cpus is None
            else (math.floor(node.cpus / cpus + 1e-9) if cpus > 0 else math.inf)
        )
        by_gpu = math.floor(node.gpus / gpus + 1e-9) if gpus else math.inf
        count = min(by_cpu, by_gpu)
        slots.extend([node.node_id] * int(count if count != math.inf else 1))
    if not slots:
        raise ConfigError(
            f"no node of the job can hold a partition worker with num_cpus_per_worker={cpus}, "
            f"num_gpus_per_worker={options.num_gpus_per_worker or None} (nodes: "
            + ", ".join(f"{n.node_id[:8]} {n.cpus:g} CPU {n.gpus:g} GPU" for n in chosen)
            + "); ask for less per worker"
        )
    return slots


def worker_resources(options: ExecutionOptions) -> tuple[float, float]:
    """``(num_cpus, num_gpus)`` each worker call asks Ray for."""
    cpus = options.num_cpus_per_worker
    return (1.0 if cpus is None else float(cpus)), float(options.num_gpus_per_worker or 0)
