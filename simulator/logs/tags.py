"""What a catalogue entry's message means: the fixed vocabulary of ``tags:``, and the outcomes
derived from it.

The catalogue (simulator/data/events/, see its README) says beside each message form what the
message means for grouping lines into connections and for a connection's outcome. Grouping
(`connections.py`) and verification (`verify/verifier.py`) read these tags and nothing else, so
that a new OpenSSH message that starts or ends a connection, names a child pid or reports an
authentication result is taught by one YAML entry, with no code change.

Each tag is a bit: an entry's tags are one int (`EventSpec.flags`), tested once per line.
"""

from __future__ import annotations

from collections.abc import Iterable

# -- grouping ------------------------------------------------------------------------------
STARTS = 1 << 0  # starts a connection on the pid that writes it (a reused pid: a new one)
ENDPOINT = 1 << 1  # names the client endpoint (fields addr, port); written by the connection's own processes
LISTENER = 1 << 2  # only the listener writes it
FORKS = 1 << 3  # the listener forked a child for a new connection; field pid names it
CHILD = 1 << 4  # a listener line about one of its children; field pid names it
USER_CHILD = 1 << 5  # names the connection's user child; field pid
SESSION_CHILD = 1 << 6  # the user child names one of its session children; field pid
SESSION = 1 << 7  # only a session child writes it (tells a pid of its own by it)
ENDS = 1 << 8  # ends its connection (after it, the connection's pids may be reused)
DROPPED = 1 << 9  # the listener turned a connection away before forking (a connection of one line)
REAPED = 1 << 15  # a listener line about the child it has just reaped, naming no pid (a penalty)
PREAUTH_CHILD = 1 << 17  # only a pre-auth child writes it (before 5.9 under its own pid, not relayed)
# -- outcomes ------------------------------------------------------------------------------
AUTH_ACCEPTED = 1 << 10  # authentication succeeded
AUTH_FAILED = 1 << 11  # an authentication attempt (or the user) failed
AUTH_PARTIAL = 1 << 12  # a method succeeded, more are required
AUTH_POSTPONED = 1 << 13  # a method's answer is pending (keyboard-interactive, a key probe)
REFUSED = 1 << 14  # the server refused the connection before authentication
# -- the server's own running ----------------------------------------------------------------
RUN_MODE = 1 << 16  # about how sshd runs itself (its re-exec, its debug mode), never a connection

TAGS: dict[str, int] = {
    "starts": STARTS,
    "endpoint": ENDPOINT,
    "listener": LISTENER,
    "forks": FORKS,
    "child": CHILD,
    "user-child": USER_CHILD,
    "session-child": SESSION_CHILD,
    "session": SESSION,
    "ends": ENDS,
    "dropped": DROPPED,
    "reaped": REAPED,
    "preauth-child": PREAUTH_CHILD,
    "auth-accepted": AUTH_ACCEPTED,
    "auth-failed": AUTH_FAILED,
    "auth-partial": AUTH_PARTIAL,
    "auth-postponed": AUTH_POSTPONED,
    "refused": REFUSED,
    "run-mode": RUN_MODE,
}
# Tags whose line names a pid: the entry must have an integer field "pid".
NAMES_PID = FORKS | CHILD | USER_CHILD | SESSION_CHILD
# Tags about the client endpoint: the entry must have a field "addr".
NAMES_ADDR = ENDPOINT | DROPPED
# Lines only the listener writes (forks, child and dropped imply listener).
LISTENER_LINE = LISTENER | FORKS | CHILD | DROPPED | REAPED
# A pid that writes one of these is a connection's own process (monitor or user child), never
# PAM's conversation child.
OWN_PROCESS = STARTS | ENDPOINT | ENDS
# Lines that state a lineage fact grouping learns ahead of the line it places (pass 1).
LINEAGE = LISTENER_LINE | USER_CHILD | SESSION_CHILD | OWN_PROCESS
# The outcome of one authentication attempt, as the connection summary lists it.
ATTEMPT_OUTCOMES = (
    (AUTH_ACCEPTED, "accepted"),
    (AUTH_FAILED, "failed"),
    (AUTH_PARTIAL, "partial"),
    (AUTH_POSTPONED, "postponed"),
)
AUTH_TAGS = AUTH_ACCEPTED | AUTH_FAILED | AUTH_PARTIAL | AUTH_POSTPONED


def parse_tags(values: object) -> tuple[tuple[str, ...], int]:
    """(tag names, flags) of an entry's ``tags:`` list; ValueError names an unknown tag."""
    if values is None:
        return (), 0
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("tags: expected a list of tag names")
    flags = 0
    for value in values:
        bit = TAGS.get(value)
        if bit is None:
            raise ValueError(f"unknown tag {value!r} (known: {', '.join(TAGS)})")
        flags |= bit
    return tuple(values), flags


def _union(flags: Iterable[int]) -> int:
    seen = 0
    for f in flags:
        seen |= f
    return seen


def auth_outcome(flags: Iterable[int]) -> str:
    """"accepted", "failed" or "none": the authentication outcome of a connection's lines."""
    seen = _union(flags)
    if seen & AUTH_ACCEPTED:
        return "accepted"
    if seen & AUTH_FAILED:
        return "failed"
    return "none"


def connection_outcome(flags: Iterable[int]) -> str:
    """"established" (authenticated), "refused" (turned away before authentication) or
    "closed" (anything else: failed authentication, a client that gave up)."""
    seen = _union(flags)
    if seen & AUTH_ACCEPTED:
        return "established"
    if seen & REFUSED:
        return "refused"
    return "closed"
