"""The fidelity layer: every hook into asyncssh internals that impersonating a client needs.

asyncssh's public API sets the banner, algorithm preferences and channel windows. What it cannot
do, and what each hook here does (docs/asyncssh-hooks.md):

1. KEXINIT name-lists exactly as the real client sends them, including names asyncssh does not
   implement (offered, never negotiated) and with ext-info-c / kex-strict-c present or absent
   (asyncssh always adds both): `_send_kexinit` builds the packet from the profile's lists.
2. Strict KEX off when the client does not offer it: asyncssh turns it on whenever the server
   offers kex-strict-s, which for a client that did not offer kex-strict-c makes sshd report
   "Corrupted MAC on input". The KEXINIT handler clears it again after asyncssh has looked.
3. A negotiation check: if the server would pick a name the profile offers but asyncssh cannot
   do, fail with a clear message instead of a confusing protocol error.
4. The first local channel number (PuTTY starts at 256): the connection's `_next_recv_chan`.
5. Channel requests in any order with any want_reply, pipelined or not (`ScriptedChannel`).
6. The auth sequence: no "none" request first (paramiko), no unsigned publickey query before the
   signed request (paramiko), and a pause between sshd's PK_OK and the signed request, so a
   scenario can let another connection start while this one is still authenticating.

The hooks are installed once, on the classes, and act only on connections that carry a
`WireLists` (set from `SSHClient.connection_made`, before the version exchange), so plain
asyncssh connections in the same process are untouched. asyncssh is pinned to the exact version
these were written against; tests/test_fidelity.py covers each hook against a real sshd so an
upgrade that breaks one fails loudly.
"""

from __future__ import annotations

import asyncio
import binascii
import os
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncssh
from asyncssh import auth as _auth_mod
from asyncssh import compression, encryption, kex, mac, public_key
from asyncssh import connection as _conn_mod
from asyncssh.channel import SSHClientChannel
from asyncssh.constants import (
    EXTENDED_DATA_STDERR,
    MSG_CHANNEL_CLOSE,
    MSG_CHANNEL_EOF,
    MSG_CHANNEL_SUCCESS,
    MSG_CHANNEL_WINDOW_ADJUST,
    MSG_EXT_INFO,
    MSG_GLOBAL_REQUEST,
    MSG_IGNORE,
    MSG_SERVICE_ACCEPT,
    MSG_SERVICE_REQUEST,
    MSG_USERAUTH_FAILURE,
)
from asyncssh.misc import KeyExchangeFailed
from asyncssh.packet import Boolean, Byte, NameList, SSHPacket, String, UInt32
from asyncssh.stream import SSHClientStreamSession, SSHReader, SSHWriter

from simulator import kex as project_kex
from simulator.errors import EnvironmentProblem
from simulator.kex.kexinit import MSG_KEXINIT, parse_kexinit

PINNED_ASYNCSSH = "2.24.1"

# Channel request payload builders need these PTY mode bytes: end of modes only, like PuTTY
# sends a handful; sshd logs nothing about modes at DEBUG1, so the short form is faithful.
PTY_OP_END = b"\x00"


@dataclass(frozen=True)
class WireLists:
    """The KEXINIT name-lists to put on the wire, and what asyncssh can actually negotiate."""

    kex: tuple[bytes, ...]
    host_key: tuple[bytes, ...]
    encryption: tuple[bytes, ...]
    mac: tuple[bytes, ...]
    compression: tuple[bytes, ...]
    strict_kex: bool
    ext_info: bool
    implemented: dict[str, frozenset[bytes]]

    def packet(self) -> bytes:
        """The KEXINIT payload (without the message byte's framing), RFC 4253 section 7.1."""
        cookie = os.urandom(16)
        enc, mac, cmp = NameList(list(self.encryption)), NameList(list(self.mac)), NameList(list(self.compression))
        return b"".join((Byte(MSG_KEXINIT), cookie, NameList(list(self.kex)), NameList(list(self.host_key)),
                         enc, enc, mac, mac, cmp, cmp, NameList([]), NameList([]), Boolean(False), UInt32(0)))


def implemented_algorithms() -> dict[str, frozenset[bytes]]:
    """What this asyncssh (with the project's registered extras, e.g. sntrup761) can negotiate."""
    try:
        project_kex.register()
    except ImportError:
        pass
    return {
        "kex": frozenset(kex.get_kex_algs()),
        "host_key": frozenset(public_key.get_public_key_algs()) | frozenset(public_key.get_certificate_algs()),
        "encryption": frozenset(encryption.get_encryption_algs()),
        "mac": frozenset(mac.get_mac_algs()),
        "compression": frozenset(compression.get_compression_algs()),
    }


