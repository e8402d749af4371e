"""Stage files on every built-in backend: a managed stage, a file:// stage and a memory:// stage.

The memory stages use fsspec's real in-memory file system (no mocks); each test gets its own
bucket. Local-only behaviour (symbolic links, killed writers) is tested on managed and file://
stages.
"""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shoal import hookimpl, hooks
from shoal.cli import cli
from shoal.contributions import StageBackendSpec
from shoal.errors import ConfigError, PluginError, StageFileNotFoundError, StagePathError
from shoal.plugin_manager import set_plugin_manager
from shoal.plugins.fsspec_stage import FsspecStageBackend
from shoal.plugins.local_stage import LocalStageBackend
from shoal.stages import TEMP_PREFIX, Stage, create_stage, list_stages
from shoal.stages.gc import sweep_temp_files
from shoal.testing import temporary_plugin
from stage_helpers import catalog_file, hide_package, run_python


def _memory_fs() -> Any:
    import fsspec

    return fsspec.filesystem("memory")


def _make_stage(kind: str, tmp_path: Path) -> Stage:
    if kind == "managed":
        return create_stage("s")
    if kind == "file":
        return create_stage("s", (tmp_path / "external stage").as_uri())
    return create_stage("s", f"memory://test-{uuid.uuid4().hex}/stage")


@pytest.fixture(params=["managed", "file", "memory"])
def stage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stage]:
    made = _make_stage(request.param, tmp_path)
    yield made
    if made.url.startswith("memory://"):
        bucket = "/" + made.url.removeprefix("memory://").split("/")[0]
        if _memory_fs().exists(bucket):
            _memory_fs().rm(bucket, recursive=True)


@pytest.fixture(params=["managed", "file"])
def local_stage(request: pytest.FixtureRequest, tmp_path: Path) -> Stage:
    return _make_stage(request.param, tmp_path)


def _local_root(stage: Stage) -> Path:
    root = stage.backend.local_path("")
    assert root is not None
    Path(root).mkdir(parents=True, exist_ok=True)
    return Path(root)


