"""The web view (``shoal ui``) against a real workspace: a 2-node pool, a job that returns and one
that raises, a DPF run two of whose partitions fail, and a many-model run. The server is the
``shoal ui`` command itself, in its own process; the JSON API and the pages are read over HTTP,
and the pages are clicked through in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, which ``bash .ci/dev test`` installs when it runs as root)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pool_helpers import pool_in_new_home
from ui_helpers import start_ui
from waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "UI2"
STAGE = "ui_runs"
FAILING = {"S02", "S04"}
SERVER_PIDS: dict[str, int] = {}  # the shoal ui process behind each base URL


def returns_a_summary(rows: int) -> dict[str, Any]:
    print(f"summing {rows} rows", flush=True)
    return {"rows": rows, "total": rows * (rows - 1) // 2}


def raises_on_purpose(limit: int) -> None:
    raise ValueError(f"value {limit + 1} above limit {limit}")


def count_or_fail(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    print(f"{context.partition_id}: {len(frame)} rows", flush=True)
    if context.partition_id in FAILING:
        raise ValueError(f"store {context.partition_id} has a bad price")
    context.upload_to_stage(len(frame), "rows.json", write_function=write_json)


def write_json(value: Any, path: str) -> None:
    Path(path).write_text(json.dumps(value))


def fit_line(data: Any, context: Any) -> Any:
    from sklearn.linear_model import LinearRegression

    frame = data.to_pandas()
    return LinearRegression().fit(frame[["PRICE"]], frame["UNITS"])


def wait_for_gate(data: Any, context: Any = None) -> str:
    """A partition (or a job) that prints a line, then waits until the test opens its gate file
    (the path is in the rows' GATE column, or the argument), then prints another."""
    gate = Path(data if isinstance(data, str) else data.to_pandas()["GATE"].iloc[0])
    print(f"waiting for {gate.name}", flush=True)
    deadline = time.monotonic() + 120
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"nobody opened the gate {gate} within 120 s")
        time.sleep(0.1)
    print("the gate opened after the page loaded", flush=True)
    return gate.name


