"""Log-to-log comparison: the product's fidelity measure.

Both logs are parsed and normalised (pids, times, addresses, ports, fingerprints, host names,
version strings and known wording drift: simulator/data/normalise.yaml), their connections are
paired, and each connection's process streams (listener, monitor, preauth, user, session) are
compared in order with a longest-common-subsequence match. Streams, not whole connections,
because the order of lines across sshd's processes is not causal. The result says how many of
A's sshd lines B reproduces: `matched N/M lines`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable

from simulator.colour import paint

STREAM_ORDER = ("listener", "monitor", "preauth", "user", "session", None)


@dataclass
class StreamDiff:
    role: str | None
    matched: int
    a_only: list[Any] = field(default_factory=list)
    b_only: list[Any] = field(default_factory=list)


@dataclass
class ConnectionDiff:
    a_conn: Any
    b_conn: Any
    streams: list[StreamDiff]

    @property
    def matched(self) -> int:
        return sum(s.matched for s in self.streams)


@dataclass
class LogDiff:
    connections: list[ConnectionDiff]
    total_a: int
    total_b: int

    @property
    def matched(self) -> int:
        return sum(c.matched for c in self.connections)

    @property
    def complete(self) -> bool:
        return self.matched == self.total_a


def _sshd_events(events: Iterable[Any]) -> list[Any]:
    return [e for e in events if e.program and e.program.startswith("sshd") and e.event not in ("other", "unparsed")]


def _label(conn: Any) -> str:
    if conn is None:
        return "(none)"
    if getattr(conn, "kind", "") == "listener":
        return "listener"
    who = conn.client_version or "?"
    return f"#{conn.id} {who} from {conn.addr or '?'} port {conn.port or '?'}"


def pair_connections(a: list[Any], b: list[Any]) -> list[tuple[Any, Any]]:
    """Pair A's connections with B's: the listener with the listener, then by client version and
    order of appearance (a reproduction keeps the clients, not the ports)."""
    pairs: list[tuple[Any, Any]] = []
    used: set[int] = set()
    a_sorted = sorted(a, key=lambda c: c.first_line)
    b_sorted = sorted(b, key=lambda c: c.first_line)
    for conn in a_sorted:
        same_kind = [c for c in b_sorted if c.kind == conn.kind and id(c) not in used]
        pick = next((c for c in same_kind if conn.kind == "connection" and c.client_version == conn.client_version
                     and conn.client_version), None)
        pick = pick or (same_kind[0] if same_kind else None)
        if pick is not None:
            used.add(id(pick))
        pairs.append((conn, pick))
    for conn in b_sorted:
        if id(conn) not in used:
            pairs.append((None, conn))
    return pairs


def _streams(events: list[Any]) -> dict[str | None, list[Any]]:
    out: dict[str | None, list[Any]] = {}
    for event in events:
        out.setdefault(event.role, []).append(event)
    return out


def diff_events(a_events: list[Any], b_events: list[Any]) -> LogDiff:
    """Compare two parsed logs (events with conn and role set by the connection grouping)."""
    from simulator.logs import group_connections, normalise_event

    a_sshd, b_sshd = _sshd_events(a_events), _sshd_events(b_events)
    a_conns = group_connections(a_events)
    b_conns = group_connections(b_events)
    a_by_conn: dict[Any, list[Any]] = {}
    b_by_conn: dict[Any, list[Any]] = {}
    for e in a_sshd:
        a_by_conn.setdefault(e.conn, []).append(e)
    for e in b_sshd:
        b_by_conn.setdefault(e.conn, []).append(e)
    a_list = [c for c in a_conns if c.id in a_by_conn]
    b_list = [c for c in b_conns if c.id in b_by_conn]
    # Events the grouping left without a connection still count: they form a pseudo-connection.
    orphans_a = a_by_conn.get(None, [])
    orphans_b = b_by_conn.get(None, [])
    results: list[ConnectionDiff] = []
    for a_conn, b_conn in pair_connections(a_list, b_list):
        a_ev = a_by_conn.get(a_conn.id, []) if a_conn is not None else []
        b_ev = b_by_conn.get(b_conn.id, []) if b_conn is not None else []
        results.append(ConnectionDiff(a_conn, b_conn, _diff_streams(a_ev, b_ev, normalise_event)))
    if orphans_a or orphans_b:
        results.append(ConnectionDiff(None, None, _diff_streams(orphans_a, orphans_b, normalise_event)))
    return LogDiff(results, len(a_sshd), len(b_sshd))


def _diff_streams(a_ev: list[Any], b_ev: list[Any], normalise: Any) -> list[StreamDiff]:
    a_streams, b_streams = _streams(a_ev), _streams(b_ev)
    roles = sorted(set(a_streams) | set(b_streams), key=lambda r: STREAM_ORDER.index(r) if r in STREAM_ORDER else 99)
    out = []
    for role in roles:
        a_s, b_s = a_streams.get(role, []), b_streams.get(role, [])
        a_norm = [normalise(e) for e in a_s]
        b_norm = [normalise(e) for e in b_s]
        matcher = difflib.SequenceMatcher(a=a_norm, b=b_norm, autojunk=False)
        matched_a: set[int] = set()
        matched_b: set[int] = set()
        for block in matcher.get_matching_blocks():
            matched_a.update(range(block.a, block.a + block.size))
            matched_b.update(range(block.b, block.b + block.size))
        out.append(StreamDiff(role, len(matched_a),
                              [a_s[i] for i in range(len(a_s)) if i not in matched_a],
                              [b_s[i] for i in range(len(b_s)) if i not in matched_b]))
    return out


def diff_lines(a_lines: list[str], b_lines: list[str]) -> LogDiff:
    from simulator.logs import parse_lines

    return diff_events(list(parse_lines(a_lines)), list(parse_lines(b_lines)))


def render(diff: LogDiff, a_name: str = "A", b_name: str = "B", color: bool = False) -> str:
    """The readable diff: per connection pair, what A has that B lacks (-) and the reverse (+)."""

    def style(text: str, **kw: Any) -> str:
        return paint(text, color, **kw)

    out: list[str] = []
    for cd in diff.connections:
        a_total = cd.matched + sum(len(s.a_only) for s in cd.streams)
        head = f"{_label(cd.a_conn)}  <->  {_label(cd.b_conn)}: {cd.matched}/{a_total} lines matched"
        if not any(s.a_only or s.b_only for s in cd.streams):
            out.append(style("= " + head, fg="green"))
            continue
        out.append(style("~ " + head, bold=True))
        for stream in cd.streams:
            if not (stream.a_only or stream.b_only):
                continue
            out.append(f"  [{stream.role or '-'}]")
            for e in stream.a_only:
                out.append(style(f"  - {a_name}:{e.line}: {e.raw}", fg="red"))
            for e in stream.b_only:
                out.append(style(f"  + {b_name}:{e.line}: {e.raw}", fg="green"))
    out.append(f"matched {diff.matched}/{diff.total_a} lines")
    return "\n".join(out)
