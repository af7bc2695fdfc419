"""A private syslog receiver: the capture end of the sshd that the product runs.

sshd (through glibc's syslog(3)) sends one datagram per line to /dev/log in the form
``<PRI>Mmm dd hh:mm:ss prog[pid]: message``. Inside the target's mount namespace /dev/log is a
bind mount of the socket made here, so every line arrives with the pid of the process that wrote
it, which is what grouping lines into connections needs (sshd -E drops pids; docs/local-target.md).

The socket is mode 0666: sshd's user child runs as the login user, and a 0600 socket would make
its lines vanish without any error. So the folder holding it must be private (0700, made by the
target): the namespace's processes reach the socket through the /dev/log bind mount, whose path
is theirs, while no other host user can reach it and inject lines into a captured log (a check
of SO_PASSCRED credentials could not tell them apart: without a user namespace, uid 1000 inside
is uid 1000 outside, and a sender's pid may be gone by the time its datagram is read). glibc uses
a blocking send on a connected datagram socket, so a slow reader slows sshd down rather than
losing lines; the reader runs in its own thread so an event loop busy with key exchange never
delays it.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# glibc: "<PRI>" then a 15-character timestamp, a space, "ident[pid]: " then the message.
_DATAGRAM = re.compile(
    rb"^<(?P<pri>\d{1,3})>(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) "
    rb"(?P<prog>[^\[: ]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$",
    re.DOTALL,
)

SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

# A datagram we send ourselves to learn that everything queued before it has been read.
_FLUSH_MARK = b"<0>sshsim-flush-mark "


@dataclass(frozen=True, slots=True)
class SyslogRecord:
    """One line as sshd logged it: what syslog(3) sent plus when it arrived."""

    seq: int
    arrival: float
    priority: int
    timestamp: str
    program: str
    pid: int | None
    message: str

    @property
    def facility(self) -> int:
        return self.priority >> 3

    @property
    def severity(self) -> str:
        return SEVERITIES[self.priority & 7]

    def classic(self, host: str) -> str:
        """The line as rsyslog's traditional file format writes it (the reference log's form)."""
        pid = f"[{self.pid}]" if self.pid is not None else ""
        return f"{self.timestamp} {host} {self.program}{pid}: {self.message}"


def parse_datagram(data: bytes, seq: int = 0, arrival: float | None = None) -> SyslogRecord:
    """Turn one syslog datagram into a record; a datagram of another shape is kept whole."""
    arrival = time.time() if arrival is None else arrival
    data = data.rstrip(b"\n\x00")
    match = _DATAGRAM.match(data)
    if match is None:
        pri = 13
        text = data.decode("utf-8", "replace")
        if text.startswith("<") and ">" in text[:5]:
            head, _, text = text[1:].partition(">")
            pri = int(head) if head.isdigit() else pri
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime(arrival))
        return SyslogRecord(seq, arrival, pri, _pad_day(stamp), "unknown", None, text)
    pid = match.group("pid")
    return SyslogRecord(
        seq=seq,
        arrival=arrival,
        priority=int(match.group("pri")),
        timestamp=match.group("ts").decode("ascii"),
        program=match.group("prog").decode("utf-8", "replace"),
        pid=int(pid) if pid else None,
        message=match.group("msg").decode("utf-8", "replace"),
    )


def _pad_day(stamp: str) -> str:
    """syslog pads the day of month with a space, strftime with a zero."""
    if stamp[4] == "0":
        return stamp[:4] + " " + stamp[5:]
    return stamp


class SyslogReceiver:
    """Receives syslog datagrams on a private AF_UNIX socket and keeps every record.

    Records can be read as a list (`records`), streamed to a file in the classic format, passed
    to a callback, or awaited with `wait_for`.
    """

    def __init__(
        self,
        path: Path,
        *,
        host: str = "localhost",
        log_file: IO[str] | None = None,
        on_record: Callable[[SyslogRecord], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.host = host
        self._log_file = log_file
        self._on_record = on_record
        self._records: list[SyslogRecord] = []
        self._lock = threading.Lock()
        self._waiters: list[tuple[Callable[[SyslogRecord], bool], asyncio.Future, asyncio.AbstractEventLoop]] = []
        self._flush_seen = threading.Condition(self._lock)
        self._flush_count = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Bind the socket (mode 0666 in a private folder, see module doc) and start reading."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # Large receive buffer: bursts at DEBUG3 from many connections at once.
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        except OSError:
            pass
        sock.bind(str(self.path))
        os.chmod(self.path, 0o666)
        self._sock = sock
        self._thread = threading.Thread(target=self._read_loop, name="sshsim-syslog", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop reading and remove the socket file. Records stay available."""
        if self._sock is None:
            return
        self._stopping = True
        try:
            self._send_raw(b"<0>sshsim-stop")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()
        self._sock = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> SyslogReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------
    def _read_loop(self) -> None:
        assert self._sock is not None
        seq = 0
        while True:
            try:
                data = self._sock.recv(1 << 20)
            except OSError:
                return
            if data.startswith(b"<0>sshsim-stop") and self._stopping:
                return
            if data.startswith(_FLUSH_MARK):
                with self._lock:
                    self._flush_count += 1
                    self._flush_seen.notify_all()
                continue
            record = parse_datagram(data, seq, time.time())
            seq += 1
            self._deliver(record)

    def _deliver(self, record: SyslogRecord) -> None:
        with self._lock:
            self._records.append(record)
            matched = [w for w in self._waiters if not w[1].done() and _safe(w[0], record)]
            for waiter in matched:
                self._waiters.remove(waiter)
        if self._log_file is not None:
            try:
                self._log_file.write(record.classic(self.host) + "\n")
                self._log_file.flush()
            except OSError:
                # A full disk must not stop the capture: the records stay complete in memory.
                self._log_file = None
        if self._on_record is not None:
            self._on_record(record)
        for _, future, loop in matched:
            loop.call_soon_threadsafe(_resolve, future, record)

    def _send_raw(self, data: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as out:
            out.sendto(data, str(self.path))

    # -- queries ---------------------------------------------------------------------------
    @property
    def records(self) -> list[SyslogRecord]:
        """A snapshot of every record received so far, in arrival order."""
        with self._lock:
            return list(self._records)

    def lines(self, host: str | None = None) -> list[str]:
        """Every record in the classic format."""
        return [r.classic(host or self.host) for r in self.records]

    def flush(self, timeout: float = 5.0) -> None:
        """Return once every datagram sent before this call has been read.

        Datagrams on one socket are queued in order, so a mark we send ourselves arrives after
        everything that was already waiting.
        """
        with self._lock:
            target = self._flush_count + 1
        self._send_raw(_FLUSH_MARK)
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._flush_count < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("syslog receiver did not drain in time")
                self._flush_seen.wait(left)

    async def wait_for(
        self,
        predicate: Callable[[SyslogRecord], bool],
        timeout: float | None = None,
        *,
        since: int = 0,
    ) -> SyslogRecord:
        """Wait for a record (among those with seq >= since, past or future) matching predicate."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SyslogRecord] = loop.create_future()
        with self._lock:
            for record in self._records[since:]:
                if _safe(predicate, record):
                    return record
            self._waiters.append((predicate, future, loop))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            with self._lock:
                self._waiters = [w for w in self._waiters if w[1] is not future]


def _safe(predicate: Callable[[SyslogRecord], bool], record: SyslogRecord) -> bool:
    try:
        return bool(predicate(record))
    except Exception:  # a broken predicate must not kill the reader thread
        return False


def _resolve(future: asyncio.Future, record: SyslogRecord) -> None:
    if not future.done():
        future.set_result(record)
