"""Ray Tune behind the tuner's :class:`~shoal.tune.tuner.TrialExecutor` seam.

:class:`RayTuneExecutor` turns a :class:`~shoal.tune.tuner.TunePlan` into a ``ray.tune.Tuner``:

* the search space into Ray Tune's domains (``uniform``, ``loguniform``, ``randint``; lists into
  ``grid_search`` for a grid, ``choice`` otherwise);
* the search algorithm: a grid or random search is Ray Tune's basic variant generator (seeded
  with ``random_state``); ``BayesOpt`` is ``OptunaSearch`` (TPE);
* ``max_concurrent_trials`` and ``num_samples`` into ``TuneConfig``, ``ASHA`` into
  ``ASHAScheduler``;
* ``resource_per_trial`` into one placement-group bundle per trial, restricted to the job's nodes
  with a ``ray.io/node-id`` label selector;
* a trial never retries (``max_failures=0``): a failed trial is recorded and the others go on.

Each trial runs :class:`shoal.tune.trial.TrialRun` in its Ray Tune actor, with the tuning job's
plugin manager installed first (as training workers do). A callback logs every
trial that ends (with how many have) to the job's log, and tells the tuner how each ended.
Ray Tune's own experiment folder is a temporary folder on the job's head node, removed after;
what lasts is on the run's stage.

Runs in the tuning job's payload process (and, for :func:`_trainable`, in the trial actors).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from typing import Any

from shoal.tune.search import BayesOpt, GridSearch, RandomSearch
from shoal.tune.space import LogUniform, RandInt, Uniform
from shoal.tune.trial import TrialJob, TrialRun
from shoal.tune.tuner import TrialEnd, TunePlan


def _trainable(config: dict[str, Any], job_blob: bytes, manifest: str) -> None:
    """A Ray Tune function trainable: one trial (runs in the trial's actor). The caller's plugin
    manager (and compatibility layer) is installed before the job is unpickled, as in a training
    worker: the user's function may use the reference's modules."""
    import cloudpickle
    import ray
    from ray import tune

    from shoal.plugin_manager import PluginManifest
    from shoal.runtime.plugin_bootstrap import install_worker_plugin_manager

    install_worker_plugin_manager(PluginManifest.from_json(manifest))
    job: TrialJob = cloudpickle.loads(job_blob)
    trial_id = str(tune.get_context().get_trial_id())
    TrialRun(
        job,
        trial_id,
        trial_number(trial_id),
        config,
        send=tune.report,
        node_id=str(ray.get_runtime_context().get_node_id()),
    ).run()


def trial_number(trial_id: str) -> int:
    """The search's counter at the end of Ray Tune's trial ids (``5e7a3_00004`` -> 4)."""
    tail = trial_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def ray_space(plan: TunePlan) -> dict[str, Any]:
    """The plan's search space in Ray Tune's terms."""
    from ray import tune

    grid = isinstance(plan.search_alg, GridSearch)
    space: dict[str, Any] = {}
    for name, value in plan.space.items():
        if isinstance(value, Uniform):
            space[name] = tune.uniform(value.lower, value.upper)
        elif isinstance(value, LogUniform):
            space[name] = tune.loguniform(value.lower, value.upper)
        elif isinstance(value, RandInt):
            space[name] = tune.randint(value.lower, value.upper)
        elif isinstance(value, list):
            space[name] = tune.grid_search(value) if grid else tune.choice(value)
        else:
            space[name] = value
    return space


def _search(plan: TunePlan) -> tuple[Any, int, int | None]:
    """Ray Tune's search algorithm for the plan, its ``num_samples``, and the
    ``max_concurrent_trials`` for ``TuneConfig``: Ray Tune applies that one to a ``Searcher``
    (Optuna) only; the basic variant generator takes its limit itself (``max_concurrent``)."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    alg = plan.search_alg
    limit = plan.max_concurrent_trials or 0  # 0: as many as the resources hold
    if isinstance(alg, GridSearch):
        return BasicVariantGenerator(max_concurrent=limit), 1, None  # one pass over the grid
    if isinstance(alg, BayesOpt):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        sampler = optuna.samplers.TPESampler(seed=alg.random_state)
        return OptunaSearch(sampler=sampler), plan.num_trials, plan.max_concurrent_trials
    assert isinstance(alg, RandomSearch), alg
    return BasicVariantGenerator(random_state=alg.random_state, max_concurrent=limit), plan.num_trials, None


def _resources(plan: TunePlan, node_ids: list[str]) -> Any:
    from ray import tune

    selector = [{"ray.io/node-id": f"in({','.join(node_ids)})"}] if node_ids else None
    bundle = {k: v for k, v in plan.resources.items() if v > 0}
    if selector is None:
        return tune.PlacementGroupFactory([bundle])
    return tune.PlacementGroupFactory([bundle], bundle_label_selector=selector)


UNKNOWN_ERROR = "the trial's process failed"


def _callback(plan: TunePlan, ends: list[TrialEnd], paths: dict[str, str]) -> Any:
    from ray.tune import Callback

    class RecordEnds(Callback):
        """Runs in the payload process, as Ray Tune's controller sees trials end."""

        def _ended(self, trial: Any, error: str | None) -> None:
            ends.append(TrialEnd(trial.trial_id, trial_number(trial.trial_id), dict(trial.config), error))
            paths[trial.trial_id] = str(trial.path)
            value = (trial.last_result or {}).get(plan.metric)
            print(  # the job's log: progress of a search that may take hours
                f"shoal tune: run {plan.run_id}: trial {trial.trial_id} {'failed' if error else 'ended'} "
                f"({len(ends)} of {plan.num_trials} ended)"
                + (f", {plan.metric}={value}" if value is not None else ""),
                flush=True,
            )

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            self._ended(trial, None)

        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            error = None
            with contextlib.suppress(Exception):  # the trial's own record has its error anyway
                error = trial.get_error()
            self._ended(trial, str(error).strip() if error else UNKNOWN_ERROR)

    return RecordEnds()


class RayTuneExecutor:
    """Runs a plan's trials with Ray Tune on the job's nodes (the cluster this process joined)."""

    def run(self, plan: TunePlan, job: TrialJob, node_ids: list[str]) -> list[TrialEnd]:
        import cloudpickle
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler

        from shoal.plugin_manager import get_plugin_manager

        manifest = get_plugin_manager().manifest().to_json()
        search, samples, concurrency = _search(plan)
        scheduler = None
        if plan.early_stopping is not None:
            stop = plan.early_stopping
            scheduler = ASHAScheduler(
                time_attr="training_iteration",
                max_t=stop.max_t,
                grace_period=stop.grace_period,
                reduction_factor=stop.reduction_factor,
            )
        ends: list[TrialEnd] = []
        paths: dict[str, str] = {}  # trial id -> its folder, where Ray Tune's result says it failed
        folder = tempfile.mkdtemp(prefix="shoal-tune-")
        try:
            tuner = tune.Tuner(
                tune.with_resources(
                    tune.with_parameters(_trainable, job_blob=cloudpickle.dumps(job), manifest=manifest),
                    _resources(plan, node_ids),
                ),
                param_space=ray_space(plan),
                tune_config=tune.TuneConfig(
                    metric=plan.metric,
                    mode=plan.mode,
                    search_alg=search,
                    scheduler=scheduler,
                    num_samples=samples,
                    max_concurrent_trials=concurrency,
                    reuse_actors=True,  # a trial's process (its imports) serves the next trial
                ),
                run_config=tune.RunConfig(
                    name=plan.run_id,
                    storage_path=folder,
                    failure_config=tune.FailureConfig(max_failures=0),
                    callbacks=[_callback(plan, ends, paths)],
                    verbose=0,
                ),
            )
            grid = tuner.fit()
            return _with_errors(ends, paths, grid)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _with_errors(ends: list[TrialEnd], paths: dict[str, str], grid: Any) -> list[TrialEnd]:
    """``ends`` with each failure Ray Tune knew no text for at the time told by the exception
    its result holds (a trial that failed before its own code ran: its function did not unpickle,
    its process died)."""
    import traceback

    errors = {str(result.path): result.error for result in grid if result.error is not None}
    settled = []
    for end in ends:
        error = errors.get(paths.get(end.trial_id, ""))
        if end.error == UNKNOWN_ERROR and error is not None:
            text = "".join(traceback.format_exception(error)).strip()
            end = TrialEnd(end.trial_id, end.number, end.params, text)
        settled.append(end)
    return settled
