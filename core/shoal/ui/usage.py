"""Each local node's CPU and memory over the last minute, for the pools page's plot (``shoal ui``
process).

A local pool's node is a process tree on this machine: its raylet and everything under it (Ray
workers, the job's processes, agents). :class:`NodeUsage` samples those trees with psutil when the
pools page is read (every 0.5 s while someone watches it live, see :mod:`shoal.ui.live`): the
CPU is the CPU time the tree used since the last sample, in cores; the memory is the tree's
resident memory. It keeps the last :data:`KEEP` samples of each node. A pool whose nodes are not
this machine's processes (``backend="ray"``) has no figures.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

#: samples kept per node (two a second while the page is watched: about a minute)
KEEP = 120


class NodeUsage:
    """Samples of every node watched so far, by pool and node index."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._samples: dict[tuple[str, int], deque[tuple[float, float, int]]] = {}
        self._cpu_seen: dict[int, tuple[float, float]] = {}  # pid -> (its CPU seconds, when read)
        self._lock = threading.Lock()  # pages and live readers sample from several threads

    def sample(self, pool: str, roots: dict[int, list[int]]) -> dict[int, list[tuple[float, float, int]]]:
        """Add a sample of each node (``roots``: its root process ids) and return every node's
        samples ``(unix time, CPU cores, RSS bytes)``, oldest first."""
        with self._lock:
            now = time.time()
            for index, pids in roots.items():
                cpu, rss = self._tree(pids, now)
                self._samples.setdefault((pool, index), deque(maxlen=self.keep)).append((now, cpu, rss))
            for key in [k for k in self._samples if k[0] == pool and k[1] not in roots]:
                del self._samples[key]  # a node that stopped
            for pid in [p for p, seen in self._cpu_seen.items() if seen[1] < now - 60]:
                del self._cpu_seen[pid]  # a process not seen for a minute is gone
            return {index: list(self._samples[(pool, index)]) for index in sorted(roots)}

    def _tree(self, pids: list[int], now: float) -> tuple[float, int]:
        import psutil

        cores, rss = 0.0, 0
        for root in pids:
            try:
                processes = [psutil.Process(root)]
                processes += processes[0].children(recursive=True)
            except psutil.Error:  # the node stopped meanwhile
                continue
            for process in processes:
                try:
                    times = process.cpu_times()
                    used = times.user + times.system
                    rss += process.memory_info().rss
                except psutil.Error:
                    continue
                before = self._cpu_seen.get(process.pid)
                self._cpu_seen[process.pid] = (used, now)
                if before is not None and now > before[1]:
                    cores += max(used - before[0], 0.0) / (now - before[1])
        return cores, rss


USAGE = NodeUsage()


def pool_usage(name: str) -> dict[str, Any] | None:
    """The pool's node samples as chart series: ``{"t": [...], "cpu": {node: [...]},
    "memory_gib": {node: [...]}}``, or None when its nodes are not this machine's processes."""
    from shoal.pools.api import get_backend

    roots = get_backend(name).node_processes()
    if not roots:
        return None
    samples = USAGE.sample(name, roots)
    longest = max(samples.values(), key=len, default=[])
    times = [t for t, _, _ in longest]  # every node's samples are taken at these times
    series: dict[str, Any] = {"t": times, "cpu": {}, "memory_gib": {}}
    for index, points in samples.items():
        # a node started later has fewer samples: pad its start so every series spans the times
        pad = [None] * (len(times) - len(points))
        series["cpu"][str(index)] = pad + [round(cpu, 3) for _, cpu, _ in points]
        series["memory_gib"][str(index)] = pad + [round(rss / 2**30, 3) for _, _, rss in points]
    return series
