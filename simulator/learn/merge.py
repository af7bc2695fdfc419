"""Recorded connections -> one client profile in the schema's form.

Each profile key is filled from what the recordings show, with where it was learned; a key no
recording could show keeps the schema's default and is listed in `unobserved`. Sessions that
disagree are explained, where the schema has a way, by a condition (`when:` on forwarding, kind
or pty, as plink's simple mode is); otherwise the disagreement is reported as a conflict and the
first session's value kept, never an average or a guess. What the schema cannot express (pty
modes, env names, the X11 cookie, window adjust amounts, IGNOREs elsewhere than before a
password) is kept under `learned.observations` and reported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from simulator.kex.kexinit import hassh
from simulator.learn.record import FINAL, MSG_NAMES, Channel, ConnectionFacts

AUTH_METHODS = ("publickey", "keyboard-interactive", "password")
# Requests a client sends while a session runs, not to set it up: not part of its request order.
RUNTIME_REQUESTS = ("window-change", "signal", "break", "keepalive@openssh.com", "xon-xoff")
CONDITION_KEYS = ("forwarding", "kind", "pty")


@dataclass
class Learned:
    data: dict[str, Any]
    conflicts: list[str] = field(default_factory=list)
    observations: list[str] = field(default_factory=list)
    unobserved: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Situation:
    """What a session asked for: the facts a profile's `when:` can test."""

    kind: str
    pty: bool
    forwarding: bool

    def facts(self) -> dict[str, Any]:
        return {"kind": self.kind, "pty": self.pty, "forwarding": self.forwarding}


def situation(conn: ConnectionFacts, channel: Channel) -> Situation:
    return Situation(channel.kind or "shell", channel.pty, channel.forwards or conn.direct_tcpip > 0)


def describe(conn: ConnectionFacts, channel: Channel, number: int) -> str:
    return f"connection {number} {channel.describe()}"


class _Builder:
    def __init__(self, conns: Sequence[ConnectionFacts], date: str) -> None:
        self.conns = list(conns)
        self.date = date
        self.banner = conns[0].banner
        self.source = f"learned {date} from {self.banner}"
        self.out = Learned({})
        self.facts: dict[str, str] = {}
        self.when: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def learned(self, key: str, where: str = "") -> None:
        self.facts[key] = self.source + (f" ({where})" if where else "")

    def unobserved(self, key: str) -> None:
        if key not in self.out.unobserved:
            self.out.unobserved.append(key)

    def same(self, label: str, values: list[tuple[str, Any]]) -> Any:
        """The one value all of `values` ((where, value) pairs) agree on; a conflict otherwise."""
        first = values[0][1]
        if any(v != first for _, v in values):
            shown = ", ".join(f"{where} {_show(v)}" for where, v in values)
            self.out.conflicts.append(f"{label} differs: {shown}")
        return first

    def by_session(self, label: str, section: str, key: str, values: list[tuple[Situation, str, Any]]) -> Any:
        """A per-session fact: one value, or a base value and `when:` entries when one condition
        key separates the values; a conflict when none does."""
        distinct = {_freeze(v) for _, _, v in values}
        if len(distinct) == 1:
            return values[0][2]
        for cond in CONDITION_KEYS:
            groups: dict[Any, set[Any]] = {}
            for sit, _, value in values:
                groups.setdefault(sit.facts()[cond], set()).add(_freeze(value))
            if all(len(g) == 1 for g in groups.values()) and len(groups) > 1:
                counts: dict[Any, int] = {}
                for sit, _, _ in values:
                    counts[sit.facts()[cond]] = counts.get(sit.facts()[cond], 0) + 1
                base_key = max(counts, key=lambda k: (counts[k], str(k)))
                base = next(v for s, _, v in values if s.facts()[cond] == base_key)
                for other, _ in groups.items():
                    if other == base_key:
                        continue
                    value = next(v for s, _, v in values if s.facts()[cond] == other)
                    self._add_when({cond: other}, section, key, value)
                return base
        shown = ", ".join(f"{where} {_show(v)}" for _, where, v in values)
        self.out.conflicts.append(f"{label} differs: {shown}")
        return values[0][2]

    def _add_when(self, cond: dict[str, Any], section: str, key: str, value: Any) -> None:
        for existing, then in self.when:
            if existing == cond:
                if section == key:
                    then[section] = value
                else:
                    then.setdefault(section, {})[key] = value
                return
        self.when.append((cond, {section: value} if section == key else {section: {key: value}}))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def client_and_version(banner: str) -> tuple[str, str]:
    """("OpenSSH", "9.2p1") from "OpenSSH_9.2p1 Debian-2", ("PuTTY", "0.78") from "PuTTY_Release_0.78"."""
    got = re.match(r"([A-Za-z][A-Za-z0-9.]*?)[_-](?:Release_)?([^ ]+)", banner)
    if got:
        return got.group(1), got.group(2)
    return (banner.split()[0] or "unknown"), "unknown"


