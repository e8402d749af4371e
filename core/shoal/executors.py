"""The one place core reaches ``shoal.runtime``: the Ray-backed parts behind core's seams.

Core holds the plain-Python side (specs, state machines, policies, stages, records); what runs on
Ray lives in ``shoal.runtime``, which may import core's public names. Core imports runtime here
and nowhere else (``tests/test_meta.py`` checks it), and only inside these functions, so that
importing core never imports Ray or a runtime module.

Runs wherever core starts a Ray-backed part: the driver and job payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal.tune.tuner import TrialExecutor


def pool_service(ray: Any, pool_name: str, connect_env: dict[str, str]) -> Any:
    """The pool's service actor (``shoal.runtime.pool_service``), started when it is not there."""
    from shoal.runtime.pool_service import get_or_create

    return get_or_create(ray, pool_name, connect_env)


def dpf_scheduler() -> tuple[type, Callable[..., Any]]:
    """``(Scheduler, run_scheduler)`` of ``shoal.runtime.dpf_scheduler``: a DPF run on Ray."""
    from shoal.runtime.dpf_scheduler import Scheduler, run_scheduler

    return Scheduler, run_scheduler


def ray_train_worker_group() -> type:
    """``shoal.runtime.train_group.RayTrainWorkerGroup``: training ranks as Ray actors."""
    from shoal.runtime.train_group import RayTrainWorkerGroup

    return RayTrainWorkerGroup


def ray_tune_executor() -> TrialExecutor:
    """A ``shoal.runtime.tune_runner.RayTuneExecutor``: a tuner's trials on Ray Tune."""
    from shoal.runtime.tune_runner import RayTuneExecutor

    return RayTuneExecutor()
