"""Group events into connections by pid lineage, and give each event its process's role.

One sshd connection is several processes (docs/reference-log.md): the listener forks a monitor
("Forked child N"), the monitor relays the unprivileged pre-auth child's lines with its own pid
and a " [preauth]" suffix, forks the user child ("User child is on pid N"), which forks a
session child for a shell or command. From 9.8 the per-connection processes are
``sshd-session``; from 10.0 pre-auth runs in ``sshd-auth`` (still relayed as [preauth]).

Log order across processes is not causal: a child's first line can arrive before its parent's
line that names it. So grouping is done in two passes: facts about lineage are collected when an
event arrives (pass 1), and an event's connection and role are decided only once it has left a
look-ahead window (pass 2), by which time the lines that name its pid have been seen. With an
unbounded window (`group_connections`) this is a plain two-pass algorithm; the streaming
`ConnectionTracker` keeps memory flat by bounding the window and forgetting finished
connections.

INFO-level logs have no fork lines: there a pid is its own connection, and a new pid whose
first line names the client address and port of a known connection (the user child's
"Received disconnect from A port P") joins that connection; so does a new pid whose first line
names no client ("refused local port forward ...") when a later line of it names that endpoint.

OpenSSH 5.x names neither of a connection's children: a new pid whose first line only a session
child writes (tag `session`) joins the nearest logged-in connection started below it, and one
whose first line only a pre-auth child writes (`preauth-child`) joins the monitor one pid below
it (OpenSSH's fork order makes that the pre-auth child's pid in practice).

`sshd -d`/`-e` output has no pids: one process, one connection at a time. Its start-up lines
(every line up to the last `listener` line before the first `starts` line: version, host keys,
rexec_argv, "Bind to port", "Server listening", "Server will not fork") and any later `listener`
line are the listener's; the rest is the current connection's, from the re-exec'd server's
"rexec start" on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

from simulator.logs import tags
from simulator.logs.events import UNKNOWN, Event, EventBatch, EventStream
from simulator.logs.formats import iso_timestamp, parse_time

# The per-connection programs of OpenSSH 9.8 and later: from their first line on, "sshd" is the listener.
NEW_PROGRAMS = ("sshd-session", "sshd-auth")
# Lines pass 1 learns lineage from.
_LEARN = tags.LINEAGE
# How far above its user child's pid a session child's pid may be.
_SESSION_PID_SPAN = 256


@dataclass(slots=True)
class Channel:
    """A channel as the summary shows it: type, peer's window and the requests on it."""

    channel: int | None
    ctype: str
    rchan: int | None = None
    window: int | None = None
    max_packet: int | None = None
    requests: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Connection:
    """One client connection (or the listener's own lines), with what a summary needs."""

    id: int
    kind: str = "connection"  # connection | listener | dropped
    pids: dict[str, list[int]] = field(default_factory=dict)  # role -> pids
    programs: set[str] = field(default_factory=set)
    addr: str | None = None
    port: int | None = None
    laddr: str | None = None
    lport: int | None = None
    client_version: str | None = None
    server_version: str | None = None
    kex: str | None = None
    host_key: str | None = None
    cipher: dict[str, str | None] = field(default_factory=dict)  # direction -> cipher
    mac: dict[str, str | None] = field(default_factory=dict)
    compression: dict[str, str | None] = field(default_factory=dict)
    strict_kex: bool = False
    ext_info: bool = False
    auth: list[tuple[str, str]] = field(default_factory=list)  # (method, outcome)
    user: str | None = None
    outcome: str | None = None  # accepted | failed | None (never decided)
    channels: list[Channel] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)  # "shell on pts/0", "subsystem 'sftp'"
    end: str | None = None  # the event that ended it
    end_reason: str | None = None
    first_line: int = 0
    last_line: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    n_events: int = 0
    unknown: int = 0
    events: list[Event] | None = None
    _ts_format: str = "syslog"
    _indexed: bool = False  # registered under its client endpoint

    @property
    def ended(self) -> bool:
        return self.end is not None

    @property
    def start(self) -> str | None:
        """Start time (ISO 8601; year-less for traditional syslog)."""
        return iso_timestamp(self.first_ts, self._ts_format)

    @property
    def stop(self) -> str | None:
        """Time of the last line (ISO 8601)."""
        return iso_timestamp(self.last_ts, self._ts_format)

    @property
    def duration(self) -> float | None:
        """Seconds from the first to the last line, when both have a time stamp."""
        a, b = parse_time(self.start), parse_time(self.stop)
        if a is None or b is None or (a.tzinfo is None) != (b.tzinfo is None):
            return None
        seconds = (b - a).total_seconds()
        if seconds < 0 and self.start and self.start.startswith("--"):
            seconds += 366 * 86400  # a year-less log crossing New Year
        return seconds

    def add_pid(self, role: str, pid: int | None) -> None:
        if pid is None:
            return
        pids = self.pids.setdefault(role, [])
        if pid not in pids:
            pids.append(pid)

    def to_dict(self) -> dict[str, Any]:
        """The summary as data (JSON output, reports)."""
        return {
            "conn": self.id,
            "kind": self.kind,
            "pids": self.pids,
            "programs": sorted(self.programs),
            "client": {"addr": self.addr, "port": self.port, "version": self.client_version},
            "server": {"addr": self.laddr, "port": self.lport, "version": self.server_version},
            "kex": self.kex,
            "host_key": self.host_key,
            "cipher": self.cipher,
            "mac": self.mac,
            "compression": self.compression,
            "strict_kex": self.strict_kex,
            "ext_info": self.ext_info,
            "auth": [{"method": m, "outcome": o} for m, o in self.auth],
            "user": self.user,
            "outcome": self.outcome,
            "channels": [
                {
                    "channel": c.channel,
                    "type": c.ctype,
                    "rchan": c.rchan,
                    "window": c.window,
                    "max_packet": c.max_packet,
                    "requests": c.requests,
                }
                for c in self.channels
            ],
            "sessions": self.sessions,
            "start": self.start,
            "end": self.stop,
            "duration": self.duration,
            "end_event": self.end,
            "end_reason": self.end_reason,
            "lines": [self.first_line, self.last_line],
            "events": self.n_events,
            "unknown": self.unknown,
        }


