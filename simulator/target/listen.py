"""Where a private sshd listens: loopback addresses this machine can bind, and a free port.

Both targets use it (the local one for its sshd, the Docker one for the host side of its port
mapping), so it lives here rather than in either.
"""

from __future__ import annotations

import socket

from simulator.errors import TargetError


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
