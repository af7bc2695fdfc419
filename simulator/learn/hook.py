"""The one place sshsim reaches into asyncssh's server to record packets (`sshsim learn`).

Why a hook: asyncssh hands a decrypted, decompressed packet to its handler (the connection, the
key exchange, the authentication or a channel) and offers no public callback that sees every
packet with its message number before it is handled. Every such packet passes through
`handler.log_received_packet(pkttype, seq, packet, note)` in `SSHConnection._recv_packet`, just
before `handler.process_packet`, and every sent one through `handler.log_sent_packet` at the end
of `SSHConnection.send_packet`. Both are methods of `asyncssh.packet.SSHPacketLogger`; wrapping
them there once records, in order, each packet of a connection that carries a recorder
(`_sshsim_recorder`), and leaves every other connection (the driver's own, in the same process)
exactly as asyncssh made it. SFTP's handlers log their own packets through the same methods:
they are not connection-layer packets and are skipped.

Also here, because they are asyncssh internals too: a repeated `ssh-userauth` service request
is accepted as sshd accepts it (asyncssh disconnects), so paramiko's retry can be recorded;
and a server handler for OpenSSH's
`publickey-hostbound-v00@openssh.com` method (asyncssh has none), so that a client which uses it
when the server's EXT_INFO offers `publickey-hostbound@openssh.com` (OpenSSH >= 8.9) can be
recorded doing so and log in; it accepts any key, as the endpoint does for `publickey`, and is
active only on recording connections.

Checked against asyncssh 2.24.1 (connection.py `_recv_packet`, `send_packet`, `data_received`,
`_packet_handlers[MSG_SERVICE_REQUEST]`;
packet.py `SSHPacketLogger`; auth.py `_server_auth_handlers`, `_ServerPublicKeyAuth`).
`install()` refuses another asyncssh version the driver does not support (check_asyncssh).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import asyncssh
from asyncssh import auth as _auth
from asyncssh import channel as _channel
from asyncssh import connection as _connection
from asyncssh import kex as _kex
from asyncssh import packet as _packet

from simulator.driver.fidelity import check_asyncssh
from simulator.limits import LEARN_DATA_BYTES, MAX_LEARN_PACKETS, MAX_LEARN_PAYLOAD

_DATA = (94, 95)

_SERVICE_REQUEST = 5
_SERVICE_ACCEPT = 6
HOSTBOUND_METHOD = b"publickey-hostbound-v00@openssh.com"
HOSTBOUND_EXTENSION = b"publickey-hostbound@openssh.com"


@dataclass
class Packet:
    """One packet on the wire: its direction ("in" from the client), message number, payload
    (message byte first) and the read of the socket it came in (`batch`: packets the client
    sent without waiting share one)."""

    direction: str
    msg: int
    payload: bytes
    batch: int
    at: float


@dataclass
class Recorder:
    """What one connection put on the wire, in order, and how it ended."""

    packets: list[Packet] = field(default_factory=list)
    client_version: str = ""
    ended: str = ""          # "disconnect", "drop" (TCP closed), "reset" (TCP RST)
    batch: int = 0
    dropped: int = 0         # packets not kept past MAX_LEARN_PACKETS

    def add(self, direction: str, msg: int, payload: bytes) -> None:
        if len(self.packets) >= MAX_LEARN_PACKETS:
            self.dropped += 1
            return
        keep = LEARN_DATA_BYTES if msg in _DATA else MAX_LEARN_PAYLOAD
        self.packets.append(Packet(direction, msg, bytes(payload[:keep]), self.batch, time.monotonic()))


_installed = False


def _recorder_of(handler: Any) -> Recorder | None:
    conn: Any
    if isinstance(handler, _connection.SSHConnection):
        conn = handler
    elif isinstance(handler, (_channel.SSHChannel, _auth.Auth, _kex.Kex)):
        conn = getattr(handler, "_conn", None)
    else:
        return None  # SFTP and other sub-protocol loggers
    return getattr(conn, "_sshsim_recorder", None)


class _ServerHostboundAuth(_auth._ServerPublicKeyAuth):
    """OpenSSH's publickey-hostbound-v00 request: publickey's fields plus the server host key
    (PROTOCOL 3.1), before the signature. Any key is accepted on a recording connection."""

    @classmethod
    def supported(cls, conn: Any) -> bool:
        return getattr(conn, "_sshsim_recorder", None) is not None

    async def _start(self, packet: Any) -> None:
        signed = packet.get_boolean()
        algorithm = packet.get_string()
        key_data = packet.get_string()
        packet.get_string()  # the server's host key the client binds the signature to
        if signed:
            packet.get_string()
        packet.check_end()
        if signed:
            await self.send_success()
        else:
            self.send_packet(_auth.MSG_USERAUTH_PK_OK, _packet.String(algorithm), _packet.String(key_data))


def install() -> None:
    """Wrap asyncssh's packet logging and add the hostbound method, once per process."""
    global _installed
    if _installed:
        return
    check_asyncssh()
    logger_cls = _packet.SSHPacketLogger
    original_received = logger_cls.log_received_packet
    original_sent = logger_cls.log_sent_packet
    original_data = _connection.SSHConnection.data_received

    def log_received_packet(self: Any, pkttype: int, pktid: Any, packet: Any, note: str = "") -> None:
        recorder = _recorder_of(self)
        if recorder is not None and isinstance(packet, _packet.SSHPacket):
            recorder.add("in", pkttype, packet.get_full_payload())
        original_received(self, pkttype, pktid, packet, note)

    def log_sent_packet(self: Any, pkttype: int, pktid: Any, packet: Any, note: str = "") -> None:
        recorder = _recorder_of(self)
        if recorder is not None and isinstance(packet, (bytes, bytearray)):
            recorder.add("out", pkttype, bytes(packet))
        original_sent(self, pkttype, pktid, packet, note)

    def data_received(self: Any, data: bytes, datatype: Any = None) -> None:
        recorder = getattr(self, "_sshsim_recorder", None)
        if recorder is not None:
            recorder.batch += 1
        original_data(self, data, datatype)

    handlers = _connection.SSHConnection._packet_handlers
    original_service = handlers[_SERVICE_REQUEST]

    def process_service_request(self: Any, pkttype: int, pktid: int, packet: Any) -> Any:
        # sshd accepts ssh-userauth again while authentication goes on (paramiko asks before
        # every attempt); asyncssh accepts it once and disconnects after.
        if (getattr(self, "_sshsim_recorder", None) is not None and self._next_service is None
                and self._auth_in_progress and not self._auth_complete):
            service = packet.get_string()
            packet.check_end()
            if service == b"ssh-userauth":
                self.send_packet(_SERVICE_ACCEPT, _packet.String(service))
                return None
            raise asyncssh.ServiceNotAvailable("Unexpected service in service request")
        return original_service(self, pkttype, pktid, packet)

    handlers[_SERVICE_REQUEST] = process_service_request
    logger_cls.log_received_packet = log_received_packet  # type: ignore[method-assign]
    logger_cls.log_sent_packet = log_sent_packet  # type: ignore[method-assign]
    _connection.SSHConnection.data_received = data_received  # type: ignore[method-assign]
    _auth._server_auth_handlers[HOSTBOUND_METHOD] = _ServerHostboundAuth
    _installed = True


def attach(conn: asyncssh.SSHServerConnection) -> Recorder:
    """Start recording `conn` (call from connection_made) and offer host-bound publickey in the
    server's EXT_INFO, as sshd >= 8.9 does."""
    install()
    recorder = Recorder()
    conn._sshsim_recorder = recorder  # type: ignore[attr-defined]  # the mark the hook looks for
    conn._extensions_to_send[HOSTBOUND_EXTENSION] = b"0"
    return recorder
