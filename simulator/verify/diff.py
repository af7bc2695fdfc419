"""Log-to-log comparison: the product's fidelity measure.

Both logs are parsed and normalised (pids, times, addresses, ports, fingerprints, host names,
version strings and known wording drift: simulator/data/normalise.yaml), their connections are
paired, and each connection's process streams (listener, monitor, preauth, user, session) are
compared in order with a common-subsequence match. Streams, not whole connections, because the
order of lines across sshd's processes is not causal. The result says how many of A's sshd lines
B reproduces: `matched N/M lines`.

Logs are untrusted and long, so every step is O(n log n) in the lines of the two logs: pairing
keeps queues of B's unpaired connections; a stream pair is matched by difflib as it always was
while that stays cheap (real streams always do), else by `common_subsequence`.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from simulator.colour import paint, printable
from simulator.logs import group_connections, normalise_event, parse_lines
from simulator.logs.normalise import TABLE

STREAM_ORDER = ("listener", "monitor", "preauth", "user", "session", None)
# difflib may spend this many steps a line of a stream pair. Real pairs take at most ~6 (the
# streams of tests/data/local/ and the reference log, each against each); a crafted pair of
# 1,024 lines each ("x" against "x y") takes ~500,000 a line, 14 s: cubic.
DIFFLIB_STEPS_PER_LINE = 64
# common_subsequence pairs the k-th copy of a line in A with B's copies k-WINDOW..k+WINDOW.
WINDOW = 16


@dataclass
class StreamDiff:
    role: str | None
    matched: int
    a_only: list[Any] = field(default_factory=list)
    b_only: list[Any] = field(default_factory=list)
    # Lines of a_only / b_only that sshd logs or not by its own timing (normalise.yaml `races`).
    a_racy: int = 0
    b_racy: int = 0


@dataclass
class ConnectionDiff:
    a_conn: Any
    b_conn: Any
    streams: list[StreamDiff]

    @property
    def matched(self) -> int:
        return sum(s.matched for s in self.streams)

    @property
    def score(self) -> float:
        """This pair's two-sided score (LogDiff.score)."""
        a = self.matched + sum(len(s.a_only) - s.a_racy for s in self.streams)
        b = self.matched + sum(len(s.b_only) - s.b_racy for s in self.streams)
        return 1.0 if max(a, b) <= 0 else min(1.0, self.matched / max(a, b))


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
        """All of A is in B (B may have more: `sshsim replay` of a truncated capture), apart from
        A's lines that sshd logs or not by its own timing (normalise.yaml `races`)."""
        return self.matched >= self.total_a - self._racy("a")

    @property
    def both_ways(self) -> bool:
        """Each log reproduces the other: the two-sided score is 100% (`sshsim diff`)."""
        return self.score >= 1.0

    def _racy(self, side: str) -> int:
        return sum(getattr(s, f"{side}_racy") for c in self.connections for s in c.streams)

    @property
    def score(self) -> float:
        """Two-sided: lines matched / the larger side's lines, neither side counting a line only
        it has that sshd logs or not by its own timing (normalise.yaml `races`)."""
        larger = max(self.total_a - self._racy("a"), self.total_b - self._racy("b"))
        return 1.0 if larger <= 0 else min(1.0, self.matched / larger)


def _sshd_events(events: Iterable[Any]) -> list[Any]:
    return [e for e in events if e.program and e.program.startswith("sshd") and e.event not in ("other", "unparsed")]


def _label(conn: Any, names: dict[int, str] | None = None) -> str:
    if conn is None:
        return "(none)"
    if getattr(conn, "kind", "") == "listener":
        return "listener"
    who = conn.client_version or "?"
    known = (names or {}).get(conn.port) if isinstance(conn.port, int) else None
    return (f"{known + ': ' if known else ''}#{conn.id} {who} from {conn.addr or '?'} port {conn.port or '?'}")


