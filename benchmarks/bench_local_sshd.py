"""Local target: time from start to ready, and one full connection, asyncssh vs OpenSSH's ssh.

Both clients connect to the same private sshd in the same run, so the ratio is meaningful on a
shared, noisy machine. Prints ready_ms= (host keys kept, as every start after the first),
ready_fresh_keys_ms= (host keys generated at the start, as before they were kept: the baseline)
and ratio_ready_kept_vs_fresh=, then conn_ms=, conn_cpu_ms=, ssh_conn_ms=, ssh_conn_cpu_ms= and
ratio_ssh_vs_asyncssh= (ssh's wall time divided by asyncssh's). Goal (issue 20): ready under 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile

from _common import QUICK, Clock, emit, median

import asyncssh

from simulator.target.base import ServerSpec
from simulator.target.hostkeys import forget_kept
from simulator.target.local import LocalSshd

STARTS = 3 if QUICK else 20
CONNECTIONS = 3 if QUICK else 20


def bench_ready(fresh_keys: bool) -> float:
    """Median start-to-ready; `fresh_keys`: an empty key cache at every start (the baseline)."""
    times = []
    with tempfile.TemporaryDirectory(prefix="sshsim-bench-") as scratch:
        os.environ["SSHSIM_CACHE"] = scratch
        forget_kept()
        LocalSshd(ServerSpec(log_level="INFO")).start().stop()  # warm-up (and the kept keys made)
        for n in range(STARTS):
            if fresh_keys:
                os.environ["SSHSIM_CACHE"] = os.path.join(scratch, str(n))
                forget_kept()
            with Clock() as clock:
                server = LocalSshd(ServerSpec(log_level="INFO")).start()
            times.append(clock.wall * 1000)
            server.stop()
    forget_kept()
    return median(times)


async def asyncssh_connection(server: LocalSshd) -> None:
    async with asyncssh.connect(server.host, server.port, username="user", known_hosts=None,
                                client_keys=[str(server.identity("user"))]) as conn:
        await conn.run("true", check=True)


def ssh_connection(server: LocalSshd) -> None:
    subprocess.run(["ssh", "-F", "/dev/null", "-i", str(server.identity("user")), "-p", str(server.port),
                    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                    "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"user@{server.host}", "true"],
                   check=True, stdin=subprocess.DEVNULL)


def main() -> None:
    cache = os.environ.get("SSHSIM_CACHE")
    ready = bench_ready(fresh_keys=False)
    ready_fresh = bench_ready(fresh_keys=True)
    if cache is None:
        os.environ.pop("SSHSIM_CACHE", None)
    else:
        os.environ["SSHSIM_CACHE"] = cache
    with LocalSshd(ServerSpec(log_level="INFO")) as server:
        asyncio.run(asyncssh_connection(server))  # warm-up: imports, key loading
        walls, cpus, ssh_walls, ssh_cpus = [], [], [], []
        for _ in range(CONNECTIONS):
            with Clock() as c:
                asyncio.run(asyncssh_connection(server))
            walls.append(c.wall * 1000)
            cpus.append(c.cpu * 1000)
            with Clock() as c:
                ssh_connection(server)
            ssh_walls.append(c.wall * 1000)
            ssh_cpus.append(c.child_cpu * 1000)
    print(f"# sshd {server.version}; median of {STARTS} starts and {CONNECTIONS} connections each")
    emit("ready_ms", ready)
    emit("ready_fresh_keys_ms", ready_fresh)
    emit("ratio_ready_kept_vs_fresh", ready / ready_fresh)
    emit("conn_ms", median(walls))
    emit("conn_cpu_ms", median(cpus))
    emit("ssh_conn_ms", median(ssh_walls))
    emit("ssh_conn_cpu_ms", median(ssh_cpus))
    emit("ratio_ssh_vs_asyncssh", median(ssh_walls) / median(walls))


if __name__ == "__main__":
    main()
