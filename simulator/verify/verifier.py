"""Compare what the server logged with what a scenario expects, connection by connection.

Ordering is checked within one process stream only (a pid, and for the monitor its own lines
apart from the relayed [preauth] ones): sshd's processes log independently and their lines reach
syslog in no causal order (docs/local-target.md), so an order across streams would make tests
flaky without catching anything real.

What a failure quotes from the log (lines around it, values of fields) is cut to QUOTE_CHARS
characters: the log is untrusted, and a report must not repeat a line of megabytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.limits import quote
from simulator.logs import group_connections, parse_lines, parse_records, tags
from simulator.profiles import load_profile
from simulator.scenario.model import Expectation, ExpectedEvent, ForwardAction, Scenario, SessionAction


@dataclass
class Failure:
    """One expectation that did not hold, with what a person needs to act on it."""

    connection: str
    message: str
    expected: str | None = None
    context: list[str] = field(default_factory=list)
    position: tuple[str, int, int] | None = None

    def headline(self) -> str:
        where = f"{self.position[0]}:{self.position[1]}: " if self.position else ""
        return f"{where}connection {self.connection!r}: {self.message}"


@dataclass
class ParsedLog:
    """The parser's view of a log: every event, and the connections they form."""

    events: list[Any]
    connections: list[Any]
    _by_conn: dict[Any, list[Any]] | None = field(default=None, repr=False)

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> ParsedLog:
        events = list(parse_lines(lines))
        connections = group_connections(events)
        return cls(events, connections)

    @classmethod
    def from_records(cls, records: Iterable[Any], host: str) -> ParsedLog:
        """A capture's records, parsed as they are (no syslog text parsed again); the same
        events as `from_lines` of their classic lines."""
        events = parse_records(records, host)
        connections = group_connections(events)
        return cls(events, connections)

    def events_of(self, conn: Any) -> list[Any]:
        """The connection's events, in log order (indexed once: a scenario may ask for each of
        its connections)."""
        if self._by_conn is None:
            self._by_conn = {}
            for e in self.events:
                self._by_conn.setdefault(e.conn, []).append(e)
        return self._by_conn.get(conn.id, [])

    def client_connections(self) -> list[Any]:
        return [c for c in self.connections if getattr(c, "kind", "connection") != "listener"]


def stream_of(event: Any) -> tuple[Any, Any]:
    """A process stream: the pid, with relayed pre-auth lines apart from the monitor's own."""
    return (event.pid, event.relay)


# -- value matching -----------------------------------------------------------------------------
def value_matches(expected: Any, actual: Any, captures: dict[str, Any]) -> bool:
    """Expected field values: literal, "*" (present), "~regex", "$name" (capture, then equal)."""
    if isinstance(expected, str):
        if expected == "*":
            return actual is not None
        if expected.startswith("~"):
            return actual is not None and re.fullmatch(expected[1:], str(actual)) is not None
        if expected.startswith("$") and re.fullmatch(r"\$[A-Za-z_]\w*", expected):
            name = expected[1:]
            if name in captures:
                return str(captures[name]) == str(actual)
            return actual is not None
    if isinstance(expected, bool):
        return actual == expected or str(actual).lower() == str(expected).lower()
    if expected is None:
        return actual is None
    return str(expected) == str(actual)


def bind_captures(expected: ExpectedEvent, event: Any, captures: dict[str, Any]) -> None:
    for name, value in expected.fields.items():
        if isinstance(value, str) and re.fullmatch(r"\$[A-Za-z_]\w*", value) and value[1:] not in captures:
            captures[value[1:]] = event.fields.get(name)


def event_matches(expected: ExpectedEvent, event: Any, captures: dict[str, Any]) -> bool:
    if event.event != expected.event:
        return False
    if expected.role and event.role != expected.role:
        return False
    fields = event.fields
    # A capture named twice in one expected event binds at its first field: the second must agree.
    seen = dict(captures)
    for k, v in expected.fields.items():
        if not value_matches(v, fields.get(k), seen):
            return False
        if isinstance(v, str) and re.fullmatch(r"\$[A-Za-z_]\w*", v):
            seen.setdefault(v[1:], fields.get(k))
    return True


def _next_match(expected: ExpectedEvent, indexed: list[tuple[int, Any]], last_in_stream: dict[tuple, int],
                captures: dict[str, Any]) -> tuple[int, Any] | None:
    """The first event after its stream's last matched one that matches `expected`."""
    for i, event in indexed:
        if i > last_in_stream.get(stream_of(event), -1) and event_matches(expected, event, captures):
            return i, event
    return None