def merge_order(sequences: list[list[str]]) -> list[str] | None:
    """One order consistent with every sequence (names in first-seen order when free, the final
    shell/exec/subsystem last), or None when two sequences put two names in opposite orders."""
    after: dict[str, set[str]] = {}
    names: list[str] = []
    for seq in sequences:
        for i, name in enumerate(seq):
            if name not in names:
                names.append(name)
            after.setdefault(name, set()).update(seq[i + 1:])
    order: list[str] = []
    left = list(names)
    while left:
        ready = [n for n in left if not any(n in after.get(m, set()) for m in left if m != n)]
        if not ready:
            return None
        # A session ends in one final request: free names go before the finals.
        pick = next((n for n in ready if n not in FINAL), ready[0])
        order.append(pick)
        left.remove(pick)
    return order


def setup_requests(channel: Channel) -> list[str]:
    """The channel's request names up to its final one, repeats (env per variable) folded."""
    names: list[str] = []
    for request in channel.requests:
        if request.name in RUNTIME_REQUESTS:
            continue
        if not names or names[-1] != request.name:
            names.append(request.name)
        if request.name in FINAL:
            break
    return names


def build_profile(conns: Sequence[ConnectionFacts], name: str, date: str) -> Learned:
    """The profile the recorded connections show (at least one with a KEXINIT)."""
    conns = [c for c in conns if c.kexinit is not None]
    if not conns:
        raise ValueError("no connection got as far as its KEXINIT")
    b = _Builder(conns, date)
    out = b.out
    data = out.data
    client, version = client_and_version(b.banner)
    numbered = list(enumerate(conns, 1))
    data["name"] = name
    data["client"] = client
    data["version"] = version
    data["banner"] = b.same("banner", [(f"connection {i}", c.banner) for i, c in numbered])
    b.learned("banner")
    data["sources"] = []
    data["guess"] = []
    lists = {"kex": "kex", "host_key": "host_key", "encryption": "encryption_c2s", "mac": "mac_c2s",
             "compression": "compression_c2s"}
    for key, attr in lists.items():
        data[key] = b.same(key, [(f"connection {i}", getattr(c.kexinit, attr)) for i, c in numbered])
        b.learned(key, "first KEXINIT")
    first = conns[0].kexinit
    assert first is not None
    for key, (c2s, s2c) in {"encryption": (first.encryption_c2s, first.encryption_s2c),
                            "mac": (first.mac_c2s, first.mac_s2c),
                            "compression": (first.compression_c2s, first.compression_s2c)}.items():
        if c2s != s2c:
            out.observations.append(f"{key}: server-to-client list differs from client-to-server: {_show(s2c)} "
                                    "(a profile has one list for both directions)")
    if not data["mac"]:
        out.observations.append("mac: the client sends an empty MAC list (AEAD ciphers only)")
    data["hassh"] = hassh(data["kex"], data["encryption"], data["mac"], data["compression"])
    data["hassh_measured"] = f"{b.source}: its first KEXINIT captured on the wire by sshsim learn"
    b.learned("hassh", "computed from the KEXINIT lists as captured")
    if any(c.first_kex_follows for c in conns):
        out.observations.append("first_kex_packet_follows is set (a guessed key exchange packet follows)")
    if any(c.kexinits > 1 for c in conns):
        out.observations.append("the client started a key re-exchange (KEXINIT after the first)")
    b.learned("first_kex_follows", "false" if not any(c.first_kex_follows for c in conns) else "true")
    _auth(b, numbered)
    _channels(b, numbered)
    _ending(b, numbered)
    if b.when:
        data["when"] = [{"if": cond, "then": then, "comment": f"{b.source}: sessions differ by {', '.join(cond)}"}
                        for cond, then in b.when]
    sessions = [describe(c, ch, i) for i, c in numbered for ch in c.sessions]
    data["sources"] = [f"{b.source}: {len(conns)} connection(s) recorded by sshsim learn on 127.0.0.1"
                       + (f" ({'; '.join(sessions)})" if sessions else "")]
    data["unobserved"] = sorted(out.unobserved)
    data["learned"] = {"source": b.source, "facts": dict(sorted(b.facts.items())),
                       "observations": list(out.observations),
                       "connections": [replay_entry(c) for _, c in numbered]}
    return out


