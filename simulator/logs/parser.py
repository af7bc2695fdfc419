"""Lines -> events: split the prefix (formats), strip sshd's level prefix and relay suffix,
match the message against the catalogue. One event per line, in input order, never dropped.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Any, Literal

from simulator.logs import tags
from simulator.logs.catalogue import MAX_MESSAGE, SHAPE_ZEROS, Catalogue, default_catalogue
from simulator.logs.connections import NEW_PROGRAMS, is_sshd_program
from simulator.logs.events import OTHER, UNKNOWN, UNPARSED, Event, EventBatch, EventStream
from simulator.logs.formats import LineSplitter, detect_format, resolve_format

DETECT_LINES = 64
_PREFIX_LEVELS = {"1": "DEBUG1", "2": "DEBUG2", "3": "DEBUG3"}
_RELAYS = ((" [preauth]", "preauth"), (" [postauth]", "postauth"))

# The parser's own fast path for traditional syslog lines ``Mmm dd hh:mm:ss host prog[pid]: msg``:
# the line is cut at its first "]: " (str.partition, in C), and the two pieces of the prefix
# that recur (the time stamp within a second, "host prog" for every process of a program) are
# checked and split once, then looked up; the pid's digits are read for each new process. A
# strict subset of formats._SYSLOG_FAST (ASCII digits, host and
# program; a two-digit day; no "[ID ..." or "kernel:" furniture after the prefix): a line it
# refuses goes through the general LineSplitter, which gives the same result for the lines
# this path takes.
_FAST_TS = re.compile(
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
)
_FAST_PROGRAM = re.compile(r"([!-Z\\-~]+) ([!-9;-Z\\^-~]+)")
# Entries kept by the fast path's look-ups before they start again (memory stays flat).
PREFIX_CACHE = 16384


def split_message(msg: str) -> tuple[str | None, str, str | None]:
    """(level from sshd's prefix or None, the message proper, relay "preauth"/"postauth")."""
    level = None
    c = msg[:1]
    if c == "d" and msg[:5] == "debug" and msg[6:8] == ": ":
        level = _PREFIX_LEVELS.get(msg[5])
        if level is not None:
            msg = msg[8:]
    elif c == "e" and msg[:7] == "error: ":
        level, msg = "ERROR", msg[7:]
    elif c == "f" and msg[:7] == "fatal: ":
        level, msg = "FATAL", msg[7:]
    relay = None
    if msg[-1:] == "]":
        for suffix, name in _RELAYS:
            if msg.endswith(suffix):
                msg, relay = msg[: -len(suffix)], name
                break
    return level, msg, relay


def parse_lines(
    lines: Iterable[str],
    input_format: str | None = None,
    catalogue: Catalogue | None = None,
) -> EventStream:
    """One Event per line. ``input_format`` (a name or alias) skips detection, which
    otherwise reads the first lines now, not on the first ``next``.

    This is the product's hot path: the common case, a traditional syslog line of an sshd
    process seen before in the same second, whose message was seen before, costs a `partition`
    and two dict look-ups (prefix, message) and no other test; the catalogue matches each
    distinct message once; everything else goes through the general functions.
    """
    cat = catalogue or default_catalogue()
    it = iter(lines)
    if input_format is None:
        head = list(islice(it, DETECT_LINES))
        fmt = detect_format(ln.rstrip("\r\n") for ln in head)
        it = chain(head, it)
    else:
        fmt = resolve_format(input_format)
    return EventStream(_parse(it, fmt, cat))


BATCH = 1024  # lines parsed at a time
# Events live for a window of lines (grouping) and then die by reference counting. With the
# cycle collector's default youngest generation (700 allocations) each event would be traversed
# again at every collection while it waits, a fifth of the parse's time; while a parse runs, the
# threshold is above a window's worth of events, so that most are gone by the time it runs.
# Cyclic garbage still gets collected, after at most this many allocations.
YOUNG_THRESHOLD = 50_000
_parses = 0
_saved_threshold: tuple[int, ...] | None = None


def _young_threshold_raise() -> None:
    global _parses, _saved_threshold
    if _parses == 0:
        _saved_threshold = gc.get_threshold()
        if 0 < _saved_threshold[0] < YOUNG_THRESHOLD:
            gc.set_threshold(YOUNG_THRESHOLD, *_saved_threshold[1:])
    _parses += 1


def _young_threshold_restore() -> None:
    global _parses
    _parses -= 1
    if _parses == 0 and _saved_threshold is not None:
        gc.set_threshold(*_saved_threshold)


def _parse(it: Iterator[str], fmt: str, cat: Catalogue) -> Iterator[list[Event]]:
    """parse_lines' batches, with the cycle collector's youngest generation raised meanwhile."""
    _young_threshold_raise()
    try:
        yield from _parse_batches(it, fmt, cat)
    finally:
        _young_threshold_restore()


def _parse_batches(it: Iterator[str], fmt: str, cat: Catalogue) -> Iterator[list[Event]]:
    """parse_lines' loop: lists of events. Traditional syslog lines take the fast path: the
    whole prefix before the first "]: " (time stamp, host, program, pid) recurs for every line
    a process writes within a second, so it is split once (`_SyslogPrefixes`) and then looked
    up; a line it refuses goes through the general LineSplitter (`_general`).

    Two caches of the loop's own hold only what needs no further test: prefixes of sshd
    programs that the fast path takes, and messages it learnt that are not empty, do not end
    in a line end and carry no "[ID " or "kernel:" furniture. A line found in both is an event
    at once; any other line goes through the whole rule, which is what every line went through
    before (so both give the same events). The message cache is a part of `Meanings.seen`,
    emptied whenever that is (`Meanings.clears`): a message is learnt exactly when the rule
    line by line would learn it, in the same order."""
    meanings = Meanings(cat)
    gen = _General(fmt, meanings)
    general = gen.event
    n = 0
    if fmt != "syslog":
        while True:
            chunk = list(islice(it, BATCH))
            if not chunk:
                return
            yield [general(raw.rstrip("\r\n") if raw[-1:] in _ENDS else raw, k)
                   for k, raw in enumerate(chunk, n + 1)]
            n += len(chunk)
    prefixes = _SyslogPrefixes()
    heads_get, split_head = prefixes.heads.get, prefixes.split
    seen, learn = meanings.seen, meanings.learn
    # What the loop knows without asking: prefixes it takes ("host sshd[pid" of an sshd
    # program) and messages it learnt (a part of Meanings.seen, emptied when that is). A
    # message that ends in "\r" or "\n", is empty, or starts with "[ID " or "kernel:" is never
    # kept, so a line whose prefix and message are both known needs no other check.
    fast_heads: dict[str, _Head] = {}
    fast_known: dict[str, tuple] = {}
    fast_heads_get, fast_known_get = fast_heads.get, fast_known.get
    clears = meanings.clears
    last_head: str | None = None  # the prefix of the line before, and what fast_heads gave for it
    last_hit: _Head | None = None
    while True:
        chunk = list(islice(it, BATCH))
        if not chunk:
            return
        out = EventBatch()
        append = out.append
        facts = out.facts
        for k, raw in enumerate(chunk, n + 1):
            head, sep, msg = raw.partition("]: ")
            if head != last_head:
                last_head = head
                last_hit = fast_heads_get(head)
            known = fast_known_get(msg)
            if last_hit is not None and known is not None:
                append(Event(k, raw, "syslog", last_hit, known))
                continue
            # the general rule (a line the two look-ups above did not both know)
            if raw[-1:] in _ENDS:
                raw = raw.rstrip("\r\n")
                head, sep, msg = raw.partition("]: ")
            src = heads_get(head) if sep else False
            if src is None:
                src = split_head(head)
            if src is False or (msg[:1] in _FURNITURE and (msg[:4] == "[ID " or msg[:7] == "kernel:")):
                ev = general(raw, k)
                append(ev)
                spec = ev.meaning[3]
                if spec is not None and spec.flags & _LINEAGE:
                    facts.append((k - n - 1, ev, spec.flags))
            elif not src[4]:  # (time stamp, host, program, pid, is sshd)
                append(Event(k, raw, "syslog", src, (None, msg, None, None, (), OTHER)))
            else:
                if len(fast_heads) >= PREFIX_CACHE:  # (remember, inline: this runs per new process)
                    fast_heads.clear()
                fast_heads[head] = src
                last_head, last_hit = head, src
                # The whole message as sshd wrote it is the key of a per-parse cache of what it means.
                known = seen.get(msg)
                if known is None:
                    known = learn(msg)
                spec = known[3]
                if spec is not None and spec.flags & _LINEAGE:
                    # a lineage fact: listed for grouping, and never taken by the look-ups
                    # above, so that a line they take is never one
                    ev = Event(k, raw, "syslog", src, known)
                    append(ev)
                    facts.append((k - n - 1, ev, spec.flags))
                else:
                    if msg and len(msg) <= MAX_MESSAGE and meanings.clears == clears:
                        if len(fast_known) >= SEEN_LIMIT:  # (remember, inline)
                            fast_known.clear()
                        fast_known[msg] = known
                    append(Event(k, raw, "syslog", src, known))
            if meanings.clears != clears:
                fast_known.clear()  # Meanings forgot what it had seen: so does the loop
                clears = meanings.clears
        n += len(chunk)
        out.new_programs = prefixes.new_programs or gen.new_programs
        yield out


_LINEAGE = tags.LINEAGE
_ENDS = ("\n", "\r")
_NO_SOURCE = (None, None, None, None, False)
_FURNITURE = ("[", "k")  # first characters of "[ID ..." and "kernel:" after a syslog prefix


# A split syslog prefix: (time stamp, host, program, pid, is sshd); its "host prog[pid" part.
_Head = tuple[str, str, str, int, bool]
_Program = tuple[str, str, bool]
# what `_SyslogPrefixes.programs` gives for a key it does not hold (None is a refused one)
_UNSEEN: _Program = ("", "", False)



def remember(cache: dict[Any, Any], key: Any, value: Any, limit: int) -> Any:
    """Keep `value` under `key` and return it; a cache that holds `limit` entries starts afresh
    (bounded memory on any input, one rule for every cache of the parser)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


class _SyslogPrefixes:
    """The fast path's prefixes: "Mmm dd hh:mm:ss host prog[pid" -> (time stamp, host,
    program, pid, is sshd), or False for one the fast path does not take. Its two pieces that
    recur on their own (the time stamp within a second, "host prog" for every process of a
    program) are checked by regex once each too, so a prefix new to the parse costs two
    look-ups and reading the pid's digits, not two regexes. Each look-up holds at most
    PREFIX_CACHE entries (memory stays flat)."""

    __slots__ = ("heads", "new_programs", "programs", "stamps")

    def __init__(self) -> None:
        self.new_programs = False  # a prefix of sshd-session or sshd-auth was split
        self.heads: dict[str, _Head | Literal[False]] = {}
        self.stamps: dict[str, bool] = {}  # time stamp -> is one the fast path takes
        self.programs: dict[str, _Program | None] = {}  # "host prog" -> (host, prog, is sshd)

    def split(self, head: str) -> _Head | Literal[False]:
        """The prefix before a line's first "]: ", split (and kept)."""
        got: _Head | Literal[False] = False
        if head[15:16] == " ":
            ts = head[:15]
            stamps = self.stamps
            ok = stamps.get(ts)
            if ok is None:
                ok = remember(stamps, ts, _FAST_TS.fullmatch(ts) is not None, PREFIX_CACHE)
            if ok:
                # "host prog[pid": the pid changes with every process, "host prog" hardly ever,
                # so only the latter is checked by the regex (and kept); the pid must be ASCII
                # digits, as the regex's [0-9]+ asks.
                left, bracket, digits = head[16:].rpartition("[")
                if bracket and digits.isdigit() and digits.isascii():
                    programs = self.programs
                    prog_src = programs.get(left, _UNSEEN)
                    if prog_src is _UNSEEN:
                        m = _FAST_PROGRAM.fullmatch(left)
                        if m is not None:
                            host, prog = m.groups()
                            prog_src = (host, prog, is_sshd_program(prog))
                            if prog in NEW_PROGRAMS:
                                self.new_programs = True
                        else:
                            prog_src = None
                        remember(programs, left, prog_src, PREFIX_CACHE)
                    if prog_src is not None:
                        got = (ts, prog_src[0], prog_src[1], int(digits), prog_src[2])
        return remember(self.heads, head, got, PREFIX_CACHE)


