"""fail2ban's sshd corpus as assertions: every line it annotates `"match": true` is a failure.

Debian's fail2ban package ships real sshd lines from many OpenSSH versions, each preceded by a
`# failJSON: {...}` comment saying whether fail2ban's sshd filter (in one of its modes: normal,
ddos, extra, aggressive) must flag it and for which address (`host`, `ip4` or `ip6`). Here every
flagged line must be an event of a failure class, in the parser's and verifier's words, and name
that address: on the line itself, or (for lines that name none, like "fatal: Read from socket
failed") through the connection the grouping put it in. Failure classes, by fail2ban's modes:

- auth failure (normal mode): what the verifier's `auth_outcome` calls failed;
- user refused before any method (normal): AllowUsers/DenyUsers/root refusals, libwrap;
- negotiation or identification failure (ddos/extra): no common algorithm, no or a bad banner;
- ended before authentication (ddos/aggressive): a disconnect of a connection not accepted.

fail2ban also flags a successful login that follows failures for other user names in the same
connection (its `users` list); the event itself is an accepted login, so the assertion is on
the connection: it holds an authentication failure before that line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from simulator.logs import group_connections, parse_file
from simulator.verify.verifier import auth_outcome
from test_parser_fail2ban import LOGS

pytestmark = pytest.mark.skipif(
    LOGS is None, reason="fail2ban is not installed (apt-get install fail2ban): its sshd test logs are the corpus"
)

ANNOTATION = re.compile(r"#\s*failJSON:\s*(\{.*\})\s*$")
USER_REFUSED = {"auth.user_not_allowed", "auth.root_refused", "auth.change_of_user",
                "connection.tcp_wrappers_refused"}
HANDSHAKE_FAILED = {"kex.unable_to_negotiate", "kex.negotiation_failed", "kex.no_match",
                    "connection.identification_missing", "connection.bad_identification",
                    "connection.kex_exchange_identification", "connection.banner_exchange"}
# PAM's own line for a failed password: the verifier's auth outcome does not count it (yet).
PAM_FAILURE = "pam.module_auth_failure"


def failure_class(event: Any, before: list[Any]) -> str | None:
    """The failure class of `event`, given its connection's events up to it (None: not a failure)."""
    if auth_outcome([event]) == "failed" or event.event == PAM_FAILURE:
        return "auth failure"
    if event.event in USER_REFUSED:
        return "user refused"
    if event.event in HANDSHAKE_FAILED:
        return "handshake failed"
    if event.event.startswith("disconnect.") and auth_outcome(before) != "accepted":
        return "ended before authentication"
    return None


def _address(value: str | None) -> str | None:
    """fail2ban reports IPv4-mapped IPv6 addresses as plain IPv4."""
    return value[7:] if value and value.startswith("::ffff:") and "." in value else value


def flagged(name: str) -> list[tuple[int, dict[str, Any], Any, list[Any], Any]]:
    """(line, annotation, event, its connection's events up to it, connection) per `match: true` line."""
    assert LOGS is not None
    events = list(parse_file(LOGS / name))
    connections = {c.id: c for c in group_connections(events)}
    by_conn: dict[Any, list[Any]] = {}
    for event in events:
        by_conn.setdefault(event.conn, []).append(event)
    out = []
    annotation: dict[str, Any] | None = None
    for event in events:
        found = ANNOTATION.match(event.raw)
        if found:
            annotation = json.loads(found.group(1))
            continue
        if event.raw.startswith("#") or not event.raw.strip():
            continue
        if annotation is not None and annotation.get("match"):
            before = [e for e in by_conn.get(event.conn, [event]) if e.line <= event.line] if event.conn else [event]
            out.append((event.line, annotation, event, before, connections.get(event.conn)))
        annotation = None
    return out


@pytest.mark.parametrize("name, count", [("sshd", 103), ("sshd-journal", 89)])
def test_every_flagged_line_is_a_failure_with_fail2bans_address(name: str, count: int) -> None:
    cases = flagged(name)
    assert len(cases) == count, "the corpus changed: recount its match:true annotations"
    wrong = []
    for line, annotation, event, before, conn in cases:
        host = annotation.get("host") or annotation.get("ip4") or annotation.get("ip6")
        if len(annotation.get("users", [])) > 1 and event.event == "auth.accepted":
            cls = "auth failure" if any(failure_class(e, before) == "auth failure" for e in before[:-1]) else None
        else:
            cls = failure_class(event, before)
        address = _address(event.fields.get("addr")) or _address(getattr(conn, "addr", None))
        if cls is None or (host is not None and address != host):
            wrong.append(f"{name}:{line}: {event.event} class={cls} address={address} want {host}: {event.raw}")
    assert not wrong, "\n".join(wrong)


def test_each_failure_class_occurs() -> None:
    classes = {failure_class(event, before) for _, _, event, before, _ in flagged("sshd")}
    assert classes >= {"auth failure", "user refused", "handshake failed", "ended before authentication"}


def test_lines_without_an_address_get_it_from_their_connection() -> None:
    """`fatal: Read from socket failed` names no client: the connection's earlier lines do."""
    cases = [c for c in flagged("sshd") if c[2].event == "disconnect.read_failed"]
    assert len(cases) == 3
    for _, annotation, event, _, conn in cases:
        assert "addr" not in event.fields and conn.addr == annotation["host"] == "127.0.0.1"


def test_the_libwrap_refusal_names_the_address() -> None:
    (case,) = [c for c in flagged("sshd") if c[2].event == "connection.tcp_wrappers_refused"]
    assert _address(case[2].fields["addr"]) == case[1]["host"] == "218.249.210.161"