def _optional_unordered(expectation: Expectation, indexed: list[tuple[int, Any]]) -> set[int]:
    """Optional events (by position in the expectation) that must not set the order of the rest.

    Placement is greedy: an optional event that is logged, but after the next required one of its
    stream, would otherwise make that required event "not logged" although the expectation
    holds without it. Such an event still binds its captures but no longer moves its stream's
    position: the latest optional event placed before the first unplaced required one is
    released, and kept released only when that places more of the expectation.
    """
    best: set[int] = set()
    failed_at, placed = _first_unplaced(expectation, indexed, best)
    while failed_at is not None and placed:
        trial = best | {placed[-1]}
        trial_failed_at, trial_placed = _first_unplaced(expectation, indexed, trial)
        if trial_failed_at is not None and trial_failed_at <= failed_at:
            break
        best, failed_at, placed = trial, trial_failed_at, trial_placed
    return best


def _first_unplaced(expectation: Expectation, indexed: list[tuple[int, Any]],
                    unordered: set[int]) -> tuple[int | None, list[int]]:
    """The first required ordered event that cannot be placed, and the optional ones placed before it."""
    captures: dict[str, Any] = {}
    last: dict[tuple, int] = {}
    placed: list[int] = []
    for k, expected in enumerate(expectation.events):
        if expected.anywhere:
            hit = next((e for _, e in indexed if event_matches(expected, e, captures)), None)
            if hit is not None:
                bind_captures(expected, hit, captures)
            continue
        found = _next_match(expected, indexed, last, captures)
        if found is None:
            if expected.optional:
                continue
            return k, placed
        bind_captures(expected, found[1], captures)
        if k not in unordered:
            last[stream_of(found[1])] = found[0]
            if expected.optional:
                placed.append(k)
    return None, placed


def describe(expected: ExpectedEvent) -> str:
    if not expected.fields:
        return expected.event
    inner = ", ".join(f"{k}={v}" for k, v in expected.fields.items())
    return f"{expected.event} {{{inner}}}"


# -- one connection -----------------------------------------------------------------------------
def check_expectation(expectation: Expectation, events: list[Any], all_lines: list[str]) -> list[Failure]:
    """Failures of one connection's events against its expectation (empty when it holds)."""
    failures: list[Failure] = []
    captures: dict[str, Any] = {}
    last_in_stream: dict[tuple, int] = {}
    last_matched: Any = None
    indexed = list(enumerate(events))
    unordered = _optional_unordered(expectation, indexed)
    anywhere = [x for x in expectation.events if x.anywhere]
    for k, expected in enumerate(expectation.events):
        if k in unordered:
            hit = _next_match(expected, indexed, last_in_stream, captures)
            if hit is not None:
                bind_captures(expected, hit[1], captures)
            continue
        if expected.anywhere:
            hit = next((e for e in events if event_matches(expected, e, captures)), None)
            if hit is not None:
                bind_captures(expected, hit, captures)
            elif not expected.optional:
                failures.append(Failure(expectation.connection, f"expected {describe(expected)} (anywhere), not logged",
                                        describe(expected), _context(all_lines, events[0].line if events else None),
                                        expected.position))
            continue
        found = _next_match(expected, indexed, last_in_stream, captures)
        if found is not None and expectation.strict and stream_of(found[1]) in last_in_stream:
            i, stream = found[0], stream_of(found[1])
            # Events the expectation names with `anywhere` are expected too, wherever they fall.
            between = [e for j, e in indexed if last_in_stream[stream] < j < i and stream_of(e) == stream
                       and not any(event_matches(x, e, captures) for x in anywhere)]
            if between:
                failures.append(Failure(
                    expectation.connection,
                    f"strict: {len(between)} unexpected event(s) before {describe(expected)}, "
                    f"first {between[0].event}",
                    describe(expected), _context(all_lines, between[0].line), expected.position))
        if found is None:
            if expected.optional:
                continue
            anchor = last_matched.line if last_matched is not None else (events[0].line if events else None)
            near = [e for e in events if e.event == expected.event]
            near.sort(key=lambda e: not event_matches(expected, e, captures))  # a full match first
            hint = ""
            if near:
                # The divergence is where the same event was logged with other values, from
                # another process, or only earlier in its process stream.
                anchor = near[0].line
                got = ", ".join(f"{k}={quote(str(v))}" for k, v in near[0].fields.items() if k in expected.fields)
                if event_matches(expected, near[0], captures):
                    got = "it only earlier in its process stream"
                elif expected.role and near[0].role != expected.role:
                    got = f"it from the {near[0].role} process"
                else:
                    got = f"{expected.event} with {got or 'other fields'}"
                hint = f"; the log has {got} (line {near[0].line})"
            after = f" after {last_matched.event} (line {last_matched.line})" if last_matched is not None else ""
            failures.append(Failure(expectation.connection, f"expected {describe(expected)}{after}, not logged{hint}",
                                    describe(expected), _context(all_lines, anchor), expected.position))
            continue
        i, event = found
        bind_captures(expected, event, captures)
        last_in_stream[stream_of(event)] = i
        last_matched = event
    for absent in expectation.absent:
        for event in events:
            if event_matches(absent, event, captures):
                failures.append(Failure(expectation.connection,
                                        f"{describe(absent)} must not be logged, but line {event.line} is",
                                        describe(absent), _context(all_lines, event.line), absent.position))
                break
    failures.extend(_check_outcome(expectation, events, all_lines))
    return failures


