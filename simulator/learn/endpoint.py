"""The capturing endpoint of `sshsim learn`: an asyncssh SSH server on 127.0.0.1 that records.

It plays a permissive server so that a client shows everything it does: any public key is
accepted (and the host-bound form OpenSSH uses when offered), the password is the one printed
(a wrong one is refused, so a client's retry is recorded too), keyboard-interactive asks one
"Password: " prompt and takes the same password. Sessions get what a real server gives without
running anything: exec answers a line and exit status 0 (`sshsim-learn-data N`: N bytes, so
the client's window adjusts show), a shell echoes its input until "exit"
or EOF, pty, env, x11-req and agent requests are accepted, `subsystem sftp` is asyncssh's SFTP
server confined to an empty folder of the run, direct-tcpip is refused, and global requests are
answered as asyncssh does (refused when a reply is wanted). It names itself like OpenSSH's sshd
(`SERVER_VERSION`) because clients choose behaviour by the server's banner (OpenSSH sends
no-more-sessions only to OpenSSH servers; PuTTY applies its bug workarounds by it).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from simulator.learn.hook import Recorder, attach
from simulator.limits import MAX_LEARN_DATA_OUTPUT

SERVER_VERSION = "OpenSSH_9.2p1 sshsim-learn"
DEFAULT_USER = "user"
DEFAULT_PASSWORD = "sshsim-learn"
KBDINT_PROMPT = "Password: "
EXEC_SECONDS = 0.2


@dataclass
class Recording:
    """One client connection as recorded: its packets and where it came from."""

    number: int
    peer: str
    recorder: Recorder


class _Server(asyncssh.SSHServer):
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.recording: Recording | None = None
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        recorder = attach(conn)
        peer = conn.get_extra_info("peername") or ("?", 0)
        self.recording = self.endpoint._opened(recorder, f"{peer[0]}:{peer[1]}")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.recording is None:
            return
        recorder = self.recording.recorder
        version = str(self.conn and self.conn.get_extra_info("client_version") or "")
        recorder.client_version = version.split("-", 2)[2] if version.count("-") >= 2 else version
        if any(p.direction == "in" and p.msg == 1 for p in recorder.packets):
            recorder.ended = "disconnect"
        elif isinstance(exc, ConnectionResetError):
            recorder.ended = "reset"
        else:
            recorder.ended = "drop"
        self.endpoint._closed(self.recording)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return password == self.endpoint.password

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return True

    def kbdint_auth_supported(self) -> bool:
        return True

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> Any:
        return "", "", "", [(KBDINT_PROMPT, False)]

    def validate_kbdint_response(self, username: str, responses: Any) -> bool:
        return list(responses) == [self.endpoint.password]

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        return False  # direct-tcpip: recorded, then refused (nothing is forwarded anywhere)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False


def _finish(process: asyncssh.SSHServerProcess) -> None:
    """End a session as sshd does: EOF, exit-status 0, CLOSE (a client's answer to the EOF shows)."""
    try:
        process.stdout.write_eof()
    except (OSError, asyncssh.Error):
        pass
    process.exit(0)


class _ConfinedSFTP(asyncssh.SFTPServer):
    """asyncssh's SFTP server in the run's empty folder (its chroot maps every path there), with
    no way out and a bounded size: the endpoint runs as root and takes any key, so no client may
    make a link to elsewhere or fill the disk."""

    written = 0

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are refused by sshsim learn")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise asyncssh.SFTPPermissionDenied("links are refused by sshsim learn")

    def write(self, file_obj: object, offset: int, data: bytes) -> Any:
        _ConfinedSFTP.written += len(data)
        if _ConfinedSFTP.written > MAX_LEARN_DATA_OUTPUT:
            raise asyncssh.SFTPFailure(f"sshsim learn keeps at most {MAX_LEARN_DATA_OUTPUT} bytes of uploads")
        return super().write(file_obj, offset, data)


async def _session(process: asyncssh.SSHServerProcess) -> None:
    """exec: one line and status 0; a shell: echo until `exit` or EOF."""
    try:
        bulk = re.fullmatch(r"sshsim-learn-data (\d{1,9})", (process.command or "").strip())
        if bulk is not None:
            # Output to record how the client opens its window (WINDOW_ADJUST, PuTTY's winadj@).
            left = min(int(bulk.group(1)), MAX_LEARN_DATA_OUTPUT)
            while left > 0:
                chunk = min(left, 32768)
                process.stdout.write("x" * chunk)
                await process.stdout.drain()
                left -= chunk
            _finish(process)
            return
        if process.command is not None:
            # As long as a short command runs under sshd: a client that ends its input by
            # itself (stdin at its end) sends its EOF before the server's.
            await asyncio.sleep(EXEC_SECONDS)
            process.stdout.write("sshsim learn: exec recorded\r\n" if process.get_terminal_type()
                                 else "sshsim learn: exec recorded\n")
            _finish(process)
            return
        process.stdout.write("sshsim learn: shell recorded; type exit to end\r\n")
        while True:
            line = await process.stdin.readline()
            if not line or line.strip() == "exit":
                # A shell takes a moment to exit: what the client sends right after its input
                # (an EOF) arrives before the server's EOF, as it does with sshd.
                await asyncio.sleep(EXEC_SECONDS)
                break
            process.stdout.write(line)
        _finish(process)
    except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, asyncssh.SignalReceived):
        _finish(process)
    except (OSError, asyncssh.Error):
        process.close()


