"""Which captured records belong to which scenario connection, while the run is going on.

A scenario can wait for a server event of another connection (`after: {connection: motty,
event: auth.postponed}`). The driver knows each connection's client port; sshd's monitor logs
"Connection from A port P on B port Q", which names its pid, and later "User child is on pid N".
Lines of different processes do not arrive in causal order, so matching re-scans the captured
records whenever something new arrives instead of deciding at arrival time.
"""

from __future__ import annotations

import asyncio
import re
import time
from functools import lru_cache
from typing import Any, Callable

from simulator.capture.syslog import SyslogReceiver, SyslogRecord

_CONNECTION_FROM = re.compile(r"^Connection from (\S+) port (\d+) on ")
_USER_CHILD = re.compile(r"^User child is on pid (\d+)")


@lru_cache(maxsize=8192)
def classify(message: str) -> tuple[str, dict[str, Any]] | None:
    """Event name and fields of one sshd message, from the catalogue (simulator/data/events).

    The parser strips the level prefix and the relay suffix; a line in the classic form is the
    simplest way to give it one message.
    """
    from simulator.logs import parse_lines

    for event in parse_lines([f"Jan  1 00:00:00 host sshd[1]: {message}"]):
        if not event.known:
            return None
        return event.event, dict(event.fields)
    return None


class SyncTimeout(TimeoutError):
    """A wait for a server event (after:, pause, wait_for) ran out; the message says what was
    awaited and for how long. Its own type, so it is never mistaken for another timeout."""


class ConnectionTracker:
    """Maps scenario connection ids to the sshd pids that serve them."""

    def __init__(self, log: SyslogReceiver) -> None:
        self.log = log
        self.ports: dict[str, int] = {}
        self._port_ready: dict[str, asyncio.Event] = {}

    def port_event(self, conn_id: str) -> asyncio.Event:
        return self._port_ready.setdefault(conn_id, asyncio.Event())

    def set_port(self, conn_id: str, port: int) -> None:
        self.ports[conn_id] = port
        self.port_event(conn_id).set()

    def pids(self, conn_id: str, records: list[SyslogRecord]) -> set[int]:
        """Monitor pid (from its "Connection from" line) and the user child's pid."""
        port = self.ports.get(conn_id)
        if port is None:
            return set()
        monitor = None
        for record in records:
            m = _CONNECTION_FROM.match(record.message)
            if m and int(m.group(2)) == port:
                monitor = record.pid
                break
        if monitor is None:
            return set()
        pids = {monitor}
        for record in records:
            if record.pid == monitor:
                m = _USER_CHILD.match(record.message)
                if m:
                    pids.add(int(m.group(1)))
        return pids

    def find(self, conn_id: str | None, event: str, fields: dict[str, Any],
             records: list[SyslogRecord]) -> SyslogRecord | None:
        pids = self.pids(conn_id, records) if conn_id else None
        if conn_id and not pids:
            return None
        for record in records:
            if pids is not None and record.pid not in pids:
                continue
            found = classify(record.message)
            if found is None or found[0] != event:
                continue
            if all(str(found[1].get(k)) == str(v) for k, v in fields.items()):
                return record
        return None

    async def wait(self, conn_id: str | None, event: str, fields: dict[str, Any], timeout: float,
                   cancelled: Callable[[], str | None] = lambda: None) -> SyslogRecord:
        """Wait until `event` is logged for `conn_id`; SyncTimeout names what was awaited."""
        deadline = time.monotonic() + timeout
        if conn_id is not None:
            try:
                await asyncio.wait_for(self.port_event(conn_id).wait(), timeout)
            except asyncio.TimeoutError:
                raise SyncTimeout(f"connection {conn_id!r} never connected (waited {timeout:g} s for {event})") from None
        while True:
            records = self.log.records
            found = self.find(conn_id, event, fields, records)
            if found is not None:
                return found
            reason = cancelled()
            if reason:
                raise SyncTimeout(f"{event} of {conn_id!r} will not come: {reason}")
            left = deadline - time.monotonic()
            if left <= 0:
                who = f" of connection {conn_id!r}" if conn_id else ""
                raise SyncTimeout(f"the server did not log {event}{who} within {timeout:g} s")
            seen = len(records)
            try:
                await self.log.wait_for(lambda r, n=seen: r.seq >= n, timeout=min(left, 0.25), since=seen)
            except asyncio.TimeoutError:
                pass