def _fill_endpoint(c: Connection, ev: Event) -> None:
    """The client endpoint of a line, where the connection does not know it yet."""
    if c.addr is None:
        addr = ev.field("addr")
        if addr:
            c.addr = addr
    if c.port is None:
        port = ev.field("port")
        if port is not None:
            c.port = port


# The tags `fold_meaning` reads: a line with none of them says nothing it folds (grouping then
# neither builds its fields nor calls it).
_MEANING = tags.ENDPOINT | tags.DROPPED | tags.AUTH_ACCEPTED | tags.AUTH_FAILED | tags.ENDS


def fold_meaning(c: Connection, flags: int, name: str, ev: Event) -> None:
    """What a line's tags (simulator/logs/tags.py) say about its connection: the client
    endpoint, a drop, the authentication outcome, the end. Grouping needs all of it (INFO logs
    join a user child to its connection by the endpoint; a pid is reused once its connection
    ended), so it is folded whether or not summaries are kept. It reads only the fields a tag
    needs, and only when it needs them (`Event.field`): most tagged lines of a connection
    restate an endpoint it knows or only say accepted/failed."""
    if flags & tags.ENDPOINT:
        if flags & tags.STARTS:  # a new connection: its endpoint as stated
            c.addr, c.port = ev.field("addr"), ev.field("port")
        elif c.addr is None or c.port is None:
            _fill_endpoint(c, ev)
    if flags & tags.DROPPED:
        _fill_endpoint(c, ev)
        c.kind = "dropped"
        c.end, c.end_reason = name, ev.field("reason") or "MaxStartups"
    if flags & tags.AUTH_ACCEPTED:
        c.outcome = "accepted"
    elif flags & tags.AUTH_FAILED and c.outcome is None:
        c.outcome = "failed"
    if flags & tags.ENDS and c.end is None:
        c.end = name
        c.end_reason = ev.field("reason") or ev.field("what") or None


# -- summaries: what a connection negotiated and did (not needed for grouping) ----------------
def _h_from(c: Connection, f: dict, ev: Event) -> None:
    c.laddr, c.lport = f.get("laddr") or c.laddr, f.get("lport") or c.lport


def _h_remote_version(c: Connection, f: dict, ev: Event) -> None:
    c.client_version = f.get("software")


def _h_local_version(c: Connection, f: dict, ev: Event) -> None:
    c.server_version = f.get("version")


def _h_kex(c: Connection, f: dict, ev: Event) -> None:
    c.kex = f.get("kex")


def _h_hostkey(c: Connection, f: dict, ev: Event) -> None:
    c.host_key = f.get("hostkey")


def _h_cipher(c: Connection, f: dict, ev: Event) -> None:
    d = f.get("direction") or "?"
    c.cipher[d], c.mac[d], c.compression[d] = f.get("cipher"), f.get("mac"), f.get("compression")


def _h_strict(c: Connection, f: dict, ev: Event) -> None:
    c.strict_kex = True


def _h_ext_info(c: Connection, f: dict, ev: Event) -> None:
    c.ext_info = True


def _h_auth_request(c: Connection, f: dict, ev: Event) -> None:
    c.user = c.user or f.get("user")
    c.auth.append((f.get("method") or "?", "tried"))


