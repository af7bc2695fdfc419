"""What each connection of a run logged, as rows that compare equal across runs and versions.

`sshsim matrix` compares the event names of one scenario's connections between targets, and the
golden files (tests/golden/, docs/goldens.md) keep them per version. Both need the same view of
a log, the one the two-sided diff (simulator/verify/diff.py) compares:

- a connection is named by the scenario's connection id (its client port, from the run), the
  listener's lines are "listener", a connection no run names is "#N" in order of appearance;
- within a connection, each process's stream in the diff's order (listener, monitor, preauth,
  user, session), each stream in log order: the order of lines across sshd's processes is not
  causal, so it is not kept;
- each line as `normalise_event` makes it (no pid, port, address, time or fingerprint), and a
  line that sshd logs or not by its own timing (normalise.yaml `races`) left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.logs import group_connections, normalise_event, parse_lines
from simulator.verify.diff import STREAM_ORDER, is_racy, run_names

LISTENER = "listener"


@dataclass(frozen=True, slots=True)
class EventRow:
    """One sshd line of a connection: which process, the catalogue's event, the normalised line."""

    connection: str
    role: str
    event: str
    line: str

    def to_dict(self) -> dict[str, str]:
        return {"connection": self.connection, "role": self.role, "event": self.event, "line": self.line}


def connection_events(lines: list[str], connections: dict[str, Any]) -> dict[str, list[EventRow]]:
    """Connection name -> its rows, for a run's log `lines` and its `connections` (a RunResult's,
    or a JSON report's: id -> port), in the order: listener, the run's connections, the others."""
    events = [e for e in parse_lines(lines)
              if e.program and e.program.startswith("sshd") and e.event not in ("other", "unparsed")]
    names = {port: name.partition(" (")[0] for port, name in run_names(connections).items()}
    conns = {c.id: c for c in group_connections(events)}
    label: dict[int | None, str] = {}
    unnamed = 0
    for conn in sorted(conns.values(), key=lambda c: c.first_line):
        if conn.kind == LISTENER:
            label[conn.id] = LISTENER
        elif isinstance(conn.port, int) and conn.port in names:
            label[conn.id] = names[conn.port]
        else:
            unnamed += 1
            label[conn.id] = f"#{unnamed}"
    out: dict[str, list[EventRow]] = {}
    for name in [LISTENER, *(n.partition(" (")[0] for n in run_names(connections).values())]:
        out.setdefault(name, [])
    rank = {role: i for i, role in enumerate(STREAM_ORDER)}
    ordered = sorted(events, key=lambda e: (rank.get(e.role, len(rank)), e.line))
    for event in ordered:
        text = normalise_event(event)
        if is_racy(text):
            continue
        name = label.get(event.conn, "#unassigned")
        out.setdefault(name, []).append(EventRow(name, event.role or "-", event.event or "-", text))
    return {name: rows for name, rows in out.items() if rows}


def event_names(rows: dict[str, list[EventRow]]) -> dict[str, set[str]]:
    """Connection name -> the names of its events (what `sshsim matrix` compares)."""
    return {name: {row.event for row in conn_rows} for name, conn_rows in rows.items()}


def differences(by_target: dict[str, dict[str, set[str]]]) -> list[str]:
    """What differs between targets for one scenario, one line each: an event some targets log
    and others not ("scanner: auth.penalty only on local:10.3p1"), in a stable order."""
    targets = list(by_target)
    if len(targets) < 2:
        return []
    out: list[str] = []
    connections: list[str] = []
    for names in by_target.values():
        connections.extend(c for c in names if c not in connections)
    for conn in connections:
        seen: dict[str, list[str]] = {}
        for target in targets:
            for event in by_target[target].get(conn, set()):
                seen.setdefault(event, []).append(target)
        for event in sorted(seen):
            have = seen[event]
            if len(have) == len(targets):
                continue
            if len(have) <= len(targets) - len(have):
                out.append(f"{conn}: {event} only on {', '.join(have)}")
            else:
                out.append(f"{conn}: {event} not on {', '.join(t for t in targets if t not in have)}")
    return out
