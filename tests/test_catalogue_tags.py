"""What a message means lives in the catalogue's tags: the engine reads them, and a new
message that starts or ends a connection is taught by one YAML entry, with no code change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulator.commands.replay import debug_mode_line
from simulator.logs import tags
from simulator.logs.catalogue import DATA_DIR, Catalogue, CatalogueError, load_specs
from simulator.logs.connections import group_connections
from simulator.logs.parser import parse_lines
from simulator.verify.verifier import auth_outcome, connection_outcome

# Real sshd 9.2 lines (tests/data/local/sshd-9.2-debug1.log), pids and ports as written there.
FROM_1 = 'Nov 25 08:30:21 localhost sshd[8059]: Connection from 127.0.0.1 port 41500 on 127.0.0.1 port 2222 rdomain ""'
CLEANUP = "Nov 25 08:30:21 localhost sshd[8059]: debug1: do_cleanup"
INETD = "Nov 25 08:30:22 localhost sshd[8059]: debug1: inetd sockets after dupping: 4, 4"
FROM_2 = 'Nov 25 08:30:22 localhost sshd[8059]: Connection from 127.0.0.1 port 41502 on 127.0.0.1 port 2222 rdomain ""'


def _copy(tmp_path: Path) -> Path:
    data = tmp_path / "events"
    shutil.copytree(DATA_DIR, data)
    return data


def _grouped(lines: list[str], data: Path | None = None) -> list[tuple[str, int | None]]:
    cat = Catalogue(load_specs(data)) if data is not None else None
    events = list(parse_lines(lines, input_format="syslog", catalogue=cat))
    group_connections(events)
    return [(e.event, e.conn) for e in events]


def test_a_new_entry_tagged_ends_ends_a_connection(tmp_path: Path) -> None:
    lines = [FROM_1, CLEANUP, FROM_2]
    # stock: do_cleanup means nothing for grouping, so the pid's connection never ended and
    # its second "Connection from" stays in it
    assert [c for _, c in _grouped(lines)] == [1, 1, 1]
    data = _copy(tmp_path)
    (data / "future.yaml").write_text(
        "- event: session.cleanup_done\n"
        "  level: DEBUG1\n"
        "  tags: [ends]\n"
        '  pattern: "do_cleanup"\n'
        '  versions: ">=7.0"\n'
        "  source: session.c:do_cleanup\n"
    )
    got = _grouped(lines, data)
    assert got == [("connection.from", 1), ("session.cleanup_done", 1), ("connection.from", 2)]
    cat = Catalogue(load_specs(data))
    conns = group_connections(parse_lines(lines, input_format="syslog", catalogue=cat))
    assert [(c.id, c.end, c.addr, c.port) for c in conns] == [
        (1, "session.cleanup_done", "127.0.0.1", 41500), (2, None, "127.0.0.1", 41502)]


def test_a_tag_added_to_an_entry_starts_connections(tmp_path: Path) -> None:
    lines = [FROM_1, CLEANUP, INETD, FROM_2]
    assert [c for _, c in _grouped(lines)] == [1, 1, 1, 1]
    data = _copy(tmp_path)
    conn_file = data / "connection.yaml"
    text = conn_file.read_text()
    entry = "- event: connection.inetd_sockets\n  level: DEBUG1\n"
    assert entry in text
    conn_file.write_text(text.replace(entry, entry + "  tags: [starts]\n"))
    # the pid's first connection ends with do_cleanup only once that is tagged too: a start
    # line on a pid whose connection is still open belongs to it
    (data / "future.yaml").write_text(
        "- event: session.cleanup_done\n  level: DEBUG1\n  tags: [ends]\n"
        '  pattern: "do_cleanup"\n  versions: ">=7.0"\n  source: session.c:do_cleanup\n'
    )
    assert [c for _, c in _grouped(lines, data)] == [1, 1, 2, 2]


def _entry_file(tmp_path: Path, entry: str) -> Path:
    data = tmp_path / "bad"
    data.mkdir()
    (data / "x.yaml").write_text(entry)
    return data


def test_an_unknown_tag_is_an_error_naming_the_entry(tmp_path: Path) -> None:
    data = _entry_file(tmp_path, '- event: a.b\n  level: INFO\n  tags: [starts, begins]\n  pattern: "x"\n'
                                 '  versions: any\n  source: x.c\n')
    with pytest.raises(CatalogueError, match=r"x.yaml entry 1: unknown tag 'begins'"):
        load_specs(data)


def test_tags_must_be_a_list_of_names(tmp_path: Path) -> None:
    data = _entry_file(tmp_path, '- event: a.b\n  level: INFO\n  tags: starts\n  pattern: "x"\n'
                                 '  versions: any\n  source: x.c\n')
    with pytest.raises(CatalogueError, match=r"x.yaml entry 1: tags: expected a list"):
        load_specs(data)


@pytest.mark.parametrize(("tag", "pattern", "needs"), [
    ("forks", "Forked child {child:int}.", "an integer field 'pid'"),
    ("user-child", "User child is on pid {pid}", "an integer field 'pid'"),
    ("endpoint", "Connection from {host:word}", "a field 'addr'"),
])
def test_a_tag_needs_the_field_it_reads(tmp_path: Path, tag: str, pattern: str, needs: str) -> None:
    data = _entry_file(tmp_path, f'- event: a.b\n  level: INFO\n  tags: [{tag}]\n  pattern: "{pattern}"\n'
                                 '  versions: any\n  source: x.c\n')
    with pytest.raises(CatalogueError, match=f"tag '{tag}' needs {needs}"):
        load_specs(data)


def test_the_packaged_catalogue_tags_what_grouping_needs() -> None:
    by_name = {s.name: s for s in load_specs() if not s.origin.startswith("source/")}
    assert by_name["connection.from"].flags & tags.STARTS
    assert by_name["listener.forked_child"].flags & tags.FORKS
    assert by_name["connection.user_child"].flags & tags.USER_CHILD
    assert by_name["session.exit_status"].flags & tags.SESSION_CHILD
    assert by_name["disconnect.closed"].flags & tags.ENDS
    assert by_name["auth.accepted"].flags & tags.AUTH_ACCEPTED
    assert by_name["kex.unable_to_negotiate"].flags & tags.REFUSED


# Real lines: fail2ban's sshd corpus and the local 9.2 captures.
INVALID = "Nov 25 08:30:07 localhost sshd[8160]: Invalid user nobody-here from 127.0.0.1 port 41426"
CLOSED_INVALID = ("Nov 25 08:30:07 localhost sshd[8160]: Connection closed by invalid user nobody-here "
                  "127.0.0.1 port 41426 [preauth]")
ACCEPTED = "Nov 25 08:30:21 localhost sshd[8059]: Accepted password for user from 127.0.0.1 port 41500 ssh2"
NEGOTIATE = ("Nov 25 08:30:21 localhost sshd[8063]: Unable to negotiate with 127.0.0.1 port 41504: "
             "no matching cipher found. Their offer: 3des-cbc [preauth]")
CLOSED = "Nov 25 08:30:21 localhost sshd[8065]: Connection closed by 127.0.0.1 port 41506 [preauth]"


@pytest.mark.parametrize(("lines", "auth", "outcome"), [
    ([INVALID, CLOSED_INVALID], "failed", "closed"),
    ([ACCEPTED], "accepted", "established"),
    ([NEGOTIATE], "none", "refused"),
    ([CLOSED], "none", "closed"),
])
def test_outcomes_come_from_tags(lines: list[str], auth: str, outcome: str) -> None:
    events = list(parse_lines(lines, input_format="syslog"))
    assert all(e.known for e in events)
    assert auth_outcome(events) == auth
    assert connection_outcome(events) == outcome
    conns = group_connections(events)
    assert len(conns) == 1
    assert (conns[0].outcome or "none") == auth


# Real lines about how sshd runs itself: `sshd -d` 9.2 (tests/data/corpus/build-9.2p1-sshd-d.log),
# syslog at DEBUG1 (the seed log) and DEBUG3 (tests/data/local/sshd-9.2-debug3.log).
RUN_MODE_LINES = [
    "debug1: rexec_argv[1]='-d'",
    "debug1: Server will not fork when running in debugging mode.",
    "debug1: rexec start in 4 out 4 newsock 4 pipe -1 sock 7",
    "Jan 29 11:23:02 user-sicharge sshd[10348]: debug1: rexec start in 5 out 5 newsock 5 pipe 7 sock 8",
    "Nov 25 08:30:33 localhost sshd[9170]: debug3: send_rexec_state: entering fd = 8 config len 938",
    "Nov 25 08:30:33 localhost sshd[9170]: debug3: send_rexec_state: done",
]


def test_lines_about_sshds_own_running_are_tagged_run_mode() -> None:
    events = [next(iter(parse_lines([line]))) for line in RUN_MODE_LINES]
    assert [e.event for e in events] == [
        "connection.main.rexec_argv", "connection.server_accept_loop.server_will_not", "connection.rexec",
        "connection.rexec", "connection.send_rexec_state.entering_fd_config", "connection.send_rexec_state.done"]
    assert all(e.spec is not None and e.spec.flags & tags.RUN_MODE for e in events)
    assert all(debug_mode_line(e) for e in events)
    by_name = {s.name: s for s in load_specs() if s.flags & tags.RUN_MODE}
    assert {"connection.recv_rexec_state.entering_fd", "connection.recv_rexec_state.done"} <= set(by_name)
    (other,) = parse_lines([FROM_1])
    assert not debug_mode_line(other)
