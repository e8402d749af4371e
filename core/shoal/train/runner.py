"""Run an estimator backend on a job's nodes: the core scheduler's training half.

* Called inside a job (a ``@remote`` function, a submitted file, a DPF partition's job), the
  workers go on that job's nodes.
* Called from a plain Python session, the training is submitted as a multi-node job on
  ``compute_pool`` (else the default pool: ``shoal.set_default_compute_pool``,
  ``SHOAL_COMPUTE_POOL``, else the local ``DEFAULT`` pool) and this call waits for its result.

On the nodes: plan the workers (:mod:`shoal.train.scaling`), start them (the Ray group
``shoal.runtime.train_group.RayTrainWorkerGroup``), let the backend start its rendezvous (on the
driver, and in rank 0's worker when it has a ``start_on_rank0``), send
each rank only its own shards, train under the controller's deadlines
(:mod:`shoal.train.control`), collect, and always shut everything down.

Runs on the driver: the caller's process, then the job's payload process.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from typing import Any

from shoal.errors import ConfigError, TrainingError
from shoal.jobs.context import JobContext
from shoal.train.backend import EstimatorBackend, TrainTask
from shoal.train.control import (
    DEFAULT_FIRST_PROGRESS_S,
    DEFAULT_HANG_TIMEOUT_S,
    Deadlines,
    RestartPolicy,
    run_ranks,
)
from shoal.train.ranks import rank_infos
from shoal.train.scaling import plan_workers

log = logging.getLogger(__name__)

TRAINING_STAGE = "SHOAL_TRAINING"


def restart_policy_from_env() -> RestartPolicy:
    """How many times training starts again after a rank died (``SHOAL_TRAIN_MAX_FAILURES``, 0)."""
    raw = os.environ.get("SHOAL_TRAIN_MAX_FAILURES", "0")
    try:
        count = int(raw)
    except ValueError:
        count = -1
    if count < 0:
        raise ConfigError(
            f"SHOAL_TRAIN_MAX_FAILURES must be a whole number of restarts (0 or more), got {raw!r}"
        )
    return RestartPolicy(max_failures=count)


def deadlines_from_env(hang_timeout_s: float | None = None) -> Deadlines:
    """The training deadlines: ``hang_timeout_s`` (else ``SHOAL_TRAIN_HANG_TIMEOUT_S``, else 120 s)
    and the first sign of progress (``SHOAL_TRAIN_FIRST_PROGRESS_S``, else 600 s)."""
    return Deadlines(
        hang_timeout_s=_seconds("SHOAL_TRAIN_HANG_TIMEOUT_S", hang_timeout_s, DEFAULT_HANG_TIMEOUT_S),
        first_progress_s=_seconds("SHOAL_TRAIN_FIRST_PROGRESS_S", None, DEFAULT_FIRST_PROGRESS_S),
    )


def _seconds(name: str, given: float | None, default: float) -> float:
    """``given``, else the variable ``name``, else ``default``: a positive number of seconds."""
    raw: Any = given if given is not None else os.environ.get(name, default)
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not seconds > 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {raw!r}")
    return seconds


def run_training(
    backend: EstimatorBackend,
    inputs: dict[str, Any],
    options: dict[str, Any] | None = None,
    *,
    compute_pool: str | None = None,
    stage_name: str | None = None,
    name: str = "train",
    hang_timeout_s: float | None = None,
    user_code: Sequence[Any] = (),
) -> Any:
    """Train ``backend`` on ``inputs`` (see :class:`~shoal.train.backend.TrainTask`); return
    ``backend.collect(...)``. Raises :class:`~shoal.errors.TrainingError` when a worker fails.

    ``user_code``: the caller's functions/classes the backend holds (a ``train_func``, callbacks);
    their modules are pickled by value, since the job's nodes may not be able to import them.
    ``hang_timeout_s``: how long a rank may go without a sign of progress, or keep running after
    another finished (default ``SHOAL_TRAIN_HANG_TIMEOUT_S``, else 120 s; see
    :mod:`shoal.train.control`)."""
    deadlines = deadlines_from_env(hang_timeout_s)  # read here: the job does not see our environment
    restarts = restart_policy_from_env()
    scaling = backend.scaling  # validated when built; read before anything is reserved
    if JobContext.current().in_job:  # any process of a job trains on the job's nodes
        return train_on_job_nodes(
            backend, inputs, options or {}, name=name, deadlines=deadlines, restarts=restarts
        )
    from shoal.jobs.payload import _by_value, function_payload
    from shoal.jobs.submit import submit_payload
    from shoal.pools import records
    from shoal.pools.default import default_compute_pool

    pool = records.load(compute_pool or default_compute_pool())
    wanted = scaling.num_nodes or (scaling.num_workers if scaling.num_workers > 0 else pool.max_nodes)
    if scaling.num_nodes is not None and scaling.num_nodes > pool.max_nodes:
        raise ConfigError(
            f"num_nodes={scaling.num_nodes} but compute pool {pool.name} has at most {pool.max_nodes} "
            f"node(s); use a bigger pool (max_nodes) or fewer nodes"
        )
    target = min(wanted, pool.max_nodes)
    with contextlib.ExitStack() as stack:
        for code in user_code:
            stack.enter_context(_by_value(code))
        payload = function_payload(
            train_on_job_nodes,
            (backend, inputs, options or {}),
            {"name": name, "deadlines": deadlines, "restarts": restarts, "result_to_caller": True},
        )
    job = submit_payload(
        payload,
        pool.name,
        stage_name=stage_name or TRAINING_STAGE,
        target_instances=target,
        min_instances=target if scaling.num_nodes is not None else 1,
        name=name,
    )
    from shoal.jobs.handoff import wait_for_payload

    return wait_for_payload(job, (TrainingError, ConfigError), "training", pool.name)


def train_on_job_nodes(
    backend: EstimatorBackend,
    inputs: dict[str, Any],
    options: dict[str, Any],
    *,
    name: str = "train",
    deadlines: Deadlines | None = None,
    restarts: RestartPolicy | None = None,
    result_to_caller: bool = False,
) -> Any:
    """Inside a job: place the workers on the job's nodes and train (see the module docstring).
    When a rank dies and ``restarts`` allows it, plan again on the nodes still there and train
    again from the start on a new group.

    ``result_to_caller``: this process only hands the result on (the training job that
    :func:`run_training` submitted): with the backend's default ``collect``, rank 0's result is
    returned still pickled (:class:`~shoal.train.results.PickledResult`) and becomes the model in
    the caller's process, so this one never imports the framework to unpickle it."""
    deadlines = deadlines or deadlines_from_env()
    restarts = restarts or restart_policy_from_env()
    failures = 0
    while True:
        try:
            return _train_once(backend, inputs, options, name, deadlines, result_to_caller)
        except TrainingError as error:
            if not restarts.restart(error, failures):
                raise
            failures += 1
            log.warning(
                "%s: %s; starting the workers again (%d of %d restart(s), SHOAL_TRAIN_MAX_FAILURES)",
                name,
                str(error).splitlines()[0],
                failures,
                restarts.max_failures,
            )