def negotiable(names: Sequence[str], implemented: frozenset[bytes]) -> list[str]:
    """The names asyncssh can do, in the profile's order (passed to asyncssh.connect)."""
    return [n for n in names if n.encode() in implemented]


# -- hooks on asyncssh's classes ----------------------------------------------------------------
_installed = False


def check_asyncssh() -> None:
    """Refuse to run the hooks on an asyncssh they were not written for."""
    needed = [
        (_conn_mod.SSHConnection, "_send_kexinit"),
        (_conn_mod.SSHConnection, "_process_kexinit"),
        (_conn_mod.SSHConnection, "_packet_handlers"),
        (SSHClientChannel, "_open"),
        (SSHClientChannel, "_send_request"),
        (SSHClientChannel, "_start_reading"),
        (SSHClientChannel, "_accept_data"),
        (_auth_mod._ClientPublicKeyAuth, "_start"),
        (_auth_mod._ClientPublicKeyAuth, "_send_signed_request"),
        (_conn_mod.SSHConnection, "send_packet"),
        (_conn_mod.SSHConnection, "send_userauth_request"),
        (_conn_mod.SSHClientConnection, "get_server_host_key"),
    ]
    missing = [f"{cls.__name__}.{name}" for cls, name in needed if not hasattr(cls, name)]
    if missing or asyncssh.__version__ != PINNED_ASYNCSSH:
        raise EnvironmentProblem(
            f"asyncssh {asyncssh.__version__} is installed but the fidelity hooks need {PINNED_ASYNCSSH}"
            + (f" (missing: {', '.join(missing)})" if missing else "")
            + f"; pip install asyncssh=={PINNED_ASYNCSSH}"
        )


