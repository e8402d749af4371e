"""The reference's ``Tuner``: try many hyper-parameter sets of a ``train_func`` across a pool.

``Tuner(train_func, search_space, tuner_config).run(dataset_map=...)``:

1. On the driver: check the function, the search space, the config and the data; refuse a run
   id already taken. Nothing is submitted or written before this passes.
2. Write the run's record (PENDING) on the stage (``SHOAL_TUNE`` unless named).
3. Called from a plain Python process, submit the search as a job on the compute pool (else the
   default pool) and wait for it; called inside a job, search right there, on the job's nodes.
4. In the job: Ray Tune runs the trials over the job's nodes (:mod:`shoal.runtime.tune_runner`,
   behind the :class:`TrialExecutor` seam); each trial records itself
   (:mod:`shoal.tune.trial`); at the end the tuning job settles the trials the search ended
   (STOPPED by early stopping, FAILED before they could record), picks the best and marks the
   run DONE, or FAILED when no trial reported the metric.

Runs on the driver (``Tuner``), and in the tuning job's payload process (:func:`tune_on_job_nodes`).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from shoal.errors import ConfigError, RunConflictError, TuningError
from shoal.tune.config import TunerConfig
from shoal.tune.records import (
    DEFAULT_STAGE,
    RunRecord,
    RunStore,
    TrialRecord,
    TrialStatus,
    describe_space,
    in_search_order,
    plain,
)
from shoal.tune.results import TunerResults, best_trial
from shoal.tune.search import SearchAlgorithm
from shoal.tune.trial import TrialJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TunePlan:
    """What the search runs: the checked config, sent to the tuning job."""

    run_id: str
    metric: str
    mode: str
    search_alg: SearchAlgorithm
    space: dict[str, Any]
    num_trials: int
    max_concurrent_trials: int | None
    resources: dict[str, float]
    early_stopping: Any = None


@dataclass(frozen=True)
class TrialEnd:
    """How the search saw a trial end: its parameters, and its error (None when it ended well
    or was stopped early)."""

    trial_id: str
    number: int
    params: dict[str, Any]
    error: str | None


class TrialExecutor(Protocol):
    """Runs a plan's trials and says how each ended (Ray Tune: :class:`shoal.runtime.tune_runner.
    RayTuneExecutor`; the unit tests run them in order in-process)."""

    def run(self, plan: TunePlan, job: TrialJob, node_ids: list[str]) -> list[TrialEnd]: ...


class Tuner:
    """Hyper-parameter search over ``search_space`` for ``train_func`` (the reference's ``Tuner``)."""

    def __init__(
        self, train_func: Callable[[], Any], search_space: Mapping[str, Any], tuner_config: TunerConfig
    ) -> None:
        if not callable(train_func):
            raise ConfigError(f"train_func must be a function taking no arguments, got {train_func!r}")
        if not isinstance(tuner_config, TunerConfig):
            raise ConfigError(f"tuner_config must be a shoal.tune.TunerConfig, got {tuner_config!r}")
        self.train_func = train_func
        self.search_space = search_space
        self.tuner_config = tuner_config
        self.space, self.num_trials = tuner_config.check(search_space)

    def run(
        self,
        dataset_map: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        stage_name: str | None = None,
        compute_pool: str | None = None,
    ) -> TunerResults:
        """Run the search; return its :class:`~shoal.tune.results.TunerResults`.

        ``dataset_map``: name -> DataConnector, handed to every trial
        (``get_tuner_context().get_dataset_map()``). ``run_id`` names the run on the stage
        (default ``tune_<date>_<time>_<random>``); ``stage_name`` (default ``SHOAL_TUNE``) keeps its
        records; ``compute_pool`` is where a search started outside a job runs (default: the
        default pool). Raises :class:`~shoal.errors.TuningError` when no trial reported the metric."""
        from shoal.extras import require
        from shoal.jobs.context import JobContext

        data = _check_dataset_map(dataset_map)
        require(
            self.tuner_config.search_alg.modules, f"the tuner's {type(self.tuner_config.search_alg).__name__}"
        )
        stage = stage_name or DEFAULT_STAGE
        run = run_id if run_id is not None else _new_run_id()
        store = RunStore(stage, run)  # checks the run id
        plan = self._plan(run)
        job = TrialJob(
            run_id=run,
            stage_name=stage,
            metric=plan.metric,
            train_func=self.train_func,
            dataset_map=data,
            max_reports=plan.early_stopping.max_t if plan.early_stopping else None,
        )
        from shoal.stages import create_stage

        create_stage(stage, exist_ok=True)
        if store.exists():
            raise RunConflictError(
                f"tuning run {run!r} exists on @{stage}; pick another run_id, or read it with "
                f"TunerResults.restore_from({run!r}, {stage!r})"
            )
        store.write_run(self._record(plan))
        if JobContext.current().in_job:
            return tune_on_job_nodes(plan, job)
        return self._submit(plan, job, compute_pool)

    def _plan(self, run_id: str) -> TunePlan:
        config = self.tuner_config
        return TunePlan(
            run_id=run_id,
            metric=config.metric,
            mode=config.mode,
            search_alg=config.search_alg,
            space=self.space,
            num_trials=self.num_trials,
            max_concurrent_trials=config.max_concurrent_trials,
            resources={k: float(v) for k, v in config.resources().items()},
            early_stopping=config.early_stopping,
        )

    def _record(self, plan: TunePlan) -> RunRecord:
        return RunRecord(
            run_id=plan.run_id,
            status="PENDING",
            metric=plan.metric,
            mode=plan.mode,
            search_alg=repr(plan.search_alg),
            num_trials=plan.num_trials,
            max_concurrent_trials=plan.max_concurrent_trials,
            resource_per_trial=plan.resources,
            search_space=describe_space(plan.space),
            created_at=time.time(),
            early_stopping=repr(plan.early_stopping) if plan.early_stopping else None,
        )

    def _submit(self, plan: TunePlan, job: TrialJob, compute_pool: str | None) -> TunerResults:
        from shoal.jobs.payload import _by_value, function_payload
        from shoal.jobs.submit import submit_payload
        from shoal.pools import records
        from shoal.pools.default import default_compute_pool

        pool = records.load(compute_pool or default_compute_pool())
        with contextlib.ExitStack() as stack:
            stack.enter_context(_by_value(self.train_func))
            payload = function_payload(tune_on_job_nodes, (plan, job), {})
        submitted = submit_payload(
            payload,
            pool.name,
            stage_name=job.stage_name,
            target_instances=pool.max_nodes,
            min_instances=1,
            name=f"tune_{plan.run_id}",
        )
        log.info("tuning run %s: job %s on compute pool %s", plan.run_id, submitted.id, pool.name)
        from shoal.jobs.handoff import wait_for_payload

        results: TunerResults = wait_for_payload(submitted, (TuningError, ConfigError), "tuning", pool.name)
        return results


def _check_dataset_map(dataset_map: Mapping[str, Any] | None) -> dict[str, Any]:
    from shoal.data import DataConnector, ShardedDataConnector

    if dataset_map is None:
        return {}
    if not isinstance(dataset_map, Mapping):
        raise ConfigError(
            f"dataset_map must be a dict of name -> DataConnector, got {type(dataset_map).__name__}"
        )
    for name, value in dataset_map.items():
        if not isinstance(name, str):
            raise ConfigError(f"dataset_map keys are names (strings), got {name!r}")
        if not isinstance(value, (DataConnector, ShardedDataConnector)):
            raise ConfigError(
                f"dataset_map[{name!r}] is a {type(value).__name__}; wrap data in a DataConnector, "
                f"e.g. DataConnector.from_dataframe(df)"
            )
    return dict(dataset_map)


def _new_run_id() -> str:
    return f"tune_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(2)}"


def tune_on_job_nodes(
    plan: TunePlan,
    job: TrialJob,
    executor: TrialExecutor | None = None,
    clock: Callable[[], float] = time.time,
) -> TunerResults:
    """In the tuning job: run the trials on the job's nodes, settle their records, pick the best."""
    import os

    from shoal.jobs.context import JobContext

    store = RunStore(job.stage_name, plan.run_id)
    run = replace(store.read_run(), status="RUNNING", job_id=os.environ.get("SHOAL_JOB_ID"))
    store.write_run(run)
    if executor is None:
        from shoal.executors import ray_tune_executor

        executor = ray_tune_executor()
    try:
        ends = executor.run(plan, job, list(JobContext.current().node_ids))
    except BaseException as exc:
        store.write_run(replace(run, status="FAILED", ended_at=clock(), message=f"the search failed: {exc}"))
        raise
    trials = settle_trials(store, ends, clock(), job)
    best = best_trial(trials, plan.metric, plan.mode)
    if best is None:
        first = next(
            (t.error.strip().splitlines()[-1] for t in trials if t.error and t.error.strip()), "no trial ran"
        )
        message = (
            f"all {len(trials)} trial(s) failed or reported no {plan.metric!r}; the first error: {first}"
        )
        store.write_run(replace(run, status="FAILED", ended_at=clock(), message=message))
        raise TuningError(
            f"tuning run {plan.run_id}: {message.splitlines()[0]} (shoal tune show {plan.run_id} "
            f"--stage-name {job.stage_name})",
            run_id=plan.run_id,
            stage_name=job.stage_name,
        )
    failed = sum(1 for t in trials if t.status == "FAILED")
    message = f"{failed} of {len(trials)} trial(s) failed" if failed else ""
    if failed:
        log.warning("tuning run %s: %s (shoal tune show %s)", plan.run_id, message, plan.run_id)
    run = replace(run, status="DONE", ended_at=clock(), best_trial_id=best.trial_id, message=message)
    store.write_run(run)
    return TunerResults(run, trials, job.stage_name)


def settle_trials(store: RunStore, ends: list[TrialEnd], now: float, job: TrialJob) -> list[TrialRecord]:
    """Trials the search ended but that could not say so themselves: one stopped early (still
    RUNNING: STOPPED, or DONE when it had made all its reports), one whose process failed before
    or after its own record (FAILED with the search's error), one that never started its record
    (written now, FAILED). Returns every trial's record, settled, in the search's order."""
    recorded = {t.trial_id: t for t in store.read_trials()}
    for end in ends:
        trial = recorded.get(end.trial_id)
        if trial is None:
            trial = TrialRecord(
                trial_id=end.trial_id,
                number=end.number,
                status="FAILED",
                params=plain(end.params),
                started_at=now,
                ended_at=now,
                error=end.error or "the trial ended before it could start",
            )
        elif trial.status == "RUNNING":
            ended: TrialStatus = "FAILED" if end.error else job.ended_by_scheduler(trial.reports)
            trial = replace(trial, status=ended, error=end.error, ended_at=now)
        else:
            continue
        store.write_trial(trial)
        recorded[trial.trial_id] = trial
    return in_search_order(recorded.values())
