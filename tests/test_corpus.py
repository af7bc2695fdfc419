"""The annotated corpus of real sshd log lines (tests/data/corpus): every line's event and connection.

Each corpus file holds real lines (public posts, distribution packages, captures made here; the
source named before them) with a ``# sshsim: {"event": ..., "connection": ...}`` annotation before
each. The parser must give every line its annotated event, and must group the lines into
connections as the labels do (two lines share a label exactly when they share a connection; null:
no connection). Where today's answer is known to differ from the truth, the annotation keeps the
truth in "event"/"connection" and today's answer in "parser_event"/"parser": the test holds the
parser to that answer, so that a fix shows up as a failing line to re-annotate, and a regression
too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
sys.path.insert(0, str(CORPUS))
import annotate  # noqa: E402  (the corpus's own reader, next to the files it reads)

from simulator.logs import group_connections, parse_lines  # noqa: E402

FILES = sorted(CORPUS.glob("*.log"))


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 10
    sources = set()
    for path in FILES:
        entries = annotate.read(path)
        assert entries, path.name
        assert all(note is not None for note, _, _ in entries), f"{path.name}: a line without annotation"
        assert all(source for _, source, _ in entries), f"{path.name}: a line without a source"
        sources |= {source for _, source, _ in entries}
    assert len(sources) >= 20


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_line_is_the_annotated_event(path: Path) -> None:
    entries = annotate.read(path)
    events = annotate.parsed(path)
    wrong = [(line, note.get("parser_event", note["event"]), ev.event)
             for (note, _, line), ev in zip(entries, events, strict=True)
             if ev.event != note.get("parser_event", note["event"])]
    assert not wrong, f"{len(wrong)} lines (line, annotated, parsed): {wrong[:5]}"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_lines_group_into_the_annotated_connections(path: Path) -> None:
    entries = annotate.read(path)
    events = annotate.parsed(path)
    label_of: dict[str, int | None] = {}
    conn_of: dict[int, str | None] = {}
    for (note, _, line), ev in zip(entries, events, strict=True):
        label = note.get("parser", note["connection"])
        if label is None:
            assert ev.conn is None, f"in no connection: {line}"
            continue
        assert ev.conn is not None, f"in connection {label}: {line}"
        assert label_of.setdefault(label, ev.conn) == ev.conn, f"not with the other lines of {label}: {line}"
        assert conn_of.setdefault(ev.conn, label) == label, f"grouped with {conn_of[ev.conn]}, not {label}: {line}"


def test_old_versions_and_distributions_are_known() -> None:
    """The lines the 5.x extraction and the distributions' entries are for (each a real line)."""
    wanted = {
        "Found matching RSA key: f1:2e:b2:44:38:81:8f:27:a1:e1:2f:5b:33:e5:42:e7": "VERBOSE",
        "debug1: trying public key file /root/.ssh/authorized_keys": "DEBUG1",
        "debug1: Checking blacklist file /etc/ssh/blacklist.RSA-2047": "DEBUG1",
        "Public key ab:27:13:51:60:84:fc:53:3d:71:42:b0:e8:a8:83:b1 blacklisted (see ssh-vulnkey(1))": "INFO",
        "debug1: Windows authentication failed for user: NOUSER domain: . error: 1326": "DEBUG1",
    }
    seen = {}
    for path in FILES:
        for ev in annotate.parsed(path):
            for text in wanted:
                if ev.raw.endswith(text):
                    seen[text] = ev
    assert set(seen) == set(wanted)
    for text, ev in seen.items():
        assert ev.known and ev.spec is not None, text
        assert ev.spec.level in (wanted[text], "VARIES"), (text, ev.spec.level)
    old = seen["Found matching RSA key: f1:2e:b2:44:38:81:8f:27:a1:e1:2f:5b:33:e5:42:e7"]
    assert old.spec is not None and old.spec.versions.startswith("5.0")


def test_the_old_client_banner_wording_names_the_client() -> None:
    """Before 8.0 sshd words the banner "Client protocol version 2.0; client software version X":
    the same event and field as the newer wording, so the connection (and infer) knows its client."""
    seen = set()
    for name in ("public-old-versions.log", "public-sshd-d-win32-370.log"):
        events = list(parse_lines([line for _, _, line in annotate.read(CORPUS / name)]))
        conns = group_connections(events)
        seen |= {c.client_version for c in conns if c.client_version}
        old = [e for e in events if "; client software version " in e.raw]
        assert old and all(e.event == "connection.remote_version" and e.fields["protocol"] == "2.0" for e in old)
    assert {"WinSCP_release_4.2.9", "PuTTY_Release_0.60", "OpenSSH_6.6.1"} <= seen


