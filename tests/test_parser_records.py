"""The capture's records enter the parser as they are (pid, program, message), never as syslog
text parsed again: the events and connections must be those of the classic lines the user's
log file holds. Real captures (tests/data/local), each line turned into the datagram glibc's
syslog(3) sends and read by the capture's own `parse_datagram`."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.capture.syslog import parse_datagram
from simulator.logs import RecordParser, group_connections, parse_lines, parse_records

LOCAL = sorted((Path(__file__).parent / "data" / "local").glob("*.log"))


def _records(lines: list[str]) -> tuple[list, str]:
    """(records, host) of classic lines ``Mmm dd hh:mm:ss host prog[pid]: message``."""
    host = lines[0][16:].partition(" ")[0]
    out = []
    for seq, line in enumerate(lines):
        rest = line[16:].partition(" ")[2]
        out.append(parse_datagram(f"<38>{line[:15]} {rest}".encode(), seq, 0.0))
    return out, host


@pytest.mark.parametrize("path", LOCAL, ids=lambda p: p.name)
def test_records_give_the_events_and_connections_of_their_lines(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    records, host = _records(lines)
    assert [r.classic(host) for r in records] == lines
    from_text = list(parse_lines(lines))
    from_records = parse_records(records, host)
    assert [e.to_dict() for e in from_records] == [e.to_dict() for e in from_text]
    assert [c.to_dict() for c in group_connections(from_records)] == [
        c.to_dict() for c in group_connections(from_text)]
    assert sum(e.known for e in from_records) > len(lines) // 2


def test_a_record_parser_numbers_records_across_calls() -> None:
    lines = (Path(__file__).parent / "data" / "local" / "sshd-9.2-info.log").read_text().splitlines()
    records, host = _records(lines)
    parser = RecordParser(host)
    events = parser.parse(records[:10]) + parser.parse(records[10:])
    assert [e.line for e in events] == list(range(1, len(lines) + 1))
    assert [e.to_dict() for e in events] == [e.to_dict() for e in parse_lines(lines)]


def test_a_record_of_another_program_or_without_pid_is_not_sshd() -> None:
    records = [parse_datagram(b"<86>Dec  5 14:00:00 systemd-logind[412]: New session 3 of user alice.", 0, 0.0),
               parse_datagram(b"<38>Dec  5 14:00:01 sshd: Server listening on 0.0.0.0 port 22.", 1, 0.0)]
    other, no_pid = parse_records(records, "h")
    assert (other.event, other.program, other.pid, other.raw) == (
        "other", "systemd-logind", 412, "Dec  5 14:00:00 h systemd-logind[412]: New session 3 of user alice.")
    assert (no_pid.event, no_pid.pid, no_pid.raw) == (
        "listener.listening", None, "Dec  5 14:00:01 h sshd: Server listening on 0.0.0.0 port 22.")
    assert [e.to_dict() for e in parse_records(records, "h")] == [
        e.to_dict() for e in parse_lines([r.classic("h") for r in records])]
