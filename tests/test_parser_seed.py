"""The reference log: every sshd line a known event, two connections plus the listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.logs import group_connections, parse_file

# pids of the reference log (docs/reference-log.md)
LISTENER = 6682
CONN_A = {10348: "monitor", 10388: "user", 10389: "session"}  # MoTTY
CONN_B = {10350: "monitor", 10434: "user"}  # SecureBlackbox


@pytest.fixture(scope="module")
def parsed(seed_log_path: Path):
    events = list(parse_file(seed_log_path))
    return events, group_connections(events)


def test_every_sshd_line_is_a_known_event(parsed) -> None:
    events, _ = parsed
    assert len(events) == 180
    sshd = [e for e in events if e.program == "sshd"]
    assert len(sshd) == 178
    unknown = [(e.line, e.message) for e in sshd if not e.known]
    assert unknown == []
    assert all(e.format == "syslog" for e in events)


def test_systemd_logind_lines_are_other_programs_not_grouped(parsed) -> None:
    events, _ = parsed
    logind = [e for e in events if e.program == "systemd-logind"]
    assert [e.line for e in logind] == [80, 158]
    assert all(e.event == "other" and e.conn is None and e.role is None for e in logind)
    assert logind[0].message == "New session 606 of user user."


def test_two_connections_and_their_roles(parsed) -> None:
    events, conns = parsed
    assert [c.kind for c in conns] == ["connection", "connection"]
    a, b = conns
    for ev in events:
        if ev.program != "sshd":
            continue
        if ev.pid == LISTENER:
            assert ev.role == "listener"
            child = ev.fields["pid"]
            assert ev.conn == (a.id if child in CONN_A else b.id)
            continue
        expected_conn = a.id if ev.pid in CONN_A else b.id
        roles = CONN_A if ev.pid in CONN_A else CONN_B
        assert ev.conn == expected_conn, ev
        expected_role = "preauth" if ev.relay == "preauth" else roles[ev.pid]
        assert ev.role == expected_role, ev
    assert a.pids == {"monitor": [10348], "listener": [6682], "preauth": [10348], "user": [10388], "session": [10389]}
    assert b.pids["user"] == [10434] and "session" not in b.pids


def test_relayed_preauth_lines_keep_the_monitor_pid(parsed) -> None:
    events, _ = parsed
    relayed = [e for e in events if e.relay == "preauth"]
    assert relayed and all(e.pid in (10348, 10350) and e.role == "preauth" for e in relayed)
    first = next(e for e in relayed)
    assert first.event == "connection.privsep_uid" and first.fields == {"uid": 129, "gid": 65534}


def test_summary_of_the_motty_connection(parsed) -> None:
    _, (a, _b) = parsed
    d = a.to_dict()
    assert d["client"] == {"addr": "10.199.34.74", "port": 53688, "version": "MoTTY_Release_0.80"}
    assert d["server"]["port"] == 22
    assert d["kex"] == "sntrup761x25519-sha512@openssh.com"
    assert d["host_key"] == "ssh-ed25519"
    assert d["cipher"] == {"client->server": "aes256-ctr", "server->client": "aes256-ctr"}
    assert d["mac"]["client->server"] == "hmac-sha2-256"
    assert d["compression"]["server->client"] == "zlib@openssh.com"
    assert d["strict_kex"] is True and d["ext_info"] is True
    assert [x["outcome"] for x in d["auth"]] == ["tried", "postponed", "accepted"]
    assert d["user"] == "user" and d["outcome"] == "accepted"
    assert d["channels"] == [
        {"channel": 0, "type": "session", "rchan": 256, "window": 16384, "max_packet": 16384,
         "requests": ["x11-req", "pty-req", "shell"]}
    ]
    assert d["sessions"] == ["shell on pts/0"]


def test_summary_of_the_secureblackbox_connection(parsed) -> None:
    _, (_a, b) = parsed
    assert b.client_version == "SecureBlackbox"
    assert b.kex == "diffie-hellman-group-exchange-sha256"
    assert b.mac == {"client->server": "hmac-sha1", "server->client": "hmac-sha1"}
    assert not b.strict_kex and not b.ext_info
    assert b.channels[0].rchan == 1 and b.channels[0].window == 32768 and b.channels[0].max_packet == 262144
    assert b.sessions == ["subsystem 'sftp'"]
    assert b.duration == 1.0


def test_event_fields_are_typed(parsed) -> None:
    events, _ = parsed
    by_line = {e.line: e for e in events}
    assert by_line[5].event == "connection.from"
    assert by_line[5].fields == {"addr": "10.199.34.74", "port": 53688, "laddr": "10.199.35.15", "lport": 22, "rdomain": ""}
    assert by_line[101].event == "channel.open"
    assert by_line[101].fields == {"ctype": "session", "rchan": 256, "window": 16384, "max_packet": 16384}
    assert by_line[66].event == "auth.accepted" and by_line[66].level == "INFO"
    # "Postponed publickey" of a real user: VERBOSE, or INFO from the MaxAuthTries/2-th failure
    # on (auth.c:auth_log); the line alone cannot tell, so its level is at least INFO
    assert by_line[43].event == "auth.postponed" and by_line[43].spec.level == "VARIES"
    assert by_line[43].level == "INFO"


def test_session_child_goes_to_the_user_child_that_names_it() -> None:
    """A real capture where two user children (pids 1651, 1652) run sessions at once: the pty
    child 1653 must join the connection whose user child later logs "session_by_pid: pid 1653",
    not the one whose pid is nearest below it."""
    from pathlib import Path

    from simulator.logs import group_connections, parse_lines

    path = Path(__file__).parent / "data" / "local" / "seed-replay-interleaved-sessions.log"
    events = list(parse_lines(path.read_text().splitlines()))
    group_connections(events)
    tty = next(e for e in events if "TIOCSCTTY" in e.raw)
    owner = next(e for e in events if e.raw.endswith("session_by_pid: pid 1653"))
    assert tty.pid == 1653 and tty.role == "session"
    assert tty.conn == owner.conn