def replay_entry(conn: ConnectionFacts) -> dict[str, Any]:
    """What one recorded connection did, as `learn --check` replays it: the methods it logged in
    with (a password repeated: the earlier ones were refused) and what each session asked for."""
    methods: list[str] = []
    for attempt in conn.auth:
        method = "publickey" if attempt.method.startswith("publickey") else attempt.method
        if method == "none" or (method == "publickey" and methods[-1:] == ["publickey"]):
            continue
        methods.append(method)
    sessions = []
    for channel in conn.sessions:
        if not channel.kind:
            continue
        names = {r.name for r in channel.requests}
        entry: dict[str, Any] = {"kind": channel.kind, "pty": channel.pty, "x11": "x11-req" in names,
                                 "agent": "auth-agent-req@openssh.com" in names,
                                 "env": [r.shape.get("name", "") for r in channel.requests if r.name == "env"]}
        if channel.kind == "subsystem":
            entry["subsystem"] = channel.subsystem
        sessions.append(entry)
    return {"auth": methods, "sessions": sessions}


def _auth(b: _Builder, numbered: list[tuple[int, ConnectionFacts]]) -> None:
    auth: dict[str, Any] = {}
    with_auth = [(i, c) for i, c in numbered if c.auth]
    if not with_auth:
        for key in ("none_first", "publickey_query"):
            b.unobserved(f"auth.{key}")
        auth.update(none_first=True, publickey_query=True)
        b.out.data["auth"] = auth
        return
    auth["none_first"] = b.same("auth.none_first",
                                [(f"connection {i}", c.auth[0].method == "none") for i, c in with_auth])
    b.learned("auth.none_first")
    signed = [(i, c) for i, c in with_auth if any(a.signed for a in c.auth)]
    if signed:
        queries = []
        for i, c in signed:
            first_signed = next(n for n, a in enumerate(c.auth) if a.signed)
            queries.append((f"connection {i}", any(a.signed is False for a in c.auth[:first_signed])))
        auth["publickey_query"] = b.same("auth.publickey_query", queries)
        b.learned("auth.publickey_query")
        methods = {next(a.method for a in c.auth if a.signed) for _, c in signed}
        hostbound = sorted(m for m in methods if m != "publickey")
        if hostbound:
            auth["signed_method"] = hostbound[0]
            b.learned("auth.signed_method", "the endpoint offers publickey-hostbound@openssh.com as sshd >= 8.9 does")
        algorithms = sorted({a.algorithm for _, c in signed for a in c.auth if a.signed})
        b.out.observations.append(f"signed publickey algorithm(s): {', '.join(algorithms)}")
    else:
        auth["publickey_query"] = True
        b.unobserved("auth.publickey_query")
        b.unobserved("auth.signed_method")
    tried: list[str] = []
    for _, c in with_auth:
        for a in c.auth:
            method = "publickey" if a.method.startswith("publickey") else a.method
            if method in AUTH_METHODS and method not in tried:
                tried.append(method)
    if tried:
        auth["methods"] = tried
        b.learned("auth.methods", "first-seen order over the recorded logins")
    retried = [(i, c) for i, c in with_auth if len([a for a in c.auth if a.method != "none"]) > 1]
    if retried:
        auth["service_request_per_attempt"] = any(a.service_request_before for _, c in retried for a in c.auth[1:])
        b.learned("auth.service_request_per_attempt")
    else:
        b.unobserved("auth.service_request_per_attempt")
    every = [every_packet_ignored(c) for _, c in numbered if every_packet_ignored(c) is not None]
    if every and all(every):
        # asyncssh's habit: one IGNORE before every packet after NEWKEYS; the password's and the
        # keyboard-interactive answer's IGNOREs are among them, no keys of their own.
        b.out.data["ignore_every_packet"] = True
        b.learned("ignore_every_packet", "an IGNORE before every message numbered 50 or more after NEWKEYS")
        b.out.data["auth"] = auth
        return
    passwords = [a for _, c in with_auth for a in c.auth if a.method == "password"]
    if passwords:
        auth["ignore_before_password"] = any(a.ignore_before for a in passwords)
        b.learned("auth.ignore_before_password")
    else:
        b.unobserved("auth.ignore_before_password")
    kbdint = [(i, c) for i, c in with_auth if any(a.method == "keyboard-interactive" for a in c.auth)]
    kbdint_ignore = False
    if kbdint:
        kbdint_ignore = any("USERAUTH_INFO_RESPONSE" in c.ignores for _, c in kbdint)
        auth["ignore_before_kbdint_response"] = kbdint_ignore
        b.learned("auth.ignore_before_kbdint_response")
    else:
        b.unobserved("auth.ignore_before_kbdint_response")
    elsewhere: dict[str, int] = {}
    for _, c in numbered:
        pw_ignores = sum(1 for a in c.auth if a.method == "password" and a.ignore_before)
        for before in c.ignores:
            if before == "USERAUTH_REQUEST" and pw_ignores:
                pw_ignores -= 1
                continue
            if before == "USERAUTH_INFO_RESPONSE" and kbdint_ignore:
                continue
            elsewhere[before] = elsewhere.get(before, 0) + 1
    for before, count in sorted(elsewhere.items()):
        b.out.observations.append(f"SSH_MSG_IGNORE before {before}: {count} time(s) (a profile sends IGNORE "
                                  "only before a password request or a keyboard-interactive answer)")
    if not any(c.ignores for _, c in numbered):
        b.learned("ignore", "no SSH_MSG_IGNORE sent")
    b.out.data["auth"] = auth


