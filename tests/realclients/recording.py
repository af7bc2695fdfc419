"""The real clients recorded by `sshsim learn`'s endpoint, through the real-clients suite's flows.

Shared by tests/test_learn.py (a shipped profile held to its real client) and
tools/relearn-profiles.py (the shipped profiles regenerated with `learn --update`'s code): the
flows are the harness's, each client run as harness._run_one runs it (a terminal for typed
passwords), in a thread so the endpoint's event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from simulator.learn.check import recorded
from simulator.learn.endpoint import Endpoint
from simulator.learn.record import ConnectionFacts
from tests.realclients import harness

# Shipped profile -> (harness client, flows its real program runs). PuTTY's two programs are two
# profiles: plink has no SFTP, psftp no exec or shell.
SHIPPED = {
    "openssh-9.2-debian": ("openssh", harness.FLOWS),
    "plink-0.78": ("putty", ("exec", "shell", "password")),
    "psftp-0.78": ("putty", ("sftp",)),
    "paramiko-3.4": ("paramiko-3.4", harness.FLOWS),
    "paramiko-5.1": ("paramiko-5.1", harness.FLOWS),
    "asyncssh-2.24.1": ("asyncssh", harness.FLOWS),
}


async def record_real(client: str, flows: tuple[str, ...], work: Path) -> list[ConnectionFacts]:
    """The real client doing `flows`, one connection each, against a fresh endpoint."""
    spec = harness.CLIENTS[client]
    work.mkdir(parents=True, exist_ok=True)
    async with Endpoint(password=harness.PASSWORD) as endpoint:
        for flow in flows:
            command = harness.real_command(spec, flow, endpoint, work)
            await asyncio.to_thread(harness._run_one, client, flow, command)
            await endpoint.wait_idle()
        return recorded(endpoint)