class Endpoint:
    """The server, started with `async with Endpoint(...) as endpoint`; `recordings` in order.

    `on_close(recording)` is called as each connection ends (the command counts sessions there).
    The run folder (`workdir`) holds the SFTP root and, for clients run by the tests, the host
    key's public half and a client key; it is removed on exit."""

    def __init__(self, *, port: int = 0, user: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD,
                 on_close: Callable[[Recording], None] | None = None) -> None:
        self.port = port
        self.host = "127.0.0.1"
        self.user = user
        self.password = password
        self.on_close = on_close
        self.recordings: list[Recording] = []
        self.open = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._server: Any = None
        self.workdir = Path(tempfile.mkdtemp(prefix="sshsim-learn-"))

    @property
    def fingerprint(self) -> str:
        return str(self.host_key.get_fingerprint("sha256"))

    def identity(self, user: str) -> Path:
        """A client key file (OpenSSH format), for clients that need one to log in (the tests)."""
        path = self.workdir / "client_key"
        if not path.exists():
            asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
            path.chmod(0o600)
        return path

    async def __aenter__(self) -> Endpoint:
        root = self.workdir / "sftp-root"
        root.mkdir()
        keys = self.workdir / "hostkeys"
        keys.mkdir()
        self.host_key.write_public_key(str(keys / "ssh_host_ed25519_key.pub"))
        try:
            self._server = await asyncssh.create_server(
                lambda: _Server(self), self.host, self.port, server_host_keys=[self.host_key],
                server_version=SERVER_VERSION, process_factory=_session,
                sftp_factory=lambda chan: _ConfinedSFTP(chan, chroot=str(root).encode()),
                allow_scp=False, x11_forwarding=True, agent_forwarding=True, encoding="utf-8",
                # asyncssh records each accepted X11 request's cookie in an xauth file: the run's,
                # never the user's ~/.Xauthority.
                x11_auth_path=str(self.workdir / "Xauthority"),
                line_editor=False, keepalive_interval=0)
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _opened(self, recorder: Recorder, peer: str) -> Recording:
        recording = Recording(len(self.recordings) + 1, peer, recorder)
        self.recordings.append(recording)
        self.open += 1
        self.idle.clear()
        return recording

    def _closed(self, recording: Recording) -> None:
        self.open -= 1
        if self.open == 0:
            self.idle.set()
        if self.on_close is not None:
            self.on_close(recording)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Until every connection so far has ended (at most `timeout` seconds)."""
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
        except TimeoutError:
            pass