class _General:
    """A line in any input format (or a syslog line the fast path refused), through the
    general LineSplitter."""

    __slots__ = ("_meanings", "_split", "_sshd", "new_programs")

    def __init__(self, fmt: str, meanings: Meanings) -> None:
        self.new_programs = False  # a line of sshd-session or sshd-auth was made an event
        self._split = LineSplitter(fmt).split
        self._meanings = meanings
        self._sshd: dict[str | None, bool] = {}

    def event(self, raw: str, n: int) -> Event:
        got = self._split(raw)
        if got is None:
            return Event(n, raw, "none", _NO_SOURCE, (None, raw, None, None, (), UNPARSED))
        fname, (ts, host, prog, pid, msg, extra) = got
        sshd = self._sshd
        is_sshd = sshd.get(prog)
        if is_sshd is None:
            is_sshd = remember(sshd, prog, is_sshd_program(prog), PREFIX_CACHE)
            if prog in NEW_PROGRAMS:
                self.new_programs = True
        if not is_sshd:
            return Event(n, raw, fname, (ts, host, prog, pid, False), (None, msg, None, None, (), OTHER), extra)
        meanings = self._meanings
        known = meanings.seen.get(msg)
        if known is None:
            known = meanings.learn(msg)
        return Event(n, raw, fname, (ts, host, prog, pid, True), known, extra)


