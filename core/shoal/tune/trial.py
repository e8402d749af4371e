"""One trial: run the user's ``train_func`` with its parameters and record what happens.

:class:`TrialRun` is the trial's side of the tuner, in plain Python: it writes the trial's record
when it starts, at each report (metrics, the model when given, the log so far) and when it ends
(DONE; FAILED with the error; STOPPED when early stopping ended it in a report), and passes
each report's metrics on to the search (Ray Tune's ``report``, given as ``send``). The user's
output is copied to the trial's log on the stage while it still reaches the worker's own log.

Runs in a trial, on any node of the tuning job (:mod:`shoal.runtime.tune_runner` calls it).
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TextIO

from shoal.errors import ConfigError
from shoal.tune.context import TunerContext, set_tuner_context
from shoal.tune.records import RunStore, TrialRecord, TrialStatus, plain

NO_REPORT = "train_func returned without calling get_tuner_context().report(...)"


@dataclass(frozen=True)
class TrialJob:
    """What every trial of a run needs, sent once to the cluster (``tune.with_parameters``)."""

    run_id: str
    stage_name: str
    metric: str
    train_func: Callable[[], Any]
    dataset_map: dict[str, Any]
    #: with early stopping, the reports after which the scheduler ends a trial that kept up (ASHA's
    #: ``max_t``): such a trial is DONE, not STOPPED
    max_reports: int | None = None

    def ended_by_scheduler(self, reports: int) -> TrialStatus:
        """How a trial the scheduler ended after ``reports`` reports is recorded."""
        return "DONE" if self.max_reports is not None and reports >= self.max_reports else "STOPPED"


class _Tee(io.TextIOBase):
    """Writes go to the stream the trial had and to the trial's log."""

    def __init__(self, stream: TextIO, log: io.StringIO) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def _captured(log: io.StringIO) -> Iterator[None]:
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


class TrialRun:
    """One trial's record, kept up to date on the run's stage."""

    def __init__(
        self,
        job: TrialJob,
        trial_id: str,
        number: int,
        params: Mapping[str, Any],
        send: Callable[[dict[str, Any]], None],
        node_id: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.job, self.send, self.clock = job, send, clock
        self.store = RunStore(job.stage_name, job.run_id)
        self.params = dict(params)
        self.log = io.StringIO()
        self.stopped = False
        self.record = TrialRecord(
            trial_id=trial_id,
            number=number,
            status="RUNNING",
            params=plain(self.params),
            started_at=clock(),
            node_id=node_id,
        )

    def report(self, metrics: Mapping[str, Any], model: Any = None) -> None:
        """A ``TunerContext.report``: record, then hand the metrics to the search."""
        if not isinstance(metrics, Mapping) or self.job.metric not in metrics:
            raise ConfigError(
                f"report() got {dict(metrics) if isinstance(metrics, Mapping) else metrics!r}, without "
                f"{self.job.metric!r}, the metric TunerConfig ranks the trials by; report it, e.g. "
                f"report({{{self.job.metric!r}: value}})"
            )
        if model is not None:
            import cloudpickle

            self.store.write_model(self.record.trial_id, cloudpickle.dumps(model))
        self.record = replace(
            self.record,
            metrics=plain(dict(metrics)),
            reports=self.record.reports + 1,
            has_model=self.record.has_model or model is not None,
        )
        self._save()
        try:
            self.send(dict(metrics))
        except SystemExit:  # Ray Tune ends a trial its scheduler stopped here (sys.exit in report)
            self.stopped = True
            raise

    def run(self) -> None:
        """Call ``train_func`` with this trial's context; record how it ended. Its exception is
        raised again (after it is recorded), so the search sees the trial fail."""
        self._save()
        context = TunerContext(self.params, self.job.dataset_map, self, self.record.trial_id)
        set_tuner_context(context)
        try:
            with _captured(self.log):
                self.job.train_func()
        except BaseException as exc:
            if self.stopped:
                self._end(self.job.ended_by_scheduler(self.record.reports), None)
            else:
                self._end("FAILED", "".join(traceback.format_exception(exc)).strip())
            raise
        finally:
            set_tuner_context(None)
        if self.record.reports == 0:
            self._end("FAILED", NO_REPORT)
            raise RuntimeError(NO_REPORT)
        self._end("DONE", None)

    def _end(self, status: Any, error: str | None) -> None:
        self.record = replace(self.record, status=status, error=error, ended_at=self.clock())
        self._save()

    def _save(self) -> None:
        self.store.write_trial(self.record)
        self.store.write_log(self.record.trial_id, self.log.getvalue())
