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

if TYPE_CHECKING:
    from simulator.logs.catalogue import EventSpec

# Event names for lines the catalogue does not describe.
UNKNOWN = "unknown"  # an sshd line no entry matches (raw text kept)
OTHER = "other"  # a line of another program (systemd-logind, kernel, ...)
UNPARSED = "unparsed"  # a line whose prefix no input format recognises (comments, garbage)

# Roles of the processes of one connection (docs/reference-log.md); "pam" is the PAM conversation
# child the monitor forks for keyboard-interactive/password when PAM runs without threads.
ROLES = ("listener", "monitor", "preauth", "user", "session", "pam")


class Event:
    """One input line and what it means. Slots, not a dataclass: millions are made."""

    __slots__ = ("line", "ts", "host", "program", "pid", "level", "event", "message", "relay", "raw",
                 "format", "conn", "role", "spec", "_groups", "_fields", "extra")

    def __init__(
        self,
        line: int,
        raw: str,
        format: str,
        source: tuple[str | None, str | None, str | None, int | None, Any],
        meaning: tuple[str | None, str | None, str | None, EventSpec | None, tuple[str | None, ...], str],
        extra: dict[str, Any] | None = None,
    ) -> None:
        """`source`: what the line's prefix said, (time stamp, host, program, pid, anything);
        `meaning`: what the catalogue made of its message, (level, message, relay, spec,
        groups, event name). Both are the parser's cached tuples, shared by the many lines of
        one process and one message: unpacking them here is the cheapest way to make millions
        of events (the parser aims at 500k lines/s)."""
        self.line = line
        self.raw = raw
        self.format = format  # the input format the line was read as ("none": unparsed)
        # ts: the time stamp as written (see formats.iso_timestamp)
        self.ts, self.host, self.program, self.pid, _ = source
        # message: sshd's message without level prefix and relay suffix; relay: "preauth" /
        # "postauth" when relayed by the monitor with that suffix
        self.level, self.message, self.relay, self.spec, self._groups, self.event = meaning
        self.extra = extra  # format-specific facts: syslog priority, facility, ...
        self.conn: int | None = None
        self.role: str | None = None
        self._fields: dict[str, Any] | None = None

    @property
    def fields(self) -> dict[str, Any]:
        """The pattern's named fields; integers for int-typed fields, None if absent."""
        f = self._fields
        if f is None:
            spec = self.spec
            if spec is None:
                f = {}
            else:
                groups = self._groups
                named = spec.named
                # every group kept (most entries): the names and values pair up in order
                f = dict(zip(spec.fields, groups)) if len(named) == len(groups) else {  # type: ignore[arg-type]  # noqa: B905
                    name: groups[i] for i, name in named}
                for name in spec.int_fields:
                    v = f.get(name)
                    if v is not None:
                        try:
                            f[name] = int(v)
                        except ValueError:
                            pass
            self._fields = f
        return f

    @property
    def known(self) -> bool:
        """True when the catalogue matched the message."""
        return self.spec is not None

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