SEEN_LIMIT = 16384


class Meanings:
    """What each distinct sshd message means, for one parse: ``seen`` maps the message as sshd
    wrote it (level prefix and relay suffix included) to (level, message, relay, spec, groups,
    event name). Callers look in ``seen`` themselves (the hot path: one dict look-up) and call
    `learn` for a message not there.

    A message new to the parse mostly differs from one seen before only in numbers (pids, ports,
    counters). Its shape, the message with every ASCII digit made "0" and its first six
    characters kept (the level prefix "debug1: "... holds a digit), names the level and relay
    lengths and the catalogue entry (``_shapes``); the entry's own regex then gives the fields,
    or the message goes through the catalogue after all. This is the catalogue's own shape rule
    (Catalogue.match), taken before the level prefix and relay suffix are split off, and a shape
    is kept only where the catalogue says it is safe (`Catalogue.shape_safe`: no earlier entry
    tells such messages apart by a literal digit)."""

    __slots__ = ("_cat", "_shapes", "clears", "seen")

    def __init__(self, cat: Catalogue) -> None:
        self.seen: dict[str, tuple] = {}
        self.clears = 0  # how often ``seen`` was full and started afresh
        self._cat = cat
        # shape -> (level, prefix length, suffix length, relay, entry, the entry's fullmatch)
        self._shapes: dict[tuple[str, bytes], tuple] = {}

    def learn(self, msg: str) -> tuple:
        """The meaning of a message not in ``seen``; kept there."""
        key = (msg[:6], msg.encode("utf-8", "surrogatepass").translate(SHAPE_ZEROS))
        hit = self._shapes.get(key)
        known = None
        if hit is not None:
            level, pre, post, relay, spec, fullmatch = hit
            body = msg[pre : len(msg) - post]
            if len(body) <= MAX_MESSAGE:
                m = fullmatch(body)
                if m is not None:
                    known = (level, body, relay, spec, m.groups(), spec.name)
        if known is None:
            known = self._learn_shape(msg, key)
        # A message longer than sshd writes is unknown at once and not kept: distinct lines of
        # kilobytes would fill the cache (SEEN_LIMIT of them) for nothing.
        if len(msg) <= MAX_MESSAGE:
            seen = self.seen
            if len(seen) >= SEEN_LIMIT:  # (remember, inline: this runs per new message)
                self.clears += 1
                seen.clear()
            seen[msg] = known
        return known

    def _learn_shape(self, msg: str, key: tuple[str, bytes]) -> tuple:
        """The meaning of a message whose shape `key` gave no match: through the catalogue, and
        the shape kept where that is safe."""
        cat = self._cat
        known = _interpret(msg, cat.cache, cat.match)
        spec = known[3]
        if spec is not None and cat.shape_safe(known[1], spec):
            body = known[1]
            post = (len(" [preauth]") if known[2] == "preauth" else len(" [postauth]")) if known[2] else 0
            remember(self._shapes, key, (known[0], len(msg) - len(body) - post, post, known[2], spec,
                                         cat.regex_of(spec).fullmatch), SEEN_LIMIT)
        return known


