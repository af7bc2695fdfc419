"""Capture real sshd logs from the local target at several LogLevels (regenerates fixtures).

    python tests/data/capture_local_logs.py [OUTDIR]

Runs the private local sshd (simulator.target.local, root and mount namespaces needed) once per
LogLevel and drives a fixed set of client behaviours with asyncssh: key, password and
keyboard-interactive logins, failures, exec, shell with a pty, env, sftp, port forwarding,
an unsupported key exchange, a non-SSH banner, a silent client. Every line written to the
output files is what sshd logged (classic syslog form, as rsyslog writes it).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import asyncssh

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from simulator.target.base import ServerSpec, UserSpec  # noqa: E402
from simulator.target.local import LocalSshd  # noqa: E402

LEVELS = ("INFO", "VERBOSE", "DEBUG1", "DEBUG3")
PASSWORD = "correct-horse"


class _WrongPassword(asyncssh.SSHClient):
    """Keeps offering a wrong password until sshd gives up (MaxAuthTries)."""

    def password_auth_requested(self) -> str:
        return "wrong-password"


async def _try(coro) -> None:  # noqa: ANN001
    try:
        await asyncio.wait_for(coro, 20)
    except (asyncssh.Error, OSError, asyncio.TimeoutError, ValueError):
        pass


async def behaviours(server: LocalSshd, quick: bool = False) -> None:
    """Drive the client behaviours against `server`; ``quick`` skips the slow failures."""
    host, port = server.host.strip("[]"), server.port
    key = [str(server.identity("user"))]
    common = dict(host=host, port=port, known_hosts=None)

    async def key_exec() -> None:
        async with asyncssh.connect(username="user", client_keys=key, **common) as c:
            await c.run("echo hello", env={"LANG": "C"})

    async def key_shell_pty() -> None:
        async with asyncssh.connect(username="user", client_keys=key, **common) as c:
            proc = await c.create_process(term_type="xterm", term_size=(80, 24))
            proc.stdin.write("exit\n")
            await proc.wait()

    async def key_sftp() -> None:
        async with asyncssh.connect(username="user", client_keys=key, **common) as c:
            async with c.start_sftp_client() as sftp:
                await sftp.listdir(".")

    async def key_forward() -> None:
        echo = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        target = echo.sockets[0].getsockname()[1]
        try:
            async with asyncssh.connect(username="user", client_keys=key, **common) as c:
                reader, writer = await c.open_connection("127.0.0.1", target)
                writer.close()
                await asyncio.sleep(0.1)
                listener = await c.forward_remote_port("127.0.0.1", 0, "127.0.0.1", target)
                listener.close()
        finally:
            echo.close()

    async def password_ok() -> None:
        async with asyncssh.connect(username="user", password=PASSWORD, client_keys=None, **common) as c:
            await c.run("true")

    async def kbdint_ok() -> None:
        async with asyncssh.connect(
            username="user", password=PASSWORD, client_keys=None,
            preferred_auth="keyboard-interactive", **common,
        ) as c:
            await c.run("true")

    async def password_wrong_until_limit() -> None:
        conn, _ = await asyncssh.create_connection(
            _WrongPassword, username="user", client_keys=None,
            preferred_auth="password", **common,
        )
        conn.close()

    async def invalid_user() -> None:
        async with asyncssh.connect(username="nosuchuser", password="x", client_keys=None, **common):
            pass

    async def kex_mismatch() -> None:
        async with asyncssh.connect(username="user", client_keys=key, kex_algs=["diffie-hellman-group1-sha1"], **common):
            pass

    async def raw(data: bytes, linger: float) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.create_connection((host, port))
        sock.setblocking(False)
        try:
            if data:
                await loop.sock_sendall(sock, data)
            await asyncio.sleep(linger)
        finally:
            sock.close()

    steps = [key_exec, key_shell_pty, key_sftp, key_forward, password_ok, kbdint_ok]
    if not quick:
        steps += [password_wrong_until_limit, invalid_user]
    steps += [kex_mismatch]
    for step in steps:
        await _try(step())
        await asyncio.sleep(0.05)
    for data, linger in ((b"GET / HTTP/1.0\r\n\r\n", 0.3), (b"", 0.2), (b"SSH-2.0-Probe_1.0\r\n", 0.3)):
        await _try(raw(data, linger))


def server_spec(level: str) -> ServerSpec:
    """The target configuration the fixtures were captured with."""
    return ServerSpec(
        log_level=level,
        users=[UserSpec(password=PASSWORD)],
        overrides=["MaxAuthTries 3", "PasswordAuthentication yes", "KbdInteractiveAuthentication yes"],
    )


def capture(level: str, out: Path) -> int:
    spec = server_spec(level)
    server = LocalSshd(spec).start()
    try:
        asyncio.run(behaviours(server))
        server.wait_idle()
        lines = [r.classic(spec.host_name) for r in server.log.records]
    finally:
        server.stop()
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def main() -> None:
    outdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "local"
    outdir.mkdir(parents=True, exist_ok=True)
    for level in LEVELS:
        path = outdir / f"sshd-9.2-{level.lower()}.log"
        print(f"{path}: {capture(level, path)} lines")


if __name__ == "__main__":
    main()
