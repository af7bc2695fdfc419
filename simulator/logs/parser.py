"""Lines -> events: split the prefix (formats), strip sshd's level prefix and relay suffix,
match the message against the catalogue. One event per line, in input order, never dropped.
"""

from __future__ import annotations

import re
from itertools import chain, islice
from typing import Callable, Iterable, Iterator

from simulator.logs.catalogue import MAX_MESSAGE, Catalogue, default_catalogue
from simulator.logs.connections import is_sshd_program
from simulator.logs.events import OTHER, UNKNOWN, UNPARSED, Event
from simulator.logs.formats import LineSplitter, detect_format, resolve_format
from simulator.speedups import load

# The C twin of the loop below for traditional syslog files (None: pure Python).
_speedups = load("simulator.logs._speedups")

DETECT_LINES = 64
_PREFIX_LEVELS = {"1": "DEBUG1", "2": "DEBUG2", "3": "DEBUG3"}
_RELAYS = ((" [preauth]", "preauth"), (" [postauth]", "postauth"))

# The parser's own fast path for traditional syslog lines: a strict subset of
# formats._SYSLOG_FAST (ASCII digits, host and program; no "[ID ..." or "kernel:" furniture
# after the prefix) that also captures the message. A line it refuses goes through the
# general LineSplitter, whose parse_syslog gives the same result as before for it.
_FAST_LINE = re.compile(
    r"((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9]?[0-9] "
    r"[0-9][0-9]:[0-9][0-9]:[0-9][0-9]) "
    r"([!-Z\\-~]+) ([!-9;-Z\\^-~]+)\[([0-9]+)\]: (?!\[ID |kernel:)(.*)",
    re.DOTALL,
)


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
) -> Iterator[Event]:
    """One Event per line. ``input_format`` (a name or alias) skips detection, which
    otherwise reads the first lines now, not on the first ``next``.

    This is the product's hot path: the common case, a traditional syslog line of sshd whose
    message was seen before, is taken by the C twin (simulator/logs/csrc/syslog.c) where it is
    built, else by a Python loop that costs one regex match and a few dict look-ups;
    everything else goes through the general functions.
    """
    cat = catalogue or default_catalogue()
    match = cat.match
    cache = cat.cache
    it = iter(lines)
    if input_format is None:
        head = list(islice(it, DETECT_LINES))
        fmt = detect_format(l.rstrip("\r\n") for l in head)
        it = chain(head, it)
    else:
        fmt = resolve_format(input_format)
    if fmt == "syslog" and _speedups is not None:
        # Same events, the common case taken in C: it calls back into `one_line` for lines it
        # does not take and into `_interpret` for messages `seen` does not know yet.
        seen: dict[str, tuple] = {}
        one_line = _one_line_parser(fmt, cache, match, seen)
        return _speedups.SyslogEvents(
            it, Event, lambda msg: _interpret(msg, cache, match), one_line, is_sshd_program,
            seen, SEEN_LIMIT, 0, cat)
    return _parse_python(it, fmt, cache, match)


def _parse_python(it: Iterator[str], fmt: str, cache: dict, match,  # noqa: ANN001
                  seen: dict[str, tuple] | None = None) -> Iterator[Event]:
    """parse_lines' loop in Python: the reference the C twin is tested against."""
    splitter = LineSplitter(fmt).split
    fast = _FAST_LINE.match if fmt == "syslog" else None
    sshd_cache: dict[str | None, bool] = {}
    if seen is None:
        seen = {}
    n = 0
    for raw in it:
        n += 1
        if raw[-1:] in ("\n", "\r"):
            raw = raw.rstrip("\r\n")
        m = fast(raw) if fast is not None else None
        if m is not None:
            fname = "syslog"
            ts, host, prog, pid, msg = m.groups()
            pid = int(pid)
            extra = None
        else:
            got = splitter(raw)
            if got is None:
                yield Event(n, raw, "none", None, None, None, None, None, UNPARSED, raw)
                continue
            fname, (ts, host, prog, pid, msg, extra) = got
        is_sshd = sshd_cache.get(prog)
        if is_sshd is None:
            is_sshd = sshd_cache[prog] = is_sshd_program(prog)
        if not is_sshd:
            yield Event(n, raw, fname, ts, host, prog, pid, None, OTHER, msg, None, None, (), extra)
            continue
        # The whole message as sshd wrote it is the key of a per-parse cache of what it means.
        known = seen.get(msg)
        if known is None:
            known = _interpret(msg, cache, match)
            # A message longer than sshd writes is unknown at once: kept, lines of kilobytes
            # would fill the cache (SEEN_LIMIT of them) for nothing.
            if len(msg) <= MAX_MESSAGE:
                if len(seen) >= SEEN_LIMIT:
                    seen.clear()
                seen[msg] = known
        level, body, relay, spec, groups, name = known
        yield Event(n, raw, fname, ts, host, prog, pid, level, name, body, relay, spec, groups, extra)


def _one_line_parser(fmt: str, cache: dict, match, seen: dict) -> Callable[[int, str], Event]:  # noqa: ANN001
    """One line (number n) through `_parse_python`'s loop body, sharing `seen` with the C loop."""
    state: dict[str, str] = {}

    def lines() -> Iterator[str]:
        while True:
            yield state["raw"]

    events = _parse_python(lines(), fmt, cache, match, seen)

    def one(n: int, raw: str) -> Event:
        state["raw"] = raw
        ev = next(events)
        ev.line = n
        return ev

    return one


SEEN_LIMIT = 16384


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
