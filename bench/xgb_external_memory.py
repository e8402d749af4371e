"""Benchmark: XGBoost trains a shard larger than the memory its rank uses (external memory).

    .venv/bin/python bench/xgb_external_memory.py [--rows 3000000] [--rounds 20]

The training rows (``--rows`` x 50 float32 features, the synthetic regression of
``bench/train_gbdt.py``) are written as 8 parquet files, one file at a time, so no process holds
them all. shoal's ``XGBEstimator`` then trains on them with 2 ranks (2-node local pool, 1 CPU
per node), twice:

* ``external_memory=False`` (the anchor): each rank's quantised matrix is in memory;
* ``external_memory=True``: each rank pages its matrix to its scratch folder
  (``ExtMemQuantileDMatrix``) and reads it back page by page for each tree.

Prints, for each run: seconds, test RMSE, each rank's peak RSS above a fresh interpreter with a
rank's imports, and its peak anonymous RSS (``RssAnon``: XGBoost reads its pages on disk through
memory maps, and those file pages count in RSS although the kernel drops them under pressure;
anonymous memory is what a memory limit must hold); then the ratios to a rank's float32 shard
size and external / in memory. A rank trains a shard larger than the memory it needs when its
peak anonymous RSS is below its shard's size.
Runs in its own temporary SHOAL_HOME and stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_gbdt import FEATURES, LABEL, SEED, PeakMemory, import_baseline_mb, rmse, synthetic_rows

POOL = "BENCHEXTMEM"
FILES = 8


def write_files(rows: int, folder: Path) -> list[str]:
    """``rows`` training rows as FILES parquet files, written one at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(FILES):
        chunk = synthetic_rows(rows // FILES, SEED + 1 + index)
        path = folder / f"part{index}.parquet"
        pq.write_table(pa.Table.from_pandas(chunk, preserve_index=False), path, row_group_size=65536)
        paths.append(str(path))
        del chunk
    return paths


def rss_anon(pid: int) -> int:
    """Bytes of a process's anonymous resident memory (``RssAnon``: not file pages the kernel can
    drop, such as XGBoost's memory-mapped pages on disk)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


class AnonPeak(PeakMemory):
    """PeakMemory that also keeps each rank's peak anonymous RSS."""

    def __init__(self, workers: str) -> None:
        super().__init__(workers)
        self.anon_peak: dict[int, int] = {}

    def _sample(self) -> None:
        super()._sample()
        for pid in list(self._procs):
            try:
                self.anon_peak[pid] = max(self.anon_peak.get(pid, 0), rss_anon(pid))
            except OSError:
                continue

    def describe(self) -> str:
        anon = ", ".join(f"{peak / 2**20:.0f}" for _, peak in sorted(self.anon_peak.items()))
        return super().describe() + f"; ranks' peak anonymous RSS MB: {anon}"


def fit(
    paths: list[str], test: Any, names: list[str], rounds: int, external: bool
) -> tuple[float, float, str]:
    from shoal.data import ShardedDataConnector
    from shoal.plugins.xgboost import XGBEstimator, XGBScalingConfig

    estimator = XGBEstimator(
        n_estimators=rounds,
        params={"max_depth": 6, "eta": 0.1},
        scaling_config=XGBScalingConfig(num_workers=2, num_cpu_per_worker=1),
        compute_pool=POOL,
        external_memory=external,
    )
    with AnonPeak("TrainWorker") as memory:
        started = time.monotonic()
        estimator.fit(ShardedDataConnector.from_sources(paths), names, label_col=LABEL)
        seconds = time.monotonic() - started
    return seconds, rmse(estimator.predict(test), test[LABEL]), memory.describe()


def rank_peaks(memory: str) -> list[float]:
    """The ranks' peak RSS (MB) in an AnonPeak description."""
    return [float(part.split(" MB")[0].rsplit(" ", 1)[-1]) for part in memory.split("; ")[1:-1]]


def anon_peaks(memory: str) -> list[float]:
    """The ranks' peak anonymous RSS (MB) in an AnonPeak description."""
    return [float(mb) for mb in memory.rsplit(": ", 1)[-1].split(", ")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=50)
    options = parser.parse_args()
    names = [f"X{i}" for i in range(FEATURES)]
    test = synthetic_rows(50_000, SEED)
    shard_mb = options.rows / 2 * FEATURES * 4 / 2**20
    baseline = import_baseline_mb("xgboost")
    print(
        f"{options.rows:,} rows x {FEATURES} features in {FILES} parquet files, {options.rounds} rounds, "
        f"2 ranks; a rank's shard is {shard_mb:.0f} MB as float32; a rank's imports take {baseline:.0f} MB",
        flush=True,
    )
    results: dict[str, tuple[float, float, str]] = {}
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        began = time.monotonic()
        paths = write_files(options.rows, Path(tmp) / "files")
        print(f"files written in {time.monotonic() - began:.1f} s", flush=True)
        import shoal

        shoal.create_compute_pool(POOL, min_nodes=2, max_nodes=2, cpus_per_node=1)
        try:
            for label, external in (("in memory", False), ("external memory", True)):
                results[label] = fit(paths, test, names, options.rounds, external)
                print(f"{label}: {results[label]}", flush=True)
        finally:
            shoal.drop_compute_pool(POOL)
    print()
    for label, (seconds, error, memory) in results.items():
        peaks = rank_peaks(memory)
        above = max(peaks) - baseline
        anon = max(anon_peaks(memory))
        print(
            f"{label:<16} {seconds:>8.2f} s  test RMSE {error:.4f}  rank peak {max(peaks):.0f} MB, "
            f"{above:.0f} MB above imports = {above / shard_mb:.2f}x its shard; "
            f"anonymous {anon:.0f} MB = {anon / shard_mb:.2f}x its shard"
        )
    inner, outer = results["in memory"], results["external memory"]
    inner_above = max(rank_peaks(inner[2])) - baseline
    outer_above = max(rank_peaks(outer[2])) - baseline
    print(
        f"external / in memory: time {outer[0] / inner[0]:.2f}x, test RMSE {outer[1] / inner[1]:.3f}, "
        f"rank peak above imports {outer_above / inner_above:.2f}x, anonymous "
        f"{max(anon_peaks(outer[2])) / max(anon_peaks(inner[2])):.2f}x"
    )


if __name__ == "__main__":
    main()
