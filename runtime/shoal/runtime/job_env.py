"""The user's environment variables of a job, to its Ray workers without a file or a log line.

``env_vars`` (``--env`` on the command line) hold API keys and passwords. Ray's ``runtime_env``
would carry them to the workers, but Ray's runtime-env agent writes every runtime env it sets up
into its log. So the payload process (``shoal.runtime.job_launcher``), which has the variables
in its own environment, publishes them in the cluster's internal key-value store under its Ray
job id (:func:`publish`), and its ``runtime_env`` names only a worker setup hook
(:mod:`shoal.runtime.job_worker_setup`), which calls :func:`apply` in each of the job's Ray
workers when it starts: it reads the variables and sets them in its environment. The names
alone travel in ``SHOAL_JOB_ENV_NAMES``, for shoal's warm executors (:func:`variables_here`).
:func:`withdraw` removes them when the payload ends.

Runs in the payload process (:func:`publish`, :func:`withdraw`) and in every Ray worker of the
job (:func:`apply`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

log = logging.getLogger(__name__)

#: Names of the user's variables (comma-separated), in the payload's and its workers' environment.
NAMES_VAR = "SHOAL_JOB_ENV_NAMES"
KV_NAMESPACE = "shoal_job_env"
#: How long a worker started with the job waits for the payload to publish (it does so right
#: after it connects; Ray may start a job's first workers at that moment too).
APPLY_WAIT_S = 30.0


def _key(job_id: str) -> bytes:
    return f"job-{job_id}".encode()


def _job_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_job_id())


def publish(variables: dict[str, str]) -> None:
    """Make ``variables`` the job's workers' (payload process, after ``ray.init``)."""
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(_key(_job_id()), json.dumps(variables), namespace=KV_NAMESPACE)


def withdraw() -> None:
    """Forget the job's variables (payload process, when the payload ended)."""
    from ray.experimental import internal_kv

    internal_kv._internal_kv_del(_key(_job_id()), namespace=KV_NAMESPACE)


def apply() -> None:
    """Set the job's variables in this worker's environment (from the worker setup hook)."""
    from ray.experimental import internal_kv

    key = _key(_job_id())
    deadline = time.monotonic() + APPLY_WAIT_S
    while True:
        value: Any = internal_kv._internal_kv_get(key, namespace=KV_NAMESPACE)
        if value is not None:
            set_variables(json.loads(value))
            return
        if time.monotonic() >= deadline:
            # the payload ended (and withdrew them) before this worker started: nothing will
            # run here that needs them; never stop the worker over it
            log.warning("shoal: the job's environment variables were not found after %.0f s", APPLY_WAIT_S)
            return
        time.sleep(0.05)


def set_variables(variables: dict[str, str]) -> None:
    """Set ``variables`` in this process; a ``PYTHONPATH`` among them also goes on ``sys.path``
    (first), as it would have at the interpreter's start. Variables read only when a process
    starts (``PYTHONHASHSEED``, ``LD_PRELOAD``...) cannot take effect in a running worker."""
    os.environ.update(variables)
    extra = [p for p in variables.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    sys.path[0:0] = extra


def variables_here() -> dict[str, str]:
    """The user's variables as this process has them (payload or worker), by their names."""
    names = [n for n in os.environ.get(NAMES_VAR, "").split(",") if n]
    return {name: os.environ[name] for name in names if name in os.environ}