def every_packet_ignored(conn: ConnectionFacts) -> bool | None:
    """Whether every client message numbered 50 or more after NEWKEYS came right after an
    SSH_MSG_IGNORE (None: the connection sent none)."""
    after = conn.order[conn.order.index("NEWKEYS") + 1:] if "NEWKEYS" in conn.order else []
    high = [i for i, name in enumerate(after) if _number(name) >= 50]
    if not high:
        return None
    return all(i > 0 and after[i - 1] == "IGNORE" for i in high)


_NUMBERS = {name: number for number, name in MSG_NAMES.items()}


def _number(name: str) -> int:
    return _NUMBERS.get(name, int(name) if name.isdigit() else 0)


def _channels(b: _Builder, numbered: list[tuple[int, ConnectionFacts]]) -> None:
    data = b.out.data
    sessions = [(i, c, ch) for i, c in numbered for ch in c.sessions if ch.kind]
    channel: dict[str, Any] = {}
    firsts = [(f"connection {i}", c.channels[0].id) for i, c in numbered if c.channels]
    if firsts:
        channel["first_id"] = b.same("channel.first_id", firsts)
        b.learned("channel.first_id")
    else:
        channel["first_id"] = 0
        b.unobserved("channel.first_id")
    sftp = [(i, c, ch) for i, c, ch in sessions if ch.kind == "subsystem"]
    pty = [(i, c, ch) for i, c, ch in sessions if ch.kind != "subsystem" and ch.pty]
    plain = [(i, c, ch) for i, c, ch in sessions if ch.kind != "subsystem" and not ch.pty]

    def sizes(group: list[tuple[int, ConnectionFacts, Channel]], section: str, wkey: str, pkey: str) -> None:
        for key, attr in ((wkey, "window"), (pkey, "max_packet")):
            values = [(situation(c, ch), describe(c, ch, i), getattr(ch, attr)) for i, c, ch in group]
            target = data.setdefault(section, {}) if section != "channel" else channel
            target[key] = b.by_session(f"{section}.{key}", section, key, values)
            b.learned(f"{section}.{key}", "; ".join(w for _, w, _ in values))

    if pty:
        sizes(pty, "channel", "window", "max_packet")
        if plain:
            sizes(plain, "channel", "no_pty_window", "no_pty_max_packet")
            if (channel["no_pty_window"], channel["no_pty_max_packet"]) == (channel["window"], channel["max_packet"]):
                del channel["no_pty_window"], channel["no_pty_max_packet"]
        else:
            b.unobserved("channel.no_pty_window")
    elif plain:
        # Only sessions without a pty: their sizes stand for all (what a pty changes is unknown).
        sizes(plain, "channel", "window", "max_packet")
        b.unobserved("channel.window (with a pty)")
    else:
        channel.update(window=2 * 1024 * 1024, max_packet=32768)
        b.unobserved("channel.window")
        b.unobserved("channel.max_packet")
    if sftp:
        sizes(sftp, "sftp", "window", "max_packet")
        requests = [(situation(c, ch), describe(c, ch, i), setup_requests(ch)) for i, c, ch in sftp]
        if any(r != ["subsystem"] for _, _, r in requests):
            data["sftp"]["requests"] = b.same("sftp.requests", [(w, r) for _, w, r in requests])
            data["sftp"]["want_reply"] = {r.name: r.want_reply for _, _, ch in sftp for r in ch.requests
                                          if r.name not in RUNTIME_REQUESTS}
            b.learned("sftp.requests")
    else:
        b.unobserved("sftp")
    shapes: dict[str, list[str]] = {}
    for _, _, ch in sessions:
        for r in ch.requests:
            if r.shape:
                text = ", ".join(f"{k} {v}" for k, v in r.shape.items())
                if text not in shapes.setdefault(r.name, []):
                    shapes[r.name].append(text)
    for request_name, texts in shapes.items():
        b.out.observations.append(f"{request_name} payload: {'; '.join(texts)}")
    winadj = sorted({r.name for _, _, ch in sessions for r in ch.requests if r.name.startswith("winadj@")})
    if winadj:
        channel["window_adjust_request"] = winadj[0]
        b.learned("channel.window_adjust_request")
    for i, c, ch in sessions:
        if ch.window_adjusts:
            sizes_seen = sorted(set(ch.window_adjusts))
            b.out.observations.append(f"{describe(c, ch, i)}: {len(ch.window_adjusts)} window adjust(s) of "
                                      f"{', '.join(map(str, sizes_seen))} bytes")
    data["channel"] = channel
    _requests(b, numbered, sessions)


