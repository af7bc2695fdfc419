"""Key exchange algorithms that asyncssh lacks without liboqs: sntrup761x25519-sha512.

Call `register()` once before connecting (it is idempotent and thread-safe). When asyncssh found
liboqs it has already registered both names with the C implementation, and that is kept; only
otherwise are they registered with the pure-Python KEM in `simulator.kex.sntrup761`, and the
background key pair pool is started so that client key exchanges do not wait for key generation.
"""

from __future__ import annotations

import threading
from typing import Literal

Backend = Literal["liboqs", "python"]

SNTRUP_KEX_ALGS = ("sntrup761x25519-sha512@openssh.com", "sntrup761x25519-sha512")

_lock = threading.Lock()
_backend: Backend | None = None


def liboqs_available() -> bool:
    """Whether asyncssh loaded liboqs with sntrup761 (then it registered the names itself)."""
    # imported here: start-up cost: asyncssh only when key exchanges are registered
    from asyncssh.crypto import sntrup_available

    return bool(sntrup_available)


def register(prefill: bool = True) -> Backend:
    """Make the sntrup761x25519 key exchanges available to asyncssh; returns the backend used.

    `prefill` starts filling the key pair pool now rather than at the first connection, so the
    first connections already find key pairs ready.
    """
    global _backend
    with _lock:
        if _backend is None:
            if liboqs_available():
                _backend = "liboqs"
            else:
                # imported here: start-up cost: the pure-Python KEM only when liboqs is missing
                from simulator.kex.asyncssh_kex import register_python_kex

                register_python_kex()
                _backend = "python"
        if _backend == "python" and prefill:
            # imported here: start-up cost: the pure-Python KEM only when liboqs is missing
            from simulator.kex.asyncssh_kex import keypair_pool

            keypair_pool().start()
        return _backend


def registered_backend() -> Backend | None:
    """The backend chosen by `register()`, or None before it ran."""
    return _backend
