"""Connections per second of the MoTTY flow (x11-req, pty-req, shell, exit) at concurrency 10,
against the local sshd, in the same run as OpenSSH's `ssh -X -tt` doing the same.

Each of the 10 concurrent slots logs in as its own user. With one user for all, sshd's xauth
calls for X11 contend for the same ~/.Xauthority lock (xauth backs off for whole seconds), and
both clients measure that server-side lock instead of themselves; those figures are printed
too, as same_user_*.

Prints conn_per_s=, ssh_conn_per_s= and ratio_vs_ssh= (our rate divided by ssh's), the CPU per
flow of our client and of sshd, and the same_user_* figures.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time

from _common import QUICK, cpu_seconds, emit

from simulator.driver.runner import ScenarioRunner
from simulator.scenario.model import ConnectionPlan, Scenario, SessionAction
from simulator.target.base import ServerSpec, UserSpec
from simulator.target.local import LocalSshd

CONCURRENCY = 10
TOTAL = 20 if QUICK else 100


def server_spec(users: int) -> ServerSpec:
    return ServerSpec(log_level="INFO", users=[UserSpec(name=f"user{i}", uid=1000 + i) for i in range(users)])


def motty_scenario(server: LocalSshd, count: int, users: int) -> Scenario:
    plans = [ConnectionPlan(id=f"m{i}", profile="motty-0.80", user=f"user{i % users}",
                            actions=[SessionAction(x11=True, pty=True, kind="shell", input="exit\n")])
             for i in range(count)]
    return Scenario(name="motty-bench", path="<bench>", server=server.spec, target="local",
                    connections=plans, expectations={})


async def our_rate(server: LocalSshd, total: int, users: int) -> float:
    runner = ScenarioRunner(motty_scenario(server, total, users), server, max_concurrency=CONCURRENCY)
    start = time.perf_counter()
    result = await runner.run()
    elapsed = time.perf_counter() - start
    if result.errors:
        raise SystemExit(f"driver errors: {result.errors[:3]}")
    return total / elapsed


async def ssh_rate(server: LocalSshd, users: int) -> float:
    limit = asyncio.Semaphore(CONCURRENCY)
    env = dict(os.environ, DISPLAY="127.0.0.1:99")  # -X needs a DISPLAY; no X server is contacted

    async def one(i: int) -> None:
        user = f"user{i % users}"
        async with limit:
            proc = await asyncio.create_subprocess_exec(
                "ssh", "-F", "/dev/null", "-X", "-tt", "-i", str(server.identity(user)), "-p", str(server.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                "-o", "LogLevel=ERROR", f"{user}@{server.host}",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                env=env)
            await proc.communicate(b"exit\n")
            if proc.returncode != 0:
                raise SystemExit(f"ssh exited {proc.returncode}")

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(TOTAL)))
    return TOTAL / (time.perf_counter() - start)


def measure(users: int) -> tuple[float, float, float, float]:
    """(our rate, ssh's rate, our client CPU per flow, sshd CPU per flow) with `users` users."""
    # Every sshd process is reaped up the chain (listener, namespace init, launcher) to us, so
    # RUSAGE_CHILDREN after the stop holds sshd's CPU: the server side of our flows.
    children0 = cpu_seconds(resource.RUSAGE_CHILDREN)
    with LocalSshd(server_spec(users)) as server:
        async def ours_measured() -> tuple[float, float]:
            await our_rate(server, CONCURRENCY, users)  # warm-up: imports, key pool, first handshakes
            self0 = cpu_seconds()
            rate = await our_rate(server, TOTAL, users)
            return rate, cpu_seconds() - self0

        ours, client_cpu = asyncio.run(ours_measured())
    sshd_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - children0
    with LocalSshd(server_spec(users)) as server:
        theirs = asyncio.run(ssh_rate(server, users))
    return ours, theirs, client_cpu * 1000 / TOTAL, sshd_cpu * 1000 / (TOTAL + CONCURRENCY)


def main() -> None:
    ours, theirs, client_ms, sshd_ms = measure(CONCURRENCY)
    same_ours, same_theirs, _, _ = measure(1)
    print(f"# {TOTAL} MoTTY flows (x11-req, pty-req, shell, exit) at concurrency {CONCURRENCY}, "
          f"one user per slot; sshd CPU includes {CONCURRENCY} warm-up flows")
    emit("conn_per_s", ours)
    emit("ssh_conn_per_s", theirs)
    emit("ratio_vs_ssh", ours / theirs)
    emit("client_cpu_ms_per_flow", client_ms)
    emit("sshd_cpu_ms_per_flow", sshd_ms)
    emit("same_user_conn_per_s", same_ours)
    emit("same_user_ssh_conn_per_s", same_theirs)
    emit("same_user_ratio_vs_ssh", same_ours / same_theirs)


if __name__ == "__main__":
    main()