def _requests(b: _Builder, numbered: list[tuple[int, ConnectionFacts]],
              sessions: list[tuple[int, ConnectionFacts, Channel]]) -> None:
    data = b.out.data
    session: dict[str, Any] = {}
    non_sftp = [(i, c, ch) for i, c, ch in sessions if ch.kind != "subsystem"]
    orders = [setup_requests(ch) for _, _, ch in non_sftp]
    merged = merge_order(orders) if orders else None
    if orders and merged is None:
        shown = ", ".join(f"{describe(c, ch, i)} [{', '.join(setup_requests(ch))}]" for i, c, ch in non_sftp)
        b.out.conflicts.append(f"session.request_order differs: {shown}")
        merged = orders[0]
    if merged:
        # Final requests in one place (the driver puts the session's own there).
        session["request_order"] = merged
        b.learned("session.request_order", "merged over the recorded sessions")
        shell = next((ch for _, _, ch in non_sftp if ch.kind == "shell" and ch.pty), non_sftp[0][2])
        session["requests"] = setup_requests(shell)
        b.learned("session.requests", shell.describe())
    else:
        session["requests"] = ["pty-req", "shell"]
        b.unobserved("session.request_order")
        b.unobserved("session.requests")
    want: dict[str, bool] = {}
    for i, c, ch in sessions:
        for r in ch.requests:
            if r.name in RUNTIME_REQUESTS:
                continue
            if r.name in want and want[r.name] != r.want_reply:
                b.out.conflicts.append(f"session.want_reply.{r.name} differs: {describe(c, ch, i)} {r.want_reply}")
                continue
            want.setdefault(r.name, r.want_reply)
    session["want_reply"] = want
    b.learned("session.want_reply")
    pipelined = [p for _, _, ch in sessions if (p := ch.pipelined) is not None]
    session["pipelined"] = any(pipelined)
    if pipelined:
        b.learned("session.pipelined", "a request sent before the reply to an earlier one")
    else:
        b.unobserved("session.pipelined")
    globals_ = sorted({name for _, c in numbered for name, reply, open_ in c.global_requests if not reply and open_})
    if globals_:
        session["global_requests"] = globals_
    b.learned("session.global_requests")
    for _, c in numbered:
        for name, reply, open_ in c.global_requests:
            if reply or not open_:
                b.out.observations.append(f"global request {name} want_reply {int(reply)} with {open_} channel(s) "
                                          "open (a profile's global requests have want_reply 0, after the first "
                                          "session opens)")
    eof_kinds: list[str] = []
    answers: list[bool] = []
    for _, _, ch in non_sftp:
        t = ch.teardown
        if "client EOF" in t:
            first_server = min((t.index(x) for x in ("server EOF", "server CLOSE") if x in t), default=len(t))
            if t.index("client EOF") < first_server:
                if ch.kind not in eof_kinds:
                    eof_kinds.append(ch.kind)
            elif "server EOF" in t:
                answers.append(True)
        elif "server EOF" in t and "client CLOSE" in t:
            answers.append(False)
    if eof_kinds:
        session["eof"] = sorted(eof_kinds)
    if answers:
        session["eof_on_server_eof"] = any(answers)
    if non_sftp:
        b.learned("session.eof", "CHANNEL_EOF sent before the server's")
    else:
        b.unobserved("session.eof")
    data["session"] = session


