"""Local target: time from start to ready, and one full connection, asyncssh vs OpenSSH's ssh.

Both clients connect to the same private sshd in the same run, so the ratio is meaningful on a
shared, noisy machine. Prints ready_ms=, conn_ms=, conn_cpu_ms=, ssh_conn_ms=, ssh_conn_cpu_ms=
and ratio_ssh_vs_asyncssh= (ssh's wall time divided by asyncssh's).
"""

from __future__ import annotations

import asyncio
import subprocess

from _common import QUICK, Clock, emit, median

import asyncssh

from simulator.target.base import ServerSpec
from simulator.target.local import LocalSshd

STARTS = 3 if QUICK else 20
CONNECTIONS = 3 if QUICK else 20


def bench_ready() -> float:
    times = []
    for _ in range(STARTS):
        with Clock() as clock:
            server = LocalSshd(ServerSpec(log_level="INFO")).start()
        times.append(clock.wall * 1000)
        server.stop()
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
    ready = bench_ready()
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
    emit("conn_ms", median(walls))
    emit("conn_cpu_ms", median(cpus))
    emit("ssh_conn_ms", median(ssh_walls))
    emit("ssh_conn_cpu_ms", median(ssh_cpus))
    emit("ratio_ssh_vs_asyncssh", median(ssh_walls) / median(walls))


if __name__ == "__main__":
    main()
