"""Lines OpenSSH 10.6p1 writes that 10.3p1 did not, parsed and normalised (real lines, captured
from Debian unstable's sshd in `--target docker:debian-unstable`, scenarios/library)."""

from __future__ import annotations

from simulator.logs import group_connections, normalise_event, parse_lines

# password-success at INFO: the post-quantum warning is the connection's first line.
INFO_LOG = [
    "Dec  5 17:04:02 localhost sshd[25]: Server listening on ::1 port 39021.",
    "Dec  5 17:04:02 localhost sshd[25]: Server listening on 127.0.0.1 port 39021.",
    'Dec  5 17:04:02 localhost sshd-session[29]: WARNING: connection from 127.0.0.1 port 58505 is not using'
    ' a post-quantum key exchange algorithm: "curve25519-sha256@libssh.org" [preauth]',
    "Dec  5 17:04:02 localhost sshd-session[29]: Accepted password for alice from 127.0.0.1 port 58505 ssh2",
    "Dec  5 17:04:02 localhost sshd-session[29]: pam_unix(sshd:session): session opened for user alice(uid=1000)"
    " by (uid=0)",
    "Dec  5 17:04:02 localhost sshd-session[33]: Connection closed by 127.0.0.1 port 58505",
    "Dec  5 17:04:02 localhost sshd-session[29]: pam_unix(sshd:session): session closed for user alice",
]
# exec-exit-status at DEBUG2: the channel timeouts are printed as doubles from 10.6.
NEW_SESSION = ("Dec  5 17:03:01 localhost sshd-session[32]: debug1: channel 0: new session [server-session]"
               " (inactive timeout: 0.000000)")
XTYPE = ("Dec  5 17:03:01 localhost sshd-session[32]: debug2: channel_set_xtype: labeled channel 0 as"
         " session:command (inactive timeout 0.000000)")
# The same two lines from OpenSSH 9.2p1 (Debian 12).
XTYPE_9_2 = ("Nov 22 10:15:02 host sshd[4242]: debug2: channel_set_xtype: labeled channel 0 as"
             " session:command (inactive timeout 0)")


def test_post_quantum_warning_is_known_and_names_the_endpoint() -> None:
    events = list(parse_lines(INFO_LOG))
    warning = events[2]
    assert warning.known and warning.event == "kex.not_post_quantum"
    assert warning.fields == {"addr": "127.0.0.1", "port": 58505, "kex": "curve25519-sha256@libssh.org"}
    assert (warning.level, warning.relay) == ("INFO", "preauth")
    assert all(e.known for e in events)
    connections = [c for c in group_connections(events) if c.addr is not None]
    assert len(connections) == 1
    conn = connections[0]
    assert (conn.addr, conn.port) == ("127.0.0.1", 58505)
    assert warning in conn.events and conn.outcome == "accepted"


def test_double_channel_timeouts_parse_as_whole_seconds() -> None:
    new, xtype, old = parse_lines([NEW_SESSION, XTYPE, XTYPE_9_2])
    assert new.event == "channel.new"
    assert new.fields == {"channel": 0, "ctype": "session", "name": "server-session", "inactive_timeout": 0}
    assert xtype.event == old.event == "channel.channel_set_xtype.labeled_channel_as"
    assert xtype.fields == old.fields == {"id": 0, "xctype": "session:command", "inactive_deadline": 0}


def test_double_channel_timeouts_normalise_to_the_older_wording() -> None:
    new, xtype, old = parse_lines([NEW_SESSION, XTYPE, XTYPE_9_2])
    assert normalise_event(new).endswith("DEBUG1: channel 0: new [server-session]")
    assert normalise_event(xtype) == normalise_event(old)
    assert normalise_event(xtype).endswith("(inactive timeout 0)")