def _ending(b: _Builder, numbered: list[tuple[int, ConnectionFacts]]) -> None:
    data = b.out.data
    ends: list[tuple[Situation, str, Any]] = []
    closes: list[tuple[Situation, str, Any]] = []
    texts: list[tuple[Situation, str, Any]] = []
    for i, c in numbered:
        last = next((ch for ch in reversed(c.sessions) if ch.kind), None)
        sit = situation(c, last) if last else Situation("shell", False, False)
        where = describe(c, last, i) if last else f"connection {i}"
        ends.append((sit, where, {"drop": "drop-tcp"}.get(c.ended, c.ended or "drop-tcp")))
        if c.disconnect is not None:
            texts.append((sit, where, {"code": c.disconnect[0], "text": c.disconnect[1]}))
        if last is not None:
            closes.append((sit, where, _channel_close(last, c.ended)))
    data["close"] = b.by_session("close", "close", "close", ends)
    b.learned("close", "how each connection ended")
    if texts:
        data["disconnect"] = b.by_session("disconnect", "disconnect", "disconnect", texts)
        b.learned("disconnect")
    elif data["close"] == "disconnect" or any(then.get("close") == "disconnect" for _, then in b.when):
        b.unobserved("disconnect")
    if closes:
        data["channel_close"] = b.by_session("channel_close", "channel_close", "channel_close", closes)
        b.learned("channel_close", "the last session of each connection")
    else:
        b.unobserved("channel_close")
    teardown = sorted({f"{' > '.join(ch.teardown)} > {c.ended or 'end'}" for _, c in numbered for ch in c.sessions
                       if ch.kind})
    for order in teardown:
        b.out.observations.append(f"teardown order: {order}")


def _channel_close(channel: Channel, ended: str) -> str:
    t = channel.teardown
    if "client CLOSE" in t:
        client_first = "server CLOSE" not in t or t.index("client CLOSE") < t.index("server CLOSE")
        return "send" if client_first and ended in ("drop", "reset") else "before"
    if ended not in ("drop", "reset"):
        return "before"
    return "eof" if "client EOF" in t else "none"

