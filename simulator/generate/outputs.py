"""The output formats a generated log can be written in, built for speed.

A line is ``before + stamp + body``: `body` (host, program, pid, message, line end) is made once
per connection from a template; `stamp` is made for a whole block of lines at once, from their
times (the date once per day, the time of day from a table, the second once per second). Formats:

``syslog``        ``Mar 11 10:00:00 host sshd[123]: msg`` (rsyslog's traditional file format)
``rfc3339``       ``2024-03-11T10:00:00.123456+00:00 host sshd[123]: msg`` (Debian 12's rsyslog)
``rfc5424``       ``<38>1 2024-03-11T10:00:00.123456+00:00 host sshd 123 - - msg``
``journal-json``  ``journalctl -o json``: one object a line, the fields journald stores for sshd
``jsonl``         one plain JSON object a line: time, host, program, pid, facility, severity, message
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from operator import itemgetter
from typing import TypeVar

import numpy as np

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FACILITIES = {0: "kern", 1: "user", 2: "mail", 3: "daemon", 4: "auth", 5: "syslog", 6: "lpr", 7: "news",
              8: "uucp", 9: "cron", 10: "authpriv", 11: "ftp", **{16 + i: f"local{i}" for i in range(8)}}
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAY0 = dt.date(1970, 1, 1)


_DIGITS3 = [f"{i:03d}" for i in range(1000)]
_DOT3 = ["." + d for d in _DIGITS3]


T = TypeVar("T")
Column = Sequence[str] | str  # a column of `interleave`: an item per row, or one for every row


def gather(items: Sequence[T], index: Sequence[int]) -> Sequence[T]:
    """items[i] for each i of index, in C (operator.itemgetter) rather than a Python loop."""
    if len(index) > 1:
        return itemgetter(*index)(items)
    return [items[i] for i in index]


def interleave(*columns: Column, n: int) -> str:
    """Row after row, the columns' items (a str column repeats), all as one string.

    Slice assignment and one join do in C what a per-row f-string would do in Python.
    """
    parts: list[str] = [""] * (n * len(columns))
    k = len(columns)
    for c, column in enumerate(columns):
        parts[c::k] = [column] * n if isinstance(column, str) else column
    return "".join(parts)


def decimal_groups(numbers: np.ndarray, last: np.ndarray) -> list[str]:
    """Non-negative numbers in decimal, "," between the numbers of a group, one text per group
    (`last` marks each group's last number): "3,4,9"."""
    return _digit_groups(numbers, last, 10, 0)


def decimal_texts(numbers: np.ndarray) -> list[str]:
    """Each non-negative number in decimal, as str() writes it."""
    return _digit_groups(numbers, np.ones(len(numbers), dtype=bool), 10, 0)


def hex_texts(numbers: np.ndarray, width: int = 0) -> list[str]:
    """Each non-negative number in lower-case hex, as f"{n:x}" writes it (width: zero-padded
    to that many digits, f"{n:016x}" for 16)."""
    return _digit_groups(numbers, np.ones(len(numbers), dtype=bool), 16, width)


def _digit_groups(numbers: np.ndarray, last: np.ndarray, base: int, width: int) -> list[str]:
    """Numbers in `base`, "," between those of a group (`last` ends one), one text per group.

    The digits are made for all numbers at once as a table of bytes (a column per place, a last
    column for the separator), and leading zeros masked out where the numbers differ in length
    (none with `width`, which pads every number to that many digits): one decode and one split
    then give the groups, where a str() or format() per number would cost a Python call each.
    """
    if not len(numbers):
        return []
    top = int(numbers.max())
    longest = len(np.base_repr(top, base))
    places = max(width, longest)
    cells = np.empty((len(numbers), places + 1), dtype=np.uint8)
    rest = numbers.astype(np.uint32 if top < 1 << 32 else np.uint64)  # 32-bit division is faster
    for place in range(places - 1, -1, -1):
        rest, cells[:, place] = np.divmod(rest, base)
    cells += ord("0")
    if base > 10:
        cells[cells > ord("9")] += ord("a") - ord("9") - 1  # 10 -> "a", ...
    cells[:, places] = np.where(last, 0, ord(","))  # "\x00" ends a group
    if width or int(numbers.min()) >= base ** (places - 1):  # all as long as the longest
        text = cells.tobytes()
    else:
        powers = base ** np.arange(1, places, dtype=np.uint64)
        digits = np.searchsorted(powers, numbers.astype(np.uint64), side="right") + 1
        text = cells[np.arange(places + 1) >= (places - digits)[:, None]].tobytes()
    groups = text.decode("ascii").split("\x00")
    groups.pop()  # the empty text after the last group's end
    return groups


@lru_cache(maxsize=1)
def _hms() -> list[str]:
    """'HH:MM:SS' for every second of a day (a table beats formatting a million times)."""
    two = [f"{i:02d}" for i in range(60)]
    return [hm + s for hm in [f"{h:02d}:{m}:" for h in range(24) for m in two] for s in two]


class Clock:
    """Local wall time of moments (microseconds since the epoch) in the spec's time zone."""

    def __init__(self, tz: dt.tzinfo) -> None:
        self.tz = tz
        fixed = tz.utcoffset(None) if isinstance(tz, dt.timezone) else None
        self.fixed: int | None = int(fixed.total_seconds()) if fixed is not None else None
        self._hour_offsets: dict[int, int] = {}

    def offsets(self, secs: np.ndarray) -> np.ndarray:
        """Seconds east of UTC at each moment (per hour for zones with DST: it moves on hours)."""
        if self.fixed is not None:
            return np.full(len(secs), self.fixed, dtype=np.int64)
        hours = secs // 3600
        uniq, inverse = np.unique(hours, return_inverse=True)
        values = []
        for h in uniq.tolist():
            off = self._hour_offsets.get(h)
            if off is None:
                delta = (_EPOCH + dt.timedelta(seconds=h * 3600)).astimezone(self.tz).utcoffset()
                off = self._hour_offsets[h] = int(delta.total_seconds()) if delta else 0
            values.append(off)
        return np.asarray(values, dtype=np.int64)[inverse]

    @staticmethod
    def offset_text(off: int) -> str:
        sign = "+" if off >= 0 else "-"
        h, m = divmod(abs(int(off)) // 60, 60)
        return f"{sign}{h:02d}:{m:02d}"

    def iso_columns(self, times: np.ndarray, tail: str = "") -> list[Column]:
        """'2024-03-11T10:00:00.123456+00:00' + tail for each moment, as columns for
        `interleave` (date, time of day, milliseconds, microseconds, offset + tail): each
        column gathered from a table in C, with no text made per moment."""
        n = len(times)
        if not n:
            return []
        secs, us = np.divmod(times, 1_000_000)
        off = self.offsets(secs)
        day, sod = np.divmod(secs + off, 86400)
        first, last = int(day.min()), int(day.max())
        if last - first < n:  # a table of every day in between (a corpus spans days, not years)
            days = list(range(first, last + 1))
            which = (day - first).tolist()
        else:
            uniq, inverse = np.unique(day, return_inverse=True)
            days, which = uniq.tolist(), inverse.tolist()
        dates = [(_DAY0 + dt.timedelta(days=d)).isoformat() + "T" for d in days]
        ms, rest = np.divmod(us, 1000)
        if self.fixed is not None:
            tails: Column = self.offset_text(self.fixed) + tail
        else:
            texts = {o: self.offset_text(o) + tail for o in set(off.tolist())}
            tails = list(map(texts.__getitem__, off.tolist()))
        return [gather(dates, which), gather(_hms(), sod.tolist()), gather(_DOT3, ms.tolist()),
                gather(_DIGITS3, rest.tolist()), tails]

    def classic_many(self, times: np.ndarray) -> tuple[list[str], list[int]]:
        """'Mar 11 10:00:00' once per distinct second, and which of them each moment has."""
        n = len(times)
        if not n:
            return [], []
        secs = times // 1_000_000
        change = np.empty(n, dtype=bool)
        change[0] = True
        change[1:] = secs[1:] != secs[:-1]  # times are sorted: equal seconds are adjacent
        firsts = np.flatnonzero(change)
        off = self.offsets(secs[firsts])
        day, sod = np.divmod(secs[firsts] + off, 86400)
        hms = _hms()
        dates: dict[int, str] = {}
        texts = []
        for d, s in zip(day.tolist(), sod.tolist(), strict=True):
            date = dates.get(d)
            if date is None:
                when = _DAY0 + dt.timedelta(days=d)
                date = dates[d] = f"{MONTHS[when.month - 1]} {when.day:2d} "
            texts.append(date + hms[s])
        return texts, (np.cumsum(change) - 1).tolist()


class OutputFormat:
    """How lines are written: a per-line head (rare), the stamps, then the bodies."""

    name = ""
    json = False  # message text is JSON-escaped
    uses_before = False

    def __init__(self, host: str, clock: Clock, seed: int) -> None:
        self.host = host
        self.clock = clock
        self.seed = seed

    def escape(self, text: str) -> str:
        return json.dumps(text)[1:-1] if self.json else text

    def before(self, priority: int) -> str:
        return ""

    def body(self, program: str, has_pid: bool, priority: int) -> tuple[str, str]:
        """(text before the message, text after it); "%s" in the first stands for the pid."""
        raise NotImplementedError

    def stamps(self, times: np.ndarray, first_line: int) -> list[Column]:
        """Stamps of a sorted block of lines whose first line has number `first_line`, as
        columns for `interleave` (a line's stamp is its row of them)."""
        raise NotImplementedError

    def boot(self, first_us: int) -> int:
        """The journal's boot time (microseconds), fixed by the first line written; 0 elsewhere."""
        return 0


class Syslog(OutputFormat):
    name = "syslog"

    def body(self, program: str, has_pid: bool, priority: int) -> tuple[str, str]:
        return (f" {self.host} {program}[%s]: " if has_pid else f" {self.host} {program}: "), "\n"

    def stamps(self, times: np.ndarray, first_line: int) -> list[Column]:
        texts, which = self.clock.classic_many(times)
        return [gather(texts, which)]

class Rfc3339(Syslog):
    name = "rfc3339"

    def stamps(self, times: np.ndarray, first_line: int) -> list[Column]:
        return self.clock.iso_columns(times)

class Rfc5424(OutputFormat):
    name = "rfc5424"
    uses_before = True

    def before(self, priority: int) -> str:
        return f"<{priority}>1 "

    def body(self, program: str, has_pid: bool, priority: int) -> tuple[str, str]:
        return (f" {self.host} {program} %s - - " if has_pid else f" {self.host} {program} - - - "), "\n"

    def stamps(self, times: np.ndarray, first_line: int) -> list[Column]:
        return self.clock.iso_columns(times)

class JournalJson(OutputFormat):
    """``journalctl -o json``: journald's fields for a line sshd sent through syslog(3)."""

    name = "journal-json"
    json = True

    def __init__(self, host: str, clock: Clock, seed: int) -> None:
        super().__init__(host, clock, seed)
        digest = hashlib.sha256(f"{seed}:{host}:journal".encode()).hexdigest()
        self.boot_id, self.machine_id, self.seqnum_id = digest[:32], digest[32:64], digest[16:48]
        self.boot_us: int | None = None

    def body(self, program: str, has_pid: bool, priority: int) -> tuple[str, str]:
        host = json.dumps(self.host)
        pid = '"SYSLOG_PID":"%s","_PID":"%s",' if has_pid else ""
        head = (f'"_MACHINE_ID":"{self.machine_id}","_HOSTNAME":{host},"PRIORITY":"{priority & 7}",'
                f'"SYSLOG_FACILITY":"{priority >> 3}","_UID":"0","_GID":"0","_TRANSPORT":"syslog",'
                f'"SYSLOG_IDENTIFIER":{json.dumps(program)},{pid}"_COMM":{json.dumps(program)},'
                f'"_EXE":"/usr/sbin/{program}","_SYSTEMD_CGROUP":"/system.slice/ssh.service",'
                f'"_SYSTEMD_UNIT":"ssh.service","_SYSTEMD_SLICE":"system.slice","MESSAGE":"')
        return head, '"}\n'

    def stamps(self, times: np.ndarray, first_line: int) -> list[Column]:
        """The cursor (sequence number i, monotonic m and real-time t in hex, a hash x of i)
        and the timestamps journald puts before a line's fields, each number a column made in
        bulk."""
        if not len(times):
            return []
        boot = self.boot(int(times[0]))
        numbers = np.arange(first_line, first_line + len(times), dtype=np.uint64)
        mono = times - boot  # >= 0: the boot is before the first line, and lines come in time order
        return [f'{{"__CURSOR":"s={self.seqnum_id};i=', hex_texts(numbers), f";b={self.boot_id};m=",
                hex_texts(mono), ";t=", hex_texts(times), ";x=",
                hex_texts(numbers * np.uint64(2654435761), 16),  # wraps at 2**64, as the cursor's hash does
                '","__REALTIME_TIMESTAMP":"', decimal_texts(times), '","__MONOTONIC_TIMESTAMP":"',
                decimal_texts(mono), f'","_BOOT_ID":"{self.boot_id}",']

    def boot(self, first_us: int) -> int:
        if self.boot_us is None:
            self.boot_us = first_us - 3_600_000_000  # the box booted an hour before the first line
        return self.boot_us


class JsonLines(OutputFormat):
    name = "jsonl"
    json = True

    def body(self, program: str, has_pid: bool, priority: int) -> tuple[str, str]:
        pid = '"pid":%s,' if has_pid else '"pid":null,'
        return (f'","host":{json.dumps(self.host)},"program":{json.dumps(program)},{pid}'
                f'"facility":"{FACILITIES.get(priority >> 3, str(priority >> 3))}",'
                f'"severity":"{SEVERITIES[priority & 7]}","message":"'), '"}\n'

    def stamps(self, times: np.ndarray, first_line: int) -> list[Column]:
        return ['{"time":"', *self.clock.iso_columns(times)] if len(times) else []

OUTPUT_FORMATS: dict[str, type[OutputFormat]] = {
    cls.name: cls for cls in (Syslog, Rfc3339, Rfc5424, JournalJson, JsonLines)
}


def make_format(name: str, host: str, tz: dt.tzinfo, seed: int) -> OutputFormat:
    return OUTPUT_FORMATS[name](host, Clock(tz), seed)


def line_seconds(name: str, line: str, year: int) -> float | None:
    """What the stamp of a line written in format `name` says, as seconds since the epoch (the
    reverse of the stamps above; None: not a line of that format). Syslog stamps carry no year:
    `year` gives it (the window's). `sshsim detect` times failures with it, for ban windows."""
    try:
        if name == "syslog":
            month = MONTHS.index(line[:3]) + 1
            when = dt.datetime(year, month, int(line[4:6]), int(line[7:9]), int(line[10:12]), int(line[13:15]),
                               tzinfo=dt.UTC)
            return when.timestamp()
        if name in ("rfc3339", "rfc5424"):
            stamp = line.split(" ", 2)[0 if name == "rfc3339" else 1]
            return dt.datetime.fromisoformat(stamp).timestamp()
        if name in ("journal-json", "jsonl"):
            row = json.loads(line)
            if name == "jsonl":
                return dt.datetime.fromisoformat(row["time"]).timestamp()
            return int(row["__REALTIME_TIMESTAMP"]) / 1e6
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return None
