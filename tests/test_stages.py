"""Stage lifecycle and the catalog: create, get, list, drop, across processes."""

from __future__ import annotations

import json
import pickle
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import shoal.stages as stages
from shoal.errors import ConfigError, StageExistsError, StageNotFoundError
from shoal.stages import Stage, StageInfo, create_stage, drop_stage, get_stage, list_stages, resolve_location
from stage_helpers import catalog_file, hide_package, home, python_command, python_env, run_python
from waiting import wait_until

# -- create / get ------------------------------------------------------------------------------


def test_create_managed_stage() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    stage = create_stage("Models")
    folder = home().resolve() / "stages" / "MODELS"
    assert stage.name == "MODELS"
    assert stage.managed is True
    assert stage.url == folder.as_uri()
    assert stage.url.startswith("file:///")
    assert folder.is_dir()
    [info] = list_stages()
    assert info == StageInfo(name="MODELS", url=folder.as_uri(), managed=True, created_on=info.created_on)
    created = datetime.fromisoformat(info.created_on)
    assert created.utcoffset() == timedelta(0)
    assert before <= created <= datetime.now(timezone.utc) + timedelta(seconds=1)


def test_names_are_case_insensitive_and_qualified_names_ignore_database_and_schema() -> None:
    stage = create_stage("@db.public.MyStage")
    assert stage.name == "MYSTAGE"
    for written in ("mystage", "@MYSTAGE", "other_db.other_schema.myStage", "@MyStage/some/path"):
        assert get_stage(written) == stage
    with pytest.raises(StageExistsError, match="Stage 'MYSTAGE' exists already"):
        create_stage("MYSTAGE")
    assert [info.name for info in list_stages()] == ["MYSTAGE"]


def test_exist_ok(tmp_path: Path) -> None:
    first = create_stage("s")
    assert create_stage("S", exist_ok=True) == first
    external = create_stage("ext", str(tmp_path / "data"))
    assert create_stage("ext", (tmp_path / "data").as_uri() + "/", exist_ok=True) == external
    assert create_stage("ext", exist_ok=True) == external  # no URL given: the existing one is fine
    other = (tmp_path / "other").as_uri()
    with pytest.raises(StageExistsError) as caught:
        create_stage("ext", other, exist_ok=True)
    assert external.url in str(caught.value)
    assert other in str(caught.value)


def test_create_external_stage_from_a_bare_absolute_path(tmp_path: Path) -> None:
    data = tmp_path / "data dir"
    stage = create_stage("ext", str(data))
    assert stage.managed is False
    assert stage.url == data.as_uri()
    assert "%20" in stage.url
    stage.write_text("a.txt", "hello")
    assert (data / "a.txt").read_text() == "hello"


def test_relative_path_is_refused_before_the_catalog_changes() -> None:
    with pytest.raises(ConfigError, match="'data/stage' is a relative path"):
        create_stage("s", "data/stage")
    assert list_stages() == []


def test_unknown_scheme_is_refused_before_the_catalog_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_package(monkeypatch, "s3fs")
    create_stage("keep")
    before = catalog_file().read_bytes()
    with pytest.raises(
        ConfigError, match=r"No stage backend serves URL scheme 'nope://'.*Known schemes: .*file"
    ):
        create_stage("s", "nope://bucket/x")
    with pytest.raises(ConfigError, match=r"pip install 'shoal\[s3\]'"):
        create_stage("s", "s3://bucket/x")
    assert catalog_file().read_bytes() == before
    assert not (home() / "stages" / "S").exists()


def test_url_pointing_to_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(ConfigError, match="points to a file, not a folder"):
        create_stage("s", str(target))
    assert list_stages() == []