def auth_outcome(events: list[Any]) -> str:
    """accepted / failed / none, from the catalogue's tags of the connection's lines."""
    return tags.auth_outcome(e.spec.flags for e in events if e.spec is not None)


def connection_outcome(events: list[Any]) -> str:
    """established / refused / closed, from the catalogue's tags of the connection's lines."""
    return tags.connection_outcome(e.spec.flags for e in events if e.spec is not None)


def _check_outcome(expectation: Expectation, events: list[Any], all_lines: list[str]) -> list[Failure]:
    failures = []
    if expectation.auth is not None:
        got = auth_outcome(events)
        if got != expectation.auth:
            failures.append(Failure(expectation.connection, f"expected auth outcome {expectation.auth}, got {got}",
                                    None, _context(all_lines, events[-1].line if events else None),
                                    expectation.position))
    if expectation.outcome is not None:
        got = connection_outcome(events)
        if got != expectation.outcome:
            failures.append(Failure(expectation.connection,
                                    f"expected connection outcome {expectation.outcome}, got {got}",
                                    None, _context(all_lines, events[-1].line if events else None),
                                    expectation.position))
    return failures


def _context(lines: list[str], line: int | None, around: int = 3) -> list[str]:
    if line is None or not lines:
        return []
    lo, hi = max(1, line - around), min(len(lines), line + around)
    return [f"{n:5d}{'>' if n == line else ' '} {quote(lines[n - 1])}" for n in range(lo, hi + 1)]


# -- whole scenario -----------------------------------------------------------------------------
def assign_connections(scenario: Scenario, log: ParsedLog,
                       ports: dict[str, int | None] | None = None) -> dict[str, Any]:
    """Scenario connection id -> log connection: by client port after a run, else by banner and order."""
    candidates = [c for c in log.client_connections() if getattr(c, "kind", "connection") == "connection"]
    # A connection sshd turned away at accept (MaxStartups, PerSourcePenalties) is its one
    # "drop connection" line, naming the client port: paired by that port only.
    by_port = candidates + [c for c in log.client_connections() if getattr(c, "kind", "") == "dropped"]
    assigned: dict[str, Any] = {}
    used: set[int] = set()
    if ports:
        for conn_id, port in ports.items():
            for c in by_port:
                if port is not None and c.port == port and c.id not in used:
                    assigned[conn_id] = c
                    used.add(c.id)
                    break
    for plan in scenario.connections:
        if plan.id in assigned or (ports and ports.get(plan.id) is not None):
            continue
        try:
            banner = load_profile(plan.profile).banner
        except Exception:
            banner = None
        pick = next((c for c in candidates if c.id not in used and banner and c.client_version == banner), None)
        # A raw client may have been turned away at accept: its log connection is then the drop.
        pool = sorted(by_port, key=lambda c: c.id) if plan.raw is not None else candidates
        pick = pick or next((c for c in pool if c.id not in used), None)
        if pick is not None:
            assigned[plan.id] = pick
            used.add(pick.id)
    return assigned


def verify_lines(scenario: Scenario, lines: list[str], ports: dict[str, int | None] | None = None,
                 log: ParsedLog | None = None) -> list[Failure]:
    """Every failure of `scenario`'s expectations against a log given as lines (`log`: those
    lines already parsed, e.g. from the capture's records; failures quote `lines`)."""
    if log is None:
        log = ParsedLog.from_lines(lines)
    mapping = assign_connections(scenario, log, ports)
    failures: list[Failure] = []
    for conn_id, expectation in scenario.expectations.items():
        conn = mapping.get(conn_id)
        if conn is None:
            port = (ports or {}).get(conn_id)
            extra = f" (client port {port})" if port else ""
            message = _dropped(lines, port) or f"no connection of the log belongs to it{extra}"
            failures.append(Failure(conn_id, message, position=expectation.position))
            continue
        if getattr(conn, "kind", "") == "dropped" and not _expects_drop(expectation):
            port = (ports or {}).get(conn_id)
            message = _dropped(lines, port) or "sshd dropped it at accept"
            failures.append(Failure(conn_id, message, position=expectation.position))
            continue
        failures.extend(check_expectation(expectation, log.events_of(conn), lines))
    return failures


