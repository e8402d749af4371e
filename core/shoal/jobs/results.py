"""The result protocol: how a job's return value (or exception) travels through the stage.

The job writes one JSON document, the *result DTO*, to ``@stage/<job>/output/mljob_result``::

    {"kind": "result", "success": true, "value": ..., "protocol": null}            JSON values inline
    {"kind": "result", "success": true, "protocol": {"name": "numpy", "path": "output/mljob_extra.npy"}}
    {"kind": "result", "success": false, "metadata": {"type": ..., "message": ..., "traceback": ...},
     "protocol": {"name": "pickle", "path": "output/mljob_exception.pkl"}}

Values that are not JSON go into a file beside it: numpy arrays as ``.npy``, pandas DataFrames
and Arrow tables as parquet, anything else with cloudpickle (as in the reference product). If a
value cannot be serialized at all, the job still succeeds and ``serialize_error`` says why.

Writing runs in the job's payload process (head node); reading runs wherever ``MLJob.result()``
is called.
"""

from __future__ import annotations

import io
import json
import sys
import traceback
from typing import Any, NamedTuple

import cloudpickle

from shoal.stages import Stage

RESULT_FILE = "output/mljob_result"
FORMAT_VERSION = 1


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised inside a job, as its ``__cause__``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nTraceback in the job:\n{self.text}"


class RemoteError(Exception):
    """Stands for a job's exception whose type cannot be rebuilt here (not importable)."""


def _is_json(value: Any) -> bool:
    try:
        return json.loads(json.dumps(value, allow_nan=False)) == value
    except (TypeError, ValueError):
        return False


def _write_file(stage: Stage, path: str, data: bytes) -> None:
    with stage.open(path, "wb") as handle:
        handle.write(data)


def _encode_value(stage: Stage, job_dir: str, value: Any) -> dict[str, Any]:
    """Write ``value`` beside the DTO; return the DTO's protocol entry."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy" and type(value).__name__ == "ndarray" and value.dtype != object:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        path = f"{job_dir}/output/mljob_extra.npy"
        _write_file(stage, path, buffer.getvalue())
        return {"name": "numpy", "path": path}
    if module in ("pandas", "pyarrow") and type(value).__name__ in ("DataFrame", "Table"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = value if isinstance(value, pa.Table) else pa.Table.from_pandas(value)
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
        except Exception:  # mixed object columns and the like: fall back to pickle
            pass
        else:
            path = f"{job_dir}/output/mljob_extra_0.parquet"
            _write_file(stage, path, buffer.getvalue())
            return {"name": module, "path": path}
    path = f"{job_dir}/output/mljob_extra.pkl"
    _write_file(stage, path, cloudpickle.dumps(value))
    return {"name": "pickle", "path": path}


def _python_metadata() -> dict[str, Any]:
    return {
        "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "cloudpickle_version": cloudpickle.__version__,
    }


def write_result(stage: Stage, job_dir: str, value: Any) -> dict[str, Any]:
    """Store a successful return value; returns the DTO written."""
    dto: dict[str, Any] = {
        "kind": "result",
        "format": FORMAT_VERSION,
        "success": True,
        "protocol": None,
        "metadata": _python_metadata(),
    }
    if _is_json(value):
        dto["value"] = value
    else:
        try:
            dto["protocol"] = _encode_value(stage, job_dir, value)
        except Exception as exc:
            dto["serialize_error"] = f"{type(exc).__name__}: {exc}"
    stage.write_text(f"{job_dir}/{RESULT_FILE}", json.dumps(dto))
    return dto


def write_exception(stage: Stage, job_dir: str, exc: BaseException) -> dict[str, Any]:
    """Store the exception a job raised, with its traceback; returns the DTO written."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    dto: dict[str, Any] = {
        "kind": "result",
        "format": FORMAT_VERSION,
        "success": False,
        "protocol": None,
        "metadata": {
            **_python_metadata(),
            "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "repr": repr(exc),
            "message": str(exc),
            "traceback": text,
        },
    }
    try:
        path = f"{job_dir}/output/mljob_exception.pkl"
        _write_file(stage, path, cloudpickle.dumps(exc.with_traceback(None)))
        dto["protocol"] = {"name": "pickle", "path": path}
    except Exception as pickling_error:
        dto["serialize_error"] = f"{type(pickling_error).__name__}: {pickling_error}"
    stage.write_text(f"{job_dir}/{RESULT_FILE}", json.dumps(dto))
    return dto


def has_result(stage: Stage, job_dir: str) -> bool:
    return stage.exists(f"{job_dir}/{RESULT_FILE}")


class RaisedError(NamedTuple):
    """What a job's exception was, as written with it (nothing is unpickled)."""

    type: str  # module.QualName
    message: str
    traceback: str


def raised(stage: Stage, job_dir: str) -> RaisedError | None:
    """The exception the job raised; None when it wrote none (no result yet, or a value)."""
    try:
        dto = json.loads(stage.read_text(f"{job_dir}/{RESULT_FILE}"))
    except (FileNotFoundError, ValueError):
        return None
    if dto.get("success", True):
        return None
    metadata = dto.get("metadata", {})
    return RaisedError(
        str(metadata.get("type", "")), str(metadata.get("message", "")), str(metadata.get("traceback", ""))
    )


def _check_compatible(metadata: dict[str, Any]) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    there = metadata.get("python_version")
    if there and there != here:
        raise RuntimeError(
            f"The job ran Python {there} but this process runs Python {here}; its result was pickled "
            f"and cannot be read reliably. Read it from a Python {there} process."
        )


def read_result(stage: Stage, job_dir: str) -> Any:
    """Return the job's value, or raise ``RuntimeError`` from the job's own exception."""
    dto = json.loads(stage.read_text(f"{job_dir}/{RESULT_FILE}"))
    metadata = dto.get("metadata") or {}
    protocol = dto.get("protocol")
    if dto.get("success"):
        if "value" in dto:
            return dto["value"]
        if protocol is None:
            raise RuntimeError(
                f"The job succeeded but its result could not be saved: {dto.get('serialize_error')}. "
                f"Return plain data, arrays or frames (anything cloudpickle can write), or save the "
                f"object to the stage in the job and return its path."
            )
        data = stage.read_bytes(protocol["path"])
        name = protocol["name"]
        if name == "numpy":
            import numpy as np

            return np.load(io.BytesIO(data), allow_pickle=False)
        if name in ("pandas", "pyarrow"):
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(data))
            return table.to_pandas() if name == "pandas" else table
        _check_compatible(metadata)
        return cloudpickle.loads(data)
    original: BaseException
    try:
        if protocol is None:
            raise ValueError("exception not pickled")
        _check_compatible(metadata)
        original = cloudpickle.loads(stage.read_bytes(protocol["path"]))
    except Exception:
        original = RemoteError(f"{metadata.get('type')}: {metadata.get('message')}")
    if original.__cause__ is None:  # an exception that kept its own cause (TrainingError) keeps it
        original.__cause__ = RemoteTraceback(metadata.get("traceback", ""))
    raise RuntimeError(f"Job execution failed with error: {metadata.get('repr', original)!s}") from original