def run_names(connections: dict[str, Any]) -> dict[int, str]:
    """Client port -> "ID (PROFILE)" for a scenario run's connections (a RunResult's, or a JSON
    report's `connections`), so a diff names each connection as the scenario does."""
    names: dict[int, str] = {}
    for cid, conn in connections.items():
        port = conn.get("port") if isinstance(conn, dict) else getattr(conn, "port", None)
        profile = conn.get("profile") if isinstance(conn, dict) else getattr(conn, "profile", None)
        if isinstance(port, int) and not isinstance(port, bool) and isinstance(cid, str):
            names[port] = f"{cid} ({profile})" if isinstance(profile, str) and profile else cid
    return names


def pair_connections(a: list[Any], b: list[Any]) -> list[tuple[Any, Any]]:
    """Pair A's connections with B's: the listener with the listener, then by client version and
    order of appearance (a reproduction keeps the clients, not the ports).

    Each A connection takes B's first unpaired connection of its kind with its client version,
    else B's first unpaired one of its kind. B's connections wait in queues, one a kind and one
    a (kind, version), in order: a connection paired through one queue is skipped when it
    reaches the head of the other, so each is looked at a bounded number of times.
    """
    pairs: list[tuple[Any, Any]] = []
    used: set[int] = set()
    a_sorted = sorted(a, key=lambda c: c.first_line)
    b_sorted = sorted(b, key=lambda c: c.first_line)
    by_kind: dict[Any, deque[Any]] = defaultdict(deque)
    by_version: dict[tuple[Any, Any], deque[Any]] = defaultdict(deque)
    for conn in b_sorted:
        by_kind[conn.kind].append(conn)
        if conn.kind == "connection" and conn.client_version:
            by_version[(conn.kind, conn.client_version)].append(conn)

    def first_unpaired(queue: deque[Any] | None) -> Any:
        while queue and id(queue[0]) in used:
            queue.popleft()
        return queue[0] if queue else None

    for conn in a_sorted:
        pick = None
        if conn.kind == "connection" and conn.client_version:
            pick = first_unpaired(by_version.get((conn.kind, conn.client_version)))
        if pick is None:
            pick = first_unpaired(by_kind.get(conn.kind))
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
    a_sshd, b_sshd = _sshd_events(a_events), _sshd_events(b_events)
    a_conns = group_connections(a_events)
    b_conns = group_connections(b_events)
    a_by_conn: dict[Any, list[Any]] = {}
    b_by_conn: dict[Any, list[Any]] = {}
    for e in a_sshd:
        a_by_conn.setdefault(e.conn, []).append(e)
    for e in b_sshd:
        b_by_conn.setdefault(e.conn, []).append(e)
    # Normalising is most of a diff's time (a table of regexes a line); a log repeats many of
    # its messages, so each is normalised once (the memo holds at most the logs' lines).
    memo: dict[tuple, str] = {}

    def normalise(e: Any) -> str:
        key = (e.program, e.role, e.level, e.message, e.raw if e.message is None else None, e.event, e.relay)
        text = memo.get(key)
        if text is None:
            text = memo[key] = normalise_event(e)
        return text

    # Whether a normalised line is one of sshd's races, once per distinct line too (every race
    # rule is a regex search; the memo holds no more entries than the memo above).
    racy_memo: dict[str, bool] = {}

    def race_line(text: str) -> bool:
        hit = racy_memo.get(text)
        if hit is None:
            hit = racy_memo[text] = is_racy(text)
        return hit

    a_list = [c for c in a_conns if c.id in a_by_conn]
    b_list = [c for c in b_conns if c.id in b_by_conn]
    # Events the grouping left without a connection still count: they form a pseudo-connection.
    orphans_a = a_by_conn.get(None, [])
    orphans_b = b_by_conn.get(None, [])
    results: list[ConnectionDiff] = []
    for a_conn, b_conn in pair_connections(a_list, b_list):
        a_ev = a_by_conn.get(a_conn.id, []) if a_conn is not None else []
        b_ev = b_by_conn.get(b_conn.id, []) if b_conn is not None else []
        results.append(ConnectionDiff(a_conn, b_conn, _diff_streams(a_ev, b_ev, normalise, race_line)))
    if orphans_a or orphans_b:
        results.append(ConnectionDiff(None, None, _diff_streams(orphans_a, orphans_b, normalise, race_line)))
    return LogDiff(results, len(a_sshd), len(b_sshd))


