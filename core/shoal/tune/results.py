"""A tuning run's outcome: the reference's :class:`TunerResults`, read from the run's stage.

* ``results``: a pandas DataFrame, one row per trial in the order the search made them:
  ``trial_id``, ``status`` (DONE, FAILED, STOPPED), a ``config/<name>`` column per
  hyper-parameter, a column per reported metric (its last report), then ``error``,
  ``started_at``, ``ended_at`` (seconds since the epoch), ``duration_s`` and ``node_id``;
* ``best_result``: the best row of ``results`` (a one-row DataFrame) by the config's metric and
  mode, among the trials that reported it (DONE or STOPPED);
* ``best_model``: the model the best trial reported, loaded from the stage when first asked for.

:meth:`TunerResults.restore_from` reads any run back, from any process.

Runs on the driver (and in the tuning job, which builds the first one).
"""

from __future__ import annotations

import math
from typing import Any

from shoal.tune.records import DEFAULT_STAGE, RunRecord, RunStore, TrialRecord

FIXED_COLUMNS = ("trial_id", "status")
TRAILING_COLUMNS = ("error", "started_at", "ended_at", "duration_s", "node_id")


def best_trial(trials: list[TrialRecord], metric: str, mode: str) -> TrialRecord | None:
    """The trial with the best finite ``metric`` (the first of equals), among those that
    reported it; None when none did."""
    best: TrialRecord | None = None
    for trial in trials:
        value = trial.metrics.get(metric)
        if trial.status not in ("DONE", "STOPPED") or not _finite(value):
            continue
        if best is None or (value < best.metrics[metric] if mode == "min" else value > best.metrics[metric]):
            best = trial
    return best


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def results_frame(trials: list[TrialRecord]) -> Any:
    """One row per trial (see the module docstring)."""
    import pandas as pd

    params = _ordered(name for t in trials for name in t.params)
    metrics = _ordered(name for t in trials for name in t.metrics)
    taken = {*FIXED_COLUMNS, *TRAILING_COLUMNS}
    rows = []
    for trial in trials:
        row: dict[str, Any] = {"trial_id": trial.trial_id, "status": trial.status}
        row.update({f"config/{name}": trial.params.get(name) for name in params})
        row.update({(f"metric/{n}" if n in taken else n): trial.metrics.get(n) for n in metrics})
        row.update(
            error=trial.error,
            started_at=trial.started_at,
            ended_at=trial.ended_at,
            duration_s=None if trial.ended_at is None else trial.ended_at - trial.started_at,
            node_id=trial.node_id,
        )
        rows.append(row)
    columns = [
        *FIXED_COLUMNS,
        *(f"config/{n}" for n in params),
        *((f"metric/{n}" if n in taken else n) for n in metrics),
        *TRAILING_COLUMNS,
    ]
    return pd.DataFrame(rows, columns=columns)


def _ordered(names: Any) -> list[str]:
    return list(dict.fromkeys(names))


class TunerResults:
    """What a tuning run found (the reference's ``TunerResults``)."""

    def __init__(self, run: RunRecord, trials: list[TrialRecord], stage_name: str) -> None:
        self.run = run
        self.run_id = run.run_id
        self.stage_name = stage_name
        self.trials = list(trials)
        self._results = results_frame(self.trials)
        best = best_trial(self.trials, run.metric, run.mode)
        self.best_trial_id = best.trial_id if best is not None else None
        self._best_model: Any = None
        self._model_loaded = False

    @classmethod
    def restore_from(cls, run_id: str, stage_name: str = DEFAULT_STAGE) -> TunerResults:
        """The results of run ``run_id`` on ``stage_name``, read from the stage (from any process,
        while the run goes on or after it ended)."""
        store = RunStore(stage_name, run_id)
        return cls(store.read_run(), store.read_trials(), stage_name)

    @property
    def results(self) -> Any:
        """One row per trial (pandas DataFrame; see the module docstring)."""
        return self._results

    @property
    def status(self) -> str:
        """The run's status: PENDING, RUNNING, DONE or FAILED."""
        return self.run.status

    @property
    def best_result(self) -> Any:
        """The best trial's row of :attr:`results`, as a one-row DataFrame (empty when no trial
        reported the metric)."""
        frame = self.results
        return frame[frame["trial_id"] == self.best_trial_id].reset_index(drop=True)

    @property
    def best_model(self) -> Any:
        """The model the best trial reported (None when it reported none)."""
        if self.best_trial_id is None:
            raise RuntimeError(
                f"tuning run {self.run_id} has no best trial: no trial reported {self.run.metric!r}; "
                f"see results['error'] or shoal tune show {self.run_id}"
            )
        if not self._model_loaded:
            trial = next(t for t in self.trials if t.trial_id == self.best_trial_id)
            if trial.has_model:
                import cloudpickle

                store = RunStore(self.stage_name, self.run_id)
                self._best_model = cloudpickle.loads(store.read_model(trial.trial_id))
            self._model_loaded = True
        return self._best_model

    def get_log(self, trial_id: str) -> str:
        """What trial ``trial_id`` printed."""
        return RunStore(self.stage_name, self.run_id).read_log(trial_id)

    def __getstate__(self) -> dict[str, Any]:  # the model is read where it is used
        state = dict(self.__dict__)
        state.update(_best_model=None, _model_loaded=False)
        return state

    def __repr__(self) -> str:
        done = sum(1 for t in self.trials if t.status == "DONE")
        return (
            f"TunerResults(run_id={self.run_id!r}, status={self.status}, trials={len(self.trials)}, "
            f"done={done}, best_trial_id={self.best_trial_id!r})"
        )