def _expects_drop(expectation: Expectation) -> bool:
    """Whether the scenario expects sshd to turn this connection away (`outcome: {connection:
    refused}`): else a drop is said as the server limit it is, not as missing events."""
    return expectation.outcome == "refused"


_DROP = re.compile(r"drop connection #(\d+) from \[[^\]]*\]:(\d+) on \[[^\]]*\]:\d+ ?(.*)$")


def _dropped(lines: list[str], port: int | None) -> str | None:
    """Why a connection has no lines of its own when sshd refused it at accept (MaxStartups,
    PerSourcePenalties): a server limit, not a difference in what the client did."""
    if port is None:
        return None
    dropped = 0
    for line in lines:
        if "drop connection #" not in line:
            continue
        dropped += 1
        m = _DROP.search(line)
        if m and int(m.group(2)) == port:
            why = m.group(3).strip() or "past MaxStartups"
            return f"sshd dropped it at accept ({why}; 'drop connection #{m.group(1)}', client port {port})"
    if dropped:
        return (f"no connection of the log belongs to it (client port {port}); sshd dropped {dropped} "
                "connections at accept (MaxStartups) in this run")
    return None


def run_ports(result: Any) -> dict[str, int | None]:
    """Scenario connection id -> the client port the driver used: how a run's log is paired."""
    return {cid: (r.port or _port_from_tracker(result, cid)) for cid, r in result.connections.items()}


def verify_run(scenario: Scenario, lines: list[str], result: Any, log: ParsedLog | None = None) -> list[Failure]:
    """After `sshsim run`: connections are paired by the client ports the driver used. `log`:
    the capture's records parsed (`ParsedLog.from_records`), whose classic lines are `lines`."""
    failures = verify_lines(scenario, lines, run_ports(result), log)
    failures[:0] = client_side_failures(scenario, result)
    for cid, conn in result.connections.items():
        if conn.error:
            failures.insert(0, Failure(cid, f"the client failed: {conn.error}"))
        elif conn.failure and cid not in scenario.expectations:
            # Refused logins and failed key exchanges are outcomes a scenario may want, but only
            # when it says so: a connection nothing expects to fail must not read as a pass.
            plan = next((p for p in scenario.connections if p.id == cid), None)
            failures.insert(0, Failure(cid, f"the connection failed ({conn.failure}) and the scenario expects "
                                            f"nothing of it (say so under expect: {cid}: outcome:)",
                                       position=plan.position if plan else None))
    return failures


def client_side_failures(scenario: Scenario, result: Any) -> list[Failure]:
    """What the scenario promises about the client's side: `exit_status` and `expect_refused`.

    sshd logs neither a command's exit status nor (at most levels) which channel requests it
    refused, so these promises can only be checked against what the driver saw. Connections that
    never got past authentication, or that failed, did not run their actions: nothing to check.
    """
    failures: list[Failure] = []
    for plan in scenario.connections:
        got = result.connections.get(plan.id)
        if got is None or got.error or not got.auth_ok:
            continue
        sessions = [a for a in plan.actions if isinstance(a, SessionAction)]
        for k, action in enumerate(sessions):
            if action.exit_status is None or k >= len(got.exit_statuses):
                continue
            status = got.exit_statuses[k]
            if status != action.exit_status:
                what = f"exec {action.command!r}" if action.kind == "exec" else f"session {k + 1} ({action.kind})"
                failures.append(Failure(plan.id, f"{what} ended with exit status {status}, "
                                                 f"expected {action.exit_status}",
                                        f"exit status {action.exit_status}", position=plan.position))
        expected = [name for a in sessions for name in a.expect_refused]
        expected += [f"direct-tcpip {a.host}:{a.port}" for a in plan.actions
                     if isinstance(a, ForwardAction) and a.expect_refused]
        refused = list(got.refused)
        for name in expected:
            if name in refused:
                refused.remove(name)
            else:
                failures.append(Failure(plan.id, f"expected the server to refuse {name}, but it accepted it",
                                        f"{name} refused", position=plan.position))
        for name in refused:
            fix = "expect_refused: true on the forward" if name.startswith("direct-tcpip ") else \
                f"{name} in the session's expect_refused"
            failures.append(Failure(plan.id, f"the server refused {name}, which the scenario does not expect "
                                             f"(put {fix})", position=plan.position))
    return failures


def _port_from_tracker(result: Any, conn_id: str) -> int | None:
    return getattr(result, "ports", {}).get(conn_id)