def test_get_unknown_stage_explains_how_to_create_it() -> None:
    create_stage("beta")
    create_stage("alpha")
    with pytest.raises(StageNotFoundError) as caught:
        get_stage("@db.sch.missing/x")
    message = str(caught.value)
    assert "Stage 'MISSING' does not exist" in message
    assert "Existing stages: ALPHA, BETA." in message
    assert "shoal.create_stage('MISSING')" in message
    assert "shoal stage create MISSING" in message
    assert isinstance(caught.value, LookupError)


def test_get_unknown_stage_when_there_are_none() -> None:
    with pytest.raises(StageNotFoundError, match=r"Existing stages: \(none yet\)"):
        get_stage("x")


def test_list_stages_is_sorted_and_typed(tmp_path: Path) -> None:
    for name in ("zeta", "Alpha", "mid"):
        create_stage(name)
    create_stage("ext", tmp_path.as_uri())
    infos = list_stages()
    assert [info.name for info in infos] == ["ALPHA", "EXT", "MID", "ZETA"]
    assert [info.managed for info in infos] == [True, False, True, True]
    with pytest.raises(AttributeError):
        infos[0].name = "X"  # type: ignore[misc]


def test_resolve_location_and_location_helpers(tmp_path: Path) -> None:
    stage = create_stage("data")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("a")
    assert stages.put(str(tmp_path / "in"), "@db.sch.DATA/raw/") == ["raw/a.csv"]
    assert resolve_location("@data/raw//a.csv") == (stage, "raw/a.csv")
    assert resolve_location("data") == (stage, "")
    assert stages.list_files("@data/raw", "*.csv") == ["raw/a.csv"]
    with stages.open_file("@data/raw/b.txt", "w") as handle:
        handle.write("b")
    with stages.open_file("@DATA/raw/b.txt", "r") as reader:
        assert reader.read() == "b"
    assert stages.get("@data/raw", tmp_path / "out") == [
        str(tmp_path / "out" / name) for name in ("a.csv", "b.txt")
    ]
    assert stages.remove("@data/raw") == 2
    assert stage.list() == []


def test_stage_identity_repr_and_pickling() -> None:
    stage = create_stage("s")
    stage.write_text("x.txt", "x")
    assert repr(stage) == f"Stage(name='S', url='{stage.url}', managed=True)"
    assert stage == Stage("S", stage.url)
    assert hash(stage) == hash(Stage("S", stage.url))
    assert stage != Stage("S", "memory://elsewhere")
    assert stage.location("a//b") == "@S/a/b"
    state = pickle.dumps(stage)
    assert b"LocalStageBackend" not in state  # the backend is rebuilt where the stage is used
    copy = pickle.loads(state)
    assert copy == stage
    assert copy.managed is True
    assert copy.read_text("x.txt") == "x"


# -- drop ---------------------------------------------------------------------------------------


def test_drop_managed_stage_deletes_its_folder() -> None:
    stage = create_stage("m")
    stage.write_bytes("a/b.bin", b"1")
    folder = home() / "stages" / "M"
    assert (folder / "a" / "b.bin").exists()
    drop_stage("@db.sch.m")
    assert not folder.exists()
    assert list_stages() == []
    with pytest.raises(StageNotFoundError):
        get_stage("m")
    again = create_stage("m")  # a new stage with the same name starts empty
    assert again.list() == []


def test_drop_external_stage_keeps_its_data(tmp_path: Path) -> None:
    stage = create_stage("ext", str(tmp_path / "ext"))
    stage.write_text("keep/me.txt", "data")
    drop_stage("EXT")
    assert (tmp_path / "ext" / "keep" / "me.txt").read_text() == "data"
    assert list_stages() == []


def test_drop_missing_stage() -> None:
    create_stage("other")
    with pytest.raises(StageNotFoundError, match=r"Stage 'GONE' does not exist\. Existing stages: OTHER"):
        drop_stage("gone")
    drop_stage("gone", missing_ok=True)
    assert [info.name for info in list_stages()] == ["OTHER"]


# -- the catalog on disk ------------------------------------------------------------------------


