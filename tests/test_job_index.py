"""The job record index and listings (``list_jobs``, ``shoal job ls``), on real record files, a
real SQLite index and real status documents on a local stage. No Ray: no pool runs here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from shoal.jobs import list_jobs, records
from shoal.jobs.listing import job_summaries
from shoal.jobs.status import JobStatus, write_status
from shoal.stages import Stage, create_stage


@pytest.fixture
def stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stage:
    monkeypatch.setenv("SHOAL_HOME", str(tmp_path / "home"))
    return create_stage("LISTED")


def add_job(stage: Stage, name: str, created: float, status: JobStatus | None = JobStatus.DONE) -> None:
    records.save(
        records.JobRecord(
            id=name,
            name=name,
            compute_pool="NOPOOL",
            stage_name=stage.name,
            stage_url=stage.url,
            job_dir=name,
            target_instances=2,
            min_instances=1,
            created_time=created,
            owner="me",
            payload_kind="function",
        )
    )
    if status is not None:
        write_status(stage, name, status, message=f"{name} is {status.value}")


def test_newest_first_with_a_limit_and_all_with_zero(stage: Stage) -> None:
    for i in range(30):
        add_job(stage, f"job_{i:02d}", 1000.0 + i)
    assert [s.name for s in job_summaries(3)] == ["job_29", "job_28", "job_27"]
    assert len(job_summaries(0)) == 30
    frame = list_jobs(limit=2)
    assert list(frame["name"]) == ["job_29", "job_28"]
    assert list(frame["status"]) == ["DONE", "DONE"]
    assert str(frame["created_time"].iloc[0]) == "1970-01-01 00:17:09+00:00"
    assert frame["completed_time"].notna().all()


def test_an_ended_jobs_status_is_kept_in_the_index(stage: Stage) -> None:
    add_job(stage, "finished", 1.0)
    add_job(stage, "waiting", 2.0, JobStatus.PENDING)
    assert {s.name: s.status for s in job_summaries(0)} == {"finished": "DONE", "waiting": "PENDING"}
    stage.remove("finished")  # its stage folder is gone: the index still knows how it ended
    stage.remove("waiting")
    summaries = {s.name: s for s in job_summaries(0)}
    assert summaries["finished"].status == "DONE"
    assert summaries["finished"].message == "finished is DONE"
    assert summaries["waiting"].status == "PENDING", "a job not seen ended is read from its stage"


def test_a_job_not_ended_on_a_pool_that_is_not_running_is_internal_error(stage: Stage) -> None:
    import shoal

    shoal.create_compute_pool("STOPPED", max_nodes=1, initially_suspended=True)
    records.save(
        records.JobRecord(
            id="orphan",
            name="orphan",
            compute_pool="STOPPED",
            stage_name=stage.name,
            stage_url=stage.url,
            job_dir="orphan",
            target_instances=1,
            min_instances=1,
            created_time=5.0,
            owner="me",
            payload_kind="function",
        )
    )
    write_status(stage, "orphan", JobStatus.RUNNING)
    (summary,) = job_summaries(1)
    assert summary.status == "INTERNAL_ERROR"
    assert "compute pool STOPPED stopped while the job was RUNNING" in summary.message


def test_the_index_follows_record_files_added_or_removed_behind_its_back(stage: Stage) -> None:
    add_job(stage, "kept", 1.0)
    add_job(stage, "removed", 2.0)
    folder = Path(stage.backend.local_path("")).parents[1] / "jobs"  # $SHOAL_HOME/jobs
    (folder / "removed.json").unlink()
    written_by_hand = json.loads((folder / "kept.json").read_text()) | {"id": "older", "name": "older"}
    (folder / "older.json").write_text(json.dumps({**written_by_hand, "created_time": 3.0}))
    assert [s.name for s in job_summaries(0)] == ["older", "kept"]
    (folder / "index.sqlite").unlink()
    assert [s.name for s in job_summaries(0)] == ["older", "kept"], "a lost index is rebuilt"


def test_records_saved_from_many_threads_are_all_listed(stage: Stage) -> None:
    def save_many(worker: int) -> None:
        for i in range(25):
            add_job(stage, f"w{worker}_{i}", worker * 100.0 + i, status=None)

    threads = [threading.Thread(target=save_many, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(job_summaries(0)) == 200
    records.delete("w0_0")
    assert len(job_summaries(0)) == 199


def test_shoal_job_ls_prints_a_table_and_json(stage: Stage) -> None:
    from shoal.cli import cli

    runner = CliRunner()
    empty = runner.invoke(cli, ["job", "ls"])
    assert (empty.stdout, empty.stderr.strip()) == ("", "no jobs"), "the note goes to stderr"
    add_job(stage, "first", 10.0)
    add_job(stage, "second", 20.0, JobStatus.FAILED)
    table = runner.invoke(cli, ["job", "ls"]).stdout.splitlines()
    assert table[0].split() == [
        "id",
        "status",
        "compute_pool",
        "target_instances",
        "created_time",
        "completed_time",
    ]
    assert table[1].split()[:5] == ["second", "FAILED", "NOPOOL", "2", "1970-01-01T00:00:20Z"]
    assert table[2].split()[:2] == ["first", "DONE"]
    rows = json.loads(runner.invoke(cli, ["job", "ls", "--json", "--limit", "1"]).stdout)
    assert rows == [
        {
            "id": "second",
            "status": "FAILED",
            "message": "second is FAILED",
            "owner": "me",
            "compute_pool": "NOPOOL",
            "target_instances": 2,
            "created_time": "1970-01-01T00:00:20Z",
            "completed_time": rows[0]["completed_time"],
        }
    ]
    assert rows[0]["completed_time"].endswith("Z")
    assert json.loads(runner.invoke(cli, ["job", "ls", "--format", "json", "--limit", "1"]).stdout) == rows


LOADED_MODULES = """
import json, sys
from shoal.cli import main
try:
    main(["job", "ls", "--json", "--limit", "0"])
except SystemExit as exc:
    assert not exc.code, exc.code
shown = ("shoal.", "ray", "pandas", "pluggy")
print(json.dumps(sorted(m for m in sys.modules if m.startswith(shown))))
"""


def test_shoal_job_ls_of_ended_jobs_loads_no_other_command_stage_or_plugin(stage: Stage) -> None:
    """The command line imports the sub-command used; listing jobs seen ended reads the job index
    and loads neither stages, nor the plugin manager, nor Ray (decision 43)."""
    for i in range(3):
        add_job(stage, f"ended{i}", 10.0 + i)
    assert len(list_jobs(limit=0)) == 3  # the first listing reads their status documents
    done = subprocess.run(
        [sys.executable, "-c", LOADED_MODULES],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    *listing, loaded_line = done.stdout.strip().splitlines()
    assert [row["id"] for row in json.loads("\n".join(listing))] == ["ended2", "ended1", "ended0"]
    loaded = set(json.loads(loaded_line))
    assert "shoal.cli.job_cmd" in loaded
    unwanted = {"shoal.cli.plugins_cmd", "shoal.cli.dpf_cmd", "shoal.cli.stage_cmd", "shoal.cli.pool_cmd"}
    unwanted |= {
        "shoal.plugin_manager",
        "shoal.hooks",
        "shoal.stages.stage",
        "shoal.jobs.job",
        "ray",
        "pandas",
    }
    assert loaded & unwanted == set()