def test_auth_log_levels_as_auth_c_chooses_them() -> None:
    """auth.c:auth_log writes Accepted, and password or invalid-user lines, at INFO; another
    method's Failed/Postponed/Partial of a real user at VERBOSE until MaxAuthTries/2 failures,
    then INFO: the catalogue says VARIES there. Every such line of the corpus is checked."""
    counts: dict[str, int] = {}
    for path in FILES:
        for ev in annotate.parsed(path):
            if ev.event not in ("auth.accepted", "auth.failed", "auth.postponed", "auth.partial"):
                continue
            always_info = (ev.event == "auth.accepted" or ev.fields.get("method") == "password"
                           or bool(ev.fields.get("invalid")))
            assert ev.spec is not None and ev.spec.level == ("INFO" if always_info else "VARIES"), ev.raw
            counts[ev.spec.level] = counts.get(ev.spec.level, 0) + 1
            if ev.event != "auth.accepted":
                counts[ev.event] = counts.get(ev.event, 0) + 1
    assert counts["INFO"] > 10 and counts["VARIES"] > 10
    assert counts["auth.failed"] and counts["auth.postponed"], counts


def test_sshd_d_start_up_lines_describe_the_server() -> None:
    """`sshd -d` writes no pid: its start-up lines (version, host keys, rexec_argv, Bind,
    "Server listening", "Server will not fork") are the listener's, not the first connection's;
    from the re-exec'd server's "rexec start" on, the lines are the connection's. A `-d` excerpt
    with no start-up lines is one connection from its first line."""
    for name in ("public-sshd-d-openwrt.log", "build-9.2p1-sshd-d.log", "build-10.3p1-sshd-d.log"):
        events = list(parse_lines([line for _, _, line in annotate.read(CORPUS / name)]))
        conns = {c.id: c for c in group_connections(events)}
        assert [c.kind for c in conns.values()] == ["listener", "connection"], name
        listener = [e for e in events if conns[e.conn].kind == "listener"]
        assert {e.event for e in listener} >= {
            "connection.main.sshd_version", "connection.main.host_key", "connection.main.rexec_argv",
            "connection.listen_on_addrs.bind_to_port", "listener.listening",
            "connection.server_accept_loop.server_will_not"}, name
        assert all(e.role == "listener" for e in listener)
        first = next(e for e in events if conns[e.conn].kind == "connection")
        assert first.event == "connection.rexec", name
        assert conns[first.conn].addr is not None
    excerpt = list(parse_lines([line for _, _, line in annotate.read(CORPUS / "public-sshd-d-win32-964.log")]))
    assert [c.kind for c in group_connections(excerpt)] == ["connection"]


def test_an_info_user_child_joins_the_connection_whose_endpoint_it_names_later() -> None:
    """INFO: the user child's first line ("refused local port forward") names no client; its
    later "Received disconnect from A port P" names the endpoint of the connection that logged
    in, and the child is that connection's from its first line."""
    events = list(parse_lines([line for _, _, line in annotate.read(CORPUS / "local-9.2-info-forward-refused.log")]))
    conns = [c for c in group_connections(events) if c.kind == "connection"]
    assert len(conns) == 1
    (conn,) = conns
    refused = next(e for e in events if e.event == "session.server_request_direct_tcpip.refused_local_port")
    assert refused.conn == conn.id and refused.role == "user"
    assert conn.outcome == "accepted" and conn.end == "disconnect.received"
    assert len(conn.pids["user"]) == 1 and conn.pids["user"][0] == refused.pid


def test_old_session_and_pre_auth_children_join_their_connection() -> None:
    """OpenSSH 5.x names neither child: a session child whose first line only a session child
    writes ("Setting controlling tty") joins the logged-in connection started nearest below it,
    and a pre-auth child whose first line only a pre-auth child writes ("input_userauth_request:
    invalid user") joins the monitor one pid below it (the real lines of pids 520 and 10923)."""
    events = annotate.parsed(CORPUS / "public-old-versions.log")
    conn_of = {ev.pid: (ev.conn, ev.role) for ev in events if ev.pid in (429, 520, 10922, 10923)}
    assert conn_of[520] == (conn_of[429][0], "session")
    assert conn_of[10923] == (conn_of[10922][0], "preauth")
