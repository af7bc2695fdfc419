"""Normalisation: the documented table, applied to real lines."""

from __future__ import annotations

from pathlib import Path

from simulator.logs import group_connections, normalise_event, normalise_message, parse_file
from simulator.logs.normalise import load_rules


def test_table_loads_and_documents_every_rule() -> None:
    rules = load_rules()
    names = [r.name for r in rules]
    assert "channel-new-9.2" in names and "ipv4" in names and "privsep-uid" in names
    assert all(r.description for r in rules)
    assert [r.kind for r in rules] == sorted((r.kind for r in rules), key=["wording", "tokens"].index)


def test_tokens_of_real_lines() -> None:
    assert normalise_message("Connection from 10.199.34.74 port 53688 on 10.199.35.15 port 22 rdomain \"\"") == (
        'Connection from <IP> port <PORT> on <IP> port <PORT> rdomain ""'
    )
    assert normalise_message("Local version string SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6") == (
        "Local version string SSH-2.0-OpenSSH_<VERSION>"
    )
    assert normalise_message(
        "Accepted publickey for user from 10.199.34.74 port 53688 ssh2: ED25519 SHA256:v0S66Yu0IAQ5eEdhpAGAzhZR02FgdYSk8+XfeZK2co0"
    ) == "Accepted publickey for user from <IP> port <PORT> ssh2: ED25519 SHA256:<FP>"
    assert normalise_message("ROOT LOGIN REFUSED FROM ::ffff:1.2.3.4") == "ROOT LOGIN REFUSED FROM <IP>"
    assert normalise_message("Failed password for invalid user ROOT from aaaa:bbbb:cccc:1234::1:1 port 50273 ssh2") == (
        "Failed password for invalid user ROOT from <IP> port <PORT> ssh2"
    )
    assert normalise_message("Received disconnect from 198.51.100.76 port 58846:11: Bye Bye") == (
        "Received disconnect from <IP> port <PORT>:11: Bye Bye"
    )
    assert normalise_message("Forked child 10348.") == "Forked child <PID>."
    assert normalise_message("session_pty_req: session 0 alloc /dev/pts/0") == "session_pty_req: session 0 alloc /dev/pts/<N>"


def test_privsep_uid_only_in_the_preauth_child() -> None:
    assert normalise_message("permanently_set_uid: 129/65534", relay="preauth") == (
        "permanently_set_uid: <PRIVSEP_UID>/<PRIVSEP_GID>"
    )
    assert normalise_message("permanently_set_uid: 1000/1000") == "permanently_set_uid: 1000/1000"


def test_wording_rules_can_be_left_out() -> None:
    msg = "channel 0: new session [server-session] (inactive timeout: 0)"
    assert normalise_message(msg) == "channel 0: new [server-session]"
    assert normalise_message(msg, wording=False) == msg


def test_the_two_seed_connections_differ_only_where_the_clients_do(seed_log_path: Path) -> None:
    events = list(parse_file(seed_log_path))
    a, b = group_connections(events)
    first = [normalise_event(e) for e in a.events if e.event.startswith("connection.") and e.role == "monitor"]
    second = [normalise_event(e) for e in b.events if e.event.startswith("connection.") and e.role == "monitor"]
    assert len(first) == len(second)
    differ = [(x, y) for x, y in zip(first, second) if x != y]
    # only the client's name and the concurrency-dependent rexec descriptors ("pipe 8 sock 9":
    # the second connection started while the first was pre-auth) tell them apart
    assert differ and all(
        "rexec start" in x or ("MoTTY_Release_0.80" in x and "SecureBlackbox" in y) for x, y in differ
    )
    assert 'sshd monitor VERBOSE: Connection from <IP> port <PORT> on <IP> port <PORT> rdomain ""' in first
