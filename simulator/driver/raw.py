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
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # reset by the server: the connection is gone all the same


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Read and drop what the server sends until it closes (or resets) the connection."""
    try:
        while await reader.read(4096):
            pass
    except ConnectionError:
        pass