def install_hooks() -> None:
    """Patch asyncssh's connection class once; the patches act only on profiled connections."""
    global _installed
    if _installed:
        return
    check_asyncssh()
    cls = _conn_mod.SSHConnection
    original_send = cls._send_kexinit
    original_process = cls._packet_handlers[MSG_KEXINIT]

    def _send_kexinit(self: Any) -> None:
        wire: WireLists | None = getattr(self, "_sshsim_wire", None)
        if wire is None or not self.is_client():
            return original_send(self)
        # What asyncssh's own _send_kexinit does besides building the packet.
        self._kex_complete = False
        self._rekey_bytes_sent = 0
        if self._rekey_seconds:
            self._rekey_time = time.monotonic() + self._rekey_seconds
        packet = wire.packet()
        self._client_kexinit = packet
        self.send_packet(MSG_KEXINIT, packet[1:])

    async def _process_kexinit(self: Any, pkttype: int, pktid: int, packet: SSHPacket) -> None:
        wire: WireLists | None = getattr(self, "_sshsim_wire", None)
        if wire is not None and self.is_client():
            _check_negotiation(wire, packet.get_remaining_payload())
        result = original_process(self, pkttype, pktid, packet)
        if asyncio.iscoroutine(result):
            await result
        if wire is not None and self.is_client():
            if not wire.strict_kex:
                self._strict_kex = False
            # A client that did not say ext-info-c in the profile sends no EXT_INFO of its own.
            if not wire.ext_info:
                self._can_send_ext_info = False

    original_failure = cls._packet_handlers[MSG_USERAUTH_FAILURE]

    def _process_userauth_failure(self: Any, pkttype: int, pktid: int, packet: SSHPacket) -> Any:
        # The methods the server offers, as it said them first (asyncssh keeps only those it
        # prefers): "not offered" in a report means the server's list lacked it.
        if getattr(self, "_sshsim_wire", None) is not None and getattr(self, "_sshsim_offered", None) is None:
            try:
                names = SSHPacket(packet.get_remaining_payload()).get_namelist()
                self._sshsim_offered = [n.decode("ascii", "replace") for n in names]
            except Exception:  # malformed: asyncssh's own handler rejects it as it should
                pass
        return original_failure(self, pkttype, pktid, packet)

    original_ext_info = cls._packet_handlers[MSG_EXT_INFO]

    def _process_ext_info(self: Any, pkttype: int, pktid: int, packet: SSHPacket) -> Any:
        # The extension names the server offers (publickey-hostbound@openssh.com decides the
        # signed method's name), read from a copy before asyncssh's handler consumes it.
        if getattr(self, "_sshsim_wire", None) is not None:
            try:
                copy = SSHPacket(packet.get_remaining_payload())
                self._sshsim_server_ext = {copy.get_string(): copy.get_string()
                                           for _ in range(min(copy.get_uint32(), 64))}
            except Exception:  # malformed: asyncssh's own handler rejects it as it should
                pass
        return original_ext_info(self, pkttype, pktid, packet)

    original_send_packet = cls.send_packet

    def send_packet(self: Any, pkttype: int, *args: bytes, handler: Any = None) -> None:
        # asyncssh puts an SSH_MSG_IGNORE before every packet once encryption is on; a profiled
        # connection sends only the IGNOREs its profile asks for (send_ignore below).
        if (pkttype == MSG_IGNORE and getattr(self, "_sshsim_wire", None) is not None
                and not getattr(self, "_sshsim_own_ignore", False)
                and not getattr(self, "_sshsim_ignore_every_packet", False)):
            return None
        if (pkttype == _auth_mod.MSG_USERAUTH_INFO_RESPONSE and getattr(self, "_sshsim_ignore_before_kbdint", False)
                and getattr(self, "_sshsim_wire", None) is not None
                and not getattr(self, "_sshsim_ignore_every_packet", False)):
            # PuTTY sends one IGNORE before each keyboard-interactive answer as before a password.
            send_ignore(self)
        return original_send_packet(self, pkttype, *args, handler=handler)

    original_userauth = cls.send_userauth_request

    async def send_userauth_request(self: Any, method: bytes, *args: bytes, key: Any = None,
                                    trivial: bool = True) -> None:
        if getattr(self, "_sshsim_wire", None) is None:
            return await original_userauth(self, method, *args, key=key, trivial=trivial)
        signed = getattr(self, "_sshsim_signed_method", None)
        ext = getattr(self, "_sshsim_server_ext", None) or {}
        if (key is not None and method == b"publickey" and signed
                and ext.get(b"publickey-hostbound@openssh.com") == b"0"):
            # OpenSSH's PROTOCOL 3.1: the method's new name and the server's host key after the
            # user's key; the signature covers the whole request, so it binds the host key too.
            host_key = self.get_server_host_key()
            if host_key is not None:
                method = signed.encode()
                args = args + (String(host_key.public_data),)
        if (method == b"password" and getattr(self, "_sshsim_ignore_before_password", False)
                and not getattr(self, "_sshsim_ignore_every_packet", False)):
            send_ignore(self)
        if getattr(self, "_sshsim_service_per_attempt", False):
            if getattr(self, "_sshsim_attempts", 0):
                # paramiko asks for ssh-userauth again before each later attempt (its
                # auth_handler starts every auth_* call that way); the accept is swallowed.
                self._sshsim_accepts_due = getattr(self, "_sshsim_accepts_due", 0) + 1
                self.send_packet(MSG_SERVICE_REQUEST, String(b"ssh-userauth"))
            self._sshsim_attempts = getattr(self, "_sshsim_attempts", 0) + 1
        return await original_userauth(self, method, *args, key=key, trivial=trivial)

    original_accept = cls._packet_handlers[MSG_SERVICE_ACCEPT]

    def _process_service_accept(self: Any, pkttype: int, pktid: int, packet: SSHPacket) -> Any:
        if getattr(self, "_sshsim_accepts_due", 0) > 0:
            self._sshsim_accepts_due -= 1
            return None
        return original_accept(self, pkttype, pktid, packet)

    # asyncssh private internals: the hooks replace its methods (docs/asyncssh-hooks.md).
    cls._send_kexinit = _send_kexinit  # type: ignore[method-assign]
    cls.send_packet = send_packet  # type: ignore[method-assign]
    cls.send_userauth_request = send_userauth_request  # type: ignore[method-assign]
    cls._packet_handlers = dict(cls._packet_handlers)
    cls._packet_handlers[MSG_KEXINIT] = _process_kexinit
    cls._packet_handlers[MSG_USERAUTH_FAILURE] = _process_userauth_failure
    cls._packet_handlers[MSG_EXT_INFO] = _process_ext_info
    cls._packet_handlers[MSG_SERVICE_ACCEPT] = _process_service_accept
    _install_auth_hooks()
    _installed = True


