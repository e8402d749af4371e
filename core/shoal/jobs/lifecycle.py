"""One job's life on its pool, from node rendezvous to release, in plain Python.

:class:`JobLifecycle` decides; a :class:`JobNodes` does. The pool's service (on the cluster)
builds one lifecycle per job with Ray's implementation of the seam
(:class:`shoal.runtime.job_supervisor.RayJobNodes`); the unit tests use a fake one. The
lifecycle:

1. **reserves** the job's nodes: it asks for ``target_instances`` whole nodes; after
   :data:`SETTLE_FRACTION` of ``instances_timeout`` it settles for as many as are free, never
   fewer than ``min_instances``; at the deadline it fails with an error that says how many nodes
   it got and what to do (FAILED);
2. **begins** the job on them (every node's agent serves it; instance 0 is the head) and, unless
   it was cancelled meanwhile, runs the payload on instance 0 (RUNNING);
3. follows the payload to its end, or stops it on :meth:`JobLifecycle.cancel`;
4. has every instance **finish its log**, writes the final status (DONE, FAILED, CANCELLED, or
   INTERNAL_ERROR when the machinery failed), and only then **releases** the nodes.

Failures that do not end the job (a cancel that could not reach the payload, logs that could
not be finished) are kept in the status document's ``warnings``.

Runs in the pool service (:mod:`shoal.runtime.pool_service`), on the cluster's head node.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from shoal.jobs.spec import JobSpec
from shoal.jobs.status import JobStatus, add_warning, read_status, write_status
from shoal.stages import Stage

#: One wait for the reservation (a real blocking wait, not a poll).
WAIT_S = 1.0
#: After this share of ``instances_timeout``, accept fewer than target (but >= min) nodes.
SETTLE_FRACTION = 0.25


class RendezvousError(RuntimeError):
    """The job did not get ``min_instances`` nodes in time."""


class JobNodes(Protocol):
    """The seam between a job's lifecycle and the cluster: its nodes and their agents."""

    def request(self, count: int) -> None:
        """Ask for ``count`` whole nodes of the pool (no two on the same node)."""

    def wait_granted(self, timeout_s: float) -> list[str] | None:
        """Block up to ``timeout_s`` for the request; the node ids in instance order, or None."""

    def withdraw(self) -> None:
        """Drop the request, or the reservation it became."""

    def free_nodes(self) -> int:
        """Nodes of the pool that no job holds now."""

    def pool_nodes(self) -> int:
        """Nodes of the pool that are up."""

    def begin(self, node_ids: list[str]) -> list[str]:
        """Have each node's agent serve the job as instance ``i``; return their node ids."""

    def prepare_payload(self) -> str:
        """Fetch the job's code onto instance 0; return its local folder."""

    def run_payload(self, launch_json: str, env: dict[str, str]) -> int:
        """Run the payload on instance 0 to its end; its exit code (negative: a signal)."""

    def stop_payload(self) -> None:
        """Stop the payload (from another thread); one that has not started never starts."""

    def finish_logs(self) -> None:
        """Have every instance move the last lines of its log to the stage."""

    def end(self) -> None:
        """The agents forget the job; the reservation is removed."""


