"""Where a private sshd listens: loopback addresses this machine can bind, and a free port.

Both targets use it (the local one for its sshd, the Docker one for the host side of its port
mapping), so it lives here rather than in either.
"""

from __future__ import annotations

import socket

from simulator.errors import BadInputError, TargetError


def free_port(addresses: tuple[str, ...]) -> int:
    """A TCP port free on every listen address (we bind and release; sshd binds right after)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addresses[0] if ":" not in addresses[0] else "127.0.0.1", 0))
            port = s.getsockname()[1]
        if all(_port_free(a, port) for a in addresses):
            return port
    raise TargetError("no free TCP port found on loopback")


def _port_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((address, port))
        return True
    except OSError:
        return False


def usable_listen_addresses(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """Drop ::1 where the machine has no IPv6 loopback (sshd would fail to bind it)."""
    usable = tuple(a for a in wanted if _port_free(a, 0))
    if not usable:
        raise TargetError(f"none of the listen addresses {', '.join(wanted)} can be bound")
    return usable


FIRST_UNPRIVILEGED_PORT = 1024


def chosen_port(port: int, addresses: tuple[str, ...]) -> int:
    """A port the user chose (`sshsim sshd --port`): kept only when it is 1024 or above and free
    on every loopback address; a privileged port would be a host service's (22 is the host's
    own sshd), so sshsim never listens there."""
    if not FIRST_UNPRIVILEGED_PORT <= port <= 65535:
        raise BadInputError(f"port {port}: the private sshd listens only on a free port from "
                            f"{FIRST_UNPRIVILEGED_PORT} to 65535 on loopback (leave it out for a free one)",
                            key="--port")
    if not all(_port_free(a, port) for a in addresses):
        raise BadInputError(f"port {port} is in use on loopback; choose another or leave it out for a free one",
                            key="--port")
    return port