def _install_auth_hooks() -> None:
    pk = _auth_mod._ClientPublicKeyAuth
    original_start = pk._start
    original_signed = pk._send_signed_request

    async def _start(self: Any) -> None:
        if getattr(self._conn, "_sshsim_publickey_query", True):
            return await original_start(self)
        # Straight to the signed request, as clients without the query do.
        self._keypair = await self._conn.public_key_auth_requested()
        if self._keypair is None:
            self._conn.try_next_auth(next_method=True)
            return
        await self._send_signed_request()

    async def _send_signed_request(self: Any) -> None:
        pause = getattr(self._conn, "_sshsim_before_signed", None)
        if pause is not None:
            await pause()
        return await original_signed(self)

    pk._start = _start  # type: ignore[method-assign]  # asyncssh private internals: the hook
    pk._send_signed_request = _send_signed_request  # type: ignore[method-assign]  # likewise


def _check_negotiation(wire: WireLists, payload: bytes) -> None:
    """Fail clearly when sshd would choose a name the profile offers but asyncssh cannot do.

    `payload` is the server's KEXINIT after its message byte (as asyncssh hands it over).
    """
    try:
        lists = parse_kexinit(bytes((MSG_KEXINIT,)) + payload)
    except (ValueError, UnicodeDecodeError):
        return  # malformed: asyncssh's own parser rejects it with the protocol error it deserves
    server = {"kex": lists.kex, "host_key": lists.host_key, "encryption": lists.encryption_c2s,
              "mac": lists.mac_c2s, "compression": lists.compression_c2s}
    for kind, offered in (("kex", wire.kex), ("host_key", wire.host_key), ("encryption", wire.encryption),
                          ("mac", wire.mac), ("compression", wire.compression)):
        if kind == "mac" and not offered:
            continue
        names = {name.encode() for name in server[kind]}
        choice = next((name for name in offered if name in names), None)
        if choice is not None and choice not in wire.implemented[kind]:
            raise KeyExchangeFailed(
                f"sshd would negotiate {kind} {choice.decode()} from this profile, which asyncssh "
                "cannot do; the profile can be reproduced only against a server without it"
            )


def send_ignore(conn: Any, data: bytes = b"") -> None:
    """One SSH_MSG_IGNORE the profiled client really sends (PuTTY's before its password)."""
    conn._sshsim_own_ignore = True
    try:
        conn.send_packet(MSG_IGNORE, String(data))
    finally:
        conn._sshsim_own_ignore = False


def send_global_request(conn: Any, name: str) -> None:
    """A global request with want_reply false (OpenSSH's no-more-sessions@openssh.com)."""
    conn.send_packet(MSG_GLOBAL_REQUEST, String(name), Boolean(False))


def attach_profile(conn: Any, wire: WireLists, first_channel: int, *, none_first: bool = True,
                   publickey_query: bool = True, methods: Sequence[str] = (),
                   before_signed: Any = None, signed_method: str | None = None,
                   ignore_before_password: bool = False, service_per_attempt: bool = False,
                   ignore_before_kbdint: bool = False, ignore_every_packet: bool = False) -> None:
    """Per connection, before the version exchange (call from SSHClient.connection_made)."""
    conn._sshsim_wire = wire
    conn._sshsim_signed_method = signed_method
    conn._sshsim_ignore_before_password = ignore_before_password
    conn._sshsim_ignore_before_kbdint = ignore_before_kbdint
    conn._sshsim_ignore_every_packet = ignore_every_packet
    conn._sshsim_service_per_attempt = service_per_attempt
    conn._sshsim_server_ext = None
    conn._sshsim_offered = None
    conn._next_recv_chan = first_channel
    conn._sshsim_publickey_query = publickey_query
    conn._sshsim_before_signed = before_signed
    if not none_first and methods:
        # asyncssh starts with [b"none"]; a client that skips it starts with its first method.
        conn._auth_methods = [m.encode() for m in methods]