def test_catalog_is_json_on_disk_and_seen_by_another_process(tmp_path: Path) -> None:
    managed = create_stage("one")
    managed.write_text("hello.txt", "from the parent")
    create_stage("two", str(tmp_path / "two"))
    document = json.loads(catalog_file().read_text())
    assert document["version"] == 1
    assert document["stages"]["ONE"]["url"] == managed.url
    assert document["stages"]["TWO"] == {
        "url": (tmp_path / "two").as_uri(),
        "managed": False,
        "created_on": document["stages"]["TWO"]["created_on"],
    }
    done = run_python(
        """
        import json
        from shoal.stages import create_stage, get_stage, list_stages
        print(json.dumps([[i.name, i.url, i.managed] for i in list_stages()]))
        print(get_stage("@ONE").read_text("hello.txt"))
        create_stage("three")
        """
    )
    assert done.returncode == 0, done.stderr
    listed, text = done.stdout.splitlines()
    assert json.loads(listed) == [["ONE", managed.url, True], ["TWO", (tmp_path / "two").as_uri(), False]]
    assert text == "from the parent"
    # read fresh on every call: the entry the child added is visible here without any reload
    assert [info.name for info in list_stages()] == ["ONE", "THREE", "TWO"]


def test_concurrent_create_stage_from_several_processes_keeps_every_entry(tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = f"""
        import os, sys, time
        from shoal.stages import create_stage
        worker = int(sys.argv[1])
        open(os.path.join({str(tmp_path)!r}, f"ready_{{worker}}"), "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
            time.sleep(0.005)
        for i in range(5):
            create_stage(f"w{{worker}}_s{{i}}")
    """
    procs = [
        subprocess.Popen(python_command(code, str(n)), env=python_env(), stderr=subprocess.PIPE)
        for n in range(6)
    ]
    wait_until(lambda: len(list(tmp_path.glob("ready_*"))) == 6, "the six processes at the barrier", 60)
    go.touch()
    errors = [proc.communicate(timeout=60)[1].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, errors
    names = [info.name for info in list_stages()]
    assert names == sorted(f"W{w}_S{i}" for w in range(6) for i in range(5))


def test_damaged_catalog_is_reported_with_its_path() -> None:
    path = catalog_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"The stage catalog .*stages\.json is damaged"):
        list_stages()
    with pytest.raises(ConfigError, match="damaged"):
        create_stage("s")
    assert path.read_text() == "{not json"


def test_catalog_updates_leave_no_temporary_files() -> None:
    for name in ("a", "b", "c"):
        create_stage(name)
    drop_stage("b")
    leftovers = sorted(p.name for p in (home() / "catalog").iterdir())
    assert leftovers == ["stages.json", "stages.json.lock"]


def test_a_job_on_other_hosts_resolves_stage_names_through_the_submitters_catalog(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from shoal.stages.catalog import CALLER_STAGES_VAR, catalog_for_jobs

    create_stage("runs", "memory://bucket/runs")
    create_stage("both", "memory://bucket/submitter")
    create_stage("secret", "memory://user:hunter2@bucket/x")
    sent = catalog_for_jobs()
    assert "hunter2" not in sent, "a URL with a password stays out of the job's environment"
    # the job's host: a workspace of its own, with one stage of the same name
    monkeypatch.setenv("SHOAL_HOME", str(tmp_path / "other_host"))
    create_stage("both", "memory://bucket/host")
    monkeypatch.setenv(CALLER_STAGES_VAR, sent)
    assert get_stage("@RUNS").url == "memory://bucket/runs"
    assert get_stage("both").url == "memory://bucket/host", "the host's own catalog wins"
    with pytest.raises(StageNotFoundError):
        get_stage("secret")
    monkeypatch.delenv(CALLER_STAGES_VAR)
    with pytest.raises(StageNotFoundError):
        get_stage("runs")
