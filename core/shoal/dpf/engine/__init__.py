"""The DPF engine: a Ray-free state machine for a run (:mod:`.state`), the policies that decide
what an outcome leads to (:mod:`.policies`), and the loop that drives it against a worker group
(:mod:`.controller`). Ray appears only behind the :class:`~.controller.WorkerGroup` seam, in
``shoal.runtime.dpf_workers``; tests drive the same loop with a fake group.

Runs in the run's scheduler (the job's payload process, instance 0).
"""
