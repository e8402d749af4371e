"""``@remote``: turn a function into a job definition; calling it submits a job.

.. code-block:: python

    from shoal.jobs import remote

    @remote("MY_POOL", stage_name="payload_stage", target_instances=3)
    def train(n: int) -> dict:
        import ray
        ray.init(address="auto")
        ...
        return {"nodes": len(ray.nodes())}

    job = train(10)          # an MLJob
    print(job.result())

Runs on the driver.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from shoal.jobs.job import MLJob
from shoal.jobs.payload import function_payload
from shoal.jobs.submit import submit_payload

P = ParamSpec("P")
R = TypeVar("R")


class MLJobDefinition(Generic[P, R]):
    """A function bound to a compute pool and job options; ``definition(*args)`` submits a job."""

    def __init__(self, func: Callable[P, R], compute_pool: str, options: dict[str, Any]) -> None:
        self.func = func
        self.compute_pool = compute_pool
        self.options = options
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> MLJob[R]:
        payload = function_payload(self.func, args, kwargs)
        job: MLJob[R] = submit_payload(payload, self.compute_pool, **self.options)
        return job

    def __repr__(self) -> str:
        return f"MLJobDefinition({self.func.__qualname__}, compute_pool={self.compute_pool!r})"


def remote(
    compute_pool: str,
    *,
    stage_name: str,
    target_instances: int = 1,
    min_instances: int | None = None,
    env_vars: dict[str, str] | None = None,
    imports: list[Any] | None = None,
    session: Any = None,
    name: str | None = None,
    **kwargs: Any,
) -> Callable[[Callable[P, R]], MLJobDefinition[P, R]]:
    """Decorate a function so that calling it runs it as a multi-node job on ``compute_pool``.

    Options are those of :func:`shoal.jobs.submit_file`; ``session`` is accepted for compatibility
    with the reference product (a Snowpark session passed as an *argument* reaches the job).
    """
    options: dict[str, Any] = {
        "stage_name": stage_name,
        "target_instances": target_instances,
        "min_instances": min_instances,
        "env_vars": env_vars,
        "imports": imports,
        "name": name,
        **kwargs,
    }
    # Validate the options now, not at the first call.
    from shoal.jobs.submit import _check_instances
    from shoal.pools import records as pool_records

    _check_instances(target_instances, min_instances, pool_records.load(compute_pool).max_nodes)

    def decorate(func: Callable[P, R]) -> MLJobDefinition[P, R]:
        return MLJobDefinition(func, compute_pool, options)

    return decorate
