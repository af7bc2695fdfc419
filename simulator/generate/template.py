"""Templates: one recorded connection with every run-specific value replaced by a named slot.

A real sshd run leaves values in its lines that belong to that run only: the loopback source
address and port, the listening address and port, pids, the key fingerprints of keys made for
the run, the stand-in user name and uid. They are replaced by slots (written ``\\x00name\\x00``
in the text), so that a template (a) can be replayed with a realistic box's values and (b) reads
the same whatever run recorded it, which is what makes the generator's output depend only on
the spec and the seed. Lines keep what sshd wrote otherwise, word for word.

Slots: ``addr``/``port`` (client), ``saddr``/``sport`` (server), ``user``, ``uid``, ``fpu`` (the
user's key), ``fps`` (the client's own key), ``fph<i>`` (host keys), ``fpo<i>`` (other keys),
``L`` (listener pid), ``pid<i>`` (the connection's pids, in the order they were allocated),
``vol<i>`` (numbers that differ between runs, simulator/data/generate/volatile.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from simulator.generate.spec import data

MARK = "\x00"
_FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
# "port 22", and the listener's "[addr]:port" (a connection it drops)
_PORT = re.compile(r"(?:(?<=port )|(?<=\]:))(\d{1,5})(?!\d)")


@dataclass(slots=True)
class TemplateLine:
    program: str
    pid: str | None  # slot name of the pid ("L", "pid0", ...), None when the line had no pid
    priority: int
    text: str  # the message, slots marked
    event: str
    gap: tuple[float, float]  # seconds after the previous line, drawn uniformly
    hold: bool = False  # the session's lifetime goes before this line


@dataclass
class Template:
    """One connection as sshd logged it, ready to be replayed any number of times."""

    key: str
    entry: str
    variant: str
    profile: str | None
    user_class: str
    user: str | None  # the user name as recorded when it is not a slot
    lines: list[TemplateLine]
    npids: int
    labels: dict[str, Any] = field(default_factory=dict)
    # vol<i> -> where its values lie: (low, high) whole numbers, or (low, high, decimals)
    ranges: dict[str, tuple] = field(default_factory=dict)
    # pid<i> is the connection's first pid plus pid_offsets[i]: processes keep the distances the
    # recording's kernel gave them (the privsep child right after the monitor, ...).
    pid_offsets: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "entry": self.entry, "variant": self.variant, "profile": self.profile,
            "user_class": self.user_class, "user": self.user, "npids": self.npids, "labels": self.labels,
            "ranges": {k: list(v) for k, v in self.ranges.items()}, "pid_offsets": self.pid_offsets,
            "lines": [[ln.program, ln.pid, ln.priority, ln.text, ln.event, list(ln.gap), ln.hold] for ln in self.lines],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Template:
        """The template `to_dict` wrote; ValueError when `d` is not one (a recordings folder is
        the user's, and a file in it may have been edited)."""
        try:
            lines = [TemplateLine(p, pid, pri, text, ev, (float(gap[0]), float(gap[1])), hold)
                     for p, pid, pri, text, ev, gap, hold in d["lines"]]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"not a template: {exc!r}") from None
        for ln in lines:
            if not (isinstance(ln.program, str) and isinstance(ln.text, str) and isinstance(ln.event, str)
                    and (ln.pid is None or isinstance(ln.pid, str)) and type(ln.priority) is int
                    and 0 <= ln.priority < 192 and isinstance(ln.hold, bool)):
                raise ValueError("not a template: a line's fields have the wrong types")
        try:
            tpl = cls(d["key"], d["entry"], d["variant"], d["profile"], d["user_class"], d["user"], lines,
                      d["npids"], d["labels"], {k: tuple(v) for k, v in d.get("ranges", {}).items()},
                      list(d.get("pid_offsets", range(d["npids"]))))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"not a template: {exc!r}") from None
        if not (isinstance(tpl.labels, dict) and type(tpl.npids) is int and tpl.npids >= 0
                and all(type(o) is int and o >= 0 for o in tpl.pid_offsets)
                and all(len(v) in (2, 3) and all(type(x) is int for x in v) for v in tpl.ranges.values())
                and all(type(i) is int for k in ("failure_index", "penalty_index") for i in tpl.labels.get(k, ()))):
            raise ValueError("not a template: its counts, pid offsets, ranges or labels have the wrong types")
        return tpl


