"""Atomic local writes (shoal.localfiles): the one writer, its fsync rule, and no copies."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from shoal import localfiles
from shoal.localfiles import atomic_path, write_atomically

#: the modules that may rename files themselves: the writer, and two that rename what it wrote
#: (a DPF attempt's staged files, a job's installed requirements folder)
RENAMERS = {
    "core/shoal/localfiles.py",
    "core/shoal/dpf/attempts.py",
    "runtime/shoal/runtime/job_requirements.py",
}


def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths fsynced from now on (file or folder), in order."""
    seen: list[str] = []
    real_fsync_path = localfiles.fsync_path

    def recording(path: str, *, directory: bool = False) -> None:
        seen.append(f"{'folder' if directory else 'file'}:{os.path.basename(path) or path}")
        real_fsync_path(path, directory=directory)

    monkeypatch.setattr(localfiles, "fsync_path", recording)
    return seen


def test_a_durable_write_replaces_the_file_and_fsyncs_it_and_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = fsyncs(monkeypatch)
    target = tmp_path / "record.json"
    target.write_text("old")
    write_atomically(target, "névé")
    assert target.read_bytes() == "névé".encode()
    assert [name.split(":")[0] for name in seen] == ["file", "folder"]
    assert seen[1] == f"folder:{tmp_path.name}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"], "no temporary file left"


def test_a_quick_write_replaces_the_file_without_any_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = fsyncs(monkeypatch)
    target = tmp_path / "heartbeat"
    write_atomically(target, b"\x00\x01", durable=False)
    assert target.read_bytes() == b"\x00\x01"
    assert seen == []


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "model.pth"
    target.write_text("the model before")

    def write_half() -> None:
        with atomic_path(target) as tmp:
            Path(tmp).write_text("half a mod")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_half()
    assert target.read_text() == "the model before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]
    with atomic_path(target, durable=False) as tmp:
        Path(tmp).write_text("the model after")
    assert target.read_text() == "the model after"


def test_no_module_renames_files_of_its_own_but_the_writer_and_the_two_that_rename_what_it_wrote() -> None:
    renames = re.compile(r"\bos\.(replace|rename)\(|\.(replace|rename)\(\s*(tmp|temp|temporary)\b")
    found = {
        str(path.relative_to(REPO_ROOT))
        for folder in ("core", "plugins", "runtime")
        for path in (REPO_ROOT / folder).rglob("*.py")
        if renames.search(path.read_text(encoding="utf-8"))
    }
    assert found == RENAMERS, f"write files with shoal.localfiles.write_atomically: {found - RENAMERS}"