# -- scripted session channel -------------------------------------------------------------------
class _WindowAck(asyncio.Future):
    """The reply waiter of one winadj@ request: the reply counts the adjust sent with it as seen
    by the server at once, while the packet is handled (a done-callback would run only after the
    rest of the socket read, too late: measured, the window then grew at nearly every packet).
    Nothing awaits it; the reply, or the channel's end, only settles it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, state: dict[str, int], size: int) -> None:
        super().__init__(loop=loop)
        self._window = state
        self._adjust = size

    def set_result(self, result: Any) -> None:
        self._window["acked"] += self._adjust
        super().set_result(result)

    def set_exception(self, exception: Any) -> None:
        super().set_result(False)  # the channel ended before the reply: nobody is told


class ScriptedChannel:
    """A session channel whose requests are sent in the profile's order with its want_reply.

    asyncssh's own session set-up sends env, pty-req, x11-req, agent, then shell/exec/subsystem,
    waiting for each reply; real clients differ (PuTTY pipelines x11-req, pty-req, shell).
    """

    def __init__(self, conn: asyncssh.SSHClientConnection, window: int, max_packet: int,
                 session_factory: Any = None) -> None:
        self.conn = conn
        self.chan = SSHClientChannel(conn, conn._loop, "strict", None, "strict", window, max_packet)

        self.session_factory = session_factory or SSHClientStreamSession
        self.session: Any = None

    async def open(self) -> None:
        packet = await self.chan._open(b"session")
        packet.check_end()
        self.session = self.session_factory()
        self.chan._session = self.session
        self.session.connection_made(self.chan)

    def answer_eof(self) -> None:
        """Answer the server's CHANNEL_EOF with this side's EOF at once, before asyncssh can
        answer the CLOSE that usually follows in the same read (PuTTY's order: EOF, CLOSE).

        asyncssh dispatches through `self._packet_handlers`, so an instance copy of the class's
        table with the EOF entry wrapped acts on this channel only."""
        chan = self.chan
        original = type(chan)._packet_handlers[MSG_CHANNEL_EOF]

        def process_eof(this: Any, pkttype: int, pktid: int, packet: SSHPacket) -> Any:
            result = original(this, pkttype, pktid, packet)
            if this._send_state == "open":
                this.write_eof()
            return result

        chan._packet_handlers = {**type(chan)._packet_handlers, MSG_CHANNEL_EOF: process_eof}

    def eof_when_started(self) -> None:
        """Send CHANNEL_EOF as soon as the reply to the request just sent (the shell, exec or
        subsystem) is read, in the same pass over the server's packets: a client whose stdin
        is already at its end (plink or ssh with COMMAND </dev/null) sends it at once, before
        it reads an exit that came in the same segment. Waiting for the driver's coroutine to
        resume let a fast command's CLOSE be read first (measured: plink's impersonation sent
        no EOF in 1 exec of about 30 at DEBUG3). Same instance-table hook as answer_eof."""
        chan = self.chan
        original = type(chan)._packet_handlers[MSG_CHANNEL_SUCCESS]

        def process_success(this: Any, pkttype: int, pktid: int, packet: SSHPacket) -> Any:
            result = original(this, pkttype, pktid, packet)
            if not this._request_waiters and this._send_state == "open":
                this.write_eof()
            return result

        chan._packet_handlers = {**getattr(chan, "_packet_handlers", type(chan)._packet_handlers),
                                 MSG_CHANNEL_SUCCESS: process_success}

    def drop_on_close(self, *, reset: bool = False) -> None:
        """Drop TCP (with `reset`, reset it) when the server's CHANNEL_CLOSE comes, instead of
        asyncssh's CLOSE reply (psftp never closes its channel: EOF, then the socket; paramiko's
        close() after a shell ends the connection under the server's CLOSE). Same instance-table
        hook as answer_eof."""
        chan = self.chan

        def process_close(this: Any, pkttype: int, pktid: int, packet: SSHPacket) -> Any:
            if reset:
                reset_tcp(this._conn)
            else:
                this._conn.abort()
            return True

        chan._packet_handlers = {**getattr(chan, "_packet_handlers", type(chan)._packet_handlers),
                                 MSG_CHANNEL_CLOSE: process_close}
        # Nor does this side close the channel first: asyncssh's SFTP client closes its writer
        # when it reads the server's EOF, which would send a CLOSE before the server's comes
        # (measured: 1 run in 6 of psftp's impersonation at DEBUG3).
        chan.close = lambda: None  # type: ignore[method-assign]  # this channel instance only

    def acked_window(self, request: str) -> None:
        """Manage the receive window as PuTTY does (ssh/connection2.c, ssh2_set_window), each
        WINDOW_ADJUST preceded by `request` (winadj@putty.projects.tartarus.org, want_reply).

        PuTTY cannot ask the server how much of its window is in flight, so it has each adjust
        acknowledged: the server's reply (CHANNEL_FAILURE from sshd) comes after all the data
        sent under the old window. When the window it has acknowledged runs out before the
        reply, the path holds more than the window and PuTTY widens its maximum by one initial
        window (OUR_V2_WINSIZE, 16384, is both), up to 1 GiB. After each data packet, once half
        the maximum is used up, it sends the request and then the adjust back to the maximum;
        none after the server's EOF. Measured against sshd (plink -X, 300000 bytes): adjusts of
        8192+, then 16384, 32768, 49152 ..., each after `winadj@... reply 1` in sshd's log.

        asyncssh's own adjust (back to the initial window below half of it) is turned off by
        zeroing `_init_recv_window` once the session has its reader limit; each reply is taken
        by a future appended to `_request_waiters` when the request is sent (`_WindowAck`), so
        asyncssh pairs its own requests' replies in order as before, and this one goes to its own
        future."""
        chan = self.chan
        loop = self.conn._loop
        name = request.encode()
        step = chan._recv_window
        state = {"max": step, "acked": step}  # PuTTY's locmaxwin and remlocwin
        original = chan._accept_data

        def accept(data: bytes, datatype: Any = None) -> None:
            taken = bool(data) and chan._send_state not in ("close_pending", "closed")
            original(data, datatype)
            if not taken:
                return
            state["acked"] -= len(data)
            if state["acked"] <= 0 and state["max"] < 0x40000000:
                state["max"] += step
            if chan._recv_state != "open" or state["max"] // 2 < chan._recv_window:
                return
            size = state["max"] - chan._recv_window
            chan._request_waiters.append(_WindowAck(loop, state, size))
            chan._send_request(name, want_reply=True)
            chan.send_packet(MSG_CHANNEL_WINDOW_ADJUST, UInt32(size))
            chan._recv_window = state["max"]

        chan._init_recv_window = 0
        chan._accept_data = accept  # type: ignore[method-assign]  # this channel instance only

    async def server_eof(self, timeout: float) -> None:
        """Until the server's CHANNEL_EOF (or CLOSE) has been read, at most `timeout` seconds
        (`_recv_state` leaves "open" then)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.chan._recv_state == "open" and loop.time() < deadline:
            await asyncio.sleep(0.002)

    def send(self, request: str, payload: Sequence[bytes], want_reply: bool) -> asyncio.Future | None:
        """Send one request now; a future for its reply when one is wanted."""
        if want_reply:
            waiter: asyncio.Future = self.conn._loop.create_future()
            self.chan._request_waiters.append(waiter)
            self.chan._send_request(request.encode(), *payload, want_reply=True)
            return waiter
        self.chan._send_request(request.encode(), *payload, want_reply=False)
        return None

    def started(self) -> None:
        """After shell/exec/subsystem is accepted: let data flow, as asyncssh's create() does."""
        self.session.session_started()
        self.conn.create_task(self.chan._start_reading(), self.chan.logger)

    def streams(self) -> tuple[asyncssh.SSHWriter, asyncssh.SSHReader, asyncssh.SSHReader]:
        return (SSHWriter(self.session, self.chan), SSHReader(self.session, self.chan),
                SSHReader(self.session, self.chan, EXTENDED_DATA_STDERR))


