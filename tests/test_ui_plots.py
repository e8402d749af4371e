"""The data behind the web view's plots: a run's partitions finished over time, and a node's CPU
and memory sampled from its process tree."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from shoal.dpf.entities import PartitionStatus
from shoal.ui.usage import NodeUsage
from shoal.ui.views import MAX_POINTS, finished_over_time
from waiting import wait_until


@dataclass
class Detail:
    status: PartitionStatus
    started_at: float | None
    ended_at: float | None


def test_finished_partitions_count_up_from_the_first_start() -> None:
    details: dict[str, Any] = {
        "a": Detail(PartitionStatus.DONE, 100.0, 103.0),
        "b": Detail(PartitionStatus.FAILED, 101.0, 102.0),
        "c": Detail(PartitionStatus.DONE, 100.5, 105.5),
        "d": Detail(PartitionStatus.RUNNING, 104.0, None),
        "e": Detail(PartitionStatus.PENDING, None, None),
    }
    assert finished_over_time(details) == {"t": [2.0, 3.0, 5.5], "done": [0, 1, 2], "failed": [1, 1, 1]}
    assert finished_over_time({"e": details["e"]}) == {"t": [], "done": [], "failed": []}


def test_a_large_run_is_thinned_to_the_most_points_keeping_the_last() -> None:
    details: dict[str, Any] = {str(i): Detail(PartitionStatus.DONE, 0.0, float(i + 1)) for i in range(2001)}
    series = finished_over_time(details)
    assert len(series["t"]) <= MAX_POINTS + 1
    assert series["done"][-1] == 2001
    assert series["t"][-1] == 2001.0
    assert series["done"] == sorted(series["done"])


def test_a_node_s_cpu_and_memory_come_from_its_whole_process_tree() -> None:
    busy = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"]
    )
    try:
        usage = NodeUsage(keep=3)
        tree = {0: [os.getpid()]}  # this process, whose child burns a core

        def cores() -> float:
            return usage.sample("P", tree)[0][-1][1]

        wait_until(lambda: cores() > 0.3, "the busy child's CPU to count for its parent's tree", 15)
        samples = usage.sample("P", tree)[0]
        assert len(samples) == 3, "only the last `keep` samples are kept"
        assert samples[-1][2] > 10 * 2**20, "the tree's resident memory"
        assert usage.sample("P", {}) == {}, "a node that stopped has no samples left"
    finally:
        busy.kill()
        busy.wait(timeout=10)
