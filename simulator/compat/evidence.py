"""What sshd's own log says about a compat connection: what it negotiated, and why it said no.

The negotiated algorithms come from sshd's DEBUG1 `kex: ...` lines, read by the log parser into
its connection summary (simulator/logs/connections.py), so they are the server's word, not the
client's guess. The line that explains a refusal is chosen from the connection's events by
the catalogue's names (simulator/data/events/): a failed negotiation first, then the
authentication refusals, then any error sshd logged for the connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from simulator.limits import QUOTE_CHARS
from simulator.logs import Connection, Event, group_connections

# Event names (or name prefixes, ending in ".") that explain a refusal, most telling first.
EXPLAINS = (
    "kex.unable_to_negotiate",
    "auth.userauth_pubkey.signature_algorithm_not",
    "auth.userauth_pubkey.key_type_not",
    "auth.not_allowed",
    "auth.root_refused",
    "auth.max_attempts",
    "auth.too_many_failures",
    "auth.failed",
    "pam.auth_failure",
    "session.session_subsystem_req.subsystem_request_for",
    "listener.drop",
)
ERROR_LEVELS = ("ERROR", "FATAL")
# What turns a method off in sshd_config (the evidence when sshd never offered it).
METHOD_KEYWORDS = {
    "password": ("passwordauthentication", "authenticationmethods"),
    "keyboard-interactive": ("kbdinteractiveauthentication", "challengeresponseauthentication",
                             "authenticationmethods"),
    "publickey": ("pubkeyauthentication", "authenticationmethods"),
}


def connections_by_endpoint(events: Iterable[Event]) -> dict[tuple[str, int], Connection]:
    """The log's client connections by (client address, client port), from its events (a
    capture's records parsed as they are: `parse_records`)."""
    out: dict[tuple[str, int], Connection] = {}
    for conn in group_connections(events):
        if conn.addr and conn.port is not None:
            out[(conn.addr, int(conn.port))] = conn
    return out


def negotiated(conn: Connection | None) -> dict[str, str | None]:
    """kex, host key, cipher, MAC, compression as sshd logged them (client to server)."""
    if conn is None or not conn.kex or conn.kex == "(no match)":
        return {"kex": None, "host_key": None, "cipher": None, "mac": None, "compression": None}
    direction = "client->server"
    return {"kex": conn.kex, "host_key": conn.host_key, "cipher": conn.cipher.get(direction),
            "mac": conn.mac.get(direction), "compression": conn.compression.get(direction)}


def explaining_line(conn: Connection | None, *, after_auth: bool = False) -> str | None:
    """The sshd line that says why `conn` was refused (None when sshd logged no reason).

    `after_auth`: the refusal came after login (a session or SFTP), so only what sshd logged
    then counts."""
    if conn is None or not conn.events:
        return None
    events = list(conn.events)
    if after_auth:
        accepted = next((i for i, e in enumerate(events) if e.event == "auth.accepted"), None)
        events = events[accepted:] if accepted is not None else events
    for name in EXPLAINS:
        for event in events:
            if event.event == name or (name.endswith(".") and event.event.startswith(name)):
                return _quote(event.raw)
    for event in events:
        if (event.level or "").upper() in ERROR_LEVELS:
            return _quote(event.raw)
    return None


def config_line(config: Any, method: str) -> str | None:
    """`FILE:LINE: Keyword value`: the line of the user's sshd_config that turns `method` off
    (the evidence for `not offered`; sshd logs the methods it offers only at DEBUG2)."""
    if config is None:
        return None
    for keyword in METHOD_KEYWORDS.get(method, ()):
        for f, number, args in config.keyword_lines(keyword):
            value = " ".join(args)
            if keyword == "authenticationmethods" and method not in value:
                return f"{f.shown}:{number}: {f.lines[number - 1].strip()}"
            if keyword != "authenticationmethods" and value.lower() == "no":
                return f"{f.shown}:{number}: {f.lines[number - 1].strip()}"
    return None


def _quote(raw: str) -> str:
    return raw if len(raw) <= QUOTE_CHARS else raw[:QUOTE_CHARS] + "..."

