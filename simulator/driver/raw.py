"""A client that does no SSH (`raw:` in a scenario): what scanners, stalled logins and clients that
give up before their banner put on the wire.

sshd logs each of these differently by version (a connection closed before the banner exchange,
a LoginGraceTime expiry, a connection MaxStartups or PerSourcePenalties turns away), and asyncssh
cannot be made to stop short of its banner, so the socket is opened here directly. What the
server sends is read and thrown away (the version banner, "Not allowed at this time"): nothing is
kept, however long the hold.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from simulator.profiles import ClientProfile
from simulator.scenario.model import ConnectionPlan


async def play_raw(host: str, port: int, plan: ConnectionPlan, profile: ClientProfile, result: Any,
                   tracker: Any) -> None:
    """Connect from the plan's source, send the profile's banner line if asked, and hold the
    connection until the server closes it or `hold` seconds pass; then close it."""
    assert plan.raw is not None
    reader, writer = await asyncio.open_connection(host, port, local_addr=(plan.source, 0))
    started = time.monotonic()
    try:
        client_port = writer.get_extra_info("sockname")[1]
        result.port = client_port
        tracker.set_port(plan.id, client_port)
        if plan.raw.send_banner:
            writer.write(f"SSH-2.0-{profile.banner}\r\n".encode("ascii", "replace"))
            await writer.drain()
        if plan.raw.hold > 0:
            try:
                await asyncio.wait_for(_until_closed(reader), plan.raw.hold)
                result.failure = f"the server closed the connection after {time.monotonic() - started:.1f} s"
            except TimeoutError:
                pass
        else:
            await _close_first(writer, reader)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # reset by the server: the connection is gone all the same


# How long a client that closes at once waits for the server to close in turn (it does so as soon
# as it reads the end of the stream); a bound, not a measurement.
CLOSE_WAIT_SECONDS = 10.0


async def _close_first(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
    """Close at once, and so that sshd always sees the end of the stream: half-close (FIN), then
    read what the server sends until it closes. Closing the socket outright would leave the
    server's version banner unread whenever it had already arrived, and the kernel then resets
    the connection: sshd logs "read: Connection reset by peer" and "Connection reset by" in place
    of "Connection closed by remote host" and "Connection closed by", depending on timing (a CI
    run on a loaded machine saw it)."""
    try:
        writer.write_eof()
    except OSError:
        return  # the server has reset the connection already
    try:
        await asyncio.wait_for(_until_closed(reader), CLOSE_WAIT_SECONDS)
    except TimeoutError:
        pass


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Read and drop what the server sends until it closes (or resets) the connection."""
    try:
        while await reader.read(4096):
            pass
    except ConnectionError:
        pass
