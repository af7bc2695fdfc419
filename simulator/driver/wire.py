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

from simulator.driver.runner import connect_profiled
from simulator.kex.kexinit import hassh, parse_kexinit
from simulator.limits import MAX_KEXINIT
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


class KexinitListener:
    """A one-shot listener on 127.0.0.1 that records the first client's banner and KEXINIT.

    Any client can be pointed at `port`: the profiled driver (capture_kexinit) or a real one run
    as a subprocess (tests/test_real_clients.py), so both are measured by the same bytes-to-HASSH
    path.
    """

    def __init__(self) -> None:
        self.got: asyncio.Future[KexinitCapture] = asyncio.get_running_loop().create_future()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def __aenter__(self) -> KexinitListener:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(SERVER_BANNER)
            await writer.drain()
            banner = (await reader.readline()).decode("ascii", "replace").strip()
            header = await reader.readexactly(5)
            length, padding = struct.unpack(">IB", header)
            if not 1 + padding <= length <= MAX_KEXINIT:
                raise ValueError(f"packet length {length} is no KEXINIT")
            body = await reader.readexactly(length - 1)
            payload = body[: length - 1 - padding]
            lists = parse_kexinit(payload)
            version = banner.split("-", 2)[2] if banner.count("-") >= 2 else banner
            if not self.got.done():
                self.got.set_result(KexinitCapture(version, lists.kex, lists.host_key, lists.encryption_c2s,
                                                   lists.mac_c2s, lists.compression_c2s))
        except Exception as exc:  # report it to the waiting side rather than lose it
            if not self.got.done():
                self.got.set_exception(exc)
        finally:
            writer.close()


async def capture_kexinit(profile: ClientProfile, timeout: float = 10.0) -> KexinitCapture:
    """Connect the profiled driver to a one-shot local listener and record its KEXINIT."""
    async with KexinitListener() as listener:
        attempt = asyncio.ensure_future(connect_profiled("127.0.0.1", listener.port, profile,
                                                         username="capture", client_keys=None))
        try:
            return await asyncio.wait_for(listener.got, timeout)
        finally:
            attempt.cancel()
            try:
                await attempt
            except (asyncio.CancelledError, asyncssh.Error, OSError):
                pass
