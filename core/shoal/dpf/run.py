"""``DPFRun``: a live, non-blocking view of a DPF run, from any process of the workspace.

Everything is read from the run's stage (``_shoal/partitions.json`` and ``progress.json``), so
``partition_details`` never blocks and ``DPFRun.restore_from`` works from a fresh process.

Runs on the driver.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shoal.dpf import layout
from shoal.dpf.context import StageArtifactsManager
from shoal.dpf.entities import PartitionStatus, RunStatus
from shoal.stages import Stage, get_stage

HEARTBEAT_STALE_S = 30.0


@dataclass
class SinglePartitionDetails:
    """One partition of a run: status, attempts, timings, error, logs and artifacts."""

    partition_id: str
    status: PartitionStatus
    attempts: int
    started_at: float | None
    ended_at: float | None
    error: str | None
    node_id: str | None
    stage_artifacts_manager: StageArtifactsManager = field(repr=False)
    _stage: Stage = field(repr=False)
    _run_id: str = field(repr=False)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    @property
    def logs(self) -> str:
        """The partition's ``train.log`` (stdout, stderr, logging and tracebacks of every attempt)."""
        path = f"{layout.partition_dir(self._run_id, self.partition_id)}/{layout.LOG_FILE}"
        if not self._stage.exists(path):
            raise RuntimeError(f"Logs not available yet for partition {self.partition_id!r}")
        return self._stage.read_text(path)


