"""What every ``wait(timeout=...)`` accepts: seconds, or -1/None for no limit.

Runs wherever a wait runs (the driver, a job's payload).
"""

from __future__ import annotations

import math

from shoal.errors import ConfigError


def check_timeout(timeout: object, what: str) -> float | None:
    """``timeout`` in seconds, or None for no limit (None or any negative number, as in the
    reference's ``wait(timeout=-1)``); :class:`ConfigError` for anything that is not a number."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
        raise ConfigError(
            f"{what}: timeout must be a number of seconds, or -1 to wait without a limit; got {timeout!r}"
        )
    return None if timeout < 0 else float(timeout)
