"""How one instance's log is built from the payload's output and Ray's worker files
(:mod:`shoal.runtime.job_logs`), on real files laid out as Ray lays them out. No Ray here: the
cluster test (tests/test_jobs.py) proves the same on a real 3-node pool."""

from __future__ import annotations

import os
import time
from pathlib import Path

from shoal.runtime.job_logs import InstanceLogCollector, LogPump

JOB = "03000000"


def worker_file(logs: Path, job: str, pid: int, text: str, suffix: str = "out") -> Path:
    path = logs / f"worker-{'ab' * 28}-{job}-{pid}.{suffix}"
    with open(path, "a") as handle:
        handle.write(text)
    return path


def lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def test_payload_lines_as_they_are_and_worker_lines_marked_with_task_and_pid(tmp_path: Path) -> None:
    payload = tmp_path / "payload.out"
    payload.write_text("starting\n")
    worker_file(tmp_path, JOB, 11, f":job_id:{JOB}\n:task_name:train_one\nloss 0.5\n")
    collector = InstanceLogCollector(logs_dir=str(tmp_path), payload_log=str(payload), since=time.time())
    assert lines(collector.poll()) == ["starting"], "worker files wait until the Ray job id is known"
    collector.set_ray_job_id(JOB)
    assert lines(collector.poll()) == ["(train_one pid=11) loss 0.5"]
    assert collector.poll() == b"", "nothing twice"


def test_a_prestarted_worker_is_matched_on_its_job_line_not_its_name(tmp_path: Path) -> None:
    ours = worker_file(tmp_path, "ffffffff", 21, "")
    worker_file(tmp_path, "ffffffff", 22, ":job_id:02000000\n:task_name:other\nnot ours\n")
    worker_file(tmp_path, "02000000", 23, ":job_id:02000000\n:task_name:other\nnot ours either\n")
    collector = InstanceLogCollector(logs_dir=str(tmp_path), since=time.time(), ray_job_id=JOB)
    assert collector.poll() == b"", "an idle prestarted worker has not said whose it is yet"
    with open(ours, "a") as handle:
        handle.write(f":job_id:{JOB}\n:task_name:f\nline 0\n:task_name:g\nline 1\n")
    assert lines(collector.poll()) == ["(f pid=21) line 0", "(g pid=21) line 1"]


def test_actor_lines_stderr_and_markers(tmp_path: Path) -> None:
    worker_file(tmp_path, JOB, 31, f":job_id:{JOB}\n:actor_name:Counter\ncount 1\n:event_summary:x\n")
    worker_file(tmp_path, JOB, 31, f":job_id:{JOB}\n:actor_name:Counter\nwarning here\n", suffix="err")
    collector = InstanceLogCollector(logs_dir=str(tmp_path), since=time.time(), ray_job_id=JOB)
    assert sorted(lines(collector.poll())) == ["(Counter pid=31) count 1", "(Counter pid=31) warning here"]


def test_an_unfinished_line_waits_for_its_end_or_for_the_final_poll(tmp_path: Path) -> None:
    payload = tmp_path / "payload.out"
    payload.write_text("half")
    path = worker_file(tmp_path, JOB, 41, f":job_id:{JOB}\n:task_name:f\nprogress 1")
    collector = InstanceLogCollector(
        logs_dir=str(tmp_path), payload_log=str(payload), since=time.time(), ray_job_id=JOB
    )
    assert collector.poll() == b""
    with open(payload, "a") as handle:
        handle.write(" line\nrest")
    with open(path, "a") as handle:
        handle.write("0%\n")
    assert lines(collector.poll()) == ["half line", "(f pid=41) progress 10%"]
    assert lines(collector.poll(final=True)) == ["rest"], "the job is over: the rest comes, with a newline"


def test_files_untouched_since_before_the_job_are_not_read(tmp_path: Path) -> None:
    old = worker_file(tmp_path, "ffffffff", 51, f":job_id:{JOB}\n:task_name:f\nleft from before\n")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    collector = InstanceLogCollector(logs_dir=str(tmp_path), since=time.time(), ray_job_id=JOB)
    assert collector.poll() == b""
    with open(old, "a") as handle:
        handle.write("written during the job\n")
    assert lines(collector.poll()) == ["(f pid=51) left from before", "(f pid=51) written during the job"]


def test_non_worker_files_in_the_log_folder_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "raylet.out").write_text("raylet noise\n")
    (tmp_path / "python-core-worker-ab.log").write_text("core worker noise\n")
    collector = InstanceLogCollector(logs_dir=str(tmp_path), since=time.time(), ray_job_id=JOB)
    assert collector.poll() == b""


def test_the_pump_moves_lines_while_running_and_the_rest_on_finish(tmp_path: Path) -> None:
    payload = tmp_path / "payload.out"
    payload.write_text("")
    collector = InstanceLogCollector(logs_dir=None, payload_log=str(payload), since=time.time())
    received: list[bytes] = []
    pump = LogPump(collector.poll, received.append, period_s=0.02).start()
    with open(payload, "a") as handle:
        handle.write("first\n")
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"".join(received) == b"first\n", "lines move while the job runs"
    with open(payload, "a") as handle:
        handle.write("last, no newline")
    pump.finish()
    assert b"".join(received) == b"first\nlast, no newline\n"


def test_a_failing_sink_does_not_stop_the_pump(tmp_path: Path, capsys: object) -> None:
    payload = tmp_path / "payload.out"
    payload.write_text("a\n")
    collector = InstanceLogCollector(logs_dir=None, payload_log=str(payload), since=time.time())
    calls: list[bytes] = []

    def flaky(data: bytes) -> None:
        calls.append(data)
        if len(calls) == 1:
            raise OSError("stage briefly unavailable")

    pump = LogPump(collector.poll, flaky, period_s=0.02).start()
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    with open(payload, "a") as handle:
        handle.write("b\n")
    pump.finish()
    assert calls[-1] == b"a\nb\n", "the refused lines come again, first, and nothing is lost"


def test_task_lines_read_with_the_payloads_last_lines_go_before_its_end_banner(tmp_path: Path) -> None:
    payload = tmp_path / "payload.out"
    payload.write_text("=== started ===\nfirst\n")
    collector = InstanceLogCollector(
        logs_dir=str(tmp_path), payload_log=str(payload), since=time.time(), ray_job_id=JOB,
        end_marker=b"=== finished ===",
    )  # fmt: skip
    assert lines(collector.poll()) == ["=== started ===", "first"]
    worker_file(tmp_path, JOB, 61, f":job_id:{JOB}\n:task_name:f\nfrom the task\n")
    with open(payload, "a") as handle:
        handle.write("last\n=== finished ===\n")
    assert lines(collector.poll(final=True)) == ["last", "(f pid=61) from the task", "=== finished ==="]
