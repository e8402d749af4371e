"""Waiting on a job that runs shoal's own work for a caller: training, a tuning search.

:func:`wait_for_payload` gives the job's result; when the payload raised one of shoal's own
errors (a :class:`~shoal.errors.TrainingError`, a :class:`~shoal.errors.ConfigError`, ...), that
error is raised in the caller as it is, with a note naming the job and where its logs are, rather
than wrapped in the job's ``RuntimeError``. Ctrl-C while waiting cancels the job.

Runs on the driver.
"""

from __future__ import annotations

from typing import Any


def wait_for_payload(job: Any, errors: tuple[type[BaseException], ...], what: str, pool: str) -> Any:
    """``job.result()``; the payload's own ``errors`` re-raised with a note (``what`` job ``id``
    on compute pool ``pool``; logs: ``shoal job logs id``)."""
    try:
        return job.result()
    except RuntimeError as exc:
        cause = exc.__cause__
        if isinstance(cause, errors):
            cause.add_note(f"({what} job {job.id} on compute pool {pool}; logs: shoal job logs {job.id})")
            raise cause from cause.__cause__
        raise
    except KeyboardInterrupt:
        job.cancel()
        raise