def _attempt(c: Connection, f: dict, flags: int) -> None:
    """An authentication attempt's outcome (a line tagged auth-* that names its method)."""
    outcome = next(word for bit, word in tags.ATTEMPT_OUTCOMES if flags & bit)
    method = f.get("method") or "?"
    if f.get("submethod"):
        method += "/" + f["submethod"]
    c.user = f.get("user") or c.user
    # Replace the latest "tried" of this method: a request and its outcome are one attempt.
    for i in range(len(c.auth) - 1, -1, -1):
        if c.auth[i] == (f.get("method"), "tried"):
            c.auth[i] = (method, outcome)
            break
    else:
        c.auth.append((method, outcome))


def _h_user(c: Connection, f: dict, ev: Event) -> None:
    c.user = c.user or f.get("user")


def _h_channel_open(c: Connection, f: dict, ev: Event) -> None:
    c.channels.append(
        Channel(None, f.get("ctype") or "?", f.get("rchan"), f.get("window"), f.get("max_packet"))
    )


def _h_channel_new(c: Connection, f: dict, ev: Event) -> None:
    # The server-side number of the channel just opened ("server-session" and friends).
    for ch in reversed(c.channels):
        if ch.channel is None:
            ch.channel = f.get("channel")
            return


def _h_channel_request(c: Connection, f: dict, ev: Event) -> None:
    num = f.get("channel")
    for ch in reversed(c.channels):
        if ch.channel == num:
            ch.requests.append(f.get("request") or "?")
            return
    ch = Channel(num, "?")
    ch.requests.append(f.get("request") or "?")
    c.channels.append(ch)


def _h_session_start(c: Connection, f: dict, ev: Event) -> None:
    kind = f.get("kind") or "?"
    if f.get("tty"):
        kind += f" on {f['tty']}"
    c.sessions.append(kind)
    c.user = c.user or f.get("user")


def _h_dropped(c: Connection, f: dict, ev: Event) -> None:
    c.laddr, c.lport = f.get("laddr"), f.get("lport")


_SUMMARY: dict[str, Callable[[Connection, dict, Event], None]] = {
    "connection.from": _h_from,
    "connection.remote_version": _h_remote_version,
    "connection.local_version": _h_local_version,
    "kex.algorithm": _h_kex,
    "kex.host_key_algorithm": _h_hostkey,
    "kex.cipher": _h_cipher,
    "kex.strict_seqnr_reset": _h_strict,
    "kex.ext_info_sent": _h_ext_info,
    "auth.request": _h_auth_request,
    "auth.invalid_user": _h_user,
    "channel.open": _h_channel_open,
    "channel.new": _h_channel_new,
    "channel.request": _h_channel_request,
    "session.start": _h_session_start,
    "listener.drop_connection": _h_dropped,
}


def is_sshd_program(program: str | None) -> bool:
    """sshd and its helper programs (sshd-session, sshd-auth, sshd.exe, sftp-server)."""
    return program is not None and (
        program.startswith("sshd") or program in ("sftp-server", "internal-sftp")
    )


@dataclass(slots=True)
class _PidState:
    conn: Connection
    role: str
    last_line: int
    relayed: bool = False