class JobLifecycle:
    """One job; see the module docstring. ``cancel`` may be called from any thread."""

    def __init__(
        self,
        spec: JobSpec,
        nodes: JobNodes,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.name = spec.job_name
        self.nodes = nodes
        self.stage = Stage(spec.stage_name, spec.stage_url)
        self._clock = clock
        self._wall_clock = wall_clock
        self._cancel = threading.Event()
        self._serving = False  # the agents serve the job: cancel() reaches the payload
        self._node_ids: list[str] = []

    # -- called by the pool's queue ------------------------------------------------------

    def cancel(self) -> str:
        status = read_status(self.stage, self.spec.job_dir).status
        if status.is_terminal:
            return status.value
        self._cancel.set()
        self._write(JobStatus.CANCELLING, message="cancel requested")
        if self._serving:
            try:
                self.nodes.stop_payload()
            except Exception as exc:  # its node is gone: the job ends anyway; say so
                self._warn(f"stopping the payload failed: {type(exc).__name__}: {exc}")
        return JobStatus.CANCELLING.value

    def abandon(self, reason: str) -> str:
        """The pool stops under the job: end it INTERNAL_ERROR now (``"<reason> while the job was
        RUNNING; submit it again"``), before the stop kills its payload, so that the kill is not
        taken for the payload's own failure or for a cancel; then stop the payload as a cancel
        does. Its status written so, the lifecycle's own final write changes nothing."""
        status = read_status(self.stage, self.spec.job_dir).status
        if status.is_terminal:
            return status.value
        self._cancel.set()
        self._write(
            JobStatus.INTERNAL_ERROR,
            message=f"{reason} while the job was {status.value}; submit it again",
        )
        if self._serving:
            try:
                self.nodes.stop_payload()
            except Exception as exc:
                self._warn(f"stopping the payload failed: {type(exc).__name__}: {exc}")
        return JobStatus.INTERNAL_ERROR.value

    def reserve(self) -> bool:
        """Reserve the job's nodes (blocks); False when the job ended instead."""
        try:
            self._node_ids = self._reserve()
        except RendezvousError as exc:
            self._fail(JobStatus.FAILED, str(exc), exc)
            self._end()
            return False
        except Exception as exc:
            self._fail(JobStatus.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", exc)
            self._end()
            return False
        if self._cancel.is_set():
            self._write(JobStatus.CANCELLED, message="cancelled before start")
            self._end()
            return False
        return True

    def execute(self) -> str:
        """Run the reserved job to its end (on a thread of its own), then release its nodes."""
        try:
            return self._run(self._node_ids)
        except Exception as exc:
            self._fail(JobStatus.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", exc)
            return JobStatus.INTERNAL_ERROR.value
        finally:
            self._end()

    # -- steps ---------------------------------------------------------------------------

    def _reserve(self) -> list[str]:
        """Reserve between min and target nodes; return their node ids in instance order."""
        spec = self.spec
        target, minimum = spec.target_instances, spec.min_instances
        timeout = float(spec.instances_timeout)
        started = self._clock()
        deadline, settle_at = started + timeout, started + timeout * SETTLE_FRACTION
        want = target
        reported = -1
        while not self._cancel.is_set():
            self.nodes.request(want)
            while self._clock() < deadline and not self._cancel.is_set():
                granted = self.nodes.wait_granted(min(WAIT_S, max(0.0, deadline - self._clock())))
                if granted is not None:
                    return granted
                free = self.nodes.free_nodes()
                if free != reported:
                    reported = free
                    self._write(
                        JobStatus.PENDING,
                        nodes_free=free,
                        message=f"waiting for nodes: {free} free, {want} needed",
                    )
                if want > minimum and self._clock() >= settle_at and minimum <= free < want:
                    break
            self.nodes.withdraw()
            if self._cancel.is_set():
                break
            if self._clock() >= deadline:
                free, total = self.nodes.free_nodes(), self.nodes.pool_nodes()
                raise RendezvousError(
                    f"Job {spec.job_name} got {free} of the {minimum} node(s) it needs "
                    f"(min_instances={minimum}, target_instances={target}) within {timeout:g} s: compute "
                    f"pool {spec.compute_pool} has {total} node(s) up, {total - free} of them "
                    f"reserved by other jobs. Wait for those jobs, raise the pool's max_nodes, lower "
                    f"min_instances, or pass a longer instances_timeout."
                )
            want = max(minimum, min(want, self.nodes.free_nodes()))
        return []

    def _run(self, node_ids: list[str]) -> str:
        spec = self.spec
        agent_nodes = self.nodes.begin(node_ids)
        self._serving = True  # from now on cancel() stops the payload (or keeps it from starting)
        if self._cancel.is_set():
            self._finish_logs()
            return self._write(JobStatus.CANCELLED, message="cancelled before start").value
        app_dir = self.nodes.prepare_payload()
        count = len(agent_nodes)
        instance_env = {
            "SHOAL_JOB_ID": spec.job_id,
            "SHOAL_JOB_NAME": spec.job_name,
            "SHOAL_INSTANCE_COUNT": str(count),
            "SHOAL_TARGET_INSTANCES": str(spec.target_instances),
            "SHOAL_MIN_INSTANCES": str(spec.min_instances),
            "SHOAL_JOB_NODE_IDS": ",".join(agent_nodes),
            "SHOAL_JOB_STAGE_PATH": f"@{spec.stage_name}/{spec.job_dir}",
            "SHOAL_COMPUTE_POOL": spec.compute_pool,
            # the reference product's names, for code written against it
            "SNOWFLAKE_JOBS_COUNT": str(count),
            "MLRS_SUBMITTED_TARGET_INSTANCES": str(spec.target_instances),
            "MLRS_MIN_INSTANCES": str(spec.min_instances),
        }
        launch = spec.launch.with_node_facts(app_dir, instance_env)
        env = {
            **spec.env,
            **instance_env,
            "SHOAL_INSTANCE_ID": "0",
            "SNOWFLAKE_JOB_INDEX": "0",
            "RAY_COLOR_PREFIX": "0",  # plain text in the logs
        }
        self._write(
            JobStatus.RUNNING,
            message="",
            instances=count,
            node_ids=agent_nodes,
            started_time=self._wall_clock(),
        )
        exit_code = self.nodes.run_payload(launch.to_json(), env)
        self._finish_logs()
        fields: dict[str, Any] = {}
        if self._cancel.is_set():
            final, message = JobStatus.CANCELLED, "cancelled"
        elif exit_code == 0:
            final, message = JobStatus.DONE, ""
        else:
            from shoal.jobs import results

            error = results.raised(self.stage, self.spec.job_dir)
            final, message = JobStatus.FAILED, self._failure_message(exit_code, error)
            if error is not None:  # for readers that act on the kind of error (a DPF run)
                fields["error_type"] = error.type
        # the status written, which is not ``final`` when the job was abandoned meanwhile
        return self._write(final, message=message, exit_code=exit_code, **fields).value

    def _finish_logs(self) -> None:
        try:
            self.nodes.finish_logs()
        except Exception as exc:
            self._warn(f"finishing the instances' logs failed: {type(exc).__name__}: {exc}")

    def _failure_message(self, exit_code: int, error: Any) -> str:
        """Why the payload failed; ``error``: the exception it wrote (``results.raised``), if any."""
        from shoal.jobs import results

        if exit_code < 0:
            import signal

            try:
                name = f" ({signal.Signals(-exit_code).name})"
            except ValueError:
                name = ""
            return (
                f"the payload process was killed by signal {-exit_code}{name}; its output up to then "
                f"is in the job's logs (job.get_logs())"
            )
        if error is not None:
            name = error.type.rsplit(".", 1)[-1]
            return f"the payload raised {name} (job.result() re-raises it): {_shortened(error.message)}"
        if results.has_result(self.stage, self.spec.job_dir):
            return "the payload raised an exception; job.result() re-raises it"
        return f"the payload process exited with code {exit_code}"

    # -- status ----------------------------------------------------------------------------

    def _write(self, status: JobStatus, **fields: Any) -> JobStatus:
        """Write ``status`` and ``fields``; the status the document has after (an ended job's
        stays)."""
        return write_status(self.stage, self.spec.job_dir, status, **fields).status

    def _warn(self, message: str) -> None:
        """Keep ``message`` in the job's status document (``warnings``: ``job.details()``,
        ``shoal job status``)."""
        try:
            add_warning(self.stage, self.spec.job_dir, message)
        except Exception:
            traceback.print_exc()

    def _fail(self, status: JobStatus, message: str, exc: BaseException) -> None:
        try:
            from shoal.jobs import results

            if not results.has_result(self.stage, self.spec.job_dir):
                results.write_exception(self.stage, self.spec.job_dir, exc)
            self._write(
                status, message=message, supervisor_traceback="".join(traceback.format_exception(exc))
            )
        except Exception:
            traceback.print_exc()

    def _end(self) -> None:
        self._serving = False
        try:
            self.nodes.end()
        except Exception as exc:
            self._warn(f"releasing the job's nodes failed: {type(exc).__name__}: {exc}")


def _shortened(text: str, limit: int = 2000) -> str:
    """An exception's message for a status document: whole unless very long."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
