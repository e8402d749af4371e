"""A job's result on its stage, as the payload writes it and the caller reads it back (no Ray):
Arrow tables and pandas frames are stored as parquet, and an exception whose type the caller
cannot import comes back as a ``RemoteError`` with its type, message and the job's traceback."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from shoal.jobs import results
from shoal.jobs.results import RemoteError
from shoal.stages import Stage, create_stage


@pytest.fixture
def stage() -> Stage:
    return create_stage("results")


@pytest.mark.parametrize("kind", ["pyarrow", "pandas"])
def test_tables_are_stored_as_parquet_and_read_back(stage: Stage, kind: str) -> None:
    table = pa.table({"store": ["S1", "S2"], "units": [3, 4]})
    value = table if kind == "pyarrow" else table.to_pandas()
    dto = results.write_result(stage, "job1", value)
    assert dto["protocol"]["name"] == kind
    path = dto["protocol"]["path"]
    assert path.endswith(".parquet")
    assert stage.read_bytes(path)[:4] == b"PAR1", "a parquet file, not a pickle"
    back = results.read_result(stage, "job1")
    if kind == "pyarrow":
        assert back.equals(table)
    else:
        pd.testing.assert_frame_equal(back, value)


def test_an_exception_whose_type_cannot_be_imported_is_a_remote_error(
    stage: Stage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "only_in_the_job.py").write_text("class StoreMissing(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("only_in_the_job")
    try:
        raise module.StoreMissing("store S9 has no rows")
    except module.StoreMissing as exc:
        results.write_exception(stage, "job2", exc)
    # the caller's process has no such module
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    del sys.modules["only_in_the_job"]
    importlib.invalidate_caches()
    with pytest.raises(RuntimeError, match="Job execution failed with error") as caught:
        results.read_result(stage, "job2")
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteError)
    assert "StoreMissing: store S9 has no rows" in str(cause)
    assert "raise module.StoreMissing" in str(cause.__cause__), "the job's traceback is kept"
