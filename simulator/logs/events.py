"""The parser's output: one `Event` per input line, in input order.

An event keeps the line's raw text, what the line prefix said (time, host, program, pid) and what
the catalogue made of the message (event name, fields). Fields are built only when asked for:
most consumers look at a few events, and building a dict per line would cost more than the
match itself (the parser aims at 500k lines/s).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from simulator.logs.catalogue import EventSpec

# Event names for lines the catalogue does not describe.
UNKNOWN = "unknown"  # an sshd line no entry matches (raw text kept)
OTHER = "other"  # a line of another program (systemd-logind, kernel, ...)
UNPARSED = "unparsed"  # a line whose prefix no input format recognises (comments, garbage)

# Roles of the processes of one connection (docs/reference-log.md); "pam" is the PAM conversation
# child the monitor forks for keyboard-interactive/password when PAM runs without threads.
ROLES = ("listener", "monitor", "preauth", "user", "session", "pam")


class Event(msgspec.Struct, eq=False, gc=False):
    """One input line and what it means. Millions are made, so making one must be cheap: a
    `msgspec.Struct` is built by native code (no Python ``__init__``), and it holds the parser's
    two cached tuples as they are, shared by the many lines of one process and one message,
    instead of copying their eleven parts onto every event. The parts are read through the
    properties below; the grouping's hot loop indexes the tuples itself.

    ``source``: what the line's prefix said, (time stamp, host, program, pid, anything);
    ``meaning``: what the catalogue made of its message, (level, message, relay, spec, groups,
    event name). Equality and hashing are by identity (``eq=False``), as for a plain object.
    ``gc=False``: an event refers to strings, tuples, a catalogue entry and dicts of fields,
    never to anything that refers back to it, so the cycle collector need not track the
    millions that live for a window of lines."""

    line: int
    raw: str
    format: str  # the input format the line was read as ("none": unparsed)
    source: tuple[str | None, str | None, str | None, int | None, Any]
    meaning: tuple[str | None, str | None, str | None, EventSpec | None, tuple[str | None, ...], str]
    extra: dict[str, Any] | None = None  # format-specific facts: syslog priority, facility, ...
    conn: int | None = None
    role: str | None = None
    _fields: dict[str, Any] | None = None

    @property
    def ts(self) -> str | None:
        """The time stamp as written (see formats.iso_timestamp)."""
        return self.source[0]

    @property
    def host(self) -> str | None:
        """The host the line's prefix names."""
        return self.source[1]

    @property
    def program(self) -> str | None:
        """The program the line's prefix names."""
        return self.source[2]

    @property
    def pid(self) -> int | None:
        """The pid the line's prefix names."""
        return self.source[3]

    @property
    def level(self) -> str | None:
        """The log level: sshd's own prefix, else the catalogue entry's."""
        return self.meaning[0]

    @property
    def message(self) -> str:
        """sshd's message without level prefix and relay suffix."""
        return self.meaning[1]  # type: ignore[return-value]

    @property
    def relay(self) -> str | None:
        """"preauth" / "postauth" when relayed by the monitor with that suffix."""
        return self.meaning[2]

    @property
    def spec(self) -> EventSpec | None:
        """The catalogue entry the message matched (None: unknown or not sshd)."""
        return self.meaning[3]

    @property
    def event(self) -> str:
        """The event name: the catalogue entry's, or UNKNOWN / OTHER / UNPARSED."""
        return self.meaning[5]

    @property
    def fields(self) -> dict[str, Any]:
        """The pattern's named fields; integers for int-typed fields, None if absent."""
        f = self._fields
        if f is None:
            spec = self.meaning[3]
            if spec is None:
                f = {}
            else:
                groups = self.meaning[4]
                named = spec.named
                # every group kept (most entries): the names and values pair up in order
                f = dict(zip(spec.fields, groups)) if len(named) == len(groups) else {  # type: ignore[arg-type]  # noqa: B905
                    name: groups[i] for i, name in named}
                for name in spec.int_fields:
                    v = f.get(name)
                    if v is not None:
                        f[name] = _as_int(v)
            self._fields = f
        return f

    def field(self, name: str) -> Any:
        """One field as `fields` gives it (None if absent), without building the others:
        grouping reads one or two fields of each line that states a fact, and building the whole
        dict for them was a tenth of grouping's cost."""
        f = self._fields
        if f is not None:
            return f.get(name)
        spec = self.meaning[3]
        if spec is None or name not in spec.fields:
            return None
        v = self.meaning[4][spec.fields.index(name)]
        return _as_int(v) if v is not None and name in spec.int_fields else v

    @property
    def known(self) -> bool:
        """True when the catalogue matched the message."""
        return self.meaning[3] is not None

    @property
    def is_sshd(self) -> bool:
        """True for a line of sshd or one of its helper programs."""
        return self.program is not None and self.event != OTHER

    def to_dict(self) -> dict[str, Any]:
        """The JSONL view: the documented keys, in a stable order."""
        return {
            "line": self.line,
            "ts": self.ts,
            "host": self.host,
            "program": self.program,
            "pid": self.pid,
            "level": self.level,
            "event": self.event,
            "fields": self.fields,
            "conn": self.conn,
            "role": self.role,
            "relay": self.relay,
            "message": self.message,
            "format": self.format,
            "raw": self.raw,
        }

    def __repr__(self) -> str:
        return (
            f"Event(line={self.line}, event={self.event!r}, pid={self.pid}, "
            f"conn={self.conn}, role={self.role!r})"
        )


def _as_int(text: str) -> int | str:
    """An int-typed field's value: the number, or its text where it is none (a damaged line)."""
    try:
        return int(text)
    except ValueError:
        return text


class EventBatch(list[Event]):
    """A parser's batch of events (a list), with what it found while making them, so that
    grouping need not look at every event again: ``facts``, (index in the batch, event, tag
    bits) of each event whose catalogue entry states a lineage fact (tags.LINEAGE), in order;
    ``new_programs``, whether any line parsed so far (this batch included) was of sshd-session
    or sshd-auth (OpenSSH 9.8 and later)."""

    __slots__ = ("facts", "new_programs")

    def __init__(self) -> None:
        super().__init__()
        self.facts: list[tuple[int, Event, int]] = []
        self.new_programs = False


class EventStream:
    """The events of `parse_lines`, in input order. They are made a batch (a list) at a time;
    grouping takes the batches whole (`batches`) when nobody has started iterating yet."""

    __slots__ = ("_batches", "_events", "started")

    def __init__(self, batches: Iterator[list[Event]]) -> None:
        self._batches = batches
        self._events = chain.from_iterable(batches)
        self.started = False

    def __iter__(self) -> Iterator[Event]:
        self.started = True
        return self._events

    def __next__(self) -> Event:
        self.started = True
        return next(self._events)

    def batches(self) -> Iterator[list[Event]]:
        """The batches not yet taken (only before iteration started)."""
        if self.started:
            raise RuntimeError("EventStream: batches() after iteration started")
        self.started = True
        return self._batches
