"""Free TCP ports for a training rank's rendezvous, held open until the framework binds them.

Runs wherever a rank starts: a training worker, or the process of a one-rank fit.
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
