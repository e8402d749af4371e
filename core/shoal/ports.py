"""Free TCP ports, held open until the caller hands them on.

Runs wherever ports must be known before a process binds them: a training rank's rendezvous (a
training worker, or the process of a one-rank fit), a local pool's node launcher (its agents'
ports) and the dashboard started for a pool. Imports nothing of shoal, so a node launcher pays
nothing for it.

The ports are drawn from below the system's ephemeral range (``ip_local_port_range``, usually
32768-60999) and above Ray's worker ports (10002-19999): between the moment a port is released
and the moment its process binds it, no other process can be handed it by the OS for an outgoing
connection or a bind to port 0. A port the OS picked itself could be, and a pool's node once died
of it in CI (its runtime env agent could not bind; the raylet fate-shares with it). Where that
range is empty, the OS picks.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

#: Ray's workers listen on 10002-19999 by default (``min_worker_port``/``max_worker_port``).
LOWEST = 20000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
ATTEMPTS = 200


def chosen_range() -> range:
    """Where ports are drawn from: ``LOWEST`` up to the start of the ephemeral range."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(LOWEST, low)


def _bind(host: str, port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    return sock


def free_ports(count: int, host: str = "") -> tuple[list[int], list[socket.socket]]:
    """Bind ``count`` free ports on ``host`` (see the module docstring); close the sockets just
    before the ports are used, so no other process takes them meanwhile."""
    candidates = chosen_range()
    ports, sockets = [], []
    for _ in range(count):
        sock = None
        for _ in range(ATTEMPTS if len(candidates) else 0):
            sock = _bind(host, random.choice(candidates))
            if sock is not None:
                break
        if sock is None:
            sock = _bind(host, 0)
            if sock is None:
                raise OSError(f"no free TCP port on {host or 'any address'}")
        ports.append(sock.getsockname()[1])
        sockets.append(sock)
    return ports, sockets