def fails_until_fixed(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    if context.partition_id != "A" and not Path(frame["FIX"].iloc[0]).exists():
        raise ValueError(f"store {context.partition_id} is not fixed yet")


def sales() -> pd.DataFrame:
    stores = [f"S{i:02d}" for i in range(6)]
    return pd.DataFrame(
        {
            "STORE": [s for s in stores for _ in range(5)],
            "PRICE": [float(i % 5) for i in range(30)],
            "UNITS": [float(100 - 3 * (i % 5)) for i in range(30)],
        }
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("ui-home"), POOL, 2)


@pytest.fixture(scope="module")
def work(home: Path) -> dict[str, Any]:
    """What the view shows: two jobs, a DPF run with failures and a many-model run."""
    from shoal.dpf import DPF, ExecutionOptions
    from shoal.jobs import JobStatus, remote
    from shoal.mmt import ManyModelTraining

    os.environ["SHOAL_HOME"] = str(home)  # the module's workspace, for the fixtures' own calls
    done = remote(POOL, stage_name="ui_jobs", env_vars={"API_TOKEN": "s3cret-value"})(returns_a_summary)(10)
    failed = remote(POOL, stage_name="ui_jobs")(raises_on_purpose)(41)
    assert done.wait(timeout=180) == JobStatus.DONE
    assert failed.wait(timeout=180) == JobStatus.FAILED
    run = DPF(count_or_fail, STAGE, compute_pool=POOL).run(
        partition_by="STORE",
        dataframe=sales(),
        run_id="counts",
        execution_options=ExecutionOptions(max_retries=0),
    )
    assert run.wait(timeout=180, show_progress=False) == "PARTIAL_FAILURE"
    models = ManyModelTraining(fit_line, STAGE, compute_pool=POOL).run(
        partition_by="STORE", dataframe=sales(), run_id="lines"
    )
    assert models.wait(timeout=180, show_progress=False) == "SUCCESS"
    return {"done": done.id, "failed": failed.id}


@pytest.fixture(scope="module")
def server(home: Path, work: dict[str, Any]) -> Iterator[str]:
    """``shoal ui`` on a free port of 127.0.0.1, stopped (by its pid) at the end."""
    for base, process in start_ui(home):
        SERVER_PIDS[base] = process.pid
        yield base


def get(url: str) -> tuple[int, Any]:
    """Status and body (JSON decoded when it is JSON) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            status, body, kind = response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        status, body, kind = error.code, error.read(), error.headers.get_content_type()
    return status, json.loads(body) if kind == "application/json" else body


@pytest.fixture(autouse=True)
def _use_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))


def test_pools_with_their_nodes(server: str) -> None:
    status, pools = get(server + "/api/pools")
    assert status == 200
    assert [(p["name"], p["state"], p["active_nodes"]) for p in pools] == [(POOL, "ACTIVE", 2)]
    status, pool = get(server + f"/api/pools/{POOL.lower()}")
    assert status == 200
    assert pool["name"] == POOL
    assert len(pool["nodes"]) == 2
    assert all(n["node_id"] for n in pool["nodes"])
    assert pool["address"].startswith("127.0.0.1:")
    assert pool["jobs"] == [], "no job runs on it now"
    status, error = get(server + "/api/pools/NOPE")
    assert status == 404
    assert "no compute pool 'NOPE'" in error["error"]


def test_jobs_filtered_with_logs_results_and_errors(server: str, work: dict[str, Any]) -> None:
    status, listed = get(server + "/api/jobs")
    assert status == 200
    ids = [j["id"] for j in listed]
    assert work["done"] in ids
    assert work["failed"] in ids
    status, failed = get(server + "/api/jobs?status=failed")
    assert [j["id"] for j in failed if j["id"].startswith("raises")] == [work["failed"]]
    assert all(j["status"] == "FAILED" for j in failed)
    status, named = get(server + "/api/jobs?name=RETURNS_A")
    assert [j["id"] for j in named] == [work["done"]]
    assert get(server + "/api/jobs?limit=x")[0] == 400

    status, job = get(server + f"/api/jobs/{work['done']}")
    assert status == 200
    assert (job["id"], job["status"], job["compute_pool"]) == (work["done"], "DONE", POOL)
    assert job["created_time"].endswith("Z")
    assert job["completed_time"].endswith("Z")
    status, log = get(server + f"/api/jobs/{work['done']}/logs")
    assert status == 200
    assert "summing 10 rows" in log.decode()
    assert get(server + f"/api/jobs/{work['done']}/result") == (
        200,
        {"status": "DONE", "result": {"rows": 10, "total": 45}},
    )
    status, result = get(server + f"/api/jobs/{work['failed']}/result")
    assert result["status"] == "FAILED"
    assert result["error"]["type"] == "ValueError"
    assert result["error"]["message"] == "value 42 above limit 41"
    assert "in raises_on_purpose" in result["error"]["traceback"]
    assert get(server + "/api/jobs/no_such_job")[0] == 404


def test_runs_counts_and_the_failed_partitions_with_their_errors(server: str) -> None:
    status, runs = get(server + f"/api/stages/{STAGE}/runs")
    assert status == 200
    kinds = {r["run_id"]: (r["kind"], r["status"]) for r in runs}
    assert kinds == {"counts": ("dpf", "PARTIAL_FAILURE"), "lines": ("mmt-training", "SUCCESS")}
    status, run = get(server + f"/api/stages/{STAGE}/runs/counts")
    assert run["partitions"]["DONE"] == 4
    assert run["partitions"]["FAILED"] == 2
    assert run["total"] == 6

    status, page = get(server + f"/api/stages/{STAGE}/runs/counts/partitions?status=failed")
    assert status == 200
    assert page["total"] == 2
    assert {p["partition_id"] for p in page["items"]} == FAILING
    for item in page["items"]:
        assert f"store {item['partition_id']} has a bad price" in item["error"]
        assert item["attempts"] == 1
        assert item["node_id"]

    status, first = get(server + f"/api/stages/{STAGE}/runs/counts/partitions?limit=4")
    status, rest = get(server + f"/api/stages/{STAGE}/runs/counts/partitions?limit=4&offset=4")
    assert [p["partition_id"] for p in first["items"] + rest["items"]] == [f"S{i:02d}" for i in range(6)]
    assert (first["total"], len(first["items"]), len(rest["items"])) == (6, 4, 2)
    status, by_status = get(server + f"/api/stages/{STAGE}/runs/counts/partitions?sort=status&desc=1")
    assert [p["status"] for p in by_status["items"]][:2] == ["FAILED", "FAILED"]
    status, error = get(server + f"/api/stages/{STAGE}/runs/counts/partitions?sort=price")
    assert status == 400
    assert "sort must be one of" in error["error"]
    assert get(server + f"/api/stages/{STAGE}/runs/counts/partitions?limit=0")[0] == 400


def test_a_partition_s_log_files_and_download(server: str) -> None:
    base = server + f"/api/stages/{STAGE}/runs/counts/partitions"
    status, partition = get(base + "/S01")
    assert status == 200
    assert partition["status"] == "DONE"
    assert set(partition["files"]) == {"rows.json", "train.log"}
    status, log = get(base + "/S01/log")
    assert "S01: 5 rows" in log.decode()
    status, failed_log = get(base + "/S02/log")
    assert "ValueError: store S02 has a bad price" in failed_log.decode()
    status, data = get(base + "/S01/files/rows.json")
    assert (status, json.loads(data)) == (200, 5)
    assert get(base + "/S01/files/model.pkl")[0] == 404


def test_the_models_of_a_many_model_run(server: str) -> None:
    status, models = get(server + f"/api/stages/{STAGE}/runs/lines/models")
    assert status == 200
    assert [m["partition_id"] for m in models] == [f"S{i:02d}" for i in range(6)]
    assert all(m["serde"] and m["size"] > 0 for m in models)
    assert get(server + f"/api/stages/{STAGE}/runs/counts/models")[0] == 404, "a plain DPF run has none"


@pytest.mark.parametrize(
    "path",
    [
        "/api/pools/..",
        "/api/pools/%2e%2e%2fetc",
        "/api/jobs/..%2f..%2fetc%2fpasswd",
        "/api/jobs/%2Fetc%2Fpasswd/logs",
        "/api/stages/..%2f..%2f/runs",
        "/api/stages/%2Fetc/runs",
        f"/api/stages/{STAGE}/runs/..%2f..",
        f"/api/stages/{STAGE}/runs/counts/partitions/..%2f..%2f..%2fetc%2fpasswd",
        f"/api/stages/{STAGE}/runs/counts/partitions/S01/files/..%2f..%2f_shoal%2frun.json",
        f"/api/stages/{STAGE}/runs/counts/partitions/S01/files/%2Fetc%2Fpasswd",
        f"/api/stages/{STAGE}/runs/counts/partitions/S01/files/outside",
        f"/api/stages/{STAGE}/runs/counts/partitions/..%2fS01/log",
        f"/api/stages/{STAGE}/runs/lines/models/..%2f..",
        "/jobs/..%2f..%2fetc%2fpasswd",
        "/stages/..%2f..%2f/runs/counts",
        f"/stages/{STAGE}/runs/..%2f..",
        f"/stages/{STAGE}/runs/counts/partitions/..%2f..%2f..%2fetc%2fpasswd",
        f"/stages/{STAGE}/runs/counts/partitions/%2Fetc%2Fpasswd",
        f"/stages/{STAGE}/runs/counts/partitions/S01/outside",
        "/stages/%2Fetc/runs/lines/models",
    ],
)
def test_paths_out_of_the_workspace_name_nothing(server: str, home: Path, path: str) -> None:
    link = home / "stages" / STAGE.upper() / "counts" / "S01" / "outside"  # a link out of the stage
    assert link.parent.is_dir()
    if not link.is_symlink():
        link.symlink_to("/etc/hostname")
    status, body = get(server + path)
    assert status in (400, 404), (path, status, body)
    assert b"root:" not in (body if isinstance(body, bytes) else json.dumps(body).encode())


# -- the pages ----------------------------------------------------------------------------------


def page(url: str) -> tuple[int, str]:
    status, body = get(url)
    assert isinstance(body, bytes), f"{url} answered JSON, not a page"
    return status, body.decode()


def test_the_pools_page_shows_each_pool_and_its_nodes(server: str) -> None:
    status, html = page(server + "/pools")
    assert status == 200
    assert f'id="pool-{POOL}"' in html
    assert html.count("<tr>") == 1 + 2, "a header and one row per node"
    assert 'class="here">Pools' in html or 'href="/pools" class="here"' in html


def test_from_the_jobs_list_to_a_job_s_logs_and_error(server: str, work: dict[str, Any]) -> None:
    status, html = page(server + "/jobs?status=FAILED")
    assert status == 200
    assert f'href="/jobs/{work["failed"]}"' in html
    assert f'href="/jobs/{work["done"]}"' not in html, "filtered by status"
    status, html = page(server + f"/jobs/{work['failed']}")
    assert status == 200
    assert 'id="error">ValueError: value 42 above limit 41' in html
    assert "in raises_on_purpose" in html, "the traceback"
    status, html = page(server + f"/jobs/{work['done']}")
    assert "summing 10 rows" in html
    assert "API_TOKEN" in html
    assert "s3cret-value" not in html
    assert "&#34;total&#34;: 45" in html or '"total": 45' in html


def test_from_a_run_to_its_failed_partitions_and_a_train_log(server: str) -> None:
    status, html = page(server + "/runs")
    assert status == 200
    assert f'href="/stages/{STAGE.upper()}/runs/counts"' in html
    assert f'href="/stages/{STAGE.upper()}/runs/lines"' in html
    status, html = page(server + f"/stages/{STAGE}/runs/counts")
    assert status == 200
    assert "FAILED 2" in html
    assert 'class="FAILED" style="width: 33.33%"' in html, "the progress bar"
    status, html = page(server + f"/stages/{STAGE}/runs/counts?status=FAILED")
    shown = [pid for pid in (f"S{i:02d}" for i in range(6)) if f'/partitions/{pid}"' in html]
    assert shown == sorted(FAILING)
    assert "ValueError: store S02 has a bad price" in html, "the last error line"
    status, html = page(server + f"/stages/{STAGE}/runs/counts/partitions/S02")
    assert status == 200
    assert 'id="log"' in html
    assert "S02: 5 rows" in html
    assert "/files/train.log" in html
    status, html = page(server + f"/stages/{STAGE}/runs/lines/models")
    assert html.count("/files/") == 6


def test_a_page_that_names_nothing_is_a_404_page(server: str) -> None:
    status, html = page(server + f"/stages/{STAGE}/runs/nope")
    assert status == 404
    assert "no run &#x27;nope&#x27; on stage UI_RUNS" in html
    status, html = page(server + f"/stages/{STAGE}/runs/counts/partitions/..%2f..%2fetc")
    assert status == 404


# -- in a browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Selenium, with Debian's chromium and chromedriver."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    missing = "the browser tests need Debian's chromium and chromium-driver: apt-get install chromium "
    missing += "chromium-driver (bash .ci/dev test installs them when it runs as root)"
    assert binary, missing
    assert driver, missing
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(driver), options=options)
    session.set_page_load_timeout(60)
    try:
        yield session
    finally:
        session.quit()


def test_a_browser_clicks_from_the_jobs_to_a_failed_job_s_error_and_log(
    server: str, browser: Any, work: dict[str, Any], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/jobs")
    browser.find_element(By.LINK_TEXT, work["failed"]).click()
    assert browser.find_element(By.ID, "error").text == "ValueError: value 42 above limit 41"
    assert "in raises_on_purpose" in browser.find_element(By.ID, "traceback").text
    browser.find_element(By.LINK_TEXT, "Jobs").click()
    browser.find_element(By.LINK_TEXT, work["done"]).click()
    browser.find_element(By.LINK_TEXT, "instance 0").click()
    assert "summing 10 rows" in browser.find_element(By.ID, "logs").text
    browser.save_screenshot(str(tmp_path / "job.png"))
    assert (tmp_path / "job.png").stat().st_size > 10_000


def test_a_browser_clicks_from_a_run_to_a_failed_partition_s_train_log(
    server: str, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server + "/runs")
    browser.find_element(By.LINK_TEXT, "counts").click()
    assert "FAILED 2" in browser.find_element(By.ID, "counts").text
    browser.save_screenshot(str(tmp_path / "run.png"))
    browser.find_element(By.ID, "failed-only").click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#partitions tr")[1:]
    assert [row.find_element(By.TAG_NAME, "a").text for row in rows] == sorted(FAILING)
    rows[0].find_element(By.TAG_NAME, "a").click()
    assert "S02: 5 rows" in browser.find_element(By.ID, "log").text
    assert "ValueError: store S02 has a bad price" in browser.find_element(By.ID, "error").text
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#files a")] == ["train.log"]
    browser.save_screenshot(str(tmp_path / "partition.png"))
    assert (tmp_path / "run.png").stat().st_size > 10_000


def test_a_run_s_page_and_a_job_s_page_follow_the_work_without_a_reload(
    server: str, browser: Any, tmp_path: Path
) -> None:
    """Opened while the work waits, each page shows what happens next by itself: the run's counts
    rise to DONE 3, the job's log gets a line printed after the page loaded and its status DONE."""

    from shoal.dpf import DPF
    from shoal.jobs import JobStatus, remote

    def text(element_id: str) -> str:  # read in one step: a live region may be replaced meanwhile
        return str(browser.execute_script(f"return document.getElementById('{element_id}').innerText"))

    def same_page() -> bool:  # a reload would have dropped the mark
        return bool(browser.execute_script("return window.shoalMark === 1"))

    gate = tmp_path / "run-gate"
    rows = pd.DataFrame({"STORE": ["A", "B", "C"], "GATE": [str(gate)] * 3})
    run = DPF(wait_for_gate, "ui_live", compute_pool=POOL).run(
        partition_by="STORE", dataframe=rows, run_id="r1"
    )
    browser.get(server + "/stages/ui_live/runs/r1")
    browser.execute_script("window.shoalMark = 1")
    wait_until(lambda: "RUNNING" in text("counts"), "the run page to show running partitions", 60)
    assert "DONE 3" not in text("counts")
    gate.touch()
    wait_until(lambda: "DONE 3" in text("counts"), "the run page to count 3 partitions DONE", 60,
               seen=lambda: text("counts"))  # fmt: skip
    wait_until(lambda: text("live-run-status") == "SUCCESS", "the run page to show SUCCESS", 30)
    assert same_page()
    assert run.wait(timeout=60, show_progress=False) == "SUCCESS"

    gate = tmp_path / "job-gate"
    job = remote(POOL, stage_name="ui_jobs")(wait_for_gate)(str(gate))
    browser.get(server + f"/jobs/{job.id}")
    browser.execute_script("window.shoalMark = 1")
    wait_until(lambda: "waiting for job-gate" in text("logs"), "the job's first line on its page", 60,
               seen=lambda: text("logs"))  # fmt: skip
    assert "the gate opened" not in text("logs")
    gate.touch()
    wait_until(lambda: "the gate opened after the page loaded" in text("logs"),
               "the line printed after the page loaded", 60, seen=lambda: text("logs"))  # fmt: skip
    wait_until(lambda: text("live-job-status") == "DONE", "the job page to show DONE", 60)
    assert same_page()
    assert job.wait(timeout=60) == JobStatus.DONE
    browser.get(server + "/runs")  # not a live page: the job page's stream ends with it

    def watched() -> list[str]:
        status, subjects = get(server + "/api/live")
        assert status == 200
        return [s["key"] for s in subjects]

    wait_until(lambda: watched() == [], "the server to drop the streams of the pages left", 30, seen=watched)


def test_cancel_a_job_and_retry_a_run_s_failed_partitions_from_their_pages(
    server: str, browser: Any, tmp_path: Path
) -> None:
    """Each button asks first, answers with what it did, and did it: the job ends CANCELLED; the
    retry is a new run of the failed partitions only, linked from the old one, and they end DONE."""
    from selenium.webdriver.common.by import By

    from shoal.dpf import DPF, DPFRun, ExecutionOptions
    from shoal.jobs import JobStatus, remote

    def press(button: str) -> str:
        browser.find_element(By.ID, button).click()
        alert = browser.switch_to.alert
        asked = str(alert.text)
        alert.accept()
        return asked

    job = remote(POOL, stage_name="ui_jobs")(wait_for_gate)(str(tmp_path / "never-opened"))
    wait_until(lambda: job.status == JobStatus.RUNNING, "the job to run", 60)
    browser.get(server + f"/jobs/{job.id}")
    assert press("cancel-job") == f"Cancel job {job.id}?"
    assert browser.find_element(By.ID, "outcome").text.startswith(f"cancelled job {job.id} (it was RUNNING")
    assert job.wait(timeout=60) == JobStatus.CANCELLED

    fix = tmp_path / "fixed"
    rows = pd.DataFrame({"STORE": ["A", "B", "C"], "FIX": [str(fix)] * 3})
    run = DPF(fails_until_fixed, "ui_retry", compute_pool=POOL).run(
        partition_by="STORE", dataframe=rows, run_id="r1", execution_options=ExecutionOptions(max_retries=0)
    )
    assert run.wait(timeout=120, show_progress=False) == "PARTIAL_FAILURE"
    fix.touch()
    browser.get(server + "/stages/ui_retry/runs/r1")
    assert press("retry-run") == "Start a new run of the 2 failed partition(s) of r1?"
    assert (
        browser.find_element(By.ID, "outcome").text
        == "started run r1_retry1 of the 2 failed partition(s) of run r1"
    )
    browser.find_element(By.LINK_TEXT, "run r1_retry1").click()
    assert browser.find_element(By.ID, "retry-of").text == "r1"
    wait_until(
        lambda: "DONE 2" in browser.execute_script("return document.getElementById('counts').innerText"),
        "the retry's page to count its 2 partitions DONE",
        90,
    )
    retry = DPFRun.restore_from("r1_retry1", "ui_retry")
    assert retry.wait(timeout=60, show_progress=False) == "SUCCESS"
    assert sorted(retry.partition_details) == ["B", "C"]
    browser.get(server + "/stages/ui_retry/runs/r1")
    assert browser.find_element(By.ID, "retries").text == "Retried as r1_retry1."


class Watcher(threading.Thread):
    """One browser on a live page: reads its event stream until told to stop."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.events, self.done = url, 0, threading.Event()

    def run(self) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.netloc, timeout=10)
        connection.request("GET", f"{parts.path}?{parts.query}", headers={"Accept": "text/event-stream"})
        response = connection.getresponse()
        assert response.status == 200
        deadline = time.monotonic() + 120  # a test watches for less
        while not self.done.is_set() and time.monotonic() < deadline:
            line = response.fp.readline()
            if not line:
                break
            self.events += line.startswith(b"event: regions")
        connection.close()


def test_twenty_watchers_of_a_run_page_cost_the_server_what_one_costs(server: str, tmp_path: Path) -> None:
    """For 20 s, watchers are added to the live page of a run in progress (1, then 5, then 20):
    the record reads per second and the server's CPU stay flat. Prints both for each step. Once
    the run ended, its page is read no more, watchers or not."""
    import psutil

    from shoal.dpf import DPF

    gate = tmp_path / "load-gate"
    rows = pd.DataFrame({"STORE": ["A", "B"], "GATE": [str(gate)] * 2})
    run = DPF(wait_for_gate, "ui_live", compute_pool=POOL).run(
        partition_by="STORE", dataframe=rows, run_id="load"
    )
    server_process = psutil.Process(SERVER_PIDS[server])
    url = server + "/live/stages/ui_live/runs/load"
    watchers: list[Watcher] = []

    def reads() -> int:
        return sum(s["reads"] for s in get(server + "/api/live")[1] if "/runs/load" in s["key"])

    steps = []
    try:
        for count, seconds in ((1, 5.0), (5, 5.0), (20, 10.0)):
            for _ in range(count - len(watchers)):
                watchers.append(Watcher(url))
                watchers[-1].start()
            wait_until(lambda: all(w.events for w in watchers), f"{count} watcher(s) to get the page", 30)
            read_before, cpu_before = reads(), sum(server_process.cpu_times()[:2])
            started = time.monotonic()
            time.sleep(seconds)  # what is measured: the server serving the watchers for that long
            took = time.monotonic() - started
            read_rate = (reads() - read_before) / took
            cpu = (sum(server_process.cpu_times()[:2]) - cpu_before) / took
            steps.append((count, read_rate, cpu))
            rates = f"{read_rate:.2f} record reads/s, server CPU {100 * cpu:.1f}% of a core"
            print(f"{count:2d} watcher(s): {rates}")
        gate.touch()
        assert run.wait(timeout=60, show_progress=False) == "SUCCESS"
        wait_until(lambda: any(w.events >= 2 for w in watchers), "the watchers to see the run end", 30)
        settled = wait_until(
            lambda: [s for s in get(server + "/api/live")[1] if "/runs/load" in s["key"] and s["final"]],
            "the ended run's page to be read for the last time",
            30,
        )
        assert settled[0]["watchers"] == 20
    finally:
        gate.touch()
        for watcher in watchers:
            watcher.done.set()
    (_, one_reads, one_cpu), (_, _, _), (_, twenty_reads, twenty_cpu) = steps
    assert 0 < twenty_reads <= 1.5 * one_reads + 0.5, steps
    assert twenty_cpu <= 3 * one_cpu + 0.05, steps
    wait_until(lambda: reads() == 0, "the server to forget the page once the watchers left", 30)


def test_plots_of_a_run_s_finished_partitions_and_of_each_node_s_cpu_and_memory(
    server: str, browser: Any
) -> None:
    """uPlot (bundled in the wheel) draws a run's partitions finished over time, and each node's
    CPU and memory on the pools page, which gains points while the page is open."""
    browser.get(server + f"/stages/{STAGE}/runs/counts")
    wait_until(
        lambda: browser.execute_script("return document.querySelectorAll('#finished .uplot').length") == 1,
        "the run's plot to be drawn",
        30,
    )
    legend = browser.execute_script("return document.querySelector('#finished .u-legend').innerText")
    assert "DONE" in legend
    assert "FAILED" in legend

    def points(plot: str) -> int:
        spec = browser.execute_script(f"return document.getElementById('{plot}').dataset.plot")
        parsed = json.loads(spec)
        assert sorted(parsed["series"]) == ["0", "1"], "a series per node"
        return len(parsed["x"])

    browser.get(server + "/pools")
    wait_until(
        lambda: browser.execute_script("return document.querySelectorAll('#live-pools .uplot').length") == 2,
        "the CPU and memory plots to be drawn",
        30,
    )
    wait_until(lambda: points(f"cpu-{POOL}") >= 3, "the CPU plot to gain points while the page is open", 30)
    assert points(f"memory-{POOL}") >= 3
    status, style = get(server + "/static/uPlot.iife.min.js")
    assert status == 200
    assert len(style) > 40_000
