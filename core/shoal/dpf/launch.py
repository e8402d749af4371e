"""Start the scheduler of a run: inside the current job when called from a job's payload,
otherwise as a job of its own on a compute pool.

Runs on the driver; in a job's payload it connects to the job's Ray cluster to start the
scheduler thread there.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time

from shoal.dpf import layout
from shoal.dpf.definition import RunDefinition, write_definition
from shoal.jobs.context import JobContext
from shoal.stages import Stage


def launch(stage: Stage, definition: RunDefinition) -> RunDefinition:
    """Start (or restart) the run's scheduler; return the run definition with the job that
    drives it (written to ``run.json`` too)."""
    from shoal.dpf.progress import write_state
    from shoal.executors import dpf_scheduler

    Scheduler, run_scheduler = dpf_scheduler()

    run_id, spec = definition.run_id, definition.spec
    write_state(stage, run_id, status="IN_PROGRESS", message="starting", heartbeat=time.time(), job_id=None)
    if stage.exists(layout.internal(run_id, "cancel")):
        stage.remove(layout.internal(run_id, "cancel"))
    if JobContext.current().in_payload:  # the run uses the job's own nodes
        definition = dataclasses.replace(definition, job_id=os.environ["SHOAL_JOB_ID"])
        write_definition(stage, definition)
        import ray

        if not ray.is_initialized():
            ray.init(address="auto")
        here = str(ray.get_runtime_context().get_node_id())
        scheduler = Scheduler(spec.with_job(os.environ["SHOAL_JOB_ID"], here))
        thread = threading.Thread(target=scheduler.run, name=f"dpf-{run_id}", daemon=False)
        thread.start()
        return definition
    from shoal.jobs.payload import function_payload
    from shoal.jobs.submit import identifier_name, submit_payload
    from shoal.pools import records

    if definition.compute_pool is None:
        raise ValueError(f"run {run_id!r} names no compute pool to run on, and this is not a job")
    pool = records.load(definition.compute_pool)
    job = submit_payload(
        function_payload(run_scheduler, (spec.to_json(),), {}),
        pool.name,
        stage_name=stage.name,
        target_instances=pool.max_nodes,
        min_instances=1,
        name=identifier_name(f"dpf_{run_id}"),
        instances_timeout=definition.instances_timeout,
    )
    definition = dataclasses.replace(definition, job_id=job.id)
    write_definition(stage, definition)
    return definition
