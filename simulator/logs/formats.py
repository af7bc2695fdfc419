"""Input formats: recognise how a log file was written and split each line into its prefix
(time, host, program, pid) and the message sshd wrote.

Users bring logs as their system writes them, so a file's format is detected from its first
lines, and every line that does not fit is tried against the other formats (files get
concatenated, rotated, mixed). A line no format recognises is still returned, as unparsed.

Formats (``--input-format`` names; aliases in `ALIASES`):

``syslog``       ``Jan  5 11:23:02 host prog[pid]: msg`` (rsyslog/syslog-ng traditional, journalctl
                 ``short`` and ``short-precise``); month names also as other locales print them
                 (journalctl uses the locale); ``<PRI>`` in front (raw datagrams) is accepted, and
                 so is BusyBox syslogd's ``facility.priority`` before the program.
``iso``          ``2024-01-29T11:23:02.123+01:00 host prog[pid]: msg`` (RFC 3339: Debian 12 rsyslog
                 default, journalctl ``short-iso``/``short-iso-precise``; also ``short-full``).
``rfc5424``      ``<38>1 2019-07-08T17:40:16.95-04:00 host sshd 57915 - [sd] msg``.
``journal-json`` ``journalctl -o json``: one JSON object a line (MESSAGE may be a byte array).
``windows``      Win32-OpenSSH ``sshd.log``: ``PID YYYY-MM-DD HH:MM:SS.mmm msg`` (older builds:
                 ``PID HH:MM:SS:mmm msg`` or ``PID HH:MM:SS mmm msg``).
``no-timestamp`` ``host prog[pid]: msg`` (journalctl ``-o short`` without time, test corpora).
``sshd-debug``   ``sshd -d`` / ``-e`` / ``-E file`` output: the bare message, CRLF line ends (a line
                 starting with ``#`` is a comment added to the capture, no sshd line).

Solaris-style ``[ID 800047 auth.info]`` after the program, and a kernel time stamp that some
journal exports put in front of the message, are taken out of the message into ``extra``.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

# (ts, host, program, pid, message, extra)
Prefix = tuple[str | None, str | None, str | None, int | None, str, dict[str, Any] | None]
Parser = Callable[[str], Prefix | None]

# Abbreviated month names as glibc's locales print them (%b), lower case without the final dot.
# English first; then fr, de, es, it, pt, nl, pl, sv, ru (and its alternative nominative),
# uk, cs, tr. Names shared by several languages mean the same month in all of them.
_MONTH_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "fr": ("janv", "févr", "mars", "avril", "mai", "juin", "juil", "août", "sept", "oct", "nov", "déc"),
    "de": ("jan", "feb", "mär", "apr", "mai", "jun", "jul", "aug", "sep", "okt", "nov", "dez"),
    "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"),
    "it": ("gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"),
    "pt": ("jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez"),
    "nl": ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
    "pl": ("sty", "lut", "mar", "kwi", "maj", "cze", "lip", "sie", "wrz", "paź", "lis", "gru"),
    "sv": ("jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"),
    "ru": ("янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"),
    "ru_alt": ("янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"),
    "uk": ("січ", "лют", "бер", "кві", "тра", "чер", "лип", "сер", "вер", "жов", "лис", "гру"),
    "cs": ("led", "úno", "bře", "dub", "kvě", "čen", "čec", "srp", "zář", "říj", "lis", "pro"),
    "tr": ("oca", "şub", "mar", "nis", "may", "haz", "tem", "ağu", "eyl", "eki", "kas", "ara"),
}
MONTHS: dict[str, int] = {}
for _names in _MONTH_NAMES.values():
    for _i, _n in enumerate(_names):
        MONTHS.setdefault(_n, _i + 1)
# English spelt as syslog writes it, for the fast path.
_EN_MONTHS = {n.capitalize(): i + 1 for i, n in enumerate(_MONTH_NAMES["en"])}

_PROG = r"(?:(?P<prog>[^\s\[\]:]+)(?:\[(?P<pid>\d+)\])?:|\[(?P<bprog>[^\]\s]+)\]:?)"
_HOST = r"(?:(?P<host>[^\s\[]+) )?"

# Hot path: English months, a host, program[pid] -- the reference log and most files.
_SYSLOG_FAST = re.compile(
    r"((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]?\d \d\d:\d\d:\d\d) "
    r"([^\s\[]+) ([^\s\[\]:]+)\[(\d+)\]: ",
    re.DOTALL,
)
# BusyBox syslogd (Alpine, OpenWrt...) writes ``facility.priority`` between the host and the
# program: ``Jun 25 00:49:14 host auth.info sshd[3029]: msg``. Only syslog's own names are taken
# (sys/syslog.h's facilitynames and prioritynames), so a host-less line is not misread.
_FACILITY_PRI = (
    r"(?:(?P<facility>auth|authpriv|cron|daemon|ftp|kern|lpr|mail|mark|news|security|syslog|user|uucp"
    r"|local[0-7])\.(?P<severity>emerg|panic|alert|crit|err|error|warning|warn|notice|info|debug) )?"
)
_SYSLOG = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?P<mon>[^\W\d_]{3,5}\.?) {1,2}(?P<day>\d{1,2}) "
    r"(?P<time>\d\d:\d\d:\d\d(?:[.,]\d+)?)(?: (?P<year>\d{4}))? " + _HOST + _FACILITY_PRI + _PROG
    + r" ?(?P<msg>.*)",
    re.DOTALL,
)
# BusyBox's spelling -> the name SEVERITIES uses.
_SEVERITY_ALIASES = {"panic": "emerg", "error": "err", "warn": "warning"}
_ISO = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?(?:[A-Z][a-z]{2} )?"
    r"(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d| [A-Z]{2,5})?) "
    + _HOST + _PROG + r" ?(?P<msg>.*)",
    re.DOTALL,
)
_SD = r'\[[^\]"]*(?:"(?:[^"\\]|\\.)*"[^\]"]*)*\]'
_RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<prog>\S+) (?P<pid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:" + _SD + r")+)(?: (?P<msg>.*))?",
    re.DOTALL,
)
_WINDOWS = re.compile(
    r"(?P<pid>\d+) (?:(?P<date>\d{4}-\d\d-\d\d) (?P<time>\d\d:\d\d:\d\d\.\d+)|"
    r"(?P<otime>\d\d:\d\d:\d\d)[: ](?P<ms>\d{3})) (?P<msg>.*)",
    re.DOTALL,
)
_NO_TS = re.compile(r"([^\s\[]+) ([^\s\[\]:]+)\[(\d+)\]: (.*)", re.DOTALL)
_SSHD_DEBUG_HINT = re.compile(r"(?:debug[123]|error|fatal): |\S.*\r$")
_SOLARIS_ID = re.compile(r"\[ID (?P<id>\d+) (?P<facility>[a-z0-9]+)\.(?P<severity>[a-z]+)\] ")
_KERNEL_TS = re.compile(r"kernel: ?\[\s*(?P<kts>\d+\.\d+)\]:? ")

SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


def _tidy(msg: str, extra: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    """Take format furniture out of the message: [ID n fac.sev], a kernel time stamp."""
    if msg[:4] == "[ID ":
        m = _SOLARIS_ID.match(msg)
        if m:
            extra = dict(extra or {}, msgid=m["id"], facility=m["facility"], severity=m["severity"])
            msg = msg[m.end() :]
    if msg[:7] == "kernel:":
        m = _KERNEL_TS.match(msg)
        if m:
            extra = dict(extra or {}, kernel_ts=m["kts"])
            msg = msg[m.end() :]
    return msg, extra


def _pri_extra(pri: str | None) -> dict[str, Any] | None:
    if pri is None:
        return None
    p = int(pri)
    return {"priority": p, "severity": SEVERITIES[p & 7]}


def parse_syslog(line: str) -> Prefix | None:
    """Traditional syslog: ``Mmm dd hh:mm:ss host prog[pid]: msg``."""
    m = _SYSLOG_FAST.match(line)
    if m is not None:
        msg = line[m.end() :]
        extra = None
        if msg[:4] == "[ID " or msg[:7] == "kernel:":
            msg, extra = _tidy(msg, extra)
        ts, host, prog, pid = m.groups()
        return (ts, host, prog, int(pid), msg, extra)
    m = _SYSLOG.match(line)
    if m is None or m["mon"].rstrip(".").lower() not in MONTHS:
        return None
    ts_end = m.end("year") if m["year"] else m.end("time")
    start = m.end("pri") + 1 if m["pri"] else 0
    pid = m["pid"]
    extra = _pri_extra(m["pri"])
    if m["facility"]:
        severity = m["severity"]
        extra = dict(extra or {}, facility=m["facility"],
                     severity=_SEVERITY_ALIASES.get(severity, severity))
    msg, extra = _tidy(m["msg"], extra)
    return (line[start:ts_end], m["host"], m["prog"] or m["bprog"], int(pid) if pid else None, msg, extra)


def parse_iso(line: str) -> Prefix | None:
    """RFC 3339 time stamp first (rsyslog's Debian 12 default, journalctl short-iso/-full)."""
    m = _ISO.match(line)
    if m is None:
        return None
    pid = m["pid"]
    msg, extra = _tidy(m["msg"], _pri_extra(m["pri"]))
    return (m["ts"], m["host"], m["prog"] or m["bprog"], int(pid) if pid else None, msg, extra)


def parse_rfc5424(line: str) -> Prefix | None:
    """RFC 5424: ``<PRI>1 TS HOST APP PROCID MSGID SD MSG``; "-" is nil, a BOM may lead MSG."""
    m = _RFC5424.match(line)
    if m is None:
        return None
    nil = lambda v: None if v == "-" else v  # noqa: E731
    pid = nil(m["pid"])
    msg = m["msg"] or ""
    if msg[:1] == "\ufeff":
        msg = msg[1:]
    extra = _pri_extra(m["pri"]) or {}
    if nil(m["msgid"]):
        extra["msgid"] = m["msgid"]
    if m["sd"] != "-":
        extra["structured_data"] = m["sd"]
    msg, tidied = _tidy(msg, extra)
    return (
        nil(m["ts"]),
        nil(m["host"]),
        nil(m["prog"]),
        int(pid) if pid and pid.isdigit() else None,
        msg,
        tidied or None,
    )


def parse_journal_json(line: str) -> Prefix | None:
    """``journalctl -o json``: the fields systemd documents (MESSAGE may be a byte list)."""
    if line[:1] != "{":
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    msg = obj.get("MESSAGE", "")
    if isinstance(msg, list):  # non-UTF-8 messages come as byte arrays
        try:
            msg = bytes(int(b) & 0xFF for b in msg).decode("utf-8", "replace")
        except (TypeError, ValueError):
            msg = ""
    elif not isinstance(msg, str):
        msg = "" if msg is None else str(msg)
    ts = None
    rt = obj.get("__REALTIME_TIMESTAMP")
    if isinstance(rt, str) and rt.isdigit():
        us = int(rt)
        stamp = _dt.datetime.fromtimestamp(us // 1_000_000, _dt.UTC)
        ts = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000:06d}+00:00"
    pid_text = obj.get("SYSLOG_PID") or obj.get("_PID")
    pid = int(pid_text) if isinstance(pid_text, str) and pid_text.isdigit() else None
    prog = obj.get("SYSLOG_IDENTIFIER") or obj.get("_COMM")
    extra: dict[str, Any] = {}
    prio = obj.get("PRIORITY")
    if isinstance(prio, str) and prio.isdigit():
        extra["severity"] = SEVERITIES[int(prio) & 7]
    msg, extra2 = _tidy(msg.rstrip("\r\n"), extra)
    return (ts, obj.get("_HOSTNAME"), prog if isinstance(prog, str) else None, pid, msg, extra2 or None)


def parse_windows(line: str) -> Prefix | None:
    """Win32-OpenSSH's file log (SyslogFacility LOCAL0): pid, then its time stamp."""
    m = _WINDOWS.match(line)
    if m is None:
        return None
    ts = f"{m['date']}T{m['time']}" if m["date"] else f"{m['otime']}.{m['ms']}"
    return (ts, None, "sshd", int(m["pid"]), m["msg"], None)


def parse_no_timestamp(line: str) -> Prefix | None:
    """``host prog[pid]: msg``: syslog without its time stamp."""
    m = _NO_TS.match(line)
    if m is None:
        return None
    msg, extra = _tidy(m.group(4), None)
    return (None, m.group(1), m.group(2), int(m.group(3)), msg, extra)


def parse_sshd_debug(line: str) -> Prefix:
    """``sshd -d``/``-e``/``-E``: the bare message (no time, host or pid).

    sshd never starts a line of this output with ``#`` (its messages start with a word, a
    ``debugN:``/``error:`` level or a key fingerprint). Such lines are comments that people and
    tools add to saved captures: they are kept with no program, so they are nobody's line.
    """
    if line[:1] == "#":
        return (None, None, None, None, line, None)
    return (None, None, "sshd", None, line, None)


@dataclass(frozen=True)
class InputFormat:
    """One way of writing a log line."""

    name: str
    parse: Parser
    description: str


FORMATS: dict[str, InputFormat] = {
    f.name: f
    for f in (
        InputFormat("syslog", parse_syslog, "Mmm dd hh:mm:ss host prog[pid]: msg"),
        InputFormat("iso", parse_iso, "RFC 3339 time stamp, host prog[pid]: msg"),
        InputFormat("rfc5424", parse_rfc5424, "<PRI>1 TS HOST APP PROCID MSGID SD MSG"),
        InputFormat("journal-json", parse_journal_json, "journalctl -o json"),
        InputFormat("windows", parse_windows, "Win32-OpenSSH sshd.log: PID date time msg"),
        InputFormat("no-timestamp", parse_no_timestamp, "host prog[pid]: msg"),
        InputFormat("sshd-debug", parse_sshd_debug, "sshd -d / -e / -E output, no prefix"),
    )
}
ALIASES = {
    "rfc3164": "syslog",
    "classic": "syslog",
    "short": "syslog",
    "short-precise": "syslog",
    "rfc3339": "iso",
    "short-iso": "iso",
    "short-iso-precise": "iso",
    "short-full": "iso",
    "json": "journal-json",
    "journal": "journal-json",
    "stderr": "sshd-debug",
    "sshd-e": "sshd-debug",
    "win32": "windows",
}
# Order in which a line that does not fit the file's format is tried. sshd-debug accepts
# anything, so it is never tried for a line of another file (only lines looking like it).
_FALLBACK_ORDER = ("syslog", "iso", "rfc5424", "journal-json", "windows", "no-timestamp")


def resolve_format(name: str) -> str:
    """A format name or alias -> the format name; ValueError naming the choices otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        choices = ", ".join(list(FORMATS) + sorted(ALIASES))
        raise ValueError(f"unknown input format {name!r} (one of: {choices})")
    return key


def detect_format(sample: Iterable[str]) -> str:
    """The format most of a file's first lines fit (the first wins a tie); sshd-debug if none."""
    counts: dict[str, int] = {}
    debugish = 0
    seen = 0
    for line in sample:
        if not line.strip() or line.startswith("#"):
            continue
        seen += 1
        for name in _FALLBACK_ORDER:
            if FORMATS[name].parse(line) is not None:
                counts[name] = counts.get(name, 0) + 1
                break
        else:
            if _SSHD_DEBUG_HINT.match(line):
                debugish += 1
    if not counts or max(counts.values()) < debugish:
        return "sshd-debug"
    best = max(counts.values())
    return next(n for n in _FALLBACK_ORDER if counts.get(n) == best)


class LineSplitter:
    """Splits lines with the file's format, trying the others for lines that do not fit."""

    def __init__(self, format_name: str) -> None:
        self.format = format_name
        self._parse = FORMATS[format_name].parse
        self._others = [(n, FORMATS[n].parse) for n in _FALLBACK_ORDER if n != format_name]

    def split(self, line: str) -> tuple[str, Prefix] | None:
        """(format name, prefix) for a line, or None when no format recognises it."""
        got = self._parse(line)
        if got is not None:
            return self.format, got
        for name, parse in self._others:
            got = parse(line)
            if got is not None:
                return name, got
        if _SSHD_DEBUG_HINT.match(line):
            return "sshd-debug", parse_sshd_debug(line)
        return None


def iso_timestamp(ts: str | None, format_name: str) -> str | None:
    """A prefix's time stamp as ISO 8601 text; year-less syslog stamps as ``--MM-DDThh:mm:ss``."""
    if ts is None:
        return None
    if format_name == "syslog":
        parts = ts.split()
        if len(parts) < 3:
            return ts
        month = _EN_MONTHS.get(parts[0]) or MONTHS.get(parts[0].rstrip(".").lower())
        if month is None or not parts[1].isdigit():
            return ts
        year = parts[3] if len(parts) > 3 and parts[3].isdigit() else "-"
        return f"{year}-{month:02d}-{int(parts[1]):02d}T{parts[2].replace(',', '.')}"
    if format_name == "iso":
        return ts.replace(" ", "T", 1) if ts[10:11] == " " else ts
    if format_name == "windows" and ts[:1].isdigit() and "T" not in ts:
        return ts  # time of day only (old Win32-OpenSSH builds)
    return ts


def parse_time(iso: str | None) -> _dt.datetime | None:
    """A datetime for an `iso_timestamp` result; year-less stamps get the year 2000 (leap)."""
    if not iso:
        return None
    text = iso
    if text.startswith("--"):
        text = "2000" + text[1:]
    text = text.replace(",", ".")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    m = re.match(r"(.*[T ]\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(\d\d)$", text)
    if m:
        text = f"{m.group(1)}{m.group(2)}:{m.group(3)}"
    try:
        return _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
