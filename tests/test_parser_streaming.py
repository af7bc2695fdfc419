"""Streaming grouping: same answer as the exact two passes, and state that does not grow."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from simulator.logs import ConnectionTracker, group_connections, group_events, parse_lines

DATA = Path(__file__).resolve().parent / "data" / "local"
_PID = re.compile(r"(sshd\[|pid |Forked child )(\d+)")


def repeated(path: Path, times: int) -> Iterator[str]:
    """A real capture repeated with fresh pids (as a long-running server would log)."""
    lines = path.read_text().splitlines()
    for rep in range(times):
        offset = 100_000 * (rep + 1)
        for line in lines:
            yield _PID.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + offset}", line)


def test_streaming_window_agrees_with_two_passes(seed_log_path: Path) -> None:
    lines = seed_log_path.read_text().splitlines()
    streamed = [(e.conn, e.role) for e in group_events(parse_lines(lines), window=8)]
    events = list(parse_lines(lines))
    group_connections(events)
    assert streamed == [(e.conn, e.role) for e in events]


def test_child_line_before_its_fork_line_is_still_grouped(seed_log_path: Path) -> None:
    lines = seed_log_path.read_text().splitlines()
    lines[0], lines[1] = lines[1], lines[0]  # the child speaks before the listener names it
    events = list(parse_lines(lines))
    conns = group_connections(events)
    assert len([c for c in conns if c.kind == "connection"]) == 2
    assert events[0].pid == 10348 and events[0].conn == events[1].conn and events[1].role == "listener"


def test_tracker_state_stays_bounded_on_a_long_log() -> None:
    done = []
    tracker = ConnectionTracker(window=256, on_done=done.append, end_grace_lines=1000, sweep_every=2000)
    peak = 0
    for n, ev in enumerate(tracker.run(parse_lines(repeated(DATA / "sshd-9.2-debug1.log", 40)))):
        if n % 500 == 0:
            peak = max(peak, len(tracker._pids), len(tracker._live))
    assert len(done) == 40 * 13
    assert peak < 100  # 40 x 13 connections went through, a few dozen pids at a time
    assert not tracker._pids and not tracker._live


def test_parser_batches_list_the_lineage_facts_grouping_would_find(seed_log_path: Path) -> None:
    """The parser lists each batch's lineage-fact lines (EventBatch.facts) so that grouping
    need not look at every line again: on real logs of 5.x to 10.3 the list is exactly what
    looking at every line finds, and a batch holding a line of sshd-session or sshd-auth
    says so (EventBatch.new_programs); the 10.x logs have such lines, so the check can fail."""
    from simulator.logs import tags
    from simulator.logs.events import EventBatch

    root = Path(__file__).resolve().parent
    logs = [seed_log_path, *sorted(DATA.glob("*.log")), *sorted((root / "data" / "versions").glob("*/*.log")),
            *sorted((root / "data" / "corpus").glob("*.log"))]
    new_program_batches = facts_seen = 0
    for log in logs:
        # repeated with fresh pids, so that the look-ups miss and hit across batch boundaries
        stream = parse_lines(list(repeated(log, 3)), input_format="syslog")
        for batch in stream.batches():
            assert type(batch) is EventBatch
            scanned = [(k, ev, ev.spec.flags) for k, ev in enumerate(batch)
                       if ev.spec is not None and ev.spec.flags & tags.LINEAGE]
            assert batch.facts == scanned, log.name
            facts_seen += len(scanned)
            if any(ev.program in ("sshd-session", "sshd-auth") for ev in batch):
                assert batch.new_programs, log.name
                new_program_batches += 1
    assert facts_seen > 100 and new_program_batches > 0


def test_a_reused_pid_in_the_same_second_starts_a_new_connection() -> None:
    """A pid the kernel hands out again for the next connection, within the same second: its
    lines share their syslog prefix with the old connection's last lines, and grouping must
    still place them in a connection of their own once the listener forks it anew, in the
    streaming and the batch path alike."""
    lines = (DATA / "sshd-9.2-debug1.log").read_text().splitlines()
    first = lines[:110]
    assert "Forked child 8059." in first[5] and "Forked child 8063." in lines[110]
    second = [re.sub(r"\b8063\b", "8059", line) for line in lines[110:218]
              if line.startswith("Nov 25 08:30:21")]
    log = first + second
    streamed = list(group_events(parse_lines(log), window=64))
    batch = list(parse_lines(log))
    group_connections(batch)
    for events in (streamed, batch):
        old = {e.conn for e in events[:110] if e.pid == 8059}
        new = {e.conn for e in events[110:] if e.pid == 8059}
        assert len(old) == 1 and len(new) == 1 and old != new
        assert all(e.conn is not None for e in events if e.pid == 8059)
