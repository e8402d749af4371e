"""Free TCP ports chosen by the OS, held open until the caller hands them on.

Runs wherever ports must be known before a process binds them: a training rank's rendezvous (a
training worker, or the process of a one-rank fit) and a local pool's node launcher (its agents'
ports). Imports nothing of shoal, so a node launcher pays nothing for it.
"""

from __future__ import annotations

import socket


def free_ports(count: int, host: str = "") -> tuple[list[int], list[socket.socket]]:
    """Bind ``count`` ports chosen by the OS on ``host``; close the sockets just before the ports
    are used, so no other process takes them meanwhile."""
    ports, sockets = [], []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        ports.append(sock.getsockname()[1])
        sockets.append(sock)
    return ports, sockets
