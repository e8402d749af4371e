"""Stand in for Ray's dashboard agent on a node of a local pool without the dashboard:
``python -I -S agent_stand_in.py``, started by the node's raylet.

Ray's raylet insists on starting a dashboard agent and stops when it exits. The agent serves the
dashboard (node stats, logs, metrics for Prometheus, Ray Jobs); a pool without the dashboard uses
none of that, and the agent costs each node about 1.8 s of CPU while the pool starts, more than
the raylet and the GCS together (decision 42). This process takes its place: it lives while
the raylet that started it lives and exits when it is gone, and imports nothing but ``os`` and
``time``, so it starts in milliseconds. It is started with the interpreter's isolated mode and
without ``site``, by path, which is why it imports nothing from shoal.

Runs on a node of the local pool, as a child of the raylet.
"""

from __future__ import annotations

import os
import time

POLL_S = 1.0


def main() -> None:
    """Wait while the parent (the raylet) lives; return once this process was re-parented."""
    raylet = os.getppid()
    while os.getppid() == raylet:
        time.sleep(POLL_S)


if __name__ == "__main__":
    main()