def reset_tcp(conn: asyncssh.SSHClientConnection) -> None:
    """End with a TCP reset (paramiko's SFTP teardown): SO_LINGER 0 makes close() send RST."""
    sock = conn.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    conn.abort()


def request_payload(request: str, *, term: str = "xterm", cols: int = 80, rows: int = 24,
                    command: str | None = None, subsystem: str | None = None,
                    env: tuple[str, str] | None = None, x11_cookie: bytes | None = None) -> list[bytes]:
    """The type-specific part of a channel request (RFC 4254 section 6)."""
    if request == "pty-req":
        return [String(term), UInt32(cols), UInt32(rows), UInt32(0), UInt32(0), String(PTY_OP_END)]
    if request == "x11-req":
        # What ssh -X (Debian: trusted, a fake cookie when xauth has none), plink -X, paramiko's
        # request_x11 and asyncssh's x11_forwarding send for a display with no Xauthority entry:
        # not single-connection, MIT-MAGIC-COOKIE-1, 16 random bytes in hex, screen 0. sshd logs
        # none of these fields, at any level (tests/test_real_clients.py's shell flow).
        cookie = x11_cookie or os.urandom(16)
        return [Boolean(False), String(b"MIT-MAGIC-COOKIE-1"), String(binascii.b2a_hex(cookie)), UInt32(0)]
    if request == "env":
        assert env is not None
        return [String(env[0]), String(env[1])]
    if request == "exec":
        return [String(command or "")]
    if request == "subsystem":
        return [String(subsystem or "sftp")]
    return []
