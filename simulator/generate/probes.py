"""Scanners that never authenticate, played with a plain TCP socket against the real sshd.

The scenario language always speaks SSH through asyncssh; port scanners and banner grabbers do
less than that, and sshd logs them differently ("kex_exchange_identification: ...", "banner
exchange: ... invalid format", "Connection closed/reset by ... [preauth]"). These probes make
exactly those connections from a loopback address, so their lines too come from a real sshd.

Each probe reads everything sshd sent before it hangs up. A socket closed with unread data
sends a reset instead of a FIN, and sshd logs the two differently; leaving that to timing would
make the recording (and so the corpus) differ from run to run. banner-close resets on purpose
(SO_LINGER 0), as scanners that abort their connections do.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

PROBES = ("tcp-close", "banner-close", "bad-banner")


async def run_probe(kind: str, source: str, host: str, port: int, timeout: float = 10.0) -> int:
    """Make one scanner connection; return the client port it used."""
    if kind not in PROBES:
        raise ValueError(f"unknown probe {kind!r}")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(source, 0)), timeout)
    client_port = writer.get_extra_info("sockname")[1]
    try:
        # sshd's version line comes first; it sends nothing more until it gets one back.
        await asyncio.wait_for(reader.readline(), timeout)
        if kind == "banner-close":
            # A banner grabber: answer with a version line, take sshd's KEXINIT, abort.
            writer.write(b"SSH-2.0-Go\r\n")
            await writer.drain()
            length, = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), timeout))
            await asyncio.wait_for(reader.readexactly(length), timeout)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif kind == "bad-banner":
            # An HTTP scanner on port 22: sshd rejects the identification string and closes.
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            await writer.drain()
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(reader.read(), timeout)
        # tcp-close: a port scanner's connect, read the version, close.
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return client_port
