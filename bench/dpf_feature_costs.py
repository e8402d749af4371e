"""What each DPF feature costs on its own, per partition, in one process (no Ray, no pool).

    .venv/bin/python bench/dpf_feature_costs.py [--partitions 2000]

The anchor is the work a hand-written task does for the benchmark's small partition: take a
20-row pandas frame, compute a mean, write the pickled result to a file. Each feature of a DPF
partition attempt is then timed alone, with the same library calls the partition worker makes:
reading the partition's rows from the run's Arrow IPC input, capturing output and logging, the
lifecycle hooks, staging and committing the artifact and ``train.log`` (exactly once), and the
scheduler's progress record. The last line is a whole attempt (``run_partition``) for comparison.

Prints microseconds per partition; runs in its own temporary SHOAL_HOME.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def per_partition(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    context.upload_to_stage(float(frame["value"].mean()), "mean.pkl")


def timed(label: str, count: int, step: Callable[[int], object]) -> float:
    step(0)
    started = time.perf_counter()
    for i in range(1, count + 1):
        step(i)
    micros = (time.perf_counter() - started) / count * 1e6
    print(f"   {label:<58} {micros:8.0f} us")
    return micros


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--partitions", type=int, default=2000)
    count = parser.parse_args().partitions
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        run(count)


def run(count: int) -> None:
    import cloudpickle
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from shoal import hooks
    from shoal.contributions import PartitionInfo
    from shoal.dpf import layout, partitioning
    from shoal.dpf.attempts import AttemptFiles
    from shoal.dpf.context import PartitionContext
    from shoal.dpf.entities import PartitionRecord, PartitionStatus, RunStatus
    from shoal.dpf.progress import ProgressWriter
    from shoal.dpf.specs import RunSpec, TaskSpec
    from shoal.plugin_manager import get_plugin_manager
    from shoal.runtime import partition_worker
    from shoal.stages import create_stage

    stage = create_stage("costs", exist_ok=True)
    root = stage.backend.local_path("")
    assert root is not None
    n = count + 2
    frame = pd.DataFrame({"key": np.repeat(np.arange(n), 20), "value": np.arange(n * 20.0)})
    parts = partitioning.partition_arrow(stage, "run", "key", pa.Table.from_pandas(frame))
    stage.write_bytes(layout.internal("run", layout.FUNCTION_FILE), cloudpickle.dumps(per_partition))
    spec = RunSpec("run", stage.name, stage.url, "sql", {}, get_plugin_manager().manifest().to_json())
    groups = [g for _, g in frame.groupby("key")]
    tasks = [TaskSpec(p.partition_id, p.index, 1, p.files, p.record_batches) for p in parts]

    class LocalRuntime(partition_worker._RunRuntime):
        """The worker's per-run state, without asking Ray for a node id."""

        def __init__(self) -> None:
            import ray

            ray.get_runtime_context = lambda: type("C", (), {"get_node_id": lambda self: "bench"})()
            super().__init__(spec)

    runtime = LocalRuntime()
    anchor_dir = Path(root) / "anchor"

    def anchor(i: int) -> None:
        folder = anchor_dir / str(i)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mean.pkl").write_bytes(cloudpickle.dumps(float(groups[i]["value"].mean())))

    print(f"DPF feature costs, per partition of 20 rows ({count} partitions, one process)")
    base = timed("anchor: pandas mean + write the pickled result to a file", count, anchor)
    timed(
        "read the partition's rows (Arrow IPC, memory-mapped)", count, lambda i: runtime.connector(tasks[i])
    )
    connectors = [runtime.connector(t) for t in tasks]
    timed("the function's own data.to_pandas()", count, lambda i: connectors[i].to_pandas())

    def capture(i: int) -> None:
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        root_logger = logging.getLogger()
        root_logger.addHandler(handler)
        old = sys.stdout, sys.stderr
        sys.stdout = partition_worker._Capture(buffer, old[0])
        sys.stderr = partition_worker._Capture(buffer, old[1])
        sys.stdout, sys.stderr = old
        root_logger.removeHandler(handler)

    timed("capture stdout, stderr and logging", count, capture)
    info = PartitionInfo(run_id="run", partition_id="p", attempt=1, stage_path_prefix="@costs/run/p")

    def notify(i: int) -> None:
        hooks.notify_before_partition(info)
        hooks.notify_after_partition(info, "DONE")

    timed("lifecycle hooks (before and after partition)", count, notify)

    def artifact(i: int) -> None:
        files = AttemptFiles(stage, "art", str(i), i, 1)
        PartitionContext(stage, "art", str(i), None, files).upload_to_stage(1.5, "mean.pkl")
        files.write_bytes(layout.LOG_FILE, b"===== partition x attempt 1: DONE =====\n")
        files.commit()

    timed("stage artifact + train.log, commit both (exactly once)", count, artifact)
    writer = ProgressWriter(stage, "progress")
    records = [PartitionRecord(str(i), i, PartitionStatus.DONE, attempts=1) for i in range(count + 1)]
    per_flush = 100  # a half-second flush of a busy run holds about this many records

    def progress(i: int) -> None:
        if i % per_flush == 0:
            writer.flush(records[i : i + per_flush], RunStatus.IN_PROGRESS, "", {}, now=float(i))

    timed(f"progress record (events appended per {per_flush} partitions)", count, progress)
    whole = timed(
        "a whole attempt: run_partition() with every feature",
        count,
        lambda i: partition_worker.run_partition(runtime, tasks[i]),
    )
    anchor_dir = Path(root) / "anchor_again"
    again = timed("anchor again, now that the disk holds the files above", count, anchor)
    print(f"   whole attempt / anchor: {whole / ((base + again) / 2):.2f}x (anchor: mean of both runs)")


if __name__ == "__main__":
    main()
