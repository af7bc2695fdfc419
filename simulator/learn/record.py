"""One recorded connection read as facts: what the client sent, in its order.

The packets come from the capturing endpoint (hook.py): every packet in both directions, the
client's ("in") decrypted. This module only reads them; which facts become which profile keys is
merge.py's job. A packet that does not parse (the client's bytes are input) is counted in
`unreadable` and otherwise skipped, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asyncssh.packet import PacketDecodeError, SSHPacket

from simulator.kex.kexinit import KexinitLists, first_kex_packet_follows, parse_kexinit
from simulator.learn.hook import Packet, Recorder

MSG_NAMES = {1: "DISCONNECT", 2: "IGNORE", 4: "DEBUG", 5: "SERVICE_REQUEST", 7: "EXT_INFO", 20: "KEXINIT",
             21: "NEWKEYS", 50: "USERAUTH_REQUEST", 61: "USERAUTH_INFO_RESPONSE", 80: "GLOBAL_REQUEST",
             90: "CHANNEL_OPEN", 93: "WINDOW_ADJUST", 94: "DATA", 95: "EXTENDED_DATA", 96: "EOF", 97: "CLOSE",
             98: "CHANNEL_REQUEST", 99: "CHANNEL_SUCCESS", 100: "CHANNEL_FAILURE"}
FINAL = ("shell", "exec", "subsystem")


@dataclass
class AuthAttempt:
    method: str
    signed: bool | None = None      # publickey: the signed request (False: the query)
    algorithm: str = ""
    service_request_before: bool = False
    ignore_before: bool = False


@dataclass
class Request:
    name: str
    want_reply: bool
    shape: dict[str, Any]
    batch: int
    replied_before_next: bool = True


@dataclass
class Channel:
    """One channel the client opened."""

    type: str
    id: int
    window: int
    max_packet: int
    requests: list[Request] = field(default_factory=list)
    window_adjusts: list[int] = field(default_factory=list)
    # Teardown as seen on the wire, in order: "client EOF", "server EOF", "server CLOSE", ...
    teardown: list[str] = field(default_factory=list)
    subsystem: str = ""

    @property
    def kind(self) -> str:
        return next((r.name for r in self.requests if r.name in FINAL), "")

    @property
    def pty(self) -> bool:
        return any(r.name == "pty-req" for r in self.requests)

    @property
    def forwards(self) -> bool:
        return any(r.name in ("x11-req", "auth-agent-req@openssh.com") for r in self.requests)

    @property
    def pipelined(self) -> bool | None:
        """Sent a request before the reply to an earlier one (None: no two requests to tell by)."""
        wanted = [i for i, r in enumerate(self.requests[:-1]) if r.want_reply]
        if not wanted:
            return None
        return any(not self.requests[i].replied_before_next or self.requests[i].batch == self.requests[i + 1].batch
                   for i in wanted)

    def describe(self) -> str:
        """e.g. "shell (pty)", "exec", "subsystem sftp", "shell (pty, x11)"."""
        extras = [n for n, on in (("pty", self.pty), ("x11", any(r.name == "x11-req" for r in self.requests)),
                                  ("agent", any(r.name == "auth-agent-req@openssh.com" for r in self.requests)))
                  if on]
        name = self.kind or "no request"
        if self.kind == "subsystem":
            name += f" {self.subsystem}"
        return name + (f" ({', '.join(extras)})" if extras else "")


@dataclass
class ConnectionFacts:
    banner: str
    kexinit: KexinitLists | None = None
    first_kex_follows: bool | None = None
    kexinits: int = 0
    service_requests: int = 0
    auth: list[AuthAttempt] = field(default_factory=list)
    auth_ok: bool = False
    ignores: list[str] = field(default_factory=list)   # the message each IGNORE came just before
    channels: list[Channel] = field(default_factory=list)
    direct_tcpip: int = 0
    global_requests: list[tuple[str, bool, int]] = field(default_factory=list)  # name, want_reply, channels open
    disconnect: tuple[int, str] | None = None
    ended: str = ""
    order: list[str] = field(default_factory=list)     # every client message name, in order
    unreadable: int = 0

    @property
    def sessions(self) -> list[Channel]:
        return [c for c in self.channels if c.type == "session"]


def _shape(name: str, packet: SSHPacket) -> dict[str, Any]:
    """What a request's payload looks like, without its private values."""
    if name == "pty-req":
        term = packet.get_string().decode("ascii", "replace")
        cols, rows = packet.get_uint32(), packet.get_uint32()
        packet.get_uint32()
        packet.get_uint32()
        modes = packet.get_string()
        opcodes, i = [], 0
        while i < len(modes) and modes[i] != 0:
            opcodes.append(modes[i])
            i += 1 if modes[i] >= 160 else 5
        return {"term": term, "cols": cols, "rows": rows, "modes": len(opcodes)}
    if name == "env":
        return {"name": packet.get_string().decode("utf-8", "replace")}
    if name == "x11-req":
        single = packet.get_boolean()
        proto = packet.get_string().decode("ascii", "replace")
        cookie = packet.get_string()
        return {"single_connection": single, "protocol": proto, "cookie_hex_chars": len(cookie),
                "screen": packet.get_uint32()}
    if name == "exec":
        return {"command_bytes": len(packet.get_string())}
    if name == "subsystem":
        return {"name": packet.get_string().decode("ascii", "replace")}
    return {}


