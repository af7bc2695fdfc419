"""The sshd log parser: real logs in, events grouped into connections out.

    from simulator.logs import parse_file, group_connections
    conns = group_connections(parse_file("auth.log"))

Modules: `formats` (input formats, line prefixes), `catalogue` (the event catalogue, matching),
`events` (the Event type), `parser` (lines -> events), `connections` (pid lineage, roles),
`normalise` (comparing logs across hosts and versions), `reader` (files, stdin, gzip).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from simulator.logs.catalogue import Catalogue, EventSpec, default_catalogue
from simulator.logs.connections import (
    Connection,
    ConnectionTracker,
    group_connections,
    group_events,
)
from simulator.logs.events import Event
from simulator.logs.normalise import normalise_event, normalise_message
from simulator.logs.parser import RecordParser, parse_lines, parse_records
from simulator.logs.reader import LogReader


def parse_file(path: str | Path, input_format: str | None = None) -> Iterator[Event]:
    """Parse a log file (``-`` for stdin; gzip read directly), streaming."""
    return parse_lines(LogReader(path).lines(), input_format=input_format)


__all__ = [
    "Catalogue",
    "Connection",
    "ConnectionTracker",
    "Event",
    "EventSpec",
    "LogReader",
    "RecordParser",
    "default_catalogue",
    "group_connections",
    "group_events",
    "normalise_event",
    "normalise_message",
    "parse_file",
    "parse_lines",
    "parse_records",
]