def _tree(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


# -- round trips on every backend --------------------------------------------------------------


def test_write_and_read_round_trip(stage: Stage) -> None:
    stage.write_bytes("a/b/c.bin", b"\x00\x01binary")
    stage.write_text("notes/é.txt", "héllo\nworld\n")
    assert stage.read_bytes("a/b/c.bin") == b"\x00\x01binary"
    assert stage.read_text("notes/é.txt") == "héllo\nworld\n"
    with stage.open("a/b/c.bin") as handle:
        assert handle.read() == b"\x00\x01binary"
    with stage.open("notes/é.txt", "r") as text:
        assert text.readline() == "héllo\n"
    assert stage.exists("a")
    assert stage.exists("a/b/c.bin")
    assert stage.exists("")
    assert not stage.exists("a/nope")
    assert stage.list() == ["a/b/c.bin", "notes/é.txt"]
    stage.write_text("a/b/c.bin", "replaced")
    assert stage.read_text("a/b/c.bin") == "replaced"


def test_put_a_file_a_folder_and_globs(stage: Stage, tmp_path: Path) -> None:
    data = _tree(
        tmp_path / "data",
        {
            "a.csv": "a",
            "b.csv": "b",
            "notes.txt": "n",
            "sub/c.csv": "c",
            "sub/deeper/d.csv": "d",
            f"sub/{TEMP_PREFIX}leftover": "an interrupted download; never uploaded",
        },
    )
    assert stage.put(data / "a.csv", "one") == ["one/a.csv"]
    assert stage.put(str(data / "b.csv")) == ["b.csv"]
    assert stage.put(str(data), "all/") == [
        "all/a.csv",
        "all/b.csv",
        "all/notes.txt",
        "all/sub/c.csv",
        "all/sub/deeper/d.csv",
    ]
    assert stage.put(f"{data}/*.csv", "glob") == ["glob/a.csv", "glob/b.csv"]
    assert stage.put(f"{data}/s*", "star") == ["star/sub/c.csv", "star/sub/deeper/d.csv"]
    assert stage.read_text("all/sub/deeper/d.csv") == "d"
    assert stage.read_text("glob/b.csv") == "b"


def test_put_errors(stage: Stage, tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        stage.put(missing)
    with pytest.raises(FileNotFoundError, match=r"No local file matches the pattern .*\*\.parquet"):
        stage.put(f"{tmp_path}/*.parquet")
    data = _tree(tmp_path / "data", {"x/part.csv": "1", "y/part.csv": "2"})
    with pytest.raises(ConfigError, match=r"would both be written to @S/dest/part\.csv"):
        stage.put(f"{data}/*/part.csv", "dest")
    with pytest.raises(StagePathError, match=r"contains '\.\.'"):
        stage.put(data, "../elsewhere")
    assert stage.list() == []


def test_get_a_file_a_folder_and_the_root(stage: Stage, tmp_path: Path) -> None:
    stage.write_text("d/top.txt", "top")
    stage.write_text("d/sub/x.txt", "x")
    stage.write_text("other.txt", "o")
    out = tmp_path / "out"
    assert stage.get("d/sub/x.txt", out) == [str(out / "x.txt")]
    assert (out / "x.txt").read_text() == "x"
    assert stage.get("d", out / "tree") == [
        str(out / "tree" / "sub" / "x.txt"),
        str(out / "tree" / "top.txt"),
    ]
    assert stage.get("", out / "all") == [
        str(out / "all" / "d" / "sub" / "x.txt"),
        str(out / "all" / "d" / "top.txt"),
        str(out / "all" / "other.txt"),
    ]
    (out / "x.txt").write_text("stale local copy")
    stage.get("d/sub/x.txt", out)
    assert (out / "x.txt").read_text() == "x"
    assert not [p for p in out.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    with pytest.raises(StageFileNotFoundError, match=r"No file or folder at @S/nope"):
        stage.get("nope", out)


def test_list_patterns(stage: Stage) -> None:
    for path in (
        "a/x.csv",
        "a/b/x.csv",
        "a/b/c/x.csv",
        "a/y.parquet",
        "a/b/z.parquet",
        "top.parquet",
        "other/x.csv",
    ):
        stage.write_text(path, path)
    assert stage.list(pattern="*.parquet") == ["a/b/z.parquet", "a/y.parquet", "top.parquet"]
    assert stage.list("a", "*.parquet") == ["a/b/z.parquet", "a/y.parquet"]
    assert stage.list(pattern="a/**/x.csv") == ["a/b/c/x.csv", "a/b/x.csv", "a/x.csv"]
    assert stage.list(pattern="a/*/x.csv") == ["a/b/x.csv"]
    assert stage.list("a", "*/x.csv") == ["a/b/x.csv"]  # relative to the listed folder
    assert stage.list("a", "b/**") == ["a/b/c/x.csv", "a/b/x.csv", "a/b/z.parquet"]
    assert stage.list("a/x.csv") == ["a/x.csv"]
    assert stage.list("a/x.csv", "*.parquet") == []
    assert stage.list("missing") == []
    assert stage.list("a/b/") == ["a/b/c/x.csv", "a/b/x.csv", "a/b/z.parquet"]
    assert len(stage.list()) == 7


def test_remove(stage: Stage) -> None:
    for path in ("d/a.txt", "d/sub/b.txt", "d/sub/c.txt", "keep.txt"):
        stage.write_text(path, "x")
    assert stage.remove("d/a.txt") == 1
    assert stage.remove("d/sub") == 2
    assert stage.list() == ["keep.txt"]
    with pytest.raises(StagePathError, match=r"Refusing to remove the root.*shoal\.drop_stage\('S'\)"):
        stage.remove("")
    with pytest.raises(StageFileNotFoundError, match=r"No file or folder at @S/d/a\.txt"):
        stage.remove("d/a.txt")
    assert stage.remove("d/a.txt", missing_ok=True) == 0
    assert stage.list() == ["keep.txt"]
    stage.write_text("data[1]/x.txt", "glob characters are literal")
    stage.write_text("data1/y.txt", "must survive")
    assert stage.list(pattern="data[[]1]/*") == ["data[1]/x.txt"]
    assert stage.remove("data[1]") == 1
    assert stage.list() == ["data1/y.txt", "keep.txt"]


def test_open_errors(stage: Stage) -> None:
    stage.write_text("dir/file.txt", "x")
    with pytest.raises(ConfigError, match="Unsupported mode 'a'"):
        stage.open("dir/file.txt", "a")
    with pytest.raises(StagePathError, match="Cannot open the root"):
        stage.open("")
    with pytest.raises(StageFileNotFoundError, match=r"No file or folder at @S/dir/nope\.txt") as caught:
        stage.open("dir/nope.txt")
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(StagePathError, match="@S/dir is a folder"):
        stage.read_bytes("dir")
    with pytest.raises(StagePathError, match="@S/dir is a folder"):
        stage.write_bytes("dir", b"x")
    assert stage.list() == ["dir/file.txt"]


@pytest.mark.parametrize("mode", ["wb", "w"])
def test_exception_inside_with_keeps_the_previous_content(stage: Stage, mode: str) -> None:
    old, new = (b"old", b"new content") if mode == "wb" else ("old", "new content")
    with stage.open("f", mode) as handle:
        handle.write(old)
    seen_during_write: list[bytes] = []

    def write_then_fail(path: str) -> None:
        with stage.open(path, mode) as handle:
            handle.write(new)
            handle.flush()
            seen_during_write.append(stage.read_bytes("f"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail("f")
    assert seen_during_write == [b"old"]  # not visible before a successful close either
    assert stage.read_bytes("f") == b"old"
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail("fresh")
    assert not stage.exists("fresh")
    writer = stage.open("fresh", mode)
    writer.write(new)
    writer.abort()
    assert not stage.exists("fresh")
    assert stage.list() == ["f"]


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../x", "a\\b"])
def test_traversal_is_refused_by_every_operation(stage: Stage, bad: str, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    operations: list[Callable[[], object]] = [
        lambda: stage.read_bytes(bad),
        lambda: stage.write_bytes(bad, b"x"),
        lambda: stage.open(bad, "w"),
        lambda: stage.list(bad),
        lambda: stage.remove(bad),
        lambda: stage.exists(bad),
        lambda: stage.get(bad, tmp_path / "out"),
        lambda: stage.put(source, bad),
    ]
    for operation in operations:
        with pytest.raises(StagePathError, match=r"Stage path .*(contains '\.\.'|is absolute|backslash)"):
            operation()
    assert stage.list() == []
    assert not (tmp_path / "out").exists()


# -- local folders ------------------------------------------------------------------------------


def test_local_write_goes_through_a_temporary_file_in_the_same_folder(local_stage: Stage) -> None:
    root = _local_root(local_stage)
    writer = local_stage.open("sub/data.bin", "wb")
    writer.write(b"12345")
    writer.flush()
    [temp] = list((root / "sub").iterdir())
    assert temp.name.startswith(TEMP_PREFIX)
    assert temp.read_bytes() == b"12345"
    assert local_stage.list() == []
    assert not local_stage.exists("sub/data.bin")
    writer.close()
    assert [p.name for p in (root / "sub").iterdir()] == ["data.bin"]
    assert local_stage.backend.local_path("sub/data.bin") == os.path.realpath(root / "sub" / "data.bin")


def test_writing_below_a_file_is_a_path_error(local_stage: Stage) -> None:
    local_stage.write_text("f.txt", "x")
    with pytest.raises(
        StagePathError, match=r"Cannot write @S/f\.txt/g\.txt: a folder on its path is a file"
    ):
        local_stage.write_text("f.txt/g.txt", "y")
    assert local_stage.list() == ["f.txt"]


def test_killed_writer_leaves_no_file_under_the_final_name(local_stage: Stage) -> None:
    local_stage.write_bytes("keep.bin", b"old")
    done = run_python(
        """
        import os, signal
        from shoal.stages import get_stage
        stage = get_stage("s")
        keep = stage.open("keep.bin", "wb")
        keep.write(b"new" * 100_000)
        keep.flush()
        fresh = stage.open("dir/fresh.txt", "w")
        fresh.write("half a line")
        fresh.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    root = _local_root(local_stage)
    temps = sorted(p for p in root.rglob(f"{TEMP_PREFIX}*"))
    assert len(temps) == 2  # the writes were in flight when the process died
    assert any(p.stat().st_size == 300_000 for p in temps)
    assert local_stage.read_bytes("keep.bin") == b"old"
    assert not local_stage.exists("dir/fresh.txt")
    assert local_stage.list() == ["keep.bin"]
    assert local_stage.list("dir") == []

    # shoal stage gc: a live writer's file is young, so it is left; old ones are removed and shown
    assert sweep_temp_files(local_stage) == []
    assert sorted(root.rglob(f"{TEMP_PREFIX}*")) == temps
    result = CliRunner().invoke(cli, ["stage", "gc", "@s", "--dry-run", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "would remove 2 temporary file(s), 300000 bytes" in result.stderr, "the total is a note"
    listed = CliRunner().invoke(cli, ["stage", "gc", "@s", "--dry-run", "--older-than", "0", "--json"])
    rows = json.loads(listed.stdout)
    assert sorted(row["path"] for row in rows) == sorted(
        f"@S/{p.relative_to(root).as_posix()}" for p in temps
    )
    assert sum(row["bytes"] for row in rows) == 300_000
    assert sorted(root.rglob(f"{TEMP_PREFIX}*")) == temps
    old = temps[0].stat().st_mtime - 3600
    for path in temps:
        os.utime(path, (old, old))
    result = CliRunner().invoke(cli, ["stage", "gc"])
    assert result.exit_code == 0, result.output
    assert "removed 2 temporary file(s), 300000 bytes" in result.output
    assert f"@S/dir/{temps[0].name}" in result.output or f"@S/dir/{temps[1].name}" in result.output
    assert list(root.rglob(f"{TEMP_PREFIX}*")) == []
    assert local_stage.read_bytes("keep.bin") == b"old"


@pytest.mark.parametrize("mode", ["wb", "w"])
def test_a_writer_dropped_without_close_commits_nothing(stage: Stage, mode: str) -> None:
    old, new = (b"old", b"half") if mode == "wb" else ("old", "half")
    stage.write_bytes("f", b"old")

    def write_then_fail(path: str) -> None:
        handle = stage.open(path, mode)  # no with: the exception drops the handle
        handle.write(new)
        raise RuntimeError("boom")

    for path in ("f", "fresh"):
        with pytest.raises(RuntimeError, match="boom"):
            write_then_fail(path)
        gc.collect()
    forgotten = stage.open("forgotten", mode)
    forgotten.write(new)
    del forgotten
    gc.collect()
    assert stage.read_bytes("f") == b"old"
    assert not stage.exists("fresh")
    assert not stage.exists("forgotten")
    closed = stage.open("closed", mode)
    closed.write(old)
    closed.close()  # an explicit close commits
    assert stage.read_bytes("closed") == b"old"


def test_symbolic_links_that_escape_the_stage_are_refused(local_stage: Stage, tmp_path: Path) -> None:
    outside = _tree(tmp_path / "outside", {"secret.txt": "secret"})
    local_stage.write_text("real/inside.txt", "inside")
    root = _local_root(local_stage)
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "secret-link.txt").symlink_to(outside / "secret.txt")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)  # inside -> inside: fine
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)  # a cycle, inside the stage

    escaping: list[Callable[[], object]] = [
        lambda: local_stage.list("link"),
        lambda: local_stage.read_bytes("link/secret.txt"),
        lambda: local_stage.read_text("secret-link.txt"),
        lambda: local_stage.write_text("link/new.txt", "x"),
        lambda: local_stage.remove("link/secret.txt"),
        lambda: local_stage.exists("link/secret.txt"),
        lambda: local_stage.get("link", tmp_path / "out"),
    ]
    for operation in escaping:
        with pytest.raises(StagePathError, match=r"outside the stage folder .*symbolic link"):
            operation()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert not (tmp_path / "out").exists()

    assert local_stage.list() == ["alias/inside.txt", "real/inside.txt"]
    assert local_stage.read_text("alias/inside.txt") == "inside"
    downloaded = local_stage.get("", tmp_path / "all")
    assert downloaded == [
        str(tmp_path / "all" / "alias" / "inside.txt"),
        str(tmp_path / "all" / "real" / "inside.txt"),
    ]


def test_drop_of_a_managed_stage_does_not_follow_links_out(tmp_path: Path) -> None:
    from shoal.stages import drop_stage

    outside = _tree(tmp_path / "outside", {"secret.txt": "secret"})
    stage = create_stage("m")
    stage.write_text("a.txt", "a")
    (_local_root(stage) / "link").symlink_to(outside, target_is_directory=True)
    drop_stage("m")
    assert (outside / "secret.txt").read_text() == "secret"
    assert list_stages() == []


# -- fsspec ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "package", "command"),
    [
        ("s3://bucket/x", "s3fs", "pip install 'shoal[s3]'"),
        ("s3a://bucket/x", "s3fs", "pip install 'shoal[s3]'"),
        ("gs://bucket/x", "gcsfs", "pip install 'shoal[gcs]'"),
        ("abfss://container@account.dfs.core.windows.net/x", "adlfs", "pip install adlfs"),
        ("sftp://host/x", "paramiko", "pip install paramiko"),
    ],
)
def test_missing_optional_package_says_what_to_install(
    url: str, package: str, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_package(monkeypatch, package)  # installed or not
    with pytest.raises(ConfigError, match=f"needs the package '{package}'.*{re.escape(command)}"):
        create_stage("remote", url)
    assert list_stages() == []
    assert not catalog_file().exists()


def test_file_systems_without_atomic_uploads_write_a_temporary_name_then_move() -> None:
    bucket = f"move-{uuid.uuid4().hex}"
    backend = FsspecStageBackend(f"memory://{bucket}/root")
    backend.atomic_by_upload = False  # the hdfs/sftp path, exercised on the real memory file system
    fs = backend.fs
    for content in (b"first", b"second"):
        with backend.open_write("d/f.bin") as writer:
            writer.write(content)
            assert fs.find(f"/{bucket}") == ([] if content == b"first" else [f"/{bucket}/root/d/f.bin"])
        assert fs.cat(f"/{bucket}/root/d/f.bin") == content
    assert fs.find(f"/{bucket}") == [f"/{bucket}/root/d/f.bin"]
    writer = backend.open_write("d/g.bin")
    writer.write(b"dropped")
    writer.abort()
    assert list(backend.iter_files("")) == ["d/f.bin"]
    fs.rm(f"/{bucket}", recursive=True)


def _spool_files() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith(TEMP_PREFIX)}


def test_object_store_writes_upload_only_on_commit() -> None:
    spooled_before = _spool_files()
    stage = create_stage("mem", f"memory://commit-{uuid.uuid4().hex}/s")
    assert isinstance(stage.backend, FsspecStageBackend)
    fs = stage.backend.fs
    writer = stage.open("x.bin", "wb")
    writer.write(b"payload")
    writer.flush()
    assert fs.find(stage.backend.root) == []
    assert len(_spool_files() - spooled_before) == 1  # the bytes wait in a local spool file
    writer.close()
    assert fs.cat(stage.backend.root + "/x.bin") == b"payload"
    assert _spool_files() == spooled_before


def test_builtin_plugins_serve_their_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hooks.stage_backend_for_scheme("file").name == "local"
    for scheme in ("memory", "S3", "gcs", "abfss", "hdfs", "sftp"):
        assert hooks.stage_backend_for_scheme(scheme).name == "fsspec"
    assert isinstance(create_stage("loc").backend, LocalStageBackend)
    monkeypatch.setenv("SHOAL_BLOCKED_PLUGINS", "fsspec_stage")
    set_plugin_manager(None)
    with pytest.raises(
        ConfigError, match=r"No stage backend serves URL scheme 'memory://'\. Known schemes: file\."
    ):
        create_stage("mem", "memory://bucket/x")
    assert [info.name for info in list_stages()] == ["LOC"]


def test_plugin_modules_do_not_import_fsspec() -> None:
    done = run_python(
        """
        import sys
        from shoal import hooks
        from shoal.stages import create_stage
        assert sorted(hooks.stage_backends()) == ["fsspec", "local"]
        create_stage("s").write_text("a.txt", "a")
        print("fsspec" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# -- the backend contract, through a plugin -----------------------------------------------------


class AuditBackend(LocalStageBackend):
    """A local folder behind ``audit:///abs/path`` that records every confinement check."""

    checked: list[str] = []

    def __init__(self, url: str) -> None:
        super().__init__("file" + url.removeprefix("audit"))
        self.url = url

    def check_confined(self, path: str) -> None:
        AuditBackend.checked.append(path)
        if "forbidden" in path.split("/"):
            raise StagePathError(f"{path!r} is forbidden by the audit backend")
        super().check_confined(path)


class AuditPlugin:
    @hookimpl
    def shoal_stage_backends(self) -> Iterator[StageBackendSpec]:
        yield StageBackendSpec(name="audit", schemes=("audit",), factory=AuditBackend)
        yield StageBackendSpec(name="broken", schemes=("broken",), factory=lambda url: object())


def test_stage_checks_confinement_for_every_operation(tmp_path: Path) -> None:
    AuditBackend.checked.clear()
    source = _tree(tmp_path / "src", {"in.txt": "in"})
    with temporary_plugin(AuditPlugin(), "audit"):
        stage = create_stage("audited", "audit://" + str(tmp_path / "data"))
        stage.write_text("d/f.txt", "x")
        stage.read_text("d/f.txt")
        stage.exists("d")
        stage.list("d")
        stage.put(source / "in.txt", "up")
        stage.get("d", tmp_path / "out")
        stage.remove("d/f.txt")
        assert AuditBackend.checked == [
            "d/f.txt",
            "d/f.txt",
            "d",
            "d",
            "up",
            "up/in.txt",
            "d",
            "d/f.txt",
            "d/f.txt",
        ]
        for operation in (
            lambda: stage.write_text("forbidden/f.txt", "x"),
            lambda: stage.read_text("forbidden"),
            lambda: stage.list("forbidden"),
            lambda: stage.remove("forbidden"),
            lambda: stage.exists("forbidden"),
        ):
            with pytest.raises(StagePathError, match="forbidden by the audit backend"):
                operation()
        with pytest.raises(PluginError, match=r"Stage backend 'broken' returned object .*must return"):
            create_stage("b", "broken://x")
    assert [info.name for info in list_stages()] == ["AUDITED"]
