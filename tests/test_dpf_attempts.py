"""Exactly-once partition files (shoal.dpf.attempts) without Ray: an attempt's files reach the
partition's folder only when it commits, replace an earlier attempt's whole, never when fenced;
a failed write keeps what the attempt had; sweeps remove what cut-off attempts left. On a local
folder stage and on a memory:// stage (the commit through the stage)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from shoal.dpf.attempts import AttemptFiles, fence_attempts, sweep_attempts
from shoal.stages import TEMP_PREFIX, Stage, create_stage

RUN = "run1"
FOLDER = "S%2F1"  # the folder of key 'S/1' is one part: no nesting


@pytest.fixture(params=["local", "memory"])
def stage(request: pytest.FixtureRequest) -> Stage:
    if request.param == "local":
        return create_stage("attempts")
    return create_stage("attempts", f"memory://attempts-{uuid.uuid4().hex}/stage")


def files_of(stage: Stage) -> dict[str, bytes]:
    """What readers see in the partition's folder."""
    prefix = f"{RUN}/{FOLDER}/"
    return {p[len(prefix) :]: stage.read_bytes(p) for p in stage.list(f"{RUN}/{FOLDER}")}


def attempt(stage: Stage, number: int) -> AttemptFiles:
    return AttemptFiles(stage, RUN, FOLDER, index=0, attempt=number)


def write(files: AttemptFiles, name: str, data: bytes) -> None:
    with files.writing(name) as target:
        if target is None:
            files.write_bytes(name, data)
        else:
            Path(target).write_bytes(data)


def test_files_appear_only_when_the_attempt_commits(stage: Stage) -> None:
    first = attempt(stage, 1)
    write(first, "model.pkl", b"m1")
    first.write_bytes("train.log", b"log1")
    assert files_of(stage) == {}, "nothing is seen before the commit"
    assert first.read_bytes("model.pkl") == b"m1", "the attempt reads its own files"
    assert first.commit() is True
    assert files_of(stage) == {"model.pkl": b"m1", "train.log": b"log1"}


def test_a_later_attempt_replaces_the_earlier_one_whole(stage: Stage) -> None:
    first = attempt(stage, 1)
    write(first, "model.pkl", b"m1")
    write(first, "extra.csv", b"e1")
    first.write_bytes("train.log", b"log1")
    first.commit()
    second = attempt(stage, 2)
    assert second.previous_log() == "log1"
    assert second.read_bytes("extra.csv") == b"e1", "the committed files are readable until replaced"
    write(second, "model.pkl", b"m2")
    second.write_bytes("train.log", b"log1log2")
    second.commit()
    assert files_of(stage) == {"model.pkl": b"m2", "train.log": b"log1log2"}, "never two attempts mixed"


def test_a_fenced_attempt_never_commits(stage: Stage) -> None:
    kept = attempt(stage, 1)
    write(kept, "model.pkl", b"m1")
    kept.write_bytes("train.log", b"log1")
    kept.commit()
    cut_off = attempt(stage, 2)
    write(cut_off, "model.pkl", b"from a lost node")
    fence_attempts(stage, RUN, [(0, 2)])
    assert cut_off.fenced()
    assert cut_off.commit() is False
    assert files_of(stage) == {"model.pkl": b"m1", "train.log": b"log1"}
    assert not attempt(stage, 3).fenced(), "only the fenced attempt"


def test_a_write_that_fails_keeps_what_the_attempt_had(stage: Stage) -> None:
    files = attempt(stage, 1)
    write(files, "model.pkl", b"good")

    def fail_half_way(name: str) -> None:
        with files.writing(name) as target:
            if target is not None:
                Path(target).write_bytes(b"hal")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        fail_half_way("model.pkl")
    with pytest.raises(OSError, match="disk full"):
        fail_half_way("never.pkl")
    files.write_bytes("train.log", b"log")
    files.commit()
    assert files_of(stage) == {"model.pkl": b"good", "train.log": b"log"}


def test_sweeps_remove_what_cut_off_attempts_left(stage: Stage) -> None:
    committed = attempt(stage, 1)
    write(committed, "model.pkl", b"m1")
    committed.write_bytes("train.log", b"log")
    committed.commit()
    orphan = attempt(stage, 2)  # its worker died before the commit
    write(orphan, "model.pkl", b"half")
    fence_attempts(stage, RUN, [(0, 2)])
    sweep_attempts(stage, RUN)
    assert files_of(stage) == {"model.pkl": b"m1", "train.log": b"log"}
    assert not stage.exists(f"{RUN}/_shoal/attempts")
    assert not stage.exists(f"{RUN}/_shoal/fences")
    root = stage.backend.local_path("")
    if root is not None:
        assert list(Path(root).rglob(f"{TEMP_PREFIX}*")) == [], "no temporary file left"
