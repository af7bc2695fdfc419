"""Which captured records belong to which scenario connection, while the run is going on.

A scenario can wait for a server event of another connection (`after: {connection: motty,
event: auth.postponed}`). The driver knows each connection's client port; the log's own engine
(simulator/logs: the catalogue's tags, pid lineage) knows which lines form which connection and
which client endpoint each one has. The capture's records enter that engine as they are (pid,
program, message: `RecordParser`), each parsed once; no syslog text is made and read again.

Lines of different processes do not arrive in causal order (a child's line can come before the
line that names its pid), so grouping is not decided at arrival: whenever something new has
arrived, the events so far are grouped again (two exact passes, as the verifier will group the
whole log), and the awaited event is looked for in the connection with the client's port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from simulator.capture.syslog import SyslogReceiver, SyslogRecord
from simulator.logs import Connection, Event, RecordParser, group_connections

# Seconds a wait for an event of a connection whose client has ended goes on: the listener's
# lines about it (child reaped, penalty) follow the client's end by milliseconds.
AFTERMATH_SECONDS = 2.0


class SyncTimeout(TimeoutError):
    """A wait for a server event (after:, pause, wait_for) ran out; the message says what was
    awaited and for how long. Its own type, so it is never mistaken for another timeout."""


class ConnectionTracker:
    """Maps scenario connection ids to the log's connections (by the client's port) and finds
    server events in them."""

    def __init__(self, log: SyslogReceiver) -> None:
        self.log = log
        self.ports: dict[str, int] = {}
        self._port_ready: dict[str, asyncio.Event] = {}
        self._parser = RecordParser(log.host)
        self._events: list[Event] = []  # every record parsed so far, in arrival order
        self._connections: list[Connection] = []  # their grouping, as of the last `update`
        self._grouped = -1  # how many events that grouping saw

    def port_event(self, conn_id: str) -> asyncio.Event:
        return self._port_ready.setdefault(conn_id, asyncio.Event())

    def set_port(self, conn_id: str, port: int) -> None:
        self.ports[conn_id] = port
        self.port_event(conn_id).set()

    def update(self) -> int:
        """Parse the records that arrived since the last call, and group everything again if
        any did; returns how many records have been seen."""
        records = self.log.records
        if len(records) > len(self._events):
            self._events.extend(self._parser.parse(records[len(self._events):]))
        if self._grouped != len(self._events):
            self._connections = group_connections(self._events)
            self._grouped = len(self._events)
        return len(self._events)

    def connection(self, conn_id: str) -> Connection | None:
        """The log's connection of the scenario connection `conn_id`: the latest one whose
        client port is the port the driver connected from."""
        port = self.ports.get(conn_id)
        if port is None:
            return None
        found = None
        for conn in self._connections:
            if conn.kind == "connection" and conn.port == port:
                found = conn
        return found

    def find(self, conn_id: str | None, event: str, fields: dict[str, Any]) -> Event | None:
        """The first event named `event` with `fields` (compared as text) of `conn_id`'s
        connection (any connection when None), as of the last `update`."""
        if conn_id is None:
            events: list[Event] = self._events
        else:
            conn = self.connection(conn_id)
            if conn is None or conn.events is None:
                return None
            events = conn.events
        for ev in events:
            if ev.event != event:
                continue
            if fields:
                have = ev.fields
                if not all(str(have.get(k)) == str(v) for k, v in fields.items()):
                    continue
            return ev
        return None

    async def wait(self, conn_id: str | None, event: str, fields: dict[str, Any], timeout: float,
                   cancelled: Callable[[], str | None] = lambda: None) -> Event:
        """Wait until `event` is logged for `conn_id`; SyncTimeout names what was awaited."""
        deadline = time.monotonic() + timeout
        gone_at: float | None = None
        if conn_id is not None:
            try:
                await asyncio.wait_for(self.port_event(conn_id).wait(), timeout)
            except TimeoutError:
                raise SyncTimeout(f"connection {conn_id!r} never connected "
                                  f"(waited {timeout:g} s for {event})") from None
        while True:
            seen = self.update()
            found = self.find(conn_id, event, fields)
            if found is not None:
                return found
            reason = cancelled()
            if reason:
                # The listener writes some lines of a connection after its client has gone (the
                # child's exit, a PerSourcePenalties penalty, a grace timeout): they get a moment.
                gone_at = gone_at or time.monotonic()
                if time.monotonic() - gone_at >= AFTERMATH_SECONDS:
                    raise SyncTimeout(f"{event} of {conn_id!r} will not come: {reason}")
            left = deadline - time.monotonic()
            if left <= 0:
                who = f" of connection {conn_id!r}" if conn_id else ""
                raise SyncTimeout(f"the server did not log {event}{who} within {timeout:g} s")

            def arrived(record: SyslogRecord, n: int = seen) -> bool:
                return record.seq >= n

            try:
                await self.log.wait_for(arrived, timeout=min(left, 0.25), since=seen)
            except TimeoutError:
                pass