class RecordParser:
    """Records of the capture (simulator/capture/syslog.py: time stamp, program, pid, message)
    into events, with no text in between: the prefix is already split, so only the message is
    matched. An event is what `parse_lines` makes of the record's classic syslog line (the log
    file the user gets, whose text is the event's ``raw``), numbered in the order the records
    are given. One parser per capture: `parse` may be called again with the records that
    arrived since (the driver's live view of the server)."""

    __slots__ = ("_meanings", "_n", "_sshd", "host")

    def __init__(self, host: str, catalogue: Catalogue | None = None) -> None:
        self.host = host
        self._meanings = Meanings(catalogue or default_catalogue())
        self._sshd: dict[str, bool] = {}
        self._n = 0

    def parse(self, records: Iterable[Any]) -> list[Event]:
        """Events of `records` (objects with timestamp, program, pid, message), in order."""
        host = self.host
        seen, learn = self._meanings.seen, self._meanings.learn
        sshd = self._sshd
        n = self._n
        out: list[Event] = []
        append = out.append
        for r in records:
            n += 1
            ts, prog, pid, msg = r.timestamp, r.program, r.pid, r.message
            raw = f"{ts} {host} {prog}[{pid}]: {msg}" if pid is not None else f"{ts} {host} {prog}: {msg}"
            is_sshd = sshd.get(prog)
            if is_sshd is None:
                is_sshd = remember(sshd, prog, is_sshd_program(prog), PREFIX_CACHE)
            if not is_sshd:
                append(Event(n, raw, "syslog", (ts, host, prog, pid, False), (None, msg, None, None, (), OTHER)))
                continue
            known = seen.get(msg)
            if known is None:
                known = learn(msg)
            append(Event(n, raw, "syslog", (ts, host, prog, pid, True), known))
        self._n = n
        return out


def parse_records(records: Iterable[Any], host: str, catalogue: Catalogue | None = None) -> list[Event]:
    """Events of a capture's records (see `RecordParser`)."""
    return RecordParser(host, catalogue).parse(records)


def _interpret(msg: str, cache: dict, match) -> tuple:  # noqa: ANN001
    """(level, message, relay, spec, groups, event name) for an sshd message."""
    level, body, relay = split_message(msg)
    hit = cache.get(body, cache)
    if hit is cache:
        hit = match(body, False)
    if hit is None:
        return level, body, relay, None, (), UNKNOWN
    spec, groups = hit
    if level is None:
        level = spec.level if spec.level != "VARIES" else "INFO"
    return level, body, relay, spec, groups, spec.name
