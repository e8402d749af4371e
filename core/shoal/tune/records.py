"""Where a tuning run keeps what it learns: its run record and, per trial, parameters, metrics,
log and model, on a stage.

Layout under ``@<stage>/<run_id>/`` (stage ``SHOAL_TUNE`` unless the caller names one):

* ``run.json``: :class:`RunRecord` (what was asked, the status, the best trial);
* ``trials/<trial_id>/trial.json``: :class:`TrialRecord` (parameters, last reported metrics,
  status, error, start and end times, node), rewritten at each report;
* ``trials/<trial_id>/log.txt``: what the trial printed;
* ``trials/<trial_id>/model.pkl``: the model of its last report that carried one (cloudpickle).

Trials write their own files from the node they run on; any process reads them back
(:meth:`TunerResults.restore_from <shoal.tune.results.TunerResults.restore_from>`, ``shoal tune
show``). Run ids and trial ids are checked before they name a folder.

Runs anywhere: the driver, the tuning job and the trials.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from shoal.errors import RunNotFoundError
from shoal.wire import WireSpec

DEFAULT_STAGE = "SHOAL_TUNE"
RUN_FILE = "run.json"
TRIAL_FILE = "trial.json"
LOG_FILE = "log.txt"
MODEL_FILE = "model.pkl"

RunStatus = Literal["PENDING", "RUNNING", "DONE", "FAILED"]
#: RUNNING while it runs; DONE after its last report; FAILED with its error; STOPPED when early
#: stopping (ASHA) ended it, with the metrics it had reported
TrialStatus = Literal["RUNNING", "DONE", "FAILED", "STOPPED"]

_TRIAL_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class RunRecord(WireSpec):
    """One tuning run, as the driver submitted it and the tuning job finished it."""

    run_id: str
    status: RunStatus
    metric: str
    mode: str
    search_alg: str
    num_trials: int
    max_concurrent_trials: int | None
    resource_per_trial: dict[str, float]
    search_space: dict[str, str]  # each parameter's values, as text
    created_at: float
    early_stopping: str | None = None
    job_id: str | None = None
    ended_at: float | None = None
    best_trial_id: str | None = None
    message: str = ""


@dataclass(frozen=True)
class TrialRecord(WireSpec):
    """One trial, as written by the trial itself (and settled by the tuning job at the end)."""

    trial_id: str
    number: int
    status: TrialStatus
    params: dict[str, Any]
    started_at: float
    metrics: dict[str, Any] = field(default_factory=dict)
    reports: int = 0
    has_model: bool = False
    ended_at: float | None = None
    error: str | None = None
    node_id: str = ""


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it: numpy scalars become Python numbers, NaN and infinities
    become None, containers are converted inside, anything else becomes its text."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return repr(value)


def check_trial_id(trial_id: str) -> str:
    if not _TRIAL_ID.match(trial_id):
        raise ValueError(f"trial id {trial_id!r} is not a plain name (letters, digits, '_-.')")
    return trial_id


class RunStore:
    """A run's folder on its stage: read and write its records, logs and models."""

    def __init__(self, stage_name: str, run_id: str) -> None:
        from shoal.dpf.layout import check_run_id

        self.stage_name = stage_name
        self.run_id = check_run_id(run_id)

    @functools.cached_property
    def stage(self) -> Any:
        """The stage, looked up in the catalog once per store (a trial writes its files many times)."""
        from shoal.stages import get_stage

        return get_stage(self.stage_name)

    @property
    def location(self) -> str:
        return f"@{self.stage_name}/{self.run_id}"

    def exists(self) -> bool:
        return bool(self.stage.exists(f"{self.run_id}/{RUN_FILE}"))

    # -- the run --------------------------------------------------------------------------

    def write_run(self, record: RunRecord) -> None:
        self.stage.write_text(f"{self.run_id}/{RUN_FILE}", record.to_json())

    def read_run(self) -> RunRecord:
        path = f"{self.run_id}/{RUN_FILE}"
        stage = self.stage
        if not stage.exists(path):
            runs = list_runs(self.stage_name)
            raise RunNotFoundError(
                f"no tuning run {self.run_id!r} on @{self.stage_name}"
                + (f"; its runs: {', '.join(runs[:10])}" if runs else " (it holds none)")
                + " (shoal tune ls)"
            )
        return RunRecord.from_json(stage.read_text(path))

    # -- the trials -----------------------------------------------------------------------

    def _trial_path(self, trial_id: str, name: str) -> str:
        return f"{self.run_id}/trials/{check_trial_id(trial_id)}/{name}"

    def write_trial(self, record: TrialRecord) -> None:
        self.stage.write_text(self._trial_path(record.trial_id, TRIAL_FILE), record.to_json())

    def read_trials(self) -> list[TrialRecord]:
        """Every trial that started, in the order the search made them."""
        stage = self.stage
        records = [
            TrialRecord.from_json(stage.read_text(path))
            for path in stage.list(f"{self.run_id}/trials", TRIAL_FILE)
        ]
        return in_search_order(records)

    def write_log(self, trial_id: str, text: str) -> None:
        self.stage.write_text(self._trial_path(trial_id, LOG_FILE), text)

    def read_log(self, trial_id: str) -> str:
        path = self._trial_path(trial_id, LOG_FILE)
        stage = self.stage
        return str(stage.read_text(path)) if stage.exists(path) else ""

    def write_model(self, trial_id: str, blob: bytes) -> None:
        self.stage.write_bytes(self._trial_path(trial_id, MODEL_FILE), blob)

    def read_model(self, trial_id: str) -> bytes:
        return bytes(self.stage.read_bytes(self._trial_path(trial_id, MODEL_FILE)))


def in_search_order(trials: Any) -> list[TrialRecord]:
    """``trials`` in the order the search made them (its counter, then the id)."""
    return sorted(trials, key=lambda r: (r.number, r.trial_id))


def list_runs(stage_name: str = DEFAULT_STAGE) -> list[str]:
    """The run ids on ``stage_name`` (none when the stage does not exist yet)."""
    from shoal.errors import StageNotFoundError
    from shoal.stages import get_stage

    try:
        stage = get_stage(stage_name)
    except StageNotFoundError:
        return []
    return sorted({path.split("/", 1)[0] for path in stage.list("", RUN_FILE) if path.count("/") == 1})


def describe_space(space: dict[str, Any]) -> dict[str, str]:
    """Each parameter's values as text, for the run record and ``shoal tune show``."""
    return {
        name: json.dumps(value) if isinstance(value, list) else repr(value) for name, value in space.items()
    }
