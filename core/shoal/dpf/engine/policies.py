"""What an outcome leads to: policies that look at a partition's record and return a decision.

They hold no state and do no I/O; :class:`~shoal.dpf.engine.state.RunState` applies their
decisions. Swapping a policy changes the rules without touching the state machine.

Runs in the run's scheduler (plain Python, unit-tested without Ray).
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.dpf.entities import ExecutionOptions, PartitionRecord, PartitionStatus

#: A partition whose node was lost this many times is given up (INTERNAL_ERROR): something on the
#: partition itself (its size, say) is likely what brings nodes down.
MAX_NODE_LOSSES = 3


@dataclass(frozen=True)
class Retry:
    """Run the partition again after ``delay_s`` seconds."""

    delay_s: float


@dataclass(frozen=True)
class Requeue:
    """Run the partition again now; the lost attempt does not count against ``max_retries``."""


@dataclass(frozen=True)
class GiveUp:
    """The partition ends with ``status`` and ``error``."""

    status: PartitionStatus
    error: str


@dataclass(frozen=True)
class StopRun:
    """Stop the run: nothing new starts, running partitions are cancelled."""

    message: str


Decision = Retry | Requeue | GiveUp


@dataclass(frozen=True)
class RetryPolicy:
    """A function that raised is retried with exponential back-off, up to ``max_retries`` times
    (none with ``fail_fast``)."""

    max_retries: int = 1
    backoff_s: float = 2.0
    fail_fast: bool = False

    @classmethod
    def from_options(cls, options: ExecutionOptions) -> RetryPolicy:
        return cls(options.max_retries, options.retry_backoff_s, options.fail_fast)

    def on_failure(self, record: PartitionRecord, error: str, *, retryable: bool = True) -> Retry | GiveUp:
        """``record.failures`` already counts this failure; ``retryable=False`` (the function raised
        ``PermanentPartitionError``) gives up at once."""
        if not retryable or self.fail_fast or record.failures > self.max_retries:
            return GiveUp(PartitionStatus.FAILED, error)
        return Retry(self.backoff_s * (2 ** (record.failures - 1)))


@dataclass(frozen=True)
class WorkerLossPolicy:
    """A lost node is not a lost partition: it runs again elsewhere. A worker that died while its
    node stayed up (out of memory, a crash in native code, ``os._exit``) is ``INTERNAL_ERROR`` and
    is not retried, as in the reference."""

    max_node_losses: int = MAX_NODE_LOSSES

    def on_lost(self, record: PartitionRecord, node_lost: bool, detail: str) -> Requeue | GiveUp:
        """``record.lost`` already counts this loss when ``node_lost``."""
        if not node_lost:
            return GiveUp(
                PartitionStatus.INTERNAL_ERROR, f"the worker died while its node stayed up: {detail}"
            )
        if record.lost >= self.max_node_losses:
            return GiveUp(
                PartitionStatus.INTERNAL_ERROR,
                f"its node was lost {record.lost} times (last: {detail}); given up",
            )
        return Requeue()


@dataclass(frozen=True)
class StopPolicy:
    """``fail_fast``: the first partition that ends FAILED or INTERNAL_ERROR stops the run."""

    fail_fast: bool = False

    def after_final(self, record: PartitionRecord) -> StopRun | None:
        if self.fail_fast and record.status in (PartitionStatus.FAILED, PartitionStatus.INTERNAL_ERROR):
            return StopRun(f"fail_fast: partition {record.partition_id} ended {record.status.value}")
        return None
