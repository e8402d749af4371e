"""``DPFRun``: a live, non-blocking view of a DPF run, from any process of the workspace.

Everything is read from the run's stage (``_shoal/partitions.json`` and ``progress/``), so
``partition_details`` never blocks and ``DPFRun.restore_from`` works from a fresh process.

Runs on the driver.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shoal.display.progress import ProgressDisplay, open_progress
from shoal.dpf import layout
from shoal.dpf.context import StageArtifactsManager
from shoal.dpf.definition import DEFINITION_FILE, RunDefinition, read_definition
from shoal.dpf.entities import PartitionRecord, PartitionStatus, RunStatus
from shoal.dpf.progress import ProgressReader, progress_dir
from shoal.dpf.specs import PartitionInput
from shoal.errors import PluginError, RecordError, RunConflictError, RunNotFoundError
from shoal.stages import Stage, get_stage

log = logging.getLogger(__name__)

#: The scheduler writes a heartbeat every 2 s; later than this, the run's job is looked at.
HEARTBEAT_STALE_S = 6.0
#: How often the job is looked at while the heartbeat is late.
JOB_CHECK_EVERY_S = 3.0
#: Without a job to ask, a run whose heartbeat is this old has lost its driver.
ORPHAN_AFTER_S = 60.0


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
        path = self.stage_artifacts_manager.path_of(layout.LOG_FILE)
        if not self._stage.exists(path):
            raise RuntimeError(f"Logs not available yet for partition {self.partition_id!r}")
        return self._stage.read_text(path)

    def show_logs(self) -> None:
        """Show :attr:`logs`: printed, or in a notebook as scrollable pre-formatted text."""
        from shoal.display.logs import show_text

        where = self.stage_artifacts_manager.path_of(layout.LOG_FILE)
        show_text(self.logs, f"logs of partition {self.partition_id} ({where})")

    def _repr_html_(self) -> str:
        from shoal.display.objects import partitions_html

        return partitions_html({self.partition_id: self})


class PartitionDetails(dict[str, SinglePartitionDetails]):
    """``DPFRun.partition_details``: a dict by partition id that shows itself in a notebook (the
    counts by status, then each partition with its last error)."""

    def _repr_html_(self) -> str:
        from shoal.display.objects import partitions_html

        return partitions_html(self)


class DPFRun:
    """A DPF run. ``wait()`` blocks; everything else reads the run's current state.

    One object reads incrementally: the partitions once, the progress log's new events per poll,
    and the run's job only when the scheduler's heartbeat is late (at most every few seconds)."""

    def __init__(self, stage: Stage, run_id: str, *, caller_session: Any = None) -> None:
        self._stage = stage
        self._run_id = run_id
        self._caller_session = caller_session
        self._replayed = False
        self._inputs: list[PartitionInput] | None = None
        self._reader = ProgressReader(stage, run_id)
        self._job: Any = None
        self._job_checked_at = 0.0
        self._agreed_seq: Any = None
        self._job_status: str | None = None
        self._message = ""

    def __repr__(self) -> str:
        return f"DPFRun(run_id={self._run_id!r}, stage={self._stage.name!r}, status={self.status.value!r})"

    def _repr_html_(self) -> str:
        """The run in a notebook: status, counts by status, times, its failed partitions with
        their last error, where the logs are."""
        from shoal.display.objects import run_html

        return run_html(self, self._kind_label())

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def job_id(self) -> str | None:
        """The id of the job driving the run (``shoal.get_job(run.job_id)``); None until it is submitted.

        A shoal extension: the reference runs DPF inside a job of your own and has no such property.
        """
        definition = self._definition()
        return definition.job_id if definition is not None else None

    @classmethod
    def restore_from(cls, run_id: str, stage_name: str) -> DPFRun:
        """The run ``run_id`` on stage ``stage_name``, finished or running, from any process."""
        layout.check_run_id(run_id)
        stage = get_stage(stage_name)
        if not stage.exists(layout.internal(run_id, DEFINITION_FILE)):
            raise RunNotFoundError(
                f"No DPF run {run_id!r} on @{stage.name} (no {layout.internal(run_id, DEFINITION_FILE)})"
            )
        run = cls(stage, run_id)
        run._definition()  # an unreadable record fails here, naming its file
        run._partition_inputs()
        return run

    # -- state ---------------------------------------------------------------------------

    def _definition(self) -> RunDefinition | None:
        """The run's definition (None when it has none); unreadable: ``RecordError``."""
        return read_definition(self._stage, self._run_id)

    def _required_definition(self) -> RunDefinition:
        """The run's definition, which a retry or a resume cannot go without."""
        definition = self._definition()
        if definition is None:
            path = layout.internal(self._run_id, DEFINITION_FILE)
            raise layout.unreadable_record(self._stage, path, "it is missing")
        return definition

    @property
    def stage_name(self) -> str:
        """The name of the run's stage."""
        return self._stage.name

    @property
    def definition(self) -> dict[str, Any]:
        """What the run was started with (``_shoal/run.json``): mode, function, partitioning,
        pool, creation time, its job, and a many-model run's section; a copy."""
        definition = self._definition()
        return definition.details() if definition is not None else {}

    def _partition_inputs(self) -> list[PartitionInput]:
        if self._inputs is None:  # written once, before the run starts
            path = layout.internal(self._run_id, "partitions.json")
            items = layout.read_json(self._stage, path, []) or []
            try:
                self._inputs = [PartitionInput.from_dict(item) for item in items]
            except (TypeError, AttributeError, ValueError) as exc:
                raise layout.unreadable_record(self._stage, path, f"{type(exc).__name__}: {exc}") from exc
        return self._inputs

    def _job_state(self) -> str | None:
        """The status of the run's job, looked up at most every :data:`JOB_CHECK_EVERY_S`."""
        now = time.monotonic()
        if self._job_checked_at and now - self._job_checked_at < JOB_CHECK_EVERY_S:
            return self._job_status
        self._job_checked_at = now
        if self._job is None:
            job_id = self.job_id
            if not job_id:
                return None
            from shoal.jobs import get_job

            self._job = get_job(job_id)
        try:
            self._job_status = self._job.status.value
        except Exception as exc:  # the record is unreadable: say so, and keep the last answer
            log.warning(
                "could not read the status of job %s of DPF run %s: %s", self._job.id, self._run_id, exc
            )
        return self._job_status

    def _state(self, *, ask_job: bool = False) -> tuple[RunStatus, dict[str, Any]]:
        """The run's status and its ``state.json``; one read of the state, and of the job only when
        the scheduler's heartbeat is late (or ``ask_job``)."""
        status, state = self._read_state()
        if status != RunStatus.IN_PROGRESS:
            return status, state
        heartbeat = state.get("heartbeat")
        fresh = heartbeat is not None and time.time() - float(heartbeat) < HEARTBEAT_STALE_S
        if fresh and not ask_job:
            return status, state
        if ask_job:
            self._job_checked_at = 0.0
        job = self._job_state()
        if job is None:
            if heartbeat is not None and time.time() - float(heartbeat) > ORPHAN_AFTER_S:
                return self._driver_gone("its scheduler stopped sending heartbeats"), state
            return status, state
        from shoal.jobs.status import JobStatus

        if job == JobStatus.CANCELLED:
            self._message = f"the run's job {self._job.id} was cancelled"
            return RunStatus.CANCELLED, state
        if JobStatus(job).is_terminal:
            # the job may have ended after the state above was read: its scheduler's last word,
            # written before the job ended, is in the state now
            status, state = self._read_state()
            if status != RunStatus.IN_PROGRESS:
                return status, state
            return self._driver_gone(f"its job {self._job.id} ended {job}", *self._job_ending()), state
        return status, state

    def _read_state(self) -> tuple[RunStatus, dict[str, Any]]:
        """``state.json`` and the status it says (its message kept); an ended run's status must
        agree with its partitions' records."""
        state = self._reader.state()
        status = RunStatus(state.get("status", RunStatus.IN_PROGRESS.value))
        self._message = str(state.get("message") or "")
        if status != RunStatus.IN_PROGRESS:
            self._check_agrees(state, self._reader.refresh(known_seq=state.get("seq")))
        return status, state

    def _job_ending(self) -> tuple[str, str]:
        """Why the run's job ended and the type of the error it raised, from its status document
        (empty when unreadable)."""
        try:
            details = self._job.details() if self._job is not None else {}
        except Exception:
            return "", ""
        return str(details.get("message") or ""), str(details.get("error_type") or "")

    def _driver_gone(self, why: str, cause: str = "", error_type: str = "") -> RunStatus:
        resume = (
            f"DPFRun.restore_from({self._run_id!r}, {self._stage.name!r}).resume() continues it; "
            f"partitions already DONE are not run again."
        )
        if error_type == f"{PluginError.__module__}.{PluginError.__qualname__}":  # resume alone fails too
            self._message = (
                f"DPF run {self._run_id} could not start on the pool's nodes ({why}): {cause}\n"
                f"Once every node can import the plugin (docs/plugins.md, 'How a plugin reaches the "
                f"nodes'), {resume}"
            )
        else:
            self._message = (
                f"DPF run {self._run_id} is unfinished but nothing drives it any more "
                f"({why}{': ' + cause if cause else ''}). {resume}"
            )
        return RunStatus.INTERNAL_ERROR

    @property
    def status(self) -> RunStatus:
        return self._state()[0]

    @property
    def message(self) -> str:
        """Why the run ended as it did (fail_fast, cancel, a lost driver and how to resume), or ``""``."""
        self._state()
        return self._message

    def is_driver_alive(self) -> bool:
        """True while a scheduler drives the run; False once it ended or died (see :meth:`resume`)."""
        return self._state(ask_job=True)[0] == RunStatus.IN_PROGRESS

    def counts(self) -> dict[str, int]:
        """Partitions per status (every status listed, zeros included)."""
        counts = {s.value: 0 for s in PartitionStatus}
        records = self._records()
        for item in self._partition_inputs():
            record = records.get(item.index)
            counts[record.status.value if record else PartitionStatus.PENDING.value] += 1
        return counts

    def _records(self) -> dict[int, PartitionRecord]:
        state = self._reader.state()
        records = self._reader.refresh(known_seq=state.get("seq"))
        self._check_agrees(state, records)
        return records

    def _check_agrees(self, state: dict[str, Any], records: dict[int, PartitionRecord]) -> None:
        """An ended run's ``state.json`` counts its partitions per status; the progress events must
        give the same counts, or events were lost (a file cut at a line's end, or removed) and
        the status would contradict the partitions: :class:`RecordError`."""
        if state.get("status", RunStatus.IN_PROGRESS.value) == RunStatus.IN_PROGRESS.value:
            return
        if self._agreed_seq == state.get("seq") or not isinstance(state.get("counts"), dict):
            return
        statuses = (
            records[i.index].status.value if i.index in records else PartitionStatus.PENDING.value
            for i in self._partition_inputs()
        )
        mine = {status: count for status, count in Counter(statuses).items() if count}
        theirs = {str(status): int(count) for status, count in state["counts"].items() if int(count)}
        if mine != theirs:
            raise self._reader.unreadable(
                f"{progress_dir(self._run_id)}/",
                ValueError(f"state.json counts {theirs} partitions per status, its events give {mine}"),
            )
        self._agreed_seq = state.get("seq")

    @property
    def partition_details(self) -> PartitionDetails:
        """Every partition by id; live and non-blocking."""
        records = self._records()
        details = PartitionDetails()
        for item in self._partition_inputs():
            record = records.get(item.index)
            pid = item.partition_id
            details[pid] = SinglePartitionDetails(
                partition_id=pid,
                status=record.status if record else PartitionStatus.PENDING,
                attempts=record.attempts if record else 0,
                started_at=record.started_at if record else None,
                ended_at=record.ended_at if record else None,
                error=record.error if record else None,
                node_id=record.node_id if record else None,
                stage_artifacts_manager=StageArtifactsManager(self._stage, self._run_id, item.folder),
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
        partition id as column ``partition_id``. Only local-folder stages are supported.

        No user text reaches SQL: the files are handed to DuckDB as a list, and each file's
        partition id comes from the run's partitions, joined in as data."""
        import duckdb
        import pyarrow as pa

        layout.check_flat_filename(filename)
        root = self._stage.backend.local_path("")
        if not root:
            raise ValueError(
                f"query_artifacts needs a local-folder stage; @{self._stage.name} is {self._stage.url}"
            )
        by_folder = {
            layout.artifact_dir(self._run_id, item.folder): item.partition_id
            for item in self._partition_inputs()
        }
        base = root.rstrip("/")
        paths, ids = [], []
        for stage_path in self._stage.list(self._run_id, pattern=filename):
            pid = by_folder.get(stage_path.rsplit("/", 1)[0])
            if pid is not None:
                paths.append(f"{base}/{stage_path}")
                ids.append(pid)
        if not paths:
            raise ValueError(f"run {self._run_id} has no artifact matching {filename!r}")
        connection = connection or duckdb.connect()
        files = connection.read_parquet(paths, filename=True, union_by_name=True)
        owners = connection.from_arrow(pa.table({"__shoal_file": paths, "partition_id": ids}))
        joined = files.join(owners, "filename = __shoal_file")
        return joined.select("* EXCLUDE (filename, __shoal_file)")

    # -- control -------------------------------------------------------------------------

    def wait(self, timeout: float | None = None, show_progress: bool = True) -> RunStatus:
        """Block until the run ends, showing its progress (:mod:`shoal.display.progress`: a bar in a
        notebook or a terminal, a line every few seconds in a log); ``TimeoutError`` after
        ``timeout`` s.

        A run whose driver died unfinished ends ``INTERNAL_ERROR``; :attr:`message` says how to
        resume it."""
        from shoal.waiting import check_timeout

        limit = check_timeout(timeout, f"DPF run {self._run_id!r}.wait")
        deadline = None if limit is None else time.monotonic() + limit
        bar = (
            open_progress(f"{self._kind_label()} {self._run_id}", unit="partitions")
            if show_progress
            else None
        )
        status = RunStatus.IN_PROGRESS
        try:
            while True:
                status, state = self._state()
                if bar:
                    self._show_progress(bar, state)
                if status != RunStatus.IN_PROGRESS:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"DPF run {self._run_id} still IN_PROGRESS after {timeout} s")
                time.sleep(0.2)
        finally:
            if bar:
                bar.close(ok=None if status == RunStatus.IN_PROGRESS else status == RunStatus.SUCCESS)
        self._replay_session_writes()
        return status

    def _kind_label(self) -> str:
        """What a progress bar or a table calls the run: ``DPF``, ``many-model training`` or
        ``many-model inference``."""
        try:
            definition = self._definition()
        except RecordError:
            return "DPF"
        section = definition.many_model if definition is not None else None
        return "DPF" if section is None else f"many-model {section.kind}"

    def _show_progress(self, bar: ProgressDisplay, state: dict[str, Any]) -> None:
        """Partitions ended of all, and the counts by status."""
        counts = state.get("counts") or {}
        total = len(self._partition_inputs())
        ended = sum(int(counts.get(s, 0)) for s in ("DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR"))
        detail = " ".join(f"{k.lower()}={v}" for k, v in sorted(counts.items()) if v)
        bar.update(ended, total or None, detail)

    def cancel(self) -> None:
        """Stop the run: no new partition starts, running ones stop; finished ones keep their artifacts."""
        self._stage.write_text(layout.internal(self._run_id, "cancel"), str(time.time()))

    def retry_failed(self, run_id: str | None = None) -> DPFRun:
        """Start a new run (``run_id``, else ``<run>_retry<N>``) of this ended run's ``FAILED`` and
        ``INTERNAL_ERROR`` partitions, with the same function, options, pool and inputs; the two
        runs name each other (``definition["retry_of"]``, :attr:`retries`). A shoal extension,
        see :mod:`shoal.dpf.retry`."""
        from shoal.dpf.retry import retry_failed

        return retry_failed(self, run_id)

    @property
    def retries(self) -> list[str]:
        """The ids of the runs that retried this run's failed partitions, oldest first."""
        from shoal.dpf.retry import retries_of

        return retries_of(self)

    def resume(self) -> DPFRun:
        """Continue an unfinished run whose driver died; DONE partitions are skipped."""
        from shoal.dpf.launch import launch

        try:
            driven = self._state(ask_job=True)[0] == RunStatus.IN_PROGRESS
        except RecordError:  # the progress record is unreadable: only its job can say
            from shoal.jobs.status import JobStatus

            job = self._job_state()
            driven = job is not None and not JobStatus(job).is_terminal
        if driven:
            raise RunConflictError(
                f"DPF run {self._run_id!r} is still being driven; it cannot be resumed twice. Wait for it "
                f"(DPFRun.wait()) or cancel it first."
            )
        definition = self._required_definition()
        self._partition_inputs()  # unreadable partitions cannot be resumed: say so before starting
        from shoal.dpf.attempts import sweep_attempts

        try:
            reader = ProgressReader(self._stage, self._run_id)
            reader.refresh(known_seq=reader.state().get("seq"))
        except RecordError as exc:  # resume counts it as nothing done; no stale event may mix in
            log.warning("%s; resuming run %s as if no partition had finished", exc, self._run_id)
            self._stage.remove(progress_dir(self._run_id), missing_ok=True)
        sweep_attempts(self._stage, self._run_id)  # what the dead driver's attempts left
        launch(self._stage, definition)
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
