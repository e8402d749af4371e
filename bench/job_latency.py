"""Benchmark: local pool cold start and idle memory, submit-to-payload latency of a job on a warm
pool next to Ray's own job submission (JobSubmissionClient) measured in the same run on the same
cluster, and the throughput of 50 jobs submitted at once to a 2-node pool with the GCS's peak RSS.

    .venv/bin/python bench/job_latency.py [--repeats 5] [--jobs 50]

The payload records ``time.time()`` as its first statement; latency = that moment minus the
moment the client called submit (same machine, same clock). "done" is submit until the
client sees the job finished with its result / SUCCEEDED status. Prints medians and the ratio
shoal / Ray Jobs. Runs in its own temporary SHOAL_HOME and stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

PAYLOAD = "import time\nstart = time.time()\nprint('PAYLOAD_START', start, flush=True)\n__return__ = start\n"


def shoal_round(script: Path, pool: str) -> tuple[float, float]:
    from shoal.jobs import submit_file

    submitted = time.time()
    job = submit_file(script, pool, stage_name="bench")
    started = float(job.result(timeout=300))
    return started - submitted, time.time() - submitted


def ray_jobs_round(client: object, folder: Path) -> tuple[float, float]:
    from ray.job_submission import JobStatus, JobSubmissionClient

    assert isinstance(client, JobSubmissionClient)
    submitted = time.time()
    job_id = client.submit_job(
        entrypoint=f"{sys.executable} payload.py", runtime_env={"working_dir": str(folder)}
    )
    while True:
        status = client.get_job_status(job_id)
        if status.is_terminal():
            break
        time.sleep(0.05)
    done = time.time() - submitted
    if status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"Ray job {job_id} ended {status}: {client.get_job_logs(job_id)[-2000:]}")
    line = next(ln for ln in client.get_job_logs(job_id).splitlines() if ln.startswith("PAYLOAD_START"))
    return float(line.split()[1]) - submitted, done


def pool_rss_mb(pool: str, only: str | None = None) -> float:
    """RSS of every process of a local pool (or of those whose name contains ``only``), in MB."""
    import json

    import psutil

    from shoal.workspace import workspace_dir

    pool_id = json.loads((workspace_dir("pools") / pool / "state.json").read_text())["pool_id"]
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.environ().get("SHOAL_POOL_ID") != pool_id:
                continue
            if only is None or only in (proc.info["name"] or ""):
                total += proc.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return total


def bench_cold_start_and_idle_memory() -> tuple[float, float]:
    import shoal

    began = time.monotonic()
    shoal.create_compute_pool("COLD", min_nodes=3, max_nodes=3)
    cold = time.monotonic() - began
    try:
        time.sleep(5)
        idle = pool_rss_mb("COLD")
    finally:
        shoal.drop_compute_pool("COLD")
    return cold, idle


def trivial() -> int:
    return 1


def bench_remote_done(pool: str, repeats: int) -> float:
    from shoal.jobs import remote

    job = remote(pool, stage_name="bench")(trivial)
    job().result(timeout=300)
    times = []
    for _ in range(repeats):
        submitted = time.time()
        assert job().result(timeout=300) == 1
        times.append(time.time() - submitted)
    return statistics.median(times)


def bench_throughput(script: Path, jobs: int) -> tuple[float, float]:
    """Jobs per minute for ``jobs`` submitted at once to a 2-node pool, and the GCS's peak RSS."""
    import threading

    import shoal
    from shoal.jobs import submit_file

    shoal.create_compute_pool("QUEUE", min_nodes=2, max_nodes=2)
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            peak[0] = max(peak[0], pool_rss_mb("QUEUE", only="gcs_server"))

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        submit_file(script, "QUEUE", stage_name="bench").result(timeout=300)  # warm
        sampler.start()
        began = time.monotonic()
        handles = [submit_file(script, "QUEUE", stage_name="bench") for _ in range(jobs)]
        for handle in handles:
            handle.result(timeout=900)
        elapsed = time.monotonic() - began
    finally:
        stop.set()
        shoal.drop_compute_pool("QUEUE")
    return jobs / elapsed * 60, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        folder = Path(tmp) / "payload"
        folder.mkdir()
        script = folder / "payload.py"
        script.write_text(PAYLOAD)
        import shoal

        plain_cold, idle_mb = bench_cold_start_and_idle_memory()
        began = time.monotonic()
        info = shoal.create_compute_pool("BENCH", min_nodes=3, max_nodes=3, include_dashboard=True)
        cold = time.monotonic() - began
        try:
            from ray.job_submission import JobSubmissionClient

            client = JobSubmissionClient(f"http://{info['dashboard']}")
            shoal_round(script, "BENCH")  # warm-up: worker processes, imports
            ray_jobs_round(client, folder)
            ours = [shoal_round(script, "BENCH") for _ in range(options.repeats)]
            theirs = [ray_jobs_round(client, folder) for _ in range(options.repeats)]
            remote_done = bench_remote_done("BENCH", options.repeats)
        finally:
            shoal.drop_compute_pool("BENCH")
        per_minute, gcs_peak = bench_throughput(script, options.jobs)

    def median(values: list[tuple[float, float]], index: int) -> float:
        return statistics.median(v[index] for v in values)

    print(
        f"cold start of a 3-node local pool, create_compute_pool to ready: {plain_cold:.2f} s (target <= 8 s)"
    )
    print(f"idle memory of that pool, all its processes' RSS: {idle_mb:.0f} MB")
    print(f"cold start of a 3-node local pool with the dashboard (for Ray Jobs): {cold:.2f} s")
    print(f"{'warm pool, ' + str(options.repeats) + ' runs':<34}{'submit->payload':>16}{'submit->done':>14}")
    print(f"{'shoal submit_file':<34}{median(ours, 0):>15.2f}s{median(ours, 1):>13.2f}s")
    print(f"{'Ray JobSubmissionClient':<34}{median(theirs, 0):>15.2f}s{median(theirs, 1):>13.2f}s")
    print(
        f"{'ratio shoal / Ray Jobs':<34}{median(ours, 0) / median(theirs, 0):>15.2f}x"
        f"{median(ours, 1) / median(theirs, 1):>13.2f}x"
    )
    print(
        f"a trivial @remote function, submit to DONE with its result: {remote_done:.2f} s (target <= 1.3 s)"
    )
    print(f"{options.jobs} jobs submitted at once to a 2-node pool: {per_minute:.0f} jobs per minute")
    print(f"peak RSS of the pool's GCS meanwhile: {gcs_peak:.0f} MB (target < 1 GB)")


if __name__ == "__main__":
    main()