def _train_once(
    backend: EstimatorBackend,
    inputs: dict[str, Any],
    options: dict[str, Any],
    name: str,
    deadlines: Deadlines,
    result_to_caller: bool = False,
) -> Any:
    """One attempt: plan on the job's live nodes, start a group, train, collect, shut down."""
    plan = plan_workers(backend.scaling, JobContext.current().nodes())
    world = plan.num_workers
    per_rank: list[dict[str, Any]] = [{} for _ in range(world)]
    scratch = _scratch_folder(name)
    from shoal.data.object_store import store_in_memory_inputs

    inputs = store_in_memory_inputs(inputs)  # rows this process holds: put once, sliced there
    try:
        _shard_inputs(inputs, world, per_rank, scratch)
        return _train_shards(backend, options, name, deadlines, plan, per_rank, result_to_caller)
    finally:
        if scratch is not None:
            from shoal.stages import resolve_location

            stage, folder = resolve_location(scratch)
            stage.remove(folder, missing_ok=True)


def _scratch_folder(name: str) -> str | None:
    """``@STAGE/<job>/inputs/<name>-<token>``: where this training's exported inputs go, removed
    when it ends; None outside a job (in-memory slicing then)."""
    import secrets

    job = os.environ.get("SHOAL_JOB_STAGE_PATH")
    return f"{job}/inputs/{name}-{secrets.token_hex(4)}" if job else None


def _shard_inputs(
    inputs: dict[str, Any], world: int, per_rank: list[dict[str, Any]], scratch: str | None
) -> None:
    from shoal.data.sharded import ShardedDataConnector

    for key, value in inputs.items():
        if isinstance(value, ShardedDataConnector):
            for rank, view in enumerate(value.rank_views(world, f"{scratch}/{key}" if scratch else None)):
                per_rank[rank][key] = view
        else:
            for rank in range(world):
                per_rank[rank][key] = value


def _train_shards(
    backend: EstimatorBackend,
    options: dict[str, Any],
    name: str,
    deadlines: Deadlines,
    plan: Any,
    per_rank: list[dict[str, Any]],
    result_to_caller: bool = False,
) -> Any:
    from shoal.executors import ray_train_worker_group
    from shoal.train.results import loaded

    world = plan.num_workers
    for key in backend.nonempty_inputs:
        rows = [
            view.get_shard().source.num_rows() for view in (r.get(key) for r in per_rank) if view is not None
        ]
        if any(count == 0 for count in rows):
            raise ConfigError(
                f"input {key!r} has {sum(c or 0 for c in rows)} row(s), too few for {world} workers "
                f"(each needs at least one); use fewer workers (num_workers=) or more data"
            )
    from shoal.train.preload import import_in_background

    preload = import_in_background(backend.driver_modules)  # for backend.start, while workers start
    group = ray_train_worker_group()(
        plan,
        ports_per_worker=backend.ports_per_worker,
        name=name,
        preload=backend.worker_modules,
        preload_hidden=backend.worker_imports_hidden,
    )
    try:
        slots = group.start()
        log.info(
            "%s: %d worker(s) ready on %d node(s), %g CPU(s) each; logs under %s",
            name,
            world,
            len(plan.nodes),
            plan.cpus_per_worker,
            os.path.dirname(slots[0].log_path),
        )
        ranks = rank_infos(slots, plan.cpus_per_worker, plan.gpus_per_worker)
        preload.wait()
        setup = backend.start(slots)
        if type(backend).start_on_rank0 is not EstimatorBackend.start_on_rank0:
            setup = group.start_on_rank0(backend, slots, setup)
        tasks = [TrainTask(shards=per_rank[r], options=dict(options)) for r in range(world)]
        results = run_ranks(group, slots, backend, ranks, tasks, setup, deadlines)
        if result_to_caller and type(backend).collect is EstimatorBackend.collect:
            return results[0]  # unpickled by the caller (shoal.train.results)
        return backend.collect([loaded(result) for result in results])
    finally:
        try:
            backend.shutdown()
        finally:
            group.shutdown()
