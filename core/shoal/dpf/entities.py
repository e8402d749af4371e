"""DPF value types: statuses, execution options, partition details.

Runs anywhere (driver, run scheduler, partition workers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from shoal._enums import StrValueEnum
from shoal.errors import ConfigError


class RunStatus(StrValueEnum):
    """Status of a DPF run; compares equal to its plain string (``"SUCCESS"``)."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    PARTIAL_FAILURE = "PARTIAL_FAILURE"
    FAILURE = "FAILURE"
    CANCELLED = "CANCELLED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class PartitionStatus(StrValueEnum):
    """Status of one partition; compares equal to its plain string (``"DONE"``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    @property
    def is_final(self) -> bool:
        return self in (
            PartitionStatus.DONE,
            PartitionStatus.FAILED,
            PartitionStatus.CANCELLED,
            PartitionStatus.INTERNAL_ERROR,
        )


@dataclass(frozen=True)
class ExecutionOptions:
    """How a run executes.

    ``use_head_node``: run partitions on the job's head node too. ``num_cpus_per_worker`` /
    ``num_gpus_per_worker``: resources of each partition worker (None: one worker per node, one
    CPU). ``max_retries``: extra attempts after a failure of the user function (with back-off
    ``retry_backoff_s * 2**attempt``). ``fail_fast``: stop the run at the first failed partition.
    ``loading_wh`` is accepted for compatibility and ignored (no warehouse loads data here).
    """

    use_head_node: bool = True
    loading_wh: str | None = None
    num_cpus_per_worker: float | None = None
    num_gpus_per_worker: float | None = None
    max_retries: int = 1
    fail_fast: bool = False
    retry_backoff_s: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be a non-negative integer, got {self.max_retries!r}")
        for name in ("num_cpus_per_worker", "num_gpus_per_worker"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or value < 0):
                raise ConfigError(f"{name} must be a non-negative number or None, got {value!r}")
        if self.num_cpus_per_worker == 0 and not self.num_gpus_per_worker:
            raise ConfigError("num_cpus_per_worker=0 needs num_gpus_per_worker; a worker must use something")
        if self.retry_backoff_s < 0:
            raise ConfigError(f"retry_backoff_s must not be negative, got {self.retry_backoff_s!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PartitionRecord:
    """What the scheduler knows of one partition (persisted as JSON in the progress log).

    ``attempts`` counts every start; ``failures`` the attempts whose function raised (what
    ``max_retries`` limits); ``lost`` the attempts cut off by a lost node (run again for free)."""

    partition_id: str
    index: int
    status: PartitionStatus = PartitionStatus.PENDING
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    node_id: str | None = None
    failures: int = 0
    lost: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartitionRecord:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["status"] = PartitionStatus(data["status"])
        return cls(**data)