class ConnectionTracker:
    """Streaming two-pass grouping: `feed` events in input order, get them back grouped.

    ``window`` is how many lines an event waits for the lines that explain its pid (None: until
    `flush`, i.e. exact two passes over everything). ``keep_events`` stores events on their
    Connection (batch use). Finished connections are handed to ``on_done`` (or kept in `done`).
    ``summaries=False`` folds into each Connection only what its lines' tags say (client
    endpoint, outcome, end, drop; see `fold_meaning`), its pids and line range: the rest of its
    summary stays empty, and the loop is faster. ``tally=False`` leaves a connection's per-line
    counters (events, last time stamp) behind as `run` passes lines of placed pids.
    Every ``sweep_every`` lines, pids of connections that ended ``end_grace_lines`` ago, or
    that have been silent for ``idle_lines``, are forgotten: that keeps memory flat on an endless
    log, at the price of splitting a connection silent for longer than ``idle_lines``.
    """

    def __init__(
        self,
        window: int | None = 1024,
        keep_events: bool = False,
        on_done: Callable[[Connection], None] | None = None,
        idle_lines: int = 500_000,
        end_grace_lines: int = 20_000,
        sweep_every: int = 65_536,
        summaries: bool = True,
        tally: bool = True,
    ) -> None:
        self.window = window
        self.keep_events = keep_events
        self.on_done = on_done
        self.done: list[Connection] = []
        self.idle_lines = idle_lines
        self.end_grace_lines = end_grace_lines
        # facts must outlive the window (see _sweep): sweep no more often than twice a window
        self.sweep_every = max(sweep_every, 2 * window) if window is not None else sweep_every
        # summaries=False: only what grouping needs is folded into each Connection (faster)
        self._summaries = summaries
        # events taken and not settled yet: self._buffer[self._head:], the first of them the
        # input's event number self._n_out (0-based); self._n_in events taken in all
        self._buffer: list[Event] = []
        self._head = 0
        self._n_in = 0
        self._n_out = 0
        # pass-1 facts not applied yet: (event number, event or None, tags); a fact is applied
        # just before the event `window` lines before it is settled, as if learnt on arrival
        self._facts: deque[tuple[int, Event | None, int]] = deque()
        self._new_programs_due = False  # an sshd-session / sshd-auth line is among the facts
        self._next_id = 1
        # pass-1 facts
        self._listeners: set[int] = set()
        # child pid -> listener pid, user child pid -> monitor pid; two generations, so that a
        # fact is kept for at least one sweep interval (far longer than the window) then dropped
        self._forked: dict[int, int] = {}
        self._user_child: dict[int, int] = {}
        self._forked_prev: dict[int, int] = {}
        self._user_child_prev: dict[int, int] = {}
        # pids that log a client endpoint of their own: monitors or user children, never PAM's
        # child; each with the endpoint its first `endpoint` line names, unless the pid starts
        # a connection (None)
        self._endpoint_pids: dict[int, tuple[Any, Any] | None] = {}
        self._endpoint_pids_prev: dict[int, tuple[Any, Any] | None] = {}
        # session child pid -> user child pid, from the user child's own lines naming it
        # ("session_by_pid: pid N", "session_exit_message: ... pid N"), which come later
        self._session_child: dict[int, int] = {}
        self._session_child_prev: dict[int, int] = {}
        # pass-2 state
        self._pids: dict[int, _PidState] = {}
        self._live: dict[int, Connection] = {}  # id -> connection not yet handed out
        self._listener_conn: dict[int, Connection] = {}
        self._last_reaped: dict[int, Connection] = {}  # listener pid -> its last `child` line's connection
        self._endpoints: dict[tuple[str, int], Connection] = {}
        self._user_children: list[tuple[int, Connection]] = []  # recent (pid, conn)
        self._monitors: deque[tuple[int, Connection]] = deque(maxlen=64)  # recent (pid, conn)
        self._seen_new_programs = False  # sshd-session seen: "sshd" is then the listener
        # lines with no pid (sshd -d): the line number of the last listener line before the
        # first `starts` line (pass 1), and whether that `starts` line was seen
        self._startup_until = -1
        self._pidless_started = False
        self._next_sweep = self.sweep_every - 1  # the event number settled after the next sweep
        # keep per-connection counters (events, last time) in `run`'s fast path; callers that
        # throw the connections away pass tally=False
        self._tally = tally

    # -- pass 1 ---------------------------------------------------------------------------
    def _learn(self, ev: Event | None, flags: int) -> None:
        """Pass 1: the lineage facts a line states (its tags)."""
        if ev is None:  # the first line of sshd-session or sshd-auth (OpenSSH 9.8 and later)
            self._seen_new_programs = True
            return
        pid = ev.source[3]
        if pid is None:
            # `sshd -d` output: the server's start-up lines, up to its last listener line
            # before the first connection, describe the server (see _assign_slow)
            if flags & tags.STARTS:
                self._pidless_started = True
            elif flags & tags.LISTENER_LINE and not self._pidless_started:
                self._startup_until = ev.line
            return
        if flags & tags.FORKS:
            self._listeners.add(pid)
            child = ev.field("pid")
            if isinstance(child, int):
                self._forked[child] = pid
        elif flags & tags.USER_CHILD:
            child = ev.field("pid")
            if isinstance(child, int):
                self._user_child[child] = pid
        elif flags & tags.OWN_PROCESS:
            known = self._endpoint_pids
            if flags & tags.STARTS:
                known[pid] = None
            elif pid not in known:
                known[pid] = (ev.field("addr"), ev.field("port")) if flags & tags.ENDPOINT else None
        elif flags & tags.SESSION_CHILD:
            child = ev.field("pid")
            if isinstance(child, int) and child != pid:
                self._session_child[child] = pid
        elif flags & tags.LISTENER_LINE:
            self._listeners.add(pid)

    # -- pass 2 ---------------------------------------------------------------------------
    def _new_conn(self, kind: str = "connection") -> Connection:
        conn = Connection(self._next_id, kind=kind)
        self._next_id += 1
        self._live[conn.id] = conn
        if self.keep_events:
            conn.events = []
        return conn

    def _conn_of(self, pid: int, line: int, role: str) -> Connection:
        state = self._pids.get(pid)
        if state is None:
            conn = self._monitor_conn(pid) if role == "monitor" else self._new_conn()
            self._pids[pid] = _PidState(conn, role, line)
            conn.add_pid(role, pid)
            return conn
        return state.conn

    def _bind(self, pid: int, conn: Connection, role: str, line: int) -> None:
        self._pids[pid] = _PidState(conn, role, line)
        conn.add_pid(role, pid)

    def _assign_slow(self, ev: Event) -> None:
        """Pass 2 for an event `_settle` does not take itself: a new pid, the listener, no pid."""
        # the event's parts from its two tuples (Event: source, meaning), once each
        program, pid = ev.source[2], ev.source[3]
        _, _, relay, spec, _, name = ev.meaning
        if spec is None and name != UNKNOWN:
            return  # another program's line, or an unparsed one
        flags = spec.flags if spec is not None else 0
        line = ev.line
        conn: Connection | None = None
        role = "monitor"
        is_listener = pid is not None and (
            pid in self._listeners or (self._seen_new_programs and program == "sshd"
                                       # a forked child's lines before it execs sshd-session
                                       # (9.8+: "rexec start ...") still say "sshd"
                                       and pid not in self._forked and pid not in self._forked_prev)
        )
        if is_listener and pid is not None:
            role = "listener"
            child = ev.field("pid") if flags & (tags.FORKS | tags.CHILD) else None
            if isinstance(child, int):
                state = self._pids.get(child)
                if flags & tags.FORKS and state is not None and state.conn.ended:
                    del self._pids[child]  # pid reused by a new connection
                    state = None
                conn = state.conn if state is not None else self._conn_of(child, line, "monitor")
                if flags & tags.CHILD:
                    self._last_reaped[pid] = conn
            elif flags & tags.DROPPED:
                conn = self._new_conn()
            elif flags & tags.REAPED and pid in self._last_reaped:
                # A penalty names the source, not the connection: it is about the child the
                # listener has just reaped (its `child` line, DEBUG1 and above, comes first).
                conn = self._last_reaped[pid]
            else:
                conn = self._listener_conn.get(pid)
                if conn is None:
                    conn = self._listener_conn[pid] = self._new_conn("listener")
            conn.add_pid("listener", pid)
        elif pid is None and (flags & tags.LISTENER_LINE or line <= self._startup_until):
            # sshd -d / -e output: the start-up lines (version, host keys, rexec_argv, Bind,
            # "Server listening", "Server will not fork": every line up to the last listener
            # line before the first connection) and any listener line describe the server.
            # The re-exec'd server's lines after them ("rexec start", its version again) are
            # the connection's.
            role = "listener"
            conn = self._listener_conn.get(-1)
            if conn is None:
                conn = self._listener_conn[-1] = self._new_conn("listener")
        elif pid is None:
            # sshd -d / -e output: one process's view, one connection at a time.
            conn = self._conn_of(-1, line, "monitor")
            if flags & tags.STARTS and conn.ended:
                del self._pids[-1]
                conn = self._conn_of(-1, line, "monitor")
            role = "preauth" if relay == "preauth" else "monitor"
        else:
            state = self._pids.get(pid)
            if state is not None and flags & tags.STARTS and state.conn.ended:
                del self._pids[pid]
                state = None
            if state is None:
                conn, role = self._place_new_pid(ev, pid)
                self._bind(pid, conn, role, line)
            else:
                conn, role = state.conn, state.role
                state.last_line = line
            if relay == "preauth":
                role = "preauth"
                conn.add_pid("preauth", pid)
            elif relay == "postauth":
                role = "user"
            elif program == "sshd-auth":
                role = "preauth"
        if program:
            conn.programs.add(program)
        ev.conn = conn.id
        ev.role = role
        self._fold(conn, ev)
        if conn.kind == "dropped":
            self._dropped_done(conn)

    def _dropped_done(self, conn: Connection) -> None:
        """A dropped connection has no other line: it is done at once."""
        if conn.id in self._live:
            del self._live[conn.id]
            self._emit_done(conn)

    def _place_new_pid(self, ev: Event, pid: int) -> tuple[Connection, str]:
        """Connection and role for a pid seen for the first time (pass-1 facts first)."""
        monitor = self._user_child.get(pid)
        if monitor is None:
            monitor = self._user_child_prev.get(pid)
        if monitor is not None:
            conn = self._conn_of(monitor, ev.line, "monitor")
            self._user_children.append((pid, conn))
            if len(self._user_children) > 64:
                del self._user_children[:32]
            return conn, "user"
        if pid in self._forked or pid in self._forked_prev:
            return self._monitor_conn(pid), "monitor"
        if ev.event.startswith("pam.") and pid not in self._endpoint_pids and pid not in self._endpoint_pids_prev:
            # A pid that never logs a client endpoint of its own (Failed/Accepted ... port N,
            # a disconnect) is PAM's conversation child; one that does is a new connection
            # whose first line happens to be PAM's (INFO logs of password logins).
            # PAM's conversation child (auth-pam.c forks one without pthreads): the nearest
            # monitor started just before it.
            lowest = pid - _SESSION_PID_SPAN
            best_pid, best_conn = 0, None
            for mpid, conn in self._monitors:
                if lowest <= mpid < pid and (best_conn is None or mpid > best_pid) and conn.end is None:
                    best_pid, best_conn = mpid, conn
            if best_conn is not None:
                return best_conn, "pam"
        parent = self._session_child.get(pid, self._session_child_prev.get(pid))
        if parent is not None and parent in self._pids:
            # The user child named this pid as its session child: that beats any guess.
            return self._conn_of(parent, ev.line, "user"), "session"
        flags = ev.spec.flags if ev.spec is not None else 0
        if flags & tags.SESSION:
            best: tuple[int, Connection] | None = None
            for upid, conn in self._user_children:
                if upid < pid <= upid + _SESSION_PID_SPAN and (best is None or upid > best[0]):
                    best = (upid, conn)
            if best is None:
                # No user child named (OpenSSH 5.x, or no privilege separation): the session
                # child of the nearest live, logged-in connection started below it.
                for mpid, conn in self._monitors:
                    if (mpid < pid <= mpid + _SESSION_PID_SPAN and conn.end is None
                            and conn.outcome == "accepted" and (best is None or mpid > best[0])):
                        best = (mpid, conn)
            if best is not None:
                return best[1], "session"
        if flags & tags.PREAUTH_CHILD:
            # Before 5.9 the pre-auth child logs under its own pid, with no " [preauth]" and no
            # line naming it. The monitor forks it first thing, so in practice (OpenSSH's fork
            # order, on a system handing out pids in sequence) its pid is the monitor's plus one.
            state = self._pids.get(pid - 1)
            if state is not None and state.role == "monitor" and state.conn.end is None:
                state.conn.add_pid("preauth", pid)
                return state.conn, "preauth"
        addr, port = ev.field("addr"), ev.field("port")
        if addr is not None and isinstance(port, int) and not flags & tags.STARTS:
            known = self._endpoints.get((addr, port))
            if known is not None:
                return known, ("user" if known.outcome == "accepted" else "monitor")
        elif not flags & tags.STARTS:
            # INFO: a user child whose first line names no client ("refused local port
            # forward ...") names it later ("Received disconnect from A port P"): pass 1 saw
            # that line, and the connection of that endpoint is its own.
            named = self._endpoint_pids.get(pid) or self._endpoint_pids_prev.get(pid)
            known = self._endpoints.get(named) if named is not None else None
            if known is not None:
                return known, ("user" if known.outcome == "accepted" else "monitor")
        return self._monitor_conn(pid), "monitor"

    def _monitor_conn(self, pid: int) -> Connection:
        conn = self._new_conn()
        self._monitors.append((pid, conn))
        return conn

    def _fold(self, conn: Connection, ev: Event) -> None:
        n = conn.n_events
        ts = ev.source[0]
        if n == 0:
            conn.first_line = ev.line
            conn.first_ts = ts
            conn._ts_format = ev.format
        conn.n_events = n + 1
        conn.last_line = ev.line
        if ts is not None:
            conn.last_ts = ts
        spec = ev.meaning[3]
        if spec is None:
            conn.unknown += 1
        else:
            flags = spec.flags
            if flags & _MEANING:
                fold_meaning(conn, flags, spec.name, ev)
            if conn.addr is None and not flags & tags.ENDPOINT and "addr" in spec.fields:
                # INFO logs: the first line naming the client names its endpoint
                _fill_endpoint(conn, ev)
            if not conn._indexed and conn.addr is not None and conn.port is not None:
                self._index_endpoint(conn)
            if self._summaries:
                handler = _SUMMARY.get(spec.name)
                if handler is not None:
                    handler(conn, ev.fields, ev)
                if flags & tags.AUTH_TAGS and "method" in spec.fields:
                    _attempt(conn, ev.fields, flags)
        if conn.events is not None:
            conn.events.append(ev)

    def _index_endpoint(self, conn: Connection) -> None:
        """File a connection under its client endpoint once both are known (INFO logs join a
        user child to its connection by it)."""
        if not conn._indexed and conn.port is not None and conn.addr is not None:
            conn._indexed = True
            if conn.kind == "connection":
                self._endpoints[(conn.addr, conn.port)] = conn

    # -- streaming ------------------------------------------------------------------------
    def take(self, events: list[Event]) -> list[Event]:
        """Take events in input order; return those whose grouping is now settled, in order."""
        base = self._n_in
        self._buffer.extend(events)
        self._n_in = base + len(events)
        # pass 1, for the few lines that state a lineage fact (their tags say so); a parser's
        # batch lists them itself (EventBatch), having looked at each line whose message it did
        # not know, and it knows whether any line so far was of sshd-session or sshd-auth
        learn = _LEARN
        found: list[tuple[int, Event | None, int]]
        if type(events) is EventBatch:
            found = [(base + k, ev, flags) for k, ev, flags in events.facts]
            new_programs = events.new_programs
        else:
            found = [(base + k, ev, s.flags) for k, ev in enumerate(events)
                     if (s := ev.meaning[3]) is not None and s.flags & learn]
            new_programs = True
        if new_programs and not self._seen_new_programs and not self._new_programs_due:
            # sshd-session / sshd-auth (9.8+): from its first line on, "sshd" is the listener.
            # Learnt from a line that states no other fact, as it always was.
            programs = {ev.source[2] for ev in events}
            if "sshd-session" in programs or "sshd-auth" in programs:
                for k, ev in enumerate(events):
                    if ev.program in NEW_PROGRAMS and not (ev.spec is not None and ev.spec.flags & learn):
                        found.append((base + k, None, 0))
                        found.sort(key=lambda f: f[0])
                        self._new_programs_due = True
                        break
        self._facts.extend(found)
        if self.window is None:
            return []
        return self._settle(self._n_in - self.window)

    def push(self, ev: Event) -> Event | None:
        """Take one event; return the one whose grouping is now settled (or None)."""
        out = self.take([ev])
        return out[0] if out else None

    def run(self, events: Iterable[Event]) -> Iterator[Event]:
        """Every event, grouped, in input order; then every connection is done (`flush`).

        Events come in batches: a parser's own (`EventStream.batches`), else taken 1,024 at a
        time; each batch is settled in one pass.
        """
        if isinstance(events, EventStream) and not events.started:
            batches: Iterable[list[Event]] = events.batches()
        else:
            it = iter(events)
            batches = iter(lambda: list(islice(it, 1024)), [])
        # settled lists handed out whole (a chain walks a list in C: no generator step per event)
        return chain.from_iterable(self._settled(batches))

    def _settled(self, batches: Iterable[list[Event]]) -> Iterator[list[Event]]:
        take = self.take
        for batch in batches:
            yield take(batch)
        yield self._settle_all()
        # once the consumer has taken the last event, as `flush` does
        self._finish_all()

    def feed(self, ev: Event) -> Iterator[Event]:
        """Take one event; yield the events whose grouping is now settled, in input order."""
        yield from self.take([ev])

    def flush(self) -> Iterator[Event]:
        """Settle and yield every event still waiting; then every connection is done."""
        yield from self._settle_all()
        self._finish_all()

    def _settle_all(self) -> list[Event]:
        """Settle every event still waiting (the end of the input)."""
        while self._facts:
            _, fact, flags = self._facts.popleft()
            self._learn(fact, flags)
        buf, head = self._buffer, self._head
        rest = buf[head:]
        self._buffer, self._head = [], 0
        self._n_out = self._n_in
        self._assign_run(rest)
        return rest

    def _settle(self, limit: int) -> list[Event]:
        """Settle the waiting events numbered below `limit` (see `_assign_run`)."""
        start = self._n_out
        if limit <= start:
            return []
        buf, head = self._buffer, self._head
        out = buf[head : head + limit - start]
        self._assign_run(out, start)
        self._n_out = limit
        head += limit - start
        if head >= 4096 and head * 2 >= len(buf):
            del buf[:head]
            head = 0
        self._head = head
        return out

    def _assign_run(self, events: list[Event], first: int | None = None) -> None:
        """Pass 2 for events in input order, the first numbered `first` (None: at the end of
        the input, every fact applied, no sweep). Before event i, each pass-1 fact of an event
        up to i + window is applied, as if learnt on its arrival, and every `sweep_every`
        events the tracker sweeps. The common case, a line of a pid already placed, is taken
        here; anything else by `_assign_slow`."""
        listeners = self._listeners
        # asked with a line's pid, None included (no such key: None)
        pids_get: Callable[[int | None], _PidState | None] = self._pids.get  # type: ignore[assignment]
        seen_new = self._seen_new_programs
        summary = _SUMMARY if self._summaries else {}
        # tags that make a line of a placed pid go through `_fold` (its meaning; with summaries,
        # an authentication attempt); lineage-only tags (forks, user child, ...) fold nothing
        fold_tags = _MEANING | tags.AUTH_TAGS if self._summaries else _MEANING
        tally = self._tally
        slow = self._assign_slow
        fold = self._fold
        starts = tags.STARTS
        facts = self._facts
        never = 1 << 62
        window = self.window or 0
        if first is None:
            i, next_fact, next_sweep = -1, never, never
        else:
            i = first - 1
            next_fact = facts[0][0] - window if facts else never
            next_sweep = self._next_sweep
        # the next event number at which a fact is due or the tracker sweeps
        next_stop = min(next_fact, next_sweep)
        # Most lines come from the process of the line before, within the same second: the same
        # `source` tuple (the parser shares one per prefix). Its pid's checks and state are
        # taken once for such a run; a due fact, a sweep or any line `slow` takes can change
        # them, so each of those ends the run.
        run_source: Any = None
        pid: Any = None
        st: Any = None
        conn: Any = None
        own_role: Any = None
        for ev in events:
            i += 1
            if i >= next_stop:
                while facts and facts[0][0] <= i + window:
                    _, fact, flags = facts.popleft()
                    self._learn(fact, flags)
                next_fact = facts[0][0] - window if facts else never
                if i == next_sweep:
                    next_sweep = self._next_sweep = next_sweep + self.sweep_every
                    self._sweep(ev.line)
                    pids_get = self._pids.get  # type: ignore[assignment]
                next_stop = min(next_fact, next_sweep)
                seen_new = self._seen_new_programs
                run_source = None
            # the event's parts read from its two tuples (Event: source, meaning), no properties
            source = ev.source
            meaning = ev.meaning
            spec = meaning[3]
            if spec is None:
                slow(ev)
                run_source = None
                continue
            if source is not run_source:
                pid = source[3]
                # (no pid: `pids_get` gives None, and None is in no set of pids)
                if pid in listeners or (seen_new and source[2] == "sshd"):
                    slow(ev)
                    run_source = None
                    continue
                st = pids_get(pid)
                if st is None:
                    slow(ev)
                    run_source = None
                    continue
                run_source = source
                conn = st.conn
                own_role = st.role if source[2] != "sshd-auth" else "preauth"
            flags = spec.flags
            if flags & starts and conn.end is not None:
                slow(ev)
                run_source = None
                continue
            line = ev.line
            st.last_line = line
            relay = meaning[2]
            if relay is None:
                ev.role = own_role
            elif relay == "preauth":
                ev.role = "preauth"
                if not st.relayed:
                    st.relayed = True
                    conn.add_pid("preauth", pid)
            else:
                ev.role = "user"
            ev.conn = conn.id
            if flags & fold_tags or (summary and spec.name in summary) or (
                    conn.addr is None and "addr" in spec.fields):
                fold(conn, ev)  # a tagged line, a summary handler, or the first line naming the client
            elif tally:
                conn.last_line = line
                conn.n_events += 1
                ts = source[0]
                if ts is not None:
                    conn.last_ts = ts
                if conn.events is not None:
                    conn.events.append(ev)
            else:
                conn.last_line = line

    def _sweep(self, now: int) -> None:
        """Forget pids of connections that ended long ago or went quiet (flat memory)."""
        ended_before = now - self.end_grace_lines  # ended and silent since before this line
        idle_before = now - self.idle_lines
        self._sweep_pids(ended_before, idle_before)
        # pass-1 facts: the previous generation is older than a sweep interval
        self._forked_prev, self._forked = self._forked, {}
        self._endpoint_pids_prev, self._endpoint_pids = self._endpoint_pids, {}
        self._user_child_prev, self._user_child = self._user_child, {}
        self._session_child_prev, self._session_child = self._session_child, {}

    def _sweep_pids(self, ended_before: int, idle_before: int) -> None:
        pids = self._pids
        gone = [pid for pid, st in pids.items()
                if st.last_line < idle_before or (st.conn.end is not None and st.conn.last_line < ended_before)]
        for pid in gone:
            del pids[pid]
        live = {st.conn.id for st in pids.values()}
        live.update(c.id for c in self._listener_conn.values())
        done = [c for cid, c in self._live.items() if c.last_line < ended_before and cid not in live]
        for conn in done:
            del self._live[conn.id]
        self._endpoints = {k: c for k, c in self._endpoints.items() if c.id in self._live}
        for conn in done:
            self._emit_done(conn)

    def _emit_done(self, conn: Connection) -> None:
        if self.on_done is not None:
            self.on_done(conn)
        else:
            self.done.append(conn)

    def _finish_all(self) -> None:
        for conn in sorted(self._live.values(), key=lambda c: c.id):
            self._emit_done(conn)
        self._live.clear()
        self._pids.clear()
        self._listener_conn.clear()
        self._endpoints.clear()


def group_events(
    events: Iterable[Event], window: int | None = 1024, summaries: bool = False
) -> Iterator[Event]:
    """Stream: the same events in input order, each with ``conn`` and ``role`` set."""
    # its connections are thrown away: their counters are never read
    tracker = ConnectionTracker(window=window, on_done=lambda c: None, summaries=summaries, tally=False)
    return tracker.run(events)


def group_connections(events: Iterable[Event]) -> list[Connection]:
    """Batch: set ``conn``/``role`` on every event; return the connections in id order.

    Exact two passes (no window); each Connection keeps its events.
    """
    tracker = ConnectionTracker(window=None, keep_events=True)
    for _ in tracker.run(events):
        pass
    return sorted(tracker.done, key=lambda c: c.id)
