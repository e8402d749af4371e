"""``MLJob``: a handle on a submitted multi-node job, usable from any process of the workspace.

Status, result and logs are read from the job's stage; ``cancel`` reaches the pool's service
on the cluster, which queues and supervises the job. Runs on the driver.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Generic, TypeVar

from shoal.jobs import records, results
from shoal.jobs.queue import service_name
from shoal.jobs.status import JobStatus, read_status, write_status
from shoal.pools.connect import NAMESPACE
from shoal.stages import Stage

log = logging.getLogger(__name__)

T = TypeVar("T")

STARTED_BANNER = "=" * 20 + " ML job started " + "=" * 20
FINISHED_BANNER = "=" * 20 + " ML job finished " + "=" * 20
LIVENESS_AFTER_S = 20.0
#: the longest pause between two looks at a waited-for job's status (a status file read: cheap)
WAIT_POLL_MAX_S = 0.5


class MLJob(Generic[T]):
    """A multi-node job. Get one from ``remote``/``submit_file``/``submit_directory`` or ``get_job``."""

    def __init__(self, job_id: str | records.JobRecord) -> None:
        self._record = job_id if isinstance(job_id, records.JobRecord) else records.load(job_id)
        self._stage = Stage(self._record.stage_name, self._record.stage_url)
        self._last_liveness = 0.0

    def __repr__(self) -> str:
        return (
            f"MLJob(id={self.id!r}, status={self.status.value!r}, compute_pool={self.compute_pool!r}, "
            f"target_instances={self.target_instances})"
        )

    def _repr_html_(self) -> str:
        """The job in a notebook: status, pool, instances, times, message, where its logs are."""
        from shoal.display.objects import job_html

        return job_html(self)

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def target_instances(self) -> int:
        return self._record.target_instances

    @property
    def min_instances(self) -> int:
        return self._record.min_instances

    @property
    def compute_pool(self) -> str:
        return self._record.compute_pool

    @property
    def stage_path(self) -> str:
        """``@stage/<job name>``: where the job's code, output and logs are."""
        return f"@{self._record.stage_name}/{self._record.job_dir}"

    def details(self) -> dict[str, Any]:
        """The job's status document (status, message, instances, node ids, times)."""
        return read_status(self._stage, self._record.job_dir).details()

    @property
    def status(self) -> JobStatus:
        status = read_status(self._stage, self._record.job_dir).status
        if not status.is_terminal and time.time() - self._last_liveness > LIVENESS_AFTER_S:
            self._last_liveness = time.time()
            status = self._check_alive(status)
        return status

    def shallow_status(self, details: dict[str, Any] | None = None) -> JobStatus:
        """The status without asking the cluster (for listings): the status document's, or
        INTERNAL_ERROR when the job has not ended but its pool is not running."""
        doc = self.details() if details is None else details
        status = JobStatus(doc.get("status", "PENDING"))
        if status.is_terminal:
            return status
        return self._check_alive(status, ask_service=False)

    def _check_alive(self, status: JobStatus, *, ask_service: bool = True) -> JobStatus:
        """Mark the job INTERNAL_ERROR if its pool (or, with ``ask_service``, the pool's job
        service) is gone while the job is not finished."""
        from shoal.pools.api import get_backend

        try:
            backend = get_backend(self._record.compute_pool)
        except Exception:
            return status
        reason = None
        if not backend.is_running():
            reason = f"compute pool {self._record.compute_pool} stopped while the job was {status.value}"
        elif ask_service:
            try:
                from shoal.pools.connect import connect

                ray = connect(backend.address())
                service = ray.get_actor(service_name(self._record.compute_pool), namespace=NAMESPACE)
                if not ray.get(service.knows.remote(self.name), timeout=30):
                    refreshed = JobStatus(self.details().get("status", "PENDING"))
                    if refreshed.is_terminal:
                        return refreshed
                    reason = "the pool's service does not know the job (the cluster restarted)"
            except ValueError:
                reason = "the pool's job service is gone (its node died or the cluster restarted)"
            except Exception as exc:  # cannot tell: keep the status, but say why
                log.warning("could not check whether job %s is still known to its pool: %s", self.name, exc)
                return status
        if reason is None:
            return status
        refreshed = JobStatus(self.details().get("status", "PENDING"))
        if refreshed.is_terminal:
            return refreshed
        write_status(self._stage, self._record.job_dir, JobStatus.INTERNAL_ERROR, message=reason)
        return JobStatus.INTERNAL_ERROR

    def wait(self, timeout: float = -1, show_progress: bool = True) -> JobStatus:
        """Block until the job ends, showing its status as it goes (:mod:`shoal.display.progress`:
        a bar in a notebook or a terminal, a line every few seconds in a log); ``TimeoutError``
        after ``timeout`` seconds (-1: no limit)."""
        from shoal.display.progress import open_progress
        from shoal.waiting import check_timeout

        limit = check_timeout(timeout, f"job {self.id}.wait")
        deadline = None if limit is None else time.monotonic() + limit
        delay = 0.1
        status = self.status
        if status.is_terminal:
            return status
        bar = open_progress(f"Job {self.name}", unit="job") if show_progress else None
        try:
            while True:
                if bar is not None:
                    bar.update(int(status.is_terminal), 1, status.value)
                if status.is_terminal:
                    return status
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"Job {self.id} is still {status.value} after {timeout} s")
                time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
                delay = min(delay * 1.5, WAIT_POLL_MAX_S)
                status = self.status
        finally:
            if bar is not None:
                bar.close(ok=status == JobStatus.DONE if status.is_terminal else None)

    def result(self, timeout: float = -1) -> T:
        """Wait for the job and return its value; ``RuntimeError`` from the job's own exception,
        :class:`~shoal.errors.JobCancelledError` (a ``RuntimeError``) when it was cancelled."""
        status = self.wait(timeout)
        if status == JobStatus.CANCELLED:
            from shoal.errors import JobCancelledError

            raise JobCancelledError(f"Job {self.id} was cancelled: it has no result")
        if not results.has_result(self._stage, self._record.job_dir):
            message = self.details().get("message", "")
            raise RuntimeError(f"Job {self.id} ended {status.value} without a result: {message}")
        value: T = results.read_result(self._stage, self._record.job_dir)
        return value

    def error(self) -> dict[str, str] | None:
        """The exception the job raised, as it was written (``{"type", "message", "traceback"}``,
        nothing unpickled); None when it raised none or has not ended."""
        found = results.raised(self._stage, self._record.job_dir)
        return found._asdict() if found is not None else None

    def get_logs(
        self, limit: int = -1, instance_id: int | None = None, *, as_list: bool = False, verbose: bool = False
    ) -> str | list[str]:
        """The log of one instance (default: 0, the head), last ``limit`` lines (-1: all).

        Without ``verbose``, instance 0's log holds only the payload's own output (between the
        job's start and end banners).
        """
        index = self._instance(instance_id)
        path = self._log_path(index)
        text = self._stage.read_text(path) if self._stage.exists(path) else ""
        lines = text.splitlines()
        if not verbose and index == 0 and STARTED_BANNER in lines:
            start = lines.index(STARTED_BANNER) + 1
            end = lines.index(FINISHED_BANNER) if FINISHED_BANNER in lines else len(lines)
            lines = lines[start:end]
        if limit is not None and limit >= 0:
            lines = lines[-limit:] if limit else []
        return lines if as_list else "\n".join(lines)

    def _instance(self, instance_id: object) -> int:
        """``instance_id`` checked against the job's instances (None: 0, the head)."""
        if instance_id is None:
            return 0
        count = self.target_instances
        if isinstance(instance_id, bool) or not isinstance(instance_id, int) or not 0 <= instance_id < count:
            from shoal.errors import ConfigError

            raise ConfigError(
                f"Job {self.id} has instances 0 to {count - 1} (target_instances={count}); instance_id "
                f"{instance_id!r} is not one of them. Omit it for instance 0, the head."
            )
        return instance_id

    def _log_path(self, index: int) -> str:
        return f"{self._record.job_dir}/logs/instance-{int(index)}.log"

    def read_log_from(self, offset: int, instance_id: int | None = None) -> bytes:
        """The bytes of an instance's log from ``offset`` on (``b""`` if nothing new, or no log
        yet): what ``shoal job logs --follow`` reads while the job runs. The log grows by whole
        lines, as the instance's agent appends them (every 0.25 s)."""
        path = self._log_path(self._instance(instance_id))
        if not self._stage.exists(path):
            return b""
        return self._stage.read_bytes_from(path, offset)

    def show_logs(self, limit: int = -1, instance_id: int | None = None, verbose: bool = False) -> None:
        """Show :meth:`get_logs`: printed, or in a notebook as scrollable pre-formatted text."""
        from shoal.display.logs import show_text

        which = "" if instance_id is None else f", instance {instance_id}"
        text = self.get_logs(limit, instance_id, verbose=verbose)
        show_text(text if isinstance(text, str) else "\n".join(text), f"logs of job {self.name}{which}")

    def get_ray_dashboard_url(self) -> str | None:
        """The Ray dashboard of the job's pool, started on first request for a local pool created
        without one (see :func:`shoal.pools.api.dashboard_url`); None when the pool is not running."""
        from shoal.pools.api import dashboard_url

        return dashboard_url(self._record.compute_pool)

    def cancel(self) -> None:
        """Ask the job to stop: PENDING jobs never start; RUNNING payloads get SIGTERM, then SIGKILL."""
        if self.status.is_terminal:
            return
        from shoal.pools.api import get_backend
        from shoal.pools.connect import connect

        backend = get_backend(self._record.compute_pool)
        ray = connect(backend.address())
        try:
            service = ray.get_actor(service_name(self._record.compute_pool), namespace=NAMESPACE)
            answer = ray.get(service.cancel.remote(self.name), timeout=60)
        except ValueError:
            answer = None
        if answer is None:  # nothing on the cluster drives the job any more
            write_status(self._stage, self._record.job_dir, JobStatus.CANCELLED, message="cancelled")
