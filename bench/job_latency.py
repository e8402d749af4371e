"""Benchmark: local pool cold start, and submit-to-payload latency of a job on a warm pool,
next to Ray's own job submission (JobSubmissionClient) measured in the same run on the same
cluster.

    .venv/bin/python bench/job_latency.py [--repeats 5]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        folder = Path(tmp) / "payload"
        folder.mkdir()
        script = folder / "payload.py"
        script.write_text(PAYLOAD)
        import shoal

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
        finally:
            shoal.drop_compute_pool("BENCH")

    def median(values: list[tuple[float, float]], index: int) -> float:
        return statistics.median(v[index] for v in values)

    print(f"cold start of a 3-node local pool (dashboard on): {cold:.2f} s")
    print(f"{'warm pool, ' + str(options.repeats) + ' runs':<34}{'submit->payload':>16}{'submit->done':>14}")
    print(f"{'shoal submit_file':<34}{median(ours, 0):>15.2f}s{median(ours, 1):>13.2f}s")
    print(f"{'Ray JobSubmissionClient':<34}{median(theirs, 0):>15.2f}s{median(theirs, 1):>13.2f}s")
    print(
        f"{'ratio shoal / Ray Jobs':<34}{median(ours, 0) / median(theirs, 0):>15.2f}x"
        f"{median(ours, 1) / median(theirs, 1):>13.2f}x"
    )


if __name__ == "__main__":
    main()
