"""Every hook a shoal plugin can implement. This module is the plugin API reference.

Plugins implement hooks as module-level functions (or methods) decorated with
:data:`shoal.hookimpl` and named exactly like a spec below; a misspelled name is an error when
plugins are loaded. An implementation may accept fewer arguments than its spec declares.

There are two families:

* **Contribution hooks** (``shoal_<plural noun>``) take no arguments and return an iterable
  of frozen ``*Spec`` dataclasses from :mod:`shoal.contributions` (returning a single spec or
  ``None`` is accepted too). All plugins' results are collected; two plugins contributing the
  same name is an error naming both distributions. They are called on the driver when shoal
  needs that kind of thing, and again on each worker after it rebuilt its plugin manager.
* **Lifecycle hooks** (``shoal_before_*``, ``shoal_after_*``, ``shoal_on_*_error``) observe
  jobs, runs and partitions. Every implementation is called; return values are ignored. An
  exception raised by a lifecycle hook is logged and does not change the outcome of the job,
  run or partition it observes.

Code in shoal never calls these hooks directly: :mod:`shoal.hooks` is the typed way in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from shoal.contributions import (
        ComputePoolBackendSpec,
        DataSourceSpec,
        EstimatorSpec,
        JobInfo,
        ModelSerdeSpec,
        PartitionerSpec,
        PartitionFunctionSpec,
        PartitionInfo,
        RunInfo,
        StageBackendSpec,
    )

PROJECT_NAME = "shoal"

_hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Decorator that marks a function as a shoal hook implementation.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------------------------
# Contribution hooks
# ---------------------------------------------------------------------------------------------


@_hookspec
def shoal_estimators() -> Iterable[EstimatorSpec]:
    """Contribute distributed estimators (trainers).

    **When:** the first time an estimator is looked up by name, or ``shoal plugins list`` runs.
    **Where:** the driver; and each worker of a training job after it rebuilt its plugin manager.
    **Results:** all plugins' specs are merged by name (and alias); a duplicate is an error.

    **Example:**

    .. code-block:: python

        from shoal import hookimpl
        from shoal.contributions import EstimatorSpec

        @hookimpl
        def shoal_estimators():
            # import the framework inside the factory, never at module level
            yield EstimatorSpec(name="histgb", factory=make_histgb_backend, frameworks=("sklearn",))
    """
    return ()


@_hookspec
def shoal_partition_functions() -> Iterable[PartitionFunctionSpec]:
    """Contribute named per-partition functions ``fn(data_connector, context)``.

    **When:** when a partition function is looked up by name (``DPF("name", ...)``, ``shoal dpf run``).
    **Where:** the driver, and the worker that runs the partition.
    **Results:** merged by name; a duplicate is an error.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_partition_functions():
            yield PartitionFunctionSpec(name="row-count", function=count_rows)
    """
    return ()


@_hookspec
def shoal_partitioners() -> Iterable[PartitionerSpec]:
    """Contribute custom partitioners for SQL mode (hash buckets, derived keys, fixed-size chunks).

    **When:** when a run's ``partition_by`` names a partitioner instead of a column.
    **Where:** the driver, which partitions the input before the partitions are scheduled.
    **Results:** merged by name; a duplicate is an error.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_partitioners():
            yield PartitionerSpec(name="month", factory=MonthOfDatePartitioner)
    """
    return ()


@_hookspec
def shoal_data_sources() -> Iterable[DataSourceSpec]:
    """Contribute input kinds that ``DataConnector`` and SQL-mode partitioning accept.

    **When:** when an object is handed to ``DataConnector.from_dataframe`` or ``DPF.run(dataframe=...)``.
    **Where:** the driver; and the worker that reads a partition.
    **Results:** merged by name; each object must be accepted by exactly one source, more than
    one is an ambiguity error naming them.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_data_sources():
            yield DataSourceSpec(name="postgres", accepts=is_pg_query, factory=PostgresSource)
    """
    return ()


@_hookspec
def shoal_stage_backends() -> Iterable[StageBackendSpec]:
    """Contribute storage for stages, chosen by the URL scheme of the stage.

    **When:** when a stage is created or opened (``create_stage``, ``get_stage``, any ``@stage/path``).
    **Where:** the driver and every worker that reads or writes stage files.
    **Results:** merged by name; a URL scheme served by two backends is an error naming both.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_stage_backends():
            yield StageBackendSpec(name="sqlite", schemes=("sqlite",), factory=SqliteStageBackend)
    """
    return ()


@_hookspec
def shoal_model_serdes() -> Iterable[ModelSerdeSpec]:
    """Contribute model serializers (``ModelSerde``: ``filename``, ``write``, ``read``).

    **When:** when a model is saved or loaded by name (many-model training, estimators' artifacts).
    **Where:** the worker that saves a model, and the process that loads it back.
    **Results:** merged by name; a duplicate is an error.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_model_serdes():
            yield ModelSerdeSpec(name="onnx", factory=OnnxSerde)
    """
    return ()


@_hookspec
def shoal_compute_pool_backends() -> Iterable[ComputePoolBackendSpec]:
    """Contribute kinds of compute pool (the built-ins are ``local`` and ``ray``).

    **When:** when a compute pool is created, described, started or stopped.
    **Where:** the driver (and the CLI).
    **Results:** merged by name; a duplicate is an error.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_compute_pool_backends():
            yield ComputePoolBackendSpec(name="slurm", factory=SlurmPoolBackend)
    """
    return ()


# ---------------------------------------------------------------------------------------------
# Lifecycle hooks
# ---------------------------------------------------------------------------------------------


@_hookspec
def shoal_before_job(job: JobInfo) -> None:
    """Called once when a job's payload is about to start.

    **Where:** the job's head process (instance 0), after node rendezvous, before the payload runs.
    **Results:** ignored; an exception is logged and does not stop the job.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_before_job(job):
            print(f"starting {job.name} on {job.target_instances} nodes")
    """


@_hookspec
def shoal_after_job(job: JobInfo, status: str) -> None:
    """Called once when a job's payload has ended, whatever the outcome (``status``: DONE, FAILED...).

    **Where:** the job's head process (instance 0), after the result was written.
    **Results:** ignored; an exception is logged.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_after_job(job, status):
            metrics.gauge("shoal.job.done", 1, tags={"job": job.name, "status": status})
    """


@_hookspec
def shoal_on_job_error(job: JobInfo, error: BaseException) -> None:
    """Called when a job's payload raised, with the exception, before ``shoal_after_job``.

    **Where:** the job's head process (instance 0).
    **Results:** ignored; an exception is logged.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_on_job_error(job, error):
            alert(f"{job.name} failed: {error!r}")
    """


@_hookspec
def shoal_before_run(run: RunInfo) -> None:
    """Called once when a distributed-partition-function run has partitioned its input.

    **Where:** the process that drives the run (the job's head process).
    **Results:** ignored; an exception is logged.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_before_run(run):
            print(f"{run.run_id}: {run.num_partitions} partitions")
    """


@_hookspec
def shoal_after_run(run: RunInfo, status: str) -> None:
    """Called once when a run has ended (``status``: SUCCESS, PARTIAL_FAILURE, FAILURE, CANCELLED).

    **Where:** the process that drives the run.
    **Results:** ignored; an exception is logged.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_after_run(run, status):
            notify(f"{run.run_id} ended {status}")
    """


@_hookspec
def shoal_on_run_error(run: RunInfo, error: BaseException) -> None:
    """Called when a run itself failed (not one partition: the scheduling of the run).

    **Where:** the process that drives the run.
    **Results:** ignored; an exception is logged.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_on_run_error(run, error):
            log.error("run %s failed: %s", run.run_id, error)
    """


@_hookspec
def shoal_before_partition(partition: PartitionInfo) -> None:
    """Called before each attempt at a partition, inside the worker that runs it.

    **Where:** the worker process on the node that runs the partition; its output goes to the
    partition's ``train.log``.
    **Results:** ignored; an exception is logged.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_before_partition(partition):
            random.seed(hash(partition.partition_id))
    """


@_hookspec
def shoal_after_partition(partition: PartitionInfo, status: str) -> None:
    """Called after each attempt at a partition (``status``: DONE or FAILED).

    **Where:** the worker process that ran the partition.
    **Results:** ignored; an exception is logged.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_after_partition(partition, status):
            print(partition.partition_id, status)
    """


@_hookspec
def shoal_on_partition_error(partition: PartitionInfo, error: BaseException) -> None:
    """Called when the partition function raised, with the exception, before ``shoal_after_partition``.

    **Where:** the worker process that ran the partition.
    **Results:** ignored; an exception is logged.

    **Example:**

    .. code-block:: python

        @hookimpl
        def shoal_on_partition_error(partition, error):
            sentry_sdk.capture_exception(error)
    """
