"""The typed specs that pass between the processes of a DPF run.

- :class:`PartitionInput`: one partition and where its rows are (written once by partitioning,
  to ``_shoal/partitions.json``);
- :class:`RunSpec`: what the scheduler and every partition worker need to know about a run
  (in ``_shoal/run.json``, and sent to workers as JSON);
- :class:`TaskSpec` / :class:`BatchSpec`: the partitions handed to one worker call;
- :class:`TaskOutcome`: what a worker reports for one partition attempt.

All are frozen dataclasses sent as JSON (:mod:`shoal.wire`, no pickle); the user's
function is the only pickle of a run, stored once at ``_shoal/function.pkl``.

Runs anywhere: the driver (partitioning, DPFRun), the run scheduler and partition workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shoal.dpf.entities import ExecutionOptions
from shoal.dpf.folders import folder_of
from shoal.wire import WireSpec

OutcomeStatus = Literal["DONE", "FAILED"]


def _normalise_input(spec: PartitionInput | TaskSpec) -> None:
    """JSON gives lists where the specs hold tuples; a spec without a folder (written before
    folders were kept, or made by hand) gets its key's own (:func:`shoal.dpf.folders.folder_of`)."""
    object.__setattr__(spec, "files", tuple(spec.files))
    if not spec.folder:
        object.__setattr__(spec, "folder", folder_of(spec.partition_id))
    if spec.record_batches is not None:
        first, count = spec.record_batches
        object.__setattr__(spec, "record_batches", (int(first), int(count)))


@dataclass(frozen=True)
class PartitionInput(WireSpec):
    """One partition: its id, its position, and the stage files (``@stage/path``) with its rows.

    ``record_batches`` is ``[first, count]`` when the partition is a run of record batches of its
    single file, an Arrow IPC file (in-memory inputs are written as a few large such files).
    ``folder`` is where its artifacts go below the run's folder (:mod:`shoal.dpf.folders`),
    decided once for the whole run on the driver."""

    partition_id: str
    index: int
    files: tuple[str, ...] = ()
    rows: int | None = None
    record_batches: tuple[int, int] | None = None
    folder: str = ""

    def __post_init__(self) -> None:
        _normalise_input(self)


@dataclass(frozen=True)
class RunSpec(WireSpec):
    """A run as its scheduler and workers see it."""

    run_id: str
    stage_name: str
    stage_url: str
    mode: str
    options: ExecutionOptions
    plugin_manifest: str  # the driver's plugins: PluginManifest.to_json()
    session_kind: str | None = None
    session_host: str | None = None
    job_id: str | None = None
    scheduler_node: str | None = None  # the Ray node id the scheduler runs on

    @property
    def execution_options(self) -> ExecutionOptions:
        return self.options

    def with_job(self, job_id: str | None, scheduler_node: str | None = None) -> RunSpec:
        return RunSpec.from_dict({**self.to_dict(), "job_id": job_id, "scheduler_node": scheduler_node})


@dataclass(frozen=True)
class TaskSpec(WireSpec):
    """One partition attempt, as handed to a worker."""

    partition_id: str
    index: int
    attempt: int
    files: tuple[str, ...] = ()
    record_batches: tuple[int, int] | None = None
    folder: str = ""

    def __post_init__(self) -> None:
        _normalise_input(self)


@dataclass(frozen=True)
class BatchSpec(WireSpec):
    """Partitions handed to one worker call, run one after the other."""

    batch_id: int
    tasks: tuple[TaskSpec, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class TaskOutcome(WireSpec):
    """What one attempt of one partition came to, reported by the worker that ran it."""

    index: int
    attempt: int
    status: OutcomeStatus
    error: str | None
    started_at: float
    ended_at: float
    node_id: str | None = None
    #: False when the function raised ``PermanentPartitionError``: running again cannot help
    retryable: bool = True
