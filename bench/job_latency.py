"""Benchmark: local pool cold start and idle memory, submit-to-payload latency of a job on a warm
pool next to Ray's own job submission (JobSubmissionClient) measured in the same run on the same
cluster, the throughput of 50 jobs submitted at once to a 2-node pool with the GCS's peak RSS,
how soon a running job's output shows in each instance's log, and how fast 2,000 job records
are listed.

    .venv/bin/python bench/job_latency.py [--repeats 5] [--jobs 50] [--records 2000]

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


def bench_ray_start_anchor() -> float:
    """The same run's anchor for the cold start: a 3-node cluster started with Ray's own CLI, as a
    user would on one machine (``ray start --head``, then both workers at once), each node with
    one CPU and no dashboard, until all three are alive. Its processes carry a marker in their
    environment and are ended by pid. ``ray start`` returns once its node is registered, as shoal's
    node launcher does, so the clock stops when the last one returns; a driver then checks that
    all three are alive, untimed."""
    import shutil
    import subprocess
    import uuid

    from shoal import processes
    from shoal.ports import free_ports

    marker = f"bench-anchor-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "SHOAL_BENCH_ANCHOR": marker, "RAY_AUTH_MODE": "disabled"}
    ray_cli = str(Path(sys.executable).with_name("ray"))
    root = Path(tempfile.mkdtemp(prefix="ray-anchor-", dir="/tmp"))
    (port,), held = free_ports(1, "127.0.0.1")
    held[0].close()
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    began = time.monotonic()
    try:
        subprocess.run(
            [
                ray_cli,
                "start",
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--temp-dir={root}/n0",
                *common,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        workers = [
            subprocess.Popen(
                [ray_cli, "start", f"--address=127.0.0.1:{port}", f"--temp-dir={root}/n{i}", *common],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in (1, 2)
        ]
        for worker in workers:
            if worker.wait() != 0:
                raise RuntimeError("ray start of a worker node failed")
        elapsed = time.monotonic() - began
        probe = (
            "import ray, time\n"
            f"ray.init(address='127.0.0.1:{port}', logging_level='ERROR')\n"
            "while sum(n['Alive'] for n in ray.nodes()) < 3: time.sleep(0.05)\n"
        )
        subprocess.run([sys.executable, "-c", probe], env=env, check=True, capture_output=True, timeout=60)
        return elapsed
    finally:
        processes.terminate(processes.marked_processes(f"SHOAL_BENCH_ANCHOR={marker}"), grace_s=1.0)
        shutil.rmtree(root, ignore_errors=True)


def trivial() -> int:
    return 1


def print_on_every_node(lines: int) -> None:
    """A payload: on each of its nodes a task prints ``lines`` lines stamped with the time, one
    every 0.2 s, and the payload itself does the same."""
    import os
    import time

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0.1)
    def stamp(instance: int) -> None:
        for k in range(lines):
            print(f"STAMP {instance} {k} {time.time():.6f}", flush=True)
            time.sleep(0.2)

    nodes = os.environ["SHOAL_JOB_NODE_IDS"].split(",")
    refs = [
        stamp.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(i)
        for i, node in enumerate(nodes)
    ]
    for k in range(lines):
        print(f"STAMP payload {k} {time.time():.6f}", flush=True)
        time.sleep(0.2)
    ray.get(refs)


def bench_live_logs(pool: str, instances: int, lines: int = 15) -> dict[str, float]:
    """For each instance's log (and the payload's lines in instance 0's): the largest delay
    between a line being printed and the client first reading it with ``job.get_logs``."""
    from shoal.jobs import remote

    job = remote(pool, stage_name="bench", target_instances=instances)(print_on_every_node)(lines)
    seen: dict[tuple[str, str], float] = {}
    delays: dict[str, float] = {}
    while True:
        ended = job.status.is_terminal
        for index in range(instances):
            for line in job.get_logs(instance_id=index, as_list=True):
                parts = line.split()
                if "STAMP" not in parts:
                    continue
                who, k, printed = parts[parts.index("STAMP") + 1 :][:3]
                if (who, k) in seen:
                    continue
                seen[(who, k)] = time.time()
                if not ended:  # lines first read after the end say nothing about live logs
                    key = "payload" if who == "payload" else f"instance {index}"
                    delays[key] = max(delays.get(key, 0.0), seen[(who, k)] - float(printed))
        if ended:
            break
        time.sleep(0.05)
    missing = (instances + 1) * lines - len(seen)
    if missing:
        raise RuntimeError(f"{missing} stamped lines never reached the logs")
    return delays


def bench_listing(records_count: int, home: Path) -> dict[str, float]:
    """list_jobs and `shoal job ls` over ``records_count`` job records (all ended but a tenth) in
    the fresh workspace ``home``, next to the anchor: reading every record and every status
    document, as listings did."""
    import json
    import subprocess

    from shoal.jobs import list_jobs, records
    from shoal.jobs.status import JobStatus, write_status
    from shoal.stages import Stage, create_stage
    from shoal.workspace import workspace_dir

    os.environ["SHOAL_HOME"] = str(home)
    stage = create_stage("LISTING")
    for i in range(records_count):
        name = f"listed_{i:05d}"
        records.save(
            records.JobRecord(
                id=name,
                name=name,
                compute_pool="LISTING",
                stage_name=stage.name,
                stage_url=stage.url,
                job_dir=name,
                target_instances=1,
                min_instances=1,
                created_time=1.7e9 + i,
                owner="bench",
                payload_kind="function",
            )
        )
        write_status(stage, name, JobStatus.RUNNING if i % 10 == 0 else JobStatus.DONE)
    figures: dict[str, float] = {}
    began = time.monotonic()
    for path in workspace_dir("jobs").glob("*.json"):
        record = json.loads(path.read_text())
        Stage(record["stage_name"], record["stage_url"]).read_text(f"{record['job_dir']}/status.json")
    figures["anchor"] = time.monotonic() - began
    began = time.monotonic()
    list_jobs(limit=0)
    figures["first"] = time.monotonic() - began
    for limit in (10, 0):
        began = time.monotonic()
        list_jobs(limit=limit)
        figures[f"list_jobs {limit}"] = time.monotonic() - began
    shoal_cli = str(Path(sys.executable).with_name("shoal"))
    for args in (["job", "ls"], ["job", "ls", "--limit", "0"], ["--help"]):
        began = time.monotonic()
        subprocess.run([shoal_cli, *args], check=True, capture_output=True)
        figures["shoal " + " ".join(args)] = time.monotonic() - began
    return figures


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
    parser.add_argument("--records", type=int, default=2000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        folder = Path(tmp) / "payload"
        folder.mkdir()
        script = folder / "payload.py"
        script.write_text(PAYLOAD)
        import shoal

        anchor_cold = bench_ray_start_anchor()
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
            live = bench_live_logs("BENCH", instances=3)
        finally:
            shoal.drop_compute_pool("BENCH")
        per_minute, gcs_peak = bench_throughput(script, options.jobs)
        listing = bench_listing(options.records, Path(tmp) / "listing-home")

    def median(values: list[tuple[float, float]], index: int) -> float:
        return statistics.median(v[index] for v in values)

    print(
        f"cold start of a 3-node local pool, create_compute_pool to ready: {plain_cold:.2f} s (target <= 8 s)"
    )
    print(
        f"anchor, the same 3 nodes started with `ray start` (head, then both workers at once): "
        f"{anchor_cold:.2f} s; ratio shoal / anchor {plain_cold / anchor_cold:.2f}x"
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
    print("a running job's output, printed -> first read with job.get_logs (largest delay, target <= 1 s):")
    for key, delay in sorted(live.items()):
        print(f"  {key:<12}{delay:>6.2f} s")
    n = options.records
    print(f"listing {n} job records (a tenth still running), target <= 0.5 s:")
    print(f"  anchor: reading every record and status document   {listing['anchor']:>6.3f} s")
    print(f"  list_jobs(limit=0), first listing (fills the index) {listing['first']:>6.3f} s")
    for key in ("list_jobs 10", "list_jobs 0"):
        ratio = listing[key] / listing["anchor"]
        print(f"  {key.replace(' ', '(limit=') + ')':<51}{listing[key]:>6.3f} s  ({ratio:.2f}x the anchor)")
    for key in ("shoal job ls", "shoal job ls --limit 0", "shoal --help"):
        label = key + ("  (whole command)" if key != "shoal --help" else "  (interpreter and CLI start)")
        print(f"  {label:<51}{listing[key]:>6.3f} s")


if __name__ == "__main__":
    main()
