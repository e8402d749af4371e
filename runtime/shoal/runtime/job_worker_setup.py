"""What every Ray worker of a job does when it starts: Ray's ``worker_process_setup_hook``.

The payload process (:mod:`shoal.runtime.job_launcher`) names :func:`setup` in the job's
runtime env. It makes Snowpark's session lookups find the job's session
(:mod:`shoal.data.job_session`, lazy: nothing is imported until the code imports Snowpark) and
sets the user's environment variables when the job has some (:mod:`shoal.runtime.job_env`).

Runs in every Ray worker of a job, on any node.
"""

from __future__ import annotations

import os

#: The runtime env's ``worker_process_setup_hook``: a module path, never a value.
SETUP_HOOK = "shoal.runtime.job_worker_setup.setup"


def setup() -> None:
    from shoal.data import job_session
    from shoal.runtime import job_env

    job_session.install()
    if os.environ.get(job_env.NAMES_VAR):
        job_env.apply()
