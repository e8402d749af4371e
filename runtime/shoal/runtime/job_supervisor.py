"""The job supervisor: owns one job from node rendezvous to clean-up.

A plain object inside the pool's service actor (:mod:`shoal.runtime.pool_service`), which
queues the pool's jobs and calls :meth:`JobSupervisor.reserve` for the job at the head of the
queue, then :meth:`JobSupervisor.execute` on a thread of its own. Independent of the submitting
process (the job goes on when the client exits). It:

1. reserves the job's nodes: a placement group of one bundle ``{pool node resource: 1}`` per
   node with the STRICT_SPREAD strategy, so each bundle is a whole node of the pool. It asks for
   ``target_instances`` nodes; if that many cannot be had within the wait, it settles for as many
   as are free, but never fewer than ``min_instances``; at the deadline it fails with an error that
   says how many nodes it got and what to do;
2. asks the pool's node agent of every reserved node to serve the job; instance 0 (bundle 0) is
   the head and runs the payload, in the agent's warm interpreter;
3. follows the payload to its end, or stops it on ``cancel()``;
4. collects every instance's log, writes the final status, and only then releases the nodes.

Runs on the pool's cluster, in the pool service actor (head node of the Ray cluster, zero CPUs).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from shoal.jobs.status import JobStatus, read_status, write_status
from shoal.stages import Stage

#: How long one wait for a placement group blocks (a real wait on its ready() ref, not a poll).
POLL_S = 1.0
SETTLE_FRACTION = 0.25  # after this share of the wait, accept fewer than target (>= min) nodes


class RendezvousError(RuntimeError):
    """The job did not get ``min_instances`` nodes in time."""


class JobSupervisor:
    """One job; see the module docstring. ``cancel`` may be called from any thread."""

    def __init__(self, spec: dict[str, Any], agents_for: Callable[[list[str]], list[Any]]) -> None:
        self.spec = spec
        self._agents_for = agents_for
        self.name = str(spec["job_name"])
        self.stage = Stage(spec["stage_name"], spec["stage_url"])
        self.job_dir = spec["job_dir"]
        self._cancel = threading.Event()
        self._agents: list[Any] = []
        self._pg: Any = None
        self._node_ids: list[str] = []

    # -- called by the pool service ------------------------------------------------------

    def cancel(self) -> str:
        status = read_status(self.stage, self.job_dir).get("status", "PENDING")
        if JobStatus(status).is_terminal:
            return str(status)
        self._cancel.set()
        write_status(self.stage, self.job_dir, JobStatus.CANCELLING, message="cancel requested")
        if self._agents:
            try:
                import ray

                ray.get(self._agents[0].terminate_payload.remote(), timeout=30)
            except Exception as exc:  # the payload's node is gone: the job ends anyway; say so
                print(f"shoal: stopping the payload of job {self.name} failed: {exc}")
        return JobStatus.CANCELLING.value

    def reserve(self) -> bool:
        """Reserve the job's nodes (blocks); False when the job ended instead (failed, cancelled)."""
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
            write_status(self.stage, self.job_dir, JobStatus.CANCELLED, message="cancelled before start")
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

    def _end(self) -> None:
        self._release()

    # -- steps ---------------------------------------------------------------------------

    def _run(self, node_ids: list[str]) -> str:
        import ray

        self._agents = self._agents_for(node_ids)  # the pool's long-lived agents, one per node
        agent_nodes = ray.get(
            [
                agent.begin.remote(index, self.spec["stage_name"], self.spec["stage_url"], self.job_dir)
                for index, agent in enumerate(self._agents)
            ],
            timeout=120,
        )
        app_dir = ray.get(self._agents[0].prepare_payload.remote(), timeout=600)
        launch = dict(self.spec["launch"])
        launch["app_dir"] = app_dir
        count = len(agent_nodes)
        instance_env = {
            "SHOAL_JOB_ID": self.spec["job_id"],
            "SHOAL_JOB_NAME": self.spec["job_name"],
            "SHOAL_INSTANCE_COUNT": str(count),
            "SHOAL_TARGET_INSTANCES": str(self.spec["target_instances"]),
            "SHOAL_MIN_INSTANCES": str(self.spec["min_instances"]),
            "SHOAL_JOB_NODE_IDS": ",".join(agent_nodes),
            "SHOAL_JOB_STAGE_PATH": f"@{self.spec['stage_name']}/{self.job_dir}",
            "SHOAL_COMPUTE_POOL": self.spec["compute_pool"],
            # the reference product's names, for code written against it
            "SNOWFLAKE_JOBS_COUNT": str(count),
            "MLRS_SUBMITTED_TARGET_INSTANCES": str(self.spec["target_instances"]),
            "MLRS_MIN_INSTANCES": str(self.spec["min_instances"]),
        }
        launch["worker_env"] = {**launch.get("worker_env", {}), **instance_env}
        env = {
            **self.spec["env"],
            **instance_env,
            "SHOAL_INSTANCE_ID": "0",
            "SNOWFLAKE_JOB_INDEX": "0",
            "RAY_COLOR_PREFIX": "0",
        }  # plain text in the logs
        write_status(
            self.stage,
            self.job_dir,
            JobStatus.RUNNING,
            message="",
            instances=count,
            node_ids=agent_nodes,
            started_time=time.time(),
        )
        exit_code = ray.get(self._agents[0].run_payload.remote(json.dumps(launch), env))
        self._collect_logs()
        if self._cancel.is_set():
            final, message = JobStatus.CANCELLED, "cancelled"
        elif exit_code == 0:
            final, message = JobStatus.DONE, ""
        else:
            final, message = JobStatus.FAILED, self._failure_message(exit_code)
        write_status(self.stage, self.job_dir, final, message=message, exit_code=exit_code)
        return final.value

    def _reserve(self) -> list[str]:
        """Reserve between min and target nodes; return their node ids in bundle order."""
        import ray
        from ray.util.placement_group import placement_group, placement_group_table, remove_placement_group

        target = self.spec["target_instances"]
        minimum = self.spec["min_instances"]
        resource = self.spec["node_resource"]
        timeout = float(self.spec["instances_timeout"])
        started = time.monotonic()
        deadline = started + timeout
        settle_at = started + timeout * SETTLE_FRACTION
        want = target
        reported = -1
        while not self._cancel.is_set():
            self._pg = placement_group(
                [{resource: 1}] * want, strategy="STRICT_SPREAD", name=f"shoal-job-{self.spec['job_name']}"
            )
            ready_ref = self._pg.ready()
            while time.monotonic() < deadline and not self._cancel.is_set():
                ready, _ = ray.wait([ready_ref], timeout=POLL_S)
                if ready:
                    mapping = placement_group_table(self._pg)["bundles_to_node_id"]
                    return [mapping[i] for i in range(want)]
                free = self._free_nodes(resource)
                if free != reported:
                    reported = free
                    write_status(
                        self.stage,
                        self.job_dir,
                        JobStatus.PENDING,
                        nodes_free=free,
                        message=f"waiting for nodes: {free} free, {want} needed",
                    )
                if want > minimum and time.monotonic() >= settle_at and minimum <= free < want:
                    break
            remove_placement_group(self._pg)
            self._pg = None
            if self._cancel.is_set():
                break
            if time.monotonic() >= deadline:
                free = self._free_nodes(resource)
                total = self._pool_nodes(resource)
                raise RendezvousError(
                    f"Job {self.spec['job_name']} got {free} of the {minimum} node(s) it needs "
                    f"(min_instances={minimum}, target_instances={target}) within {timeout:g} s: compute "
                    f"pool {self.spec['compute_pool']} has {total} node(s) up, {total - free} of them "
                    f"reserved by other jobs. Wait for those jobs, raise the pool's max_nodes, lower "
                    f"min_instances, or pass a longer instances_timeout."
                )
            want = max(minimum, min(want, self._free_nodes(resource)))
        return []

    def _free_nodes(self, resource: str) -> int:
        import ray

        return int(ray.available_resources().get(resource, 0))

    def _pool_nodes(self, resource: str) -> int:
        import ray

        return sum(1 for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(resource))

    def _collect_logs(self) -> None:
        import ray

        job_id_path = f"{self.job_dir}/system/ray_job_id"
        ray_job_id = self.stage.read_text(job_id_path).strip() if self.stage.exists(job_id_path) else None
        try:
            ray.get([agent.collect_worker_logs.remote(ray_job_id) for agent in self._agents], timeout=120)
        except Exception as exc:
            print(f"shoal: collecting worker logs failed: {exc}")

    def _failure_message(self, exit_code: int) -> str:
        from shoal.jobs import results

        if exit_code < 0:
            return f"the payload process was killed by signal {-exit_code}"
        if results.has_result(self.stage, self.job_dir):
            return "the payload raised an exception; job.result() re-raises it"
        return f"the payload process exited with code {exit_code}"

    def _fail(self, status: JobStatus, message: str, exc: BaseException) -> None:
        try:
            from shoal.jobs import results

            if not results.has_result(self.stage, self.job_dir):
                results.write_exception(self.stage, self.job_dir, exc)
            write_status(
                self.stage,
                self.job_dir,
                status,
                message=message,
                supervisor_traceback="".join(traceback.format_exception(exc)),
            )
        except Exception:
            traceback.print_exc()

    def _release(self) -> None:
        import ray
        from ray.util.placement_group import remove_placement_group

        for agent in self._agents:
            with contextlib.suppress(Exception):
                ray.get(agent.cleanup.remote(), timeout=30)
        if self._pg is not None:
            with contextlib.suppress(Exception):
                remove_placement_group(self._pg)
        self._agents = []
        self._pg = None
