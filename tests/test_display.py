"""Progress displays and notebook HTML without a kernel or Ray: the text bar's line, the log
surface's pace, the surface chosen, escaping, the tables' limits, the web view's record."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from shoal.display import html, progress, webview
from shoal.display.objects import jobs_html, partitions_html, pool_html, pools_html
from shoal.display.surface import SURFACE_VAR, Surface, current_surface
from shoal.dpf.context import StageArtifactsManager
from shoal.dpf.entities import PartitionStatus
from shoal.dpf.run import PartitionDetails, SinglePartitionDetails
from shoal.jobs.job_table import JobTable
from shoal.pools.summaries import PoolDescription, PoolList
from shoal.stages import Stage


def test_a_text_bar_line_counts_fills_and_says_its_share() -> None:
    line = progress.text_line("DPF r1", 20, 40, "done=18 failed=2", 72.4)
    assert line == "DPF r1  [" + "#" * 15 + "-" * 15 + "]  20/40  50%  done=18 failed=2  1:12"
    assert progress.text_line("Job j", 1, 1, "DONE", 3).split("  ")[1:4] == [
        "[" + "#" * 30 + "]",
        "1/1",
        "100%",
    ]
    assert "0/?" in progress.text_line("DPF r1", 0, None, "", 0), "a total not known yet"
    assert progress.percent(41, 40) == 100


def test_a_log_gets_a_line_every_few_seconds_and_one_at_the_end(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    now = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    with caplog.at_level(logging.INFO, logger="shoal.progress"):
        display = progress.open_progress("DPF r1", unit="partitions", surface=Surface.LOG)
        for step in range(12):  # one update a second for 12 s
            display.update(step, 20, f"done={step}")
            now[0] += 1.0
        display.close(ok=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "shoal.progress"]
    counts = [re.search(r"\] +(\d+)/20", line) for line in lines]
    assert [m.group(1) for m in counts if m] == ["0", "5", "10", "11"], (
        "at 0 s, 5 s and 10 s, then the last state when it closes"
    )
    assert lines[-1].endswith("0:12")
    assert capsys.readouterr() == ("", ""), "the library logs; it prints nothing"


def test_the_surface_can_be_chosen_and_a_wrong_choice_says_the_right_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SURFACE_VAR, "notebook-text")
    assert current_surface() == Surface.NOTEBOOK_TEXT
    monkeypatch.setenv(SURFACE_VAR, "fancy")
    with pytest.raises(
        ValueError, match="SHOAL_DISPLAY='fancy' is not a display surface; use one of widgets"
    ):
        current_surface()
    monkeypatch.delenv(SURFACE_VAR)
    assert current_surface() == Surface.LOG, "pytest's standard error is no terminal, and this is no kernel"


def test_user_strings_are_escaped_and_statuses_are_badges() -> None:
    assert html.esc("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    badge = html.badge(PartitionStatus.FAILED)
    assert 'data-status="FAILED"' in badge
    assert html.COLOURS["FAILED"] in badge
    block = html.pre("<script>alert(1)</script>\nline 2", "logs")
    assert "<script>" not in block
    assert "max-height:30em;overflow:auto" in block
    assert html.duration(100.0, 165.0) == "1 min 05 s"


def test_a_long_table_shows_its_first_rows_and_how_many_more() -> None:
    rows = [[str(i)] for i in range(html.MAX_ROWS + 7)]
    table = html.table(["n"], rows, "test")
    assert table.count("<tr>") == html.MAX_ROWS + 1  # the header and the rows shown
    assert "7 more not shown" in table


def partition(
    stage: Stage, pid: str, status: PartitionStatus, error: str | None = None
) -> SinglePartitionDetails:
    return SinglePartitionDetails(
        partition_id=pid,
        status=status,
        attempts=1,
        started_at=10.0,
        ended_at=12.5,
        error=error,
        node_id="n1",
        stage_artifacts_manager=StageArtifactsManager(stage, "r1", pid),
        _stage=stage,
        _run_id="r1",
    )


def test_partition_details_show_counts_and_each_last_error(tmp_path: Path) -> None:
    stage = Stage("RUNS", (tmp_path / "stage").as_uri())
    details = PartitionDetails(
        {
            "S0": partition(stage, "S0", PartitionStatus.DONE),
            "<S1>": partition(
                stage,
                "<S1>",
                PartitionStatus.FAILED,
                "Traceback (most recent call last):\n  ...\nValueError: no rows",
            ),
        }
    )
    assert isinstance(details, dict)
    shown = details._repr_html_()
    assert shown == partitions_html(details)
    assert "2 partitions" in shown
    assert '<span data-count="DONE">1</span>' in shown
    assert '<span data-count="FAILED">1</span>' in shown
    assert "<code>ValueError: no rows</code>" in shown, "a traceback's last line"
    assert "&lt;S1&gt;" in shown
    assert "2.5 s" in shown


def test_pools_and_job_listings_show_their_states(tmp_path: Path) -> None:
    pools = PoolList(
        [
            {
                "name": "TRAIN",
                "state": "ACTIVE",
                "backend": "local",
                "min_nodes": 1,
                "max_nodes": 3,
                "active_nodes": 2,
            },
            {"name": "IDLE", "state": "SUSPENDED", "backend": "local", "min_nodes": 1, "max_nodes": 1},
        ]
    )
    assert pools._repr_html_() == pools_html(pools)
    assert 'data-status="ACTIVE"' in pools._repr_html_()
    assert "2 of 1-3" in pools._repr_html_()
    described = PoolDescription(name="TRAIN", state="ACTIVE", dashboard="http://127.0.0.1:8265")
    assert pool_html(described) == described._repr_html_()
    assert 'href="http://127.0.0.1:8265"' in described._repr_html_()
    jobs = JobTable(
        {"name": ["a", "b", "c"], "status": ["DONE", "FAILED", "DONE"], "completed_time": [None, 1.0, 2.0]}
    )
    shown = jobs._repr_html_()
    assert shown is not None
    assert "3 jobs" in shown
    assert '<span data-count="DONE">2</span>' in shown
    assert isinstance(jobs[jobs.status == "DONE"], JobTable), "a slice stays a job table"
    assert jobs_html(jobs[jobs.status == "DONE"]).count('data-status="DONE"') == 3  # the count and 2 rows
    assert isinstance(jobs, pd.DataFrame)


def test_the_web_view_is_linked_only_while_it_serves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(tmp_path))
    assert webview.web_view_url() is None
    webview.record_serving("http://127.0.0.1:8265/")
    assert webview.web_view_url() == "http://127.0.0.1:8265"
    (tmp_path / webview.RECORD).write_text('{"url": "http://127.0.0.1:1", "pid": 999999999}')
    assert webview.web_view_url() is None, "a record left by a web view that ended"
    (tmp_path / webview.RECORD).write_text(f'{{"url": "http://127.0.0.1:8265", "pid": {os.getpid()}}}')
    webview.forget_serving()
    assert not (tmp_path / webview.RECORD).exists()