def read_connection(recorder: Recorder) -> ConnectionFacts:
    """The facts of one recorded connection."""
    facts = ConnectionFacts(recorder.client_version, ended=recorder.ended)
    by_ours: dict[int, Channel] = {}       # our channel number -> the client's channel
    by_theirs: dict[int, Channel] = {}
    pending_opens: list[Channel] = []
    last_in: Packet | None = None
    saw_service_since_auth = False
    for index, packet in enumerate(recorder.packets):
        try:
            if packet.direction == "in":
                _read_in(facts, packet, recorder.packets, index, last_in, by_ours, pending_opens,
                         saw_service_since_auth)
                if packet.msg == 5:
                    saw_service_since_auth = True
                elif packet.msg == 50:
                    saw_service_since_auth = False
                last_in = packet
            else:
                _read_out(facts, packet, by_ours, by_theirs, pending_opens)
        except (PacketDecodeError, ValueError, UnicodeDecodeError, IndexError):
            facts.unreadable += 1
    return facts


def _read_in(facts: ConnectionFacts, packet: Packet, packets: list[Packet], index: int, last_in: Packet | None,
             by_ours: dict[int, Channel], pending_opens: list[Channel], service_before: bool) -> None:
    msg = packet.msg
    facts.order.append(MSG_NAMES.get(msg, str(msg)))
    if last_in is not None and last_in.msg == 2:
        facts.ignores.append(MSG_NAMES.get(msg, str(msg)))
    body = SSHPacket(packet.payload)
    body.get_byte()
    if msg == 20:
        facts.kexinits += 1
        if facts.kexinit is None:
            facts.kexinit = parse_kexinit(packet.payload)
            facts.first_kex_follows = first_kex_packet_follows(packet.payload)
    elif msg == 5:
        facts.service_requests += 1
    elif msg == 50:
        body.get_string()
        body.get_string()
        method = body.get_string().decode("ascii", "replace")
        attempt = AuthAttempt(method, service_request_before=service_before,
                              ignore_before=last_in is not None and last_in.msg == 2)
        if method.startswith("publickey"):
            attempt.signed = body.get_boolean()
            attempt.algorithm = body.get_string().decode("ascii", "replace")
        facts.auth.append(attempt)
    elif msg == 80:
        name = body.get_string().decode("ascii", "replace")
        facts.global_requests.append((name, body.get_boolean(), len(facts.channels)))
    elif msg == 90:
        kind = body.get_string().decode("ascii", "replace")
        channel = Channel(kind, body.get_uint32(), body.get_uint32(), body.get_uint32())
        if kind == "direct-tcpip":
            facts.direct_tcpip += 1
        facts.channels.append(channel)
        pending_opens.append(channel)
    elif 93 <= msg <= 100:
        found = by_ours.get(body.get_uint32())
        if found is None:
            return
        channel = found
        if msg == 93:
            channel.window_adjusts.append(body.get_uint32())
        elif msg == 96:
            channel.teardown.append("client EOF")
        elif msg == 97:
            channel.teardown.append("client CLOSE")
        elif msg == 98:
            name = body.get_string().decode("ascii", "replace")
            want = body.get_boolean()
            request = Request(name, want, _shape(name, body), packet.batch)
            if name == "subsystem":
                channel.subsystem = request.shape.get("name", "")
            if want:
                # Was our reply out before the client's next packet on this channel?
                for later in packets[index + 1:]:
                    if later.direction == "out" and later.msg in (99, 100):
                        break
                    if later.direction == "in" and later.msg == 98:
                        request.replied_before_next = False
                        break
            channel.requests.append(request)
    elif msg == 1:
        code = body.get_uint32()
        facts.disconnect = (code, body.get_string().decode("utf-8", "replace"))


def _read_out(facts: ConnectionFacts, packet: Packet, by_ours: dict[int, Channel], by_theirs: dict[int, Channel],
              pending_opens: list[Channel]) -> None:
    msg = packet.msg
    if msg == 52:
        facts.auth_ok = True
    body = SSHPacket(packet.payload)
    body.get_byte()
    if msg == 91:
        theirs, ours = body.get_uint32(), body.get_uint32()
        for channel in pending_opens:
            if channel.id == theirs:
                by_ours[ours] = channel
                by_theirs[theirs] = channel
                pending_opens.remove(channel)
                break
    elif msg == 92:
        theirs = body.get_uint32()
        pending_opens[:] = [c for c in pending_opens if c.id != theirs]
    elif msg in (96, 97):
        theirs_channel = by_theirs.get(body.get_uint32())
        if theirs_channel is not None:
            theirs_channel.teardown.append("server EOF" if msg == 96 else "server CLOSE")