def _diff_streams(a_ev: list[Any], b_ev: list[Any], normalise: Callable[[Any], str],
                  race_line: Callable[[str], bool]) -> list[StreamDiff]:
    a_streams, b_streams = _streams(a_ev), _streams(b_ev)
    roles = sorted(set(a_streams) | set(b_streams), key=lambda r: STREAM_ORDER.index(r) if r in STREAM_ORDER else 99)
    out = []
    for role in roles:
        a_s, b_s = a_streams.get(role, []), b_streams.get(role, [])
        a_norm = [normalise(e) for e in a_s]
        b_norm = [normalise(e) for e in b_s]
        a_racy = [race_line(line) for line in a_norm]
        b_racy = [race_line(line) for line in b_norm]
        # The lines of sshd's own races are aligned apart from the rest: a race line logged
        # earlier or later in one run must not cost a line that both runs logged.
        pairs = []
        for racy in (False, True):
            ia = [i for i, r in enumerate(a_racy) if r is racy]
            ib = [j for j, r in enumerate(b_racy) if r is racy]
            pairs += [(ia[i], ib[j]) for i, j in match_lines([a_norm[i] for i in ia], [b_norm[j] for j in ib])]
        matched_a = {i for i, _ in pairs}
        matched_b = {j for _, j in pairs}
        a_only = [i for i in range(len(a_s)) if i not in matched_a]
        b_only = [j for j in range(len(b_s)) if j not in matched_b]
        out.append(StreamDiff(role, len(pairs), [a_s[i] for i in a_only], [b_s[j] for j in b_only],
                              sum(1 for i in a_only if a_racy[i]), sum(1 for j in b_only if b_racy[j])))
    return out


@lru_cache(maxsize=1)
def _race_patterns() -> tuple[re.Pattern[str], ...]:
    """normalise.yaml's `races` (simulator/logs/normalise.py reads its other sections)."""
    with open(TABLE, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    return tuple(re.compile(rule["regex"]) for rule in data.get("races") or ())


def is_racy(normalised: str) -> bool:
    """A normalised line that sshd logs or not depending on its own timing."""
    return any(p.search(normalised) for p in _race_patterns())


class _TooCostly(Exception):
    """_BoundedMatcher's budget is spent."""


class _BoundedMatcher(difflib.SequenceMatcher):
    """difflib's matcher, giving up once it has spent `budget` steps.

    A step is one turn of find_longest_match's inner loop: one (i, j) with a[i] == b[j] and i in
    the range asked (plus one an i); a prefix sum over A gives what a range costs before it runs.
    """

    # Set by SequenceMatcher.set_seqs (typeshed does not declare them).
    a: Sequence[Hashable]
    b2j: dict[Hashable, list[int]]

    def __init__(self, a: Sequence[Hashable], b: Sequence[Hashable], budget: int) -> None:
        super().__init__(a=a, b=b, autojunk=False)
        where = self.b2j
        self._cost = [0]
        total = 0
        for line in a:
            total += len(where.get(line, ())) + 1
            self._cost.append(total)
        self._left = budget

    def find_longest_match(self, alo: int = 0, ahi: int | None = None, blo: int = 0,
                           bhi: int | None = None) -> difflib.Match:
        ahi = len(self.a) if ahi is None else ahi
        self._left -= self._cost[ahi] - self._cost[alo]
        if self._left < 0:
            raise _TooCostly
        return super().find_longest_match(alo, ahi, blo, bhi)


def match_lines(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int]]:
    """The (i, j) with a[i] == b[j] that one stream pair matches, increasing in both: difflib's
    matching blocks while they cost at most DIFFLIB_STEPS_PER_LINE steps a line, else
    `common_subsequence` between the common head and tail."""
    try:
        blocks = _BoundedMatcher(a, b, DIFFLIB_STEPS_PER_LINE * (len(a) + len(b))).get_matching_blocks()
        return [(blk.a + k, blk.b + k) for blk in blocks for k in range(blk.size)]
    except _TooCostly:
        pass
    head = 0
    while head < len(a) and head < len(b) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < len(a) - head and tail < len(b) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle = common_subsequence(a[head:len(a) - tail], b[head:len(b) - tail])
    return ([(k, k) for k in range(head)]
            + [(head + i, head + j) for i, j in middle]
            + [(len(a) - tail + k, len(b) - tail + k) for k in range(tail)])


