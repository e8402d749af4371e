"""A run's definition: what a DPF run was started with (``<run>/_shoal/run.json``).

Written by the driver when the run starts (and again by :func:`shoal.dpf.launch.launch` once it
knows the run's job), read by any process that opens the run: ``DPFRun.restore_from``, a retry
or a resume, the many-model classes, the web view. A :class:`RunDefinition` on the wire
(:mod:`shoal.wire`): typed fields, unknown ones ignored; the many-model classes keep their part
in its typed slot, :attr:`RunDefinition.many_model`.

Runs on the driver and in the job that drives the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shoal.dpf import layout
from shoal.dpf.specs import RunSpec
from shoal.serde import SerdeRef
from shoal.wire import WireError, WireSpec

if TYPE_CHECKING:
    from shoal.stages import Stage

DEFINITION_FILE = "run.json"


@dataclass(frozen=True)
class ManyModelSection(WireSpec):
    """The many-model classes' part of a run's definition (key ``many_model``)."""

    kind: Literal["training", "inference"]
    #: how the run's models are written (training) or read back (inference)
    serde: SerdeRef
    #: an inference run: the training run whose models it uses
    training_run_id: str | None = None


@dataclass(frozen=True)
class RunDefinition(WireSpec):
    """What a run was started with; see the module docstring."""

    run_id: str
    mode: Literal["sql", "stage"]
    #: when the run was started (seconds since the epoch)
    created: float
    #: the pool whose job drives the run; None for a run inside the caller's own job
    compute_pool: str | None
    #: the user's function, by qualified name (for listings; the function itself is pickled)
    function: str
    num_partitions: int
    spec: RunSpec
    #: the job driving the run, once it is submitted
    job_id: str | None = None
    #: SQL mode: the ``partition_by`` column or the partitioner's description
    partition_by: str | None = None
    #: stage mode: where the files are, and which
    stage_location: str | None = None
    file_pattern: str | None = None
    #: a retry: the run whose failed partitions it runs again
    retry_of: str | None = None
    #: how long the run's job waits for its nodes
    instances_timeout: float = 120.0
    #: the many-model classes' slot; None for a plain DPF run
    many_model: ManyModelSection | None = None

    def details(self) -> dict[str, Any]:
        """The definition as ``DPFRun.definition`` gives it (:meth:`~shoal.wire.WireSpec.to_plain`)."""
        return self.to_plain()


def write_definition(stage: Stage, definition: RunDefinition) -> None:
    """Write ``definition`` to its run's ``_shoal/run.json``."""
    layout.write_json(stage, layout.internal(definition.run_id, DEFINITION_FILE), definition.to_dict())


def read_definition(stage: Stage, run_id: str) -> RunDefinition | None:
    """The definition of run ``run_id``, or None when it has none; one that cannot be read raises
    :class:`~shoal.errors.RecordError` naming the file."""
    path = layout.internal(run_id, DEFINITION_FILE)
    data = layout.read_json(stage, path, None)
    if data is None:
        return None
    try:
        return RunDefinition.from_dict(data)
    except WireError as exc:
        raise layout.unreadable_record(stage, path, str(exc)) from None
