"""The sshd log parser: real logs in, events grouped into connections out.

    from simulator.logs import parse_file, group_connections
    conns = group_connections(parse_file("auth.log"))

Modules: `formats` (input formats, line prefixes), `catalogue` (the event catalogue, matching),
`events` (the Event type), `parser` (lines -> events), `connections` (pid lineage, roles),
`normalise` (comparing logs across hosts and versions), `reader` (files, stdin, gzip).

The names below are imported when first used, not with the package, for start-up cost: every
import of a submodule (``simulator.logs.catalogue``) runs this file first, and importing all of
them here made loading the catalogue alone pull in the grouping, the parser, normalisation
(yaml) and the Event type (msgspec): about 36 of the 56 ms that importing the catalogue took
(issue 13; docs/performance.md, "Start-up").
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# exported name -> the submodule that defines it
_LAZY = {
    "Catalogue": "catalogue",
    "EventSpec": "catalogue",
    "default_catalogue": "catalogue",
    "Connection": "connections",
    "ConnectionTracker": "connections",
    "group_connections": "connections",
    "group_events": "connections",
    "Event": "events",
    "normalise_event": "normalise",
    "normalise_message": "normalise",
    "RecordParser": "parser",
    "parse_lines": "parser",
    "parse_records": "parser",
    "LogReader": "reader",
}


def __getattr__(name: str) -> Any:
    """An exported name, imported from its submodule on first use (then kept as a global)."""
    module = _LAZY.get(name)
    if module is None:
        # AttributeError, as for any missing attribute: `from simulator.logs import tags` relies
        # on it to fall back to importing the submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def parse_file(path: str | Path, input_format: str | None = None) -> Iterator[Event]:
    """Parse a log file (``-`` for stdin; gzip read directly), streaming."""
    # imported here: start-up cost (see the module docstring)
    from simulator.logs.parser import parse_lines
    from simulator.logs.reader import LogReader

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