@dataclass
class Tokens:
    """The run-specific values of one recorded connection, and what slot each becomes."""

    client_addr: str
    client_port: int | None
    server_addr: str
    server_port: int
    listener_pid: int | None
    pids: list[int]  # the connection's pids, ascending
    user_sentinel: str | None = None
    uid_sentinel: int | None = None
    user_keys: frozenset[str] = frozenset()  # fingerprints of the login user's key
    host_keys: tuple[str, ...] = ()


class Canonicaliser:
    """Replaces a run's values by slots in message text (one compiled regex per connection)."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens
        self.pid_slot = {pid: f"pid{i}" for i, pid in enumerate(tokens.pids)}
        if tokens.listener_pid is not None:
            self.pid_slot[tokens.listener_pid] = "L"
        literal: dict[str, str] = {}
        literal[tokens.client_addr] = "addr"
        literal.setdefault(tokens.server_addr, "saddr")
        # the stand-in user name: unusual enough to replace wherever it stands ("for zzsimuser:")
        self.user = tokens.user_sentinel
        numbers: dict[str, str] = {str(pid): slot for pid, slot in self.pid_slot.items()}
        # the stand-in uid (also the gid, "1000/1000"): unusual enough to replace wherever it stands
        self.uid = re.compile(rf"(?<!\d){tokens.uid_sentinel}(?!\d)") if tokens.uid_sentinel is not None else None
        self.ports = {str(tokens.server_port): "sport"}
        if tokens.client_port is not None:
            self.ports[str(tokens.client_port)] = "port"
        alternatives = [re.escape(k) for k in sorted(literal, key=len, reverse=True)]
        self.literal = literal
        self.numbers = numbers
        # Addresses: not inside a longer address or number. Numbers: whole numbers only (not part
        # of a version, an address or a longer number).
        self.words = re.compile(r"(?<![\w.])(" + "|".join(alternatives) + r")(?!\w|\.\d)")
        longest_first = "|".join(sorted(numbers, key=len, reverse=True))
        self.nums = re.compile(r"(?<![\w.:/-])(" + longest_first + r")(?![\w:]|\.\d)") if numbers else None
        self.fp_slots: dict[str, str] = {}
        self.ranges: dict[str, tuple] = {}
        self.volatile = [(re.compile(v["regex"]), [tuple(r) for r in v["ranges"]]) for v in data("volatile.yaml")]

    def _volatile(self, message: str) -> str | None:
        """The message with its run-dependent numbers as vol<i> slots (None: it has none)."""
        for regex, ranges in self.volatile:
            m = regex.match(message)
            if m is None:
                continue
            out, pos = [], 0
            for g, bounds in enumerate(ranges, 1):
                if m.group(g) is None:
                    continue
                slot = f"vol{len(self.ranges)}"
                self.ranges[slot] = tuple(bounds)
                out.append(message[pos:m.start(g)] + MARK + slot + MARK)
                pos = m.end(g)
            return "".join(out) + message[pos:]
        return None

    def fingerprint_slot(self, fp: str) -> str:
        """fpu: the login user's key; fph<i>: a host key; fps: the first other key, the client's
        own (a bot's key, the same from that address every time); fpo<i>: any further one."""
        t = self.tokens
        if fp in t.user_keys:
            return "fpu"
        if fp in t.host_keys:
            return f"fph{t.host_keys.index(fp)}"
        slot = self.fp_slots.get(fp)
        if slot is None:
            slot = self.fp_slots[fp] = f"fpo{len(self.fp_slots) - 1}" if self.fp_slots else "fps"
        return slot

    def text(self, message: str, pid_fields: bool) -> str:
        """The message with slots; pids in the text only for events that carry a pid field."""
        volatile = self._volatile(message)
        if volatile is not None:
            return volatile
        out = _FINGERPRINT.sub(lambda m: MARK + self.fingerprint_slot(m.group(0)) + MARK, message)
        out = self.words.sub(lambda m: MARK + self.literal[m.group(1)] + MARK, out)
        if self.user:
            out = out.replace(self.user, MARK + "user" + MARK)
        out = _PORT.sub(lambda m: MARK + self.ports[m.group(1)] + MARK if m.group(1) in self.ports else m.group(1), out)
        if self.nums is not None:
            if pid_fields:
                out = self.nums.sub(lambda m: MARK + self.numbers[m.group(1)] + MARK, out)
        if self.uid is not None:
            out = self.uid.sub(MARK + "uid" + MARK, out)
        return out


# -- timing and labels --------------------------------------------------------------------------
def _field_match(value: Any, want: Any) -> bool:
    if want == "*":
        return value is not None
    if isinstance(want, str) and want.startswith("!"):
        return value is None or str(value) != want[1:]
    if isinstance(want, str) and want.startswith("~"):
        return value is not None and re.search(want[1:], str(value)) is not None
    return value is not None and str(value) == str(want)


def rule_matches(rule: dict[str, Any], event: str, fields: dict[str, Any]) -> bool:
    """A data rule ({event, fields}) against one parsed line."""
    if rule["event"] != event:
        return False
    return all(_field_match(fields.get(k), v) for k, v in (rule.get("fields") or {}).items())


def gaps(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[tuple[float, float], bool]]:
    """(gap range, hold) for each line of a connection, from simulator/data/generate/timing.yaml."""
    timing = data("timing.yaml")
    default = tuple(timing["default"])
    hold_before = set(timing["hold"]["before"])
    hold_with = set(timing["hold"].get("with", []))
    out: list[tuple[tuple[float, float], bool]] = []
    for i, (event, fields) in enumerate(events):
        gap = default
        for rule in timing["rules"]:
            if rule_matches(rule, event, fields):
                gap = tuple(rule["gap"])
                break
        out.append(((0.0, 0.0) if i == 0 else (float(gap[0]), float(gap[1])), False))
    # The session's lifetime: before the first end-of-session line after the login, moved back
    # over the lines that come with it.
    names = [event for event, _ in events]
    if "auth.accepted" in names:
        login = names.index("auth.accepted")
        end = next((i for i in range(login + 1, len(names)) if names[i] in hold_before), None)
        if end is not None:
            while end - 1 > login and names[end - 1] in hold_with:
                end -= 1
            out[end] = (out[end][0], True)
    return out


# What sshd's listener logs when PerSourcePenalties (or MaxStartups) turns a source away.
PENALTY_EVENTS = frozenset(("listener.penalty_new", "listener.penalty_activated", "listener.drop_connection",
                            "listener.maxstartups_begin", "listener.maxstartups_ongoing", "listener.maxstartups_end"))


def connection_labels(events: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """What a rule author scores against: outcome, failed attempts, fail2ban's failure count, and
    which of the connection's lines (0-based, in its own order) a failure detector must match."""
    failures_rules = data("fail2ban.yaml")["failures"]
    outcome = None
    auth_failures = 0
    f2b = 0
    failure_index: list[int] = []
    penalty_index: list[int] = []  # the listener's PerSourcePenalties and drop lines
    names: list[str] = []
    invalid: bool | None = None  # None: sshd never named a user
    for i, (event, fields) in enumerate(events):
        names.append(event)
        if event == "auth.invalid_user" or (event.startswith("auth.") and fields.get("invalid")):
            invalid = True
        elif invalid is None and event.startswith(("auth.", "pam.session")) and fields.get("user"):
            invalid = False
        if event == "auth.accepted":
            outcome = "accepted"
        elif event == "auth.failed":
            auth_failures += 1
        if any(rule_matches(r, event, fields) for r in failures_rules):
            f2b += 1
            failure_index.append(i)
        if event in PENALTY_EVENTS:
            penalty_index.append(i)
    if outcome is None:
        if auth_failures or "auth.invalid_user" in names or "auth.max_attempts" in names:
            outcome = "failed"
        elif "kex.unable_to_negotiate" in names:
            outcome = "negotiation-failed"
        elif "listener.drop_connection" in names or "listener.penalty_activated" in names:
            outcome = "dropped"
        else:
            outcome = "closed-preauth"
    return {"outcome": outcome, "auth_failures": auth_failures, "fail2ban_failures": f2b, "invalid_user": invalid,
            "failure_index": failure_index, "penalty_index": penalty_index}