class DPFRun:
    """A DPF run. ``wait()`` blocks; everything else reads the run's current state."""

    def __init__(self, stage: Stage, run_id: str, *, caller_session: Any = None) -> None:
        self._stage = stage
        self._run_id = run_id
        self._caller_session = caller_session
        self._replayed = False

    def __repr__(self) -> str:
        return f"DPFRun(run_id={self._run_id!r}, stage={self._stage.name!r}, status={self.status.value!r})"

    @property
    def run_id(self) -> str:
        return self._run_id

    @classmethod
    def restore_from(cls, run_id: str, stage_name: str) -> DPFRun:
        """The run ``run_id`` on stage ``stage_name``, finished or running, from any process."""
        stage = get_stage(stage_name)
        if not stage.exists(layout.internal(run_id, "run.json")):
            raise ValueError(
                f"No DPF run {run_id!r} on @{stage.name} (no {layout.internal(run_id, 'run.json')})"
            )
        return cls(stage, run_id)

    # -- state ---------------------------------------------------------------------------

    def _definition(self) -> dict[str, Any]:
        return dict(layout.read_json(self._stage, layout.internal(self._run_id, "run.json"), {}) or {})

    def _progress(self) -> dict[str, Any]:
        return dict(layout.read_json(self._stage, layout.internal(self._run_id, "progress.json"), {}) or {})

    def _job_status(self) -> str | None:
        job_id = self._definition().get("job_id")
        if not job_id:
            return None
        from shoal.jobs import get_job

        try:
            return get_job(job_id).status.value
        except Exception:
            return None

    def _state(self) -> tuple[RunStatus, bool]:
        """The run's status, and whether the progress file says IN_PROGRESS while nothing drives the
        run any more; one read of the progress file and of the job."""
        progress = self._progress()
        status = RunStatus(progress.get("status", RunStatus.IN_PROGRESS.value))
        if status != RunStatus.IN_PROGRESS:
            return status, False
        job = self._job_status()
        if job is not None:
            from shoal.jobs.status import JobStatus

            if job == JobStatus.CANCELLED:
                return RunStatus.CANCELLED, True
            return status, JobStatus(job).is_terminal
        heartbeat = progress.get("heartbeat")
        return status, heartbeat is not None and time.time() - heartbeat > HEARTBEAT_STALE_S

    @property
    def status(self) -> RunStatus:
        return self._state()[0]

    def is_driver_alive(self) -> bool:
        """False when the run is unfinished but nothing drives it any more (see :meth:`resume`)."""
        return not self._state()[1]

    @property
    def partition_details(self) -> dict[str, SinglePartitionDetails]:
        """Every partition by id; live and non-blocking."""
        inputs = layout.read_json(self._stage, layout.internal(self._run_id, "partitions.json"), []) or []
        records = self._progress().get("partitions", {})
        details = {}
        for item in inputs:
            record = records.get(str(item["index"]), {})
            pid = item["partition_id"]
            details[pid] = SinglePartitionDetails(
                partition_id=pid,
                status=PartitionStatus(record.get("status", "PENDING")),
                attempts=int(record.get("attempts", 0)),
                started_at=record.get("started_at"),
                ended_at=record.get("ended_at"),
                error=record.get("error"),
                node_id=record.get("node_id"),
                stage_artifacts_manager=StageArtifactsManager(self._stage, self._run_id, pid),
                _stage=self._stage,
                _run_id=self._run_id,
            )
        return details

    def get_progress(self) -> dict[str, list[SinglePartitionDetails]]:
        """Partitions grouped by status string (``"DONE"``, ``"FAILED"``, ...)."""
        grouped: dict[str, list[SinglePartitionDetails]] = {}
        for detail in self.partition_details.values():
            grouped.setdefault(detail.status.value, []).append(detail)
        return grouped

    def query_artifacts(self, filename: str = "*.parquet", connection: Any = None) -> Any:
        """One DuckDB relation over the run's parquet artifacts named ``filename`` (a glob), with the
        partition id as column ``partition_id``. Only local-folder stages are supported."""
        import duckdb

        layout.check_flat_filename(filename)
        root = self._stage.backend.local_path("")
        if not root:
            raise ValueError(
                f"query_artifacts needs a local-folder stage; @{self._stage.name} is {self._stage.url}"
            )
        inputs = layout.read_json(self._stage, layout.internal(self._run_id, "partitions.json"), []) or []
        folders = {layout.partition_dir(self._run_id, item["partition_id"]) for item in inputs}
        files = [
            f for f in self._stage.list(self._run_id, pattern=filename) if f.rsplit("/", 1)[0] in folders
        ]
        if not files:
            raise ValueError(f"run {self._run_id} has no artifact matching {filename!r}")
        connection = connection or duckdb.connect()
        prefix = f"{root.rstrip('/')}/{self._run_id}/"
        paths = [f"{root.rstrip('/')}/{f}" for f in files]
        return connection.read_parquet(paths, filename=True, union_by_name=True).select(
            f"* EXCLUDE (filename), regexp_extract(filename, '^{prefix}(.*)/[^/]+$', 1) AS partition_id"
        )

    # -- control -------------------------------------------------------------------------

    def wait(self, timeout: float | None = None, show_progress: bool = True) -> RunStatus:
        """Block until the run ends (a progress bar on a terminal); ``TimeoutError`` after ``timeout`` s."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        bar = _ProgressBar(self) if show_progress else None
        try:
            while True:
                status, driver_gone = self._state()
                if bar:
                    bar.update()
                if status != RunStatus.IN_PROGRESS:
                    break
                if driver_gone:
                    raise RuntimeError(
                        f"DPF run {self._run_id} is unfinished but its driver is gone (job "
                        f"{self._definition().get('job_id')} ended). "
                        f"DPFRun.restore_from({self._run_id!r}, {self._stage.name!r}).resume() continues it."
                    )
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"DPF run {self._run_id} still IN_PROGRESS after {timeout} s")
                time.sleep(0.3)
        finally:
            if bar:
                bar.close()
        self._replay_session_writes()
        return status

    def cancel(self) -> None:
        """Stop the run: no new partition starts, running ones stop; finished ones keep their artifacts."""
        self._stage.write_text(layout.internal(self._run_id, "cancel"), str(time.time()))

    def resume(self) -> DPFRun:
        """Continue an unfinished run whose driver died; DONE partitions are skipped."""
        from shoal.dpf.launch import launch

        if self.is_driver_alive() and self.status == RunStatus.IN_PROGRESS:
            raise RuntimeError(f"DPF run {self._run_id} is still being driven; it cannot be resumed twice")
        definition = self._definition()
        launch(self._stage, self._run_id, definition)
        return DPFRun(self._stage, self._run_id)

    def _replay_session_writes(self) -> None:
        """For a Snowpark ``local_testing`` session: apply the run's ``with_session`` writes to it."""
        if self._caller_session is None or self._replayed:
            return
        import cloudpickle

        path = layout.internal(self._run_id, "session_journal.pkl")
        if self._stage.exists(path):
            for blob in cloudpickle.loads(self._stage.read_bytes(path)):
                cloudpickle.loads(blob)(self._caller_session)
        self._replayed = True


class _ProgressBar:
    """rich progress: partitions done / failed of all."""

    def __init__(self, run: DPFRun) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.run = run
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.task = self.progress.add_task(f"DPF {run.run_id}", total=None, detail="")
        self.progress.start()

    def update(self) -> None:
        counts: dict[str, int] = {}
        details = self.run.partition_details
        for detail in details.values():
            counts[detail.status.value] = counts.get(detail.status.value, 0) + 1
        finished = sum(counts.get(s, 0) for s in ("DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR"))
        detail_text = " ".join(f"{k.lower()}={v}" for k, v in sorted(counts.items()))
        self.progress.update(self.task, total=len(details) or None, completed=finished, detail=detail_text)

    def close(self) -> None:
        self.progress.stop()