def common_subsequence(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int]]:
    """A longest common subsequence of `a` and `b` among those that pair the k-th copy of a line
    in A with one of its copies k-WINDOW..k+WINDOW in B, as (i, j) pairs: the longest of all
    whenever no line drifts further than that (a copy of a log, a reproduction missing or
    adding a few lines), and O(n * WINDOW * log n) whatever the input, where an exact LCS is
    quadratic.

    Hunt-Szymanski on the candidate pairs: taken by i, each i's candidates by decreasing j, a
    longest chain with j strictly increasing is a longest increasing subsequence (patience
    sorting, `bisect`), one pair at most an i.
    """
    where: dict[Hashable, list[int]] = defaultdict(list)
    for j, line in enumerate(b):
        where[line].append(j)
    copies: dict[Hashable, int] = defaultdict(int)
    ends: list[int] = []            # ends[k]: the smallest j that ends a chain of k + 1 pairs
    links: list[tuple[int, int, Any]] = []  # links[k]: that chain, as (i, j, previous link)
    for i, line in enumerate(a):
        k = copies[line]
        copies[line] = k + 1
        js = where.get(line)
        if not js:
            continue
        for j in reversed(js[max(0, k - WINDOW):k + WINDOW + 1]):
            at = bisect_left(ends, j)
            link = (i, j, links[at - 1] if at else None)
            if at == len(ends):
                ends.append(j)
                links.append(link)
            else:
                ends[at] = j
                links[at] = link
    out: list[tuple[int, int]] = []
    node = links[-1] if links else None
    while node is not None:
        out.append((node[0], node[1]))
        node = node[2]
    out.reverse()
    return out


def diff_lines(a_lines: list[str], b_lines: list[str]) -> LogDiff:
    return diff_events(list(parse_lines(a_lines)), list(parse_lines(b_lines)))


def render(diff: LogDiff, a_name: str = "A", b_name: str = "B", color: bool = False,
           a_names: dict[int, str] | None = None, b_names: dict[int, str] | None = None) -> str:
    """The readable diff: per connection pair, what A has that B lacks (-) and the reverse (+).
    `a_names`/`b_names` (run_names) name connections by scenario id and profile where known."""

    def style(text: str, **kw: Any) -> str:
        # what came from a log (lines, addresses) is untrusted: its control characters escaped
        return paint(printable(text), color, **kw)

    out: list[str] = []
    for cd in diff.connections:
        a_total = cd.matched + sum(len(s.a_only) for s in cd.streams)
        b_total = cd.matched + sum(len(s.b_only) for s in cd.streams)
        head = (f"{_label(cd.a_conn, a_names)}  <->  {_label(cd.b_conn, b_names)}: {cd.matched}/{a_total} lines matched"
                + (f" ({cd.matched}/{b_total} of {b_name})" if b_total != a_total else ""))
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
    racy = diff._racy("a") + diff._racy("b")
    out.append(f"two-sided: {diff.matched}/{diff.total_a} of {a_name}, {diff.matched}/{diff.total_b} of {b_name}, "
               f"score {_percent(diff.score)}"
               + (f" ({racy} line{'s' if racy != 1 else ''} of sshd's own races not counted)" if racy else ""))
    out.append(f"matched {diff.matched}/{diff.total_a} lines")
    return "\n".join(out)


def _percent(score: float) -> str:
    """A score as a percentage that reads 100% only when it is exactly 1."""
    text = f"{score * 100:.1f}%"
    return "99.9%" if text == "100.0%" and score < 1.0 else text.replace("100.0%", "100%")
