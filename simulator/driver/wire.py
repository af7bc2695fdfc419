"""What the driver really puts on the wire for a profile: banner and client KEXINIT, and its HASSH.

A one-shot listener on 127.0.0.1 plays the server's side just far enough: it sends a version
line, reads the client's version line and first binary packet (the KEXINIT, unencrypted), then
hangs up. The HASSH is computed from those bytes, never from the profile file, so a profile
whose lists the driver fails to send shows up here.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

import asyncssh

from simulator.kex.kexinit import hassh, parse_kexinit
from simulator.profiles import ClientProfile

SERVER_BANNER = b"SSH-2.0-OpenSSH_9.2p1 sshsim-capture\r\n"


@dataclass(frozen=True)
class KexinitCapture:
    banner: str
    kex: list[str]
    host_key: list[str]
    encryption: list[str]
    mac: list[str]
    compression: list[str]

    @property
    def hassh(self) -> str:
        return hassh(self.kex, self.encryption, self.mac, self.compression)


async def capture_kexinit(profile: ClientProfile, timeout: float = 10.0) -> KexinitCapture:
    """Connect the profiled driver to a one-shot local listener and record its KEXINIT."""
    from simulator.driver.runner import connect_profiled

    got: asyncio.Future[KexinitCapture] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(SERVER_BANNER)
            await writer.drain()
            banner = (await reader.readline()).decode("ascii", "replace").strip()
            header = await reader.readexactly(5)
            length, padding = struct.unpack(">IB", header)
            body = await reader.readexactly(length - 1)
            payload = body[: length - 1 - padding]
            lists = parse_kexinit(payload)
            version = banner.split("-", 2)[2] if banner.count("-") >= 2 else banner
            if not got.done():
                got.set_result(KexinitCapture(version, lists.kex, lists.host_key, lists.encryption_c2s,
                                              lists.mac_c2s, lists.compression_c2s))
        except Exception as exc:  # report it to the waiting side rather than lose it
            if not got.done():
                got.set_exception(exc)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        attempt = asyncio.ensure_future(connect_profiled("127.0.0.1", port, profile, username="capture",
                                                         client_keys=None))
        capture = await asyncio.wait_for(got, timeout)
        attempt.cancel()
        try:
            await attempt
        except (asyncio.CancelledError, asyncssh.Error, OSError):
            pass
        return capture
    finally:
        server.close()
        await server.wait_closed()
