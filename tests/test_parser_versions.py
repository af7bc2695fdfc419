"""What OpenSSH 8.4p1 to 10.3p1 log for the newer library scenarios, parsed and grouped.

Every line below is real: captured from the local target running the system sshd (Debian 12's
9.2p1) or an upstream build (SSHSIM_SSHD=/tmp/cache/openssh/VERSION/sbin/sshd), by
`sshsim run scenarios/library/SCENARIO.yaml --log-out ...`. The whole logs of four scenarios are
kept under tests/data/versions/<version>/ (9.2p1-debian12: the system's): the penalty, grace
timeout, MaxStartups and closed-before-banner lines are listener lines or relayed ones whose
grouping changed with the version, so the grouping of each whole log is checked too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.logs import group_connections, parse_file, parse_lines

VERSIONS = Path(__file__).resolve().parent / "data" / "versions"

# (version that wrote it, real line, event, fields it must have)
LINES = [
    ("9.2p1-debian12",
     "Dec  5 16:56:23 localhost sshd[5283]: error: kex_exchange_identification: Connection closed by remote host",
     "connection.kex_exchange_identification", {"reason": "Connection closed by remote host"}),
    ("10.3p1",
     "Dec  5 16:56:28 localhost sshd-session[6887]: kex_exchange_identification: Connection closed by remote host "
     "[preauth]",
     "connection.kex_exchange_identification", {"reason": "Connection closed by remote host"}),
    ("10.3p1",
     "Dec  5 16:56:28 localhost sshd-session[6887]: Connection closed by 127.0.0.1 port 57314 [preauth]",
     "disconnect.closed", {"addr": "127.0.0.1", "port": 57314, "user": None}),
    ("9.2p1",
     "Dec  5 17:01:20 localhost sshd[25061]: fatal: Timeout before authentication for 127.0.0.11 port 41289",
     "disconnect.login_grace_timeout", {"addr": "127.0.0.11", "port": 41289}),
    ("10.3p1",
     "Dec  5 17:00:26 localhost sshd[14666]: Timeout before authentication for connection from 127.0.0.11 to "
     "127.0.0.1, pid = 14667",
     "listener.login_grace_timeout", {"addr": "127.0.0.11", "laddr": "127.0.0.1", "pid": 14667}),
    ("9.2p1-debian12",
     "Dec  5 16:56:47 localhost sshd[3362]: drop connection #1 from [127.0.0.1]:33204 on [127.0.0.1]:49749 "
     "past MaxStartups",
     "listener.drop_connection",
     {"startups": 1, "addr": "127.0.0.1", "port": 33204, "lport": 49749, "reason": "past MaxStartups"}),
    ("10.3p1",
     "Dec  5 16:57:02 localhost sshd[8997]: drop connection #1 from [127.0.0.1]:60342 on [127.0.0.1]:59361 "
     "Maxstartups",
     "listener.drop_connection", {"startups": 1, "port": 60342, "reason": "Maxstartups"}),
    ("10.3p1",
     "Dec  5 16:59:42 localhost sshd[10577]: drop connection #0 from [127.0.0.7]:54289 on [127.0.0.1]:56455 "
     "penalty: failed authentication",
     "listener.drop_connection",
     {"startups": 0, "addr": "127.0.0.7", "port": 54289, "reason": "penalty: failed authentication"}),
    ("9.2p1-debian12",
     "Dec  5 16:56:47 localhost sshd[3362]: error: beginning MaxStartups throttling",
     "listener.maxstartups_begin", {}),
    ("10.0p1",
     "Dec  5 17:03:31 localhost sshd[11666]: srclimit_penalise: ipv4: new 127.0.0.7/32 active penalty of 30 "
     "seconds for penalty: failed authentication",
     "listener.penalty_new",
     {"family": "ipv4", "addrnet": "127.0.0.7/32", "state": "active", "seconds": "30",
      "reason": "penalty: failed authentication"}),
    ("10.3p1",
     "Dec  5 16:59:41 localhost sshd[10577]: srclimit_penalise: ipv4: new 127.0.0.7/32 active penalty of 30.000 "
     "seconds for penalty: failed authentication",
     "listener.penalty_new", {"seconds": "30.000", "state": "active"}),
    ("10.3p1",
     "Dec  5 16:59:41 localhost sshd[10577]: debug1: child_reap: preauth child 10578 for connection from 127.0.0.7 "
     "to 127.0.0.1 exited after unsuccessful auth attempt",
     "listener.child_exit", {"kind": "preauth", "pid": 10578, "how": "exited"}),
    ("8.4p1",
     "Dec  5 17:02:07 localhost sshd[22177]: Partial publickey for alice from 127.0.0.1 port 42459 ssh2: ED25519 "
     "SHA256:K3Qsacc+wXgyfmOZpotH2YIZHenI55j+X+g7JswfYKE",
     "auth.partial", {"method": "publickey", "user": "alice", "port": 42459,
                      "info": "ED25519 SHA256:K3Qsacc+wXgyfmOZpotH2YIZHenI55j+X+g7JswfYKE"}),
    ("10.3p1",
     "Dec  5 17:02:15 localhost sshd-session[17595]: Accepted password for alice from 127.0.0.1 port 51693 ssh2",
     "auth.accepted", {"method": "password", "user": "alice", "port": 51693}),
    ("10.3p1",
     "Dec  5 17:03:16 localhost sshd-session[11932]: Failed keyboard-interactive/pam for alice from 127.0.0.1 "
     "port 49203 ssh2",
     "auth.failed", {"method": "keyboard-interactive", "submethod": "pam", "user": "alice"}),
    ("10.3p1",
     "Dec  5 17:03:16 localhost sshd-session[11932]: Postponed keyboard-interactive/pam for alice from 127.0.0.1 "
     "port 49203 ssh2 [preauth]",
     "auth.postponed", {"method": "keyboard-interactive", "submethod": "pam"}),
]


@pytest.mark.parametrize("version, line, event, fields", LINES,
                         ids=[f"{v}-{e}-{i}" for i, (v, _, e, _) in enumerate(LINES)])
def test_real_line_parses(version: str, line: str, event: str, fields: dict) -> None:
    (parsed,) = list(parse_lines([line]))
    assert parsed.event == event, (version, parsed.event, line)
    for name, value in fields.items():
        assert parsed.fields.get(name) == value, (version, name, parsed.fields)


CAPTURES = sorted(VERSIONS.rglob("*.log"))


@pytest.mark.parametrize("path", CAPTURES, ids=[f"{p.parent.name}/{p.stem}" for p in CAPTURES])
def test_capture_has_no_unknown_sshd_line(path: Path) -> None:
    events = list(parse_file(path))
    assert [e.raw for e in events if (e.program or "").startswith("sshd") and not e.known] == []


def _groups(path: Path) -> tuple[list, list]:
    events = list(parse_file(path))
    return events, group_connections(events)


@pytest.mark.parametrize("version", ["8.4p1", "9.2p1", "9.2p1-debian12", "10.0p1", "10.3p1"])
def test_one_listener_and_the_scanner(version: str) -> None:
    """The listener is one group on every version; a 9.8+ child's own lines before it execs
    sshd-session (program still "sshd") belong to its connection, not to a second listener."""
    events, conns = _groups(VERSIONS / version / "closed-before-banner.log")
    assert [c.kind for c in conns] == ["listener", "connection"]
    scanner = conns[1]
    assert (scanner.addr, scanner.end) == ("127.0.0.9", "disconnect.closed")
    mine = {e.event for e in events if e.conn == scanner.id}
    assert {"connection.from", "connection.kex_exchange_identification", "disconnect.closed"} <= mine
    if version.startswith("10."):
        exits = [e for e in events if e.event == "listener.child_exit"]
        assert exits and all(e.conn == scanner.id and e.role == "listener" for e in exits)


@pytest.mark.parametrize("version", ["10.0p1", "10.3p1"])
def test_penalty_belongs_to_the_failed_connection_and_the_drop_is_its_own(version: str) -> None:
    events, conns = _groups(VERSIONS / version / "per-source-penalties.log")
    guesser = next(c for c in conns if c.kind == "connection")
    (dropped,) = [c for c in conns if c.kind == "dropped"]
    (penalty,) = [e for e in events if e.event == "listener.penalty_new"]
    assert penalty.conn == guesser.id and penalty.role == "listener"
    assert guesser.outcome == "failed" and guesser.addr == dropped.addr == "127.0.0.7"
    (drop,) = [e for e in events if e.event == "listener.drop_connection"]
    assert drop.conn == dropped.id and dropped.port == drop.fields["port"] != guesser.port


def test_penalty_without_a_child_line_stays_the_listener_s() -> None:
    """At INFO the listener does not log the reaped child: the penalty cannot be placed, and is
    the listener's own line (never another connection's)."""
    path = VERSIONS / "10.3p1" / "per-source-penalties.log"
    kept = [line for line in path.read_text().splitlines() if ": debug" not in line]
    events = list(parse_lines(kept))
    conns = group_connections(events)
    (penalty,) = [e for e in events if e.event == "listener.penalty_new"]
    listener = next(c for c in conns if c.kind == "listener")
    assert penalty.conn == listener.id


@pytest.mark.parametrize("version, end", [
    ("8.4p1", None),                                     # Linux builds before 8.5: silent
    ("9.2p1", "disconnect.login_grace_timeout"),         # upstream 8.5-9.7: the child, at FATAL
    ("9.2p1-debian12", None),                            # Debian's CVE-2024-6387 fix: silent
    ("10.0p1", "listener.login_grace_timeout"),          # 9.8+: the listener, naming the pid
    ("10.3p1", "listener.login_grace_timeout"),
])
def test_grace_timeout_ends_the_stalled_connection(version: str, end: str | None) -> None:
    events, conns = _groups(VERSIONS / version / "login-grace-timeout.log")
    (staller,) = [c for c in conns if c.kind == "connection"]
    assert staller.addr == "127.0.0.11" and staller.end == end
    timeouts = [e for e in events if "timeout" in e.event]
    assert all(e.conn == staller.id for e in timeouts) and len(timeouts) == (end is not None)


@pytest.mark.parametrize("version, reason", [
    ("8.4p1", "past MaxStartups"), ("9.2p1", "past MaxStartups"), ("9.2p1-debian12", "past MaxStartups"),
    ("10.0p1", "Maxstartups"), ("10.3p1", "Maxstartups"),
])
def test_maxstartups_drop_is_a_refused_connection_of_one_line(version: str, reason: str) -> None:
    events, conns = _groups(VERSIONS / version / "maxstartups-drop.log")
    (dropped,) = [c for c in conns if c.kind == "dropped"]
    (holder,) = [c for c in conns if c.kind == "connection"]
    assert (dropped.addr, holder.addr) == ("127.0.0.13", "127.0.0.12")
    (drop,) = [e for e in events if e.conn == dropped.id]
    assert drop.event == "listener.drop_connection" and drop.fields["reason"] == reason
    assert dropped.port == drop.fields["port"]
