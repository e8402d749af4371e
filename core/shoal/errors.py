"""The exception family of shoal.

Every error shoal raises on purpose derives from :class:`ShoalError`, so callers can catch
them all at once. Errors that are also a built-in kind (a bad value, a missing file) derive
from that built-in too, so ``except ValueError`` keeps working for users who expect it.

Runs anywhere: driver and workers.
"""

from __future__ import annotations


class ShoalError(Exception):
    """Base class of every error raised by shoal on purpose."""


class PluginError(ShoalError):
    """A plugin could not be loaded, contributed something invalid, or conflicts with another."""


class ConfigError(ShoalError, ValueError):
    """A setting, a name or an argument is not valid; the message says what to use instead."""


class MissingExtraError(ShoalError, ImportError):
    """An optional framework is not installed; the message names the ``pip install`` to run."""


class StageError(ShoalError):
    """Base class of stage errors."""


class StageNotFoundError(StageError, LookupError):
    """The named stage does not exist."""


class StageExistsError(StageError, ValueError):
    """A stage with that name exists already."""


class StagePathError(StageError, ValueError):
    """A path inside a stage is not allowed (escapes the stage, is absolute, or is malformed)."""


class StageFileNotFoundError(StageError, FileNotFoundError):
    """No file or folder at that path of the stage."""


class TrainingError(ShoalError, RuntimeError):
    """A distributed training worker failed, died or hung.

    ``rank``, ``node_id`` and ``log_path`` say which worker and where its output is; ``kind`` how
    it ended (``"failed"``: raised, ``"died"``, ``"hung"``, ``"timeout"``; None when not known).
    """

    def __init__(
        self,
        message: str,
        *,
        rank: int | None = None,
        node_id: str | None = None,
        log_path: str | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.rank = rank
        self.node_id = node_id
        self.log_path = log_path
        self.kind = kind

    def __reduce__(self) -> tuple[object, ...]:
        """Keep the fields and the user's exception (``__cause__``) when sent back from a job."""
        fields = (str(self), self.rank, self.node_id, self.log_path, self.__cause__, self.kind)
        return (_rebuild_training_error, fields)


def _rebuild_training_error(
    message: str,
    rank: int | None,
    node_id: str | None,
    log_path: str | None,
    cause: BaseException | None,
    kind: str | None = None,
) -> TrainingError:
    error = TrainingError(message, rank=rank, node_id=node_id, log_path=log_path, kind=kind)
    error.__cause__ = cause
    return error


class PermanentPartitionError(ShoalError, RuntimeError):
    """Raised in a partition function when running the partition again cannot help (its input
    has no model, the function's result is unusable): the partition is FAILED at once, without
    the retries a DPF gives other errors. The message and traceback are in its ``train.log``."""


class NotSupportedError(ShoalError, NotImplementedError):
    """A name of the reference product that shoal does not implement; the message says what to
    use instead."""


class RecordError(ShoalError, ValueError):
    """A record shoal wrote (a run's ``run.json``, ``partitions.json`` or progress, a job's
    record) cannot be read: cut short, or changed by hand. The message names the file, the run
    or job, and what to do."""


class RunConflictError(ShoalError, RuntimeError):
    """A DPF run with that ``run_id`` is in progress on the stage: two runs cannot share a run id.
    Wait for it, cancel it, or pick another run id."""


class RunNotFoundError(ShoalError, ValueError):
    """No run with that id on the stage (``DPFRun.restore_from`` and the runs built on it)."""


class ArtifactsExistError(ConfigError):
    """A run's folder on the stage holds an earlier run's artifacts, and they are not to be
    replaced. ``stage`` and ``run_id`` say where; the message names the API's way out, and the
    command line words its own (``--overwrite``)."""

    def __init__(self, message: str, *, stage: str, run_id: str) -> None:
        super().__init__(message)
        self.stage = stage
        self.run_id = run_id


class PoolBusyError(ShoalError, RuntimeError):
    """The pool has jobs that the operation would break: jobs that have not ended (stop, drop),
    or jobs waiting for nodes (stopping its idle nodes)."""


class JobCancelledError(ShoalError, RuntimeError):
    """The job was cancelled: it has no result."""


class TuningError(ShoalError, RuntimeError):
    """A tuning run found nothing: every trial failed, or the search itself failed.

    ``run_id`` and ``stage_name`` say where its records are (``TunerResults.restore_from``)."""

    def __init__(self, message: str, *, run_id: str | None = None, stage_name: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.stage_name = stage_name
