"""Figures for the Docker target: container start and stop, connections, log relay, disk use.

    DOCKER_HOST=unix:///... python benchmarks/bench_docker.py [--images debian-12,debian-13] [--starts 5]

Needs a reachable engine (see docker/podman-engine.sh); builds the images when missing (that
build time is reported separately). Only loopback traffic; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path

import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.target import images  # noqa: E402
from simulator.target.base import ServerSpec  # noqa: E402
from simulator.target.docker import DockerSshd, connect  # noqa: E402


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})"


def bench_starts(client: object, image: str, count: int) -> None:
    steps: dict[str, list[float]] = {"image": [], "prepare": [], "run": [], "ready": []}
    total, stop = [], []
    for _ in range(count):
        server = DockerSshd(ServerSpec(), image, client=client)
        began = time.monotonic()
        server.start()
        total.append(time.monotonic() - began)
        for name, values in steps.items():
            values.append(server.timings[name])
        began = time.monotonic()
        server.stop()
        stop.append(time.monotonic() - began)
    print(f"  start() to sshd ready: {median_ms(total)}")
    print(f"    image check:                        {median_ms(steps['image'])}")
    print(f"    host keys (RSA 3072 too), files:    {median_ms(steps['prepare'])}")
    print(f"    container create and start (API):   {median_ms(steps['run'])}")
    print(f"    until sshd's pid file:              {median_ms(steps['ready'])}")
    print(f"  stop and removal: {median_ms(stop)}")


async def bench_connections(client: object, image: str) -> None:
    spec = ServerSpec(host_key_types=("ed25519",))
    async with DockerSshd(spec, image, client=client) as server:
        args = dict(host="127.0.0.1", port=server.port, username="user",
                    client_keys=[str(server.identity("user"))], known_hosts=None)

        async def one() -> None:
            async with asyncssh.connect(**args) as conn:
                await conn.run("true", check=True)

        times = []
        for _ in range(20):
            began = time.monotonic()
            await one()
            times.append(time.monotonic() - began)
        print(f"  connection (kex, key auth, exec true, close), sequential: {median_ms(times)}")
        began = time.monotonic()
        for _ in range(3):
            await asyncio.gather(*(one() for _ in range(10)))
        elapsed = time.monotonic() - began
        print(f"  30 connections at concurrency 10: {30 / elapsed:.1f} conn/s")
        await asyncio.to_thread(server.wait_idle)
        print(f"  log lines captured (LogLevel DEBUG1): {len(server.log.records)}")


def bench_relay(client: object, image: str, count: int = 20000) -> None:
    with DockerSshd(ServerSpec(host_key_types=("ed25519",)), image, client=client) as server:
        assert server.workdir is not None
        devlog = server.workdir / "run" / "devlog"
        before = len(server.log.records)
        began = time.monotonic()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as out:
            out.connect(str(devlog))
            for i in range(count):
                out.send(f"<86>Nov  5 08:00:01 bench[99]: line {i} {'x' * 150}".encode())
        server.log.flush(timeout=60)
        elapsed = time.monotonic() - began
        got = len(server.log.records) - before
        print(f"  relay sshd -> rsyslog -> receiver: {got}/{count} lines in {elapsed:.2f} s "
              f"({got / elapsed:.0f} lines/s)")


def disk_use(client: object, names: list[str]) -> None:
    for name in names:
        ref, info = images.resolve(name)
        image = client.images.get(ref)  # type: ignore[attr-defined]
        base = client.images.get(info.base) if info else None  # type: ignore[attr-defined]
        size = image.attrs.get("Size") or image.attrs.get("VirtualSize") or 0
        base_size = (base.attrs.get("Size") or 0) if base is not None else 0
        print(f"  {ref}: {size / 1e6:.0f} MB ({(size - base_size) / 1e6:.0f} MB above {info.base if info else '?'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="debian-12,debian-13")
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    client = connect()
    names = [n.strip() for n in args.images.split(",") if n.strip()]
    for name in names:
        began = time.monotonic()
        images.ensure_image(client, name)
        print(f"{name}: image ready in {time.monotonic() - began:.1f} s (a build when missing or stale)")
        bench_starts(client, name, args.starts)
        asyncio.run(bench_connections(client, name))
        bench_relay(client, name)
    print("disk use:")
    disk_use(client, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
