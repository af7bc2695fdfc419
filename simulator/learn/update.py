"""`sshsim learn --update PROFILE.yaml`: a hand-written profile brought up to a recording.

A profile learned from scratch lacks what its sessions could not show (the X11 and agent order
of a client run without them, `kex_with_liboqs`, the comments that cite the client's source),
so a shipped profile is not replaced by one. This module edits the profile's text instead:

- every fact the recording shows and the profile states differently (`check.compare`, so a
  fact is judged as it applies to each recorded session, `when:` entries included) is rewritten
  in place with the recorded value; the old value's trailing comment goes with it (it explained
  the old value), the comments elsewhere stay;
- a fact that no key of its own holds (a session's window under a `when:`, teardown), or that
  recorded sessions disagree on (a conflict), is reported and left alone: never guessed;
- the `learned:` block (and `unobserved`) is written or replaced: each observed key's source is
  `learned DATE from BANNER`; a key not in `learned.facts` keeps the hand-written `sources:`.

Line-based on purpose: PyYAML drops comments and no round-trip YAML library is a dependency;
the profile files are plain block YAML (two-space indent, one key per line), which is what the
edits below assume. The result is parsed, checked by the schema and loaded before it is returned.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from simulator.learn.check import Difference, compare
from simulator.learn.merge import Learned
from simulator.learn.output import validate
from simulator.learn.record import ConnectionFacts
from simulator.profiles import ClientProfile

# Facts whose profile key is the fact's own name (a top-level key or section.key).
_DIRECT = ("banner", "ignore_every_packet", "kex", "host_key", "encryption", "mac", "compression", "channel.first_id",
           "session.global_requests", "session.eof", "session.eof_on_server_eof", "session.pipelined")
# Keys written when the recording shows them and the file does not say them, though the profile's
# default (or the driver's fallback) already agrees: the fact stated, with its source.
_STATED = (("ignore_every_packet",), ("auth", "ignore_before_password"), ("auth", "ignore_before_kbdint_response"),
           ("auth", "service_request_per_attempt"), ("session", "eof"), ("session", "eof_on_server_eof"),
           ("sftp", "requests"), ("sftp", "want_reply"))
_MARK = ["# Written by `sshsim learn --update`: where each learned key comes from; keys not in",
         "# learned.facts keep the hand-written sources above."]


@dataclass
class Update:
    """The edited text and what was done: applied edits, what was left for a person."""

    text: str
    applied: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    agreed: int = 0


def update_profile(text: str, where: str, profile: ClientProfile, conns: Sequence[ConnectionFacts],
                   learned: Learned) -> Update:
    """`text` (the file of `profile`) with the recording's facts written in (see the module doc)."""
    same, diffs = compare(profile, conns, learned)
    out = Update(text, agreed=len(same))
    conflicted = {c.split(" differs", 1)[0] for c in learned.conflicts}
    for conflict in learned.conflicts:
        out.left.append(f"conflict between recorded sessions, not applied: {conflict}")
    edits: dict[tuple[str, ...], Any] = {}
    for diff in diffs:
        target = _target(diff, learned, profile)
        key = ".".join(target[0]) if target else ""
        if target is None or key in conflicted or key.split(".")[0] in conflicted:
            out.left.append(f"not applied (no single key holds it, or sessions disagree): {diff}")
            continue
        path, value = target
        edits[path] = value
    for path in _STATED:
        value = _get(learned.data, path, None)
        key = ".".join(path)
        if (value is not None and path not in edits and key not in learned.data.get("unobserved", ())
                and _get(profile.data, path, None) is None and key not in conflicted):
            edits[path] = value
    lines = text.splitlines()
    for path, value in edits.items():
        try:
            lines = _set(lines, path, value)
        except _NotBlock as exc:
            out.left.append(f"not applied ({exc} is written inline: edit it by hand): {'.'.join(path)}: {_flow(value)}")
            continue
        out.applied.append(f"{'.'.join(path)}: {_flow(value)}")
    if edits.get(("auth", "signed_method")) == "publickey":
        lines = _drop(lines, ("auth", "signed_method"))
    verified = _verified(learned, same, diffs, {".".join(p) for p in edits})
    lines = _replace_block(lines, "learned", {"learned": _learned_block(learned, verified)})
    out.text = "\n".join(lines) + "\n"
    validate(out.text, where)
    return out


def _target(diff: Difference, learned: Learned, profile: ClientProfile) -> tuple[tuple[str, ...], Any] | None:
    """(profile key path, value to write) for a difference, or None when no one key holds it."""
    data = learned.data
    fact = diff.fact
    if fact in _DIRECT:
        path = tuple(fact.split("."))
        return path, _get(data, path, diff.recorded)
    if fact.startswith("auth."):
        return ("auth", fact[5:]), diff.recorded
    if fact.endswith(": requests") and " subsystem" in fact and "sftp" in data:
        if profile.data.get("when"):
            return None
        return ("sftp", "requests"), list(data["sftp"].get("requests") or diff.recorded)
    match = re.fullmatch(r"connection \d+ .*: (\S+) want_reply", fact)
    if match and not profile.data.get("when"):
        name = match.group(1)
        section = "sftp" if " subsystem" in fact and name != "subsystem" and "sftp" in profile.data else "session"
        return (section, "want_reply", name), diff.recorded
    return None


def _get(data: dict[str, Any], path: tuple[str, ...], default: Any) -> Any:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


# A learned key and the compared facts that stand for it (check.compare's names; a name ending
# in ":" stands for that fact of every recorded session or connection).
_STANDS_FOR = {
    "hassh": ("hassh",), "first_kex_follows": ("hassh",), "ignore": ("ignore elsewhere",),
    "channel.window": (": window",), "channel.max_packet": (": max_packet",),
    "channel.no_pty_window": (": window",), "channel.no_pty_max_packet": (": max_packet",),
    "sftp.window": (": window",), "sftp.max_packet": (": max_packet",),
    "session.request_order": (": requests",), "session.requests": (": requests",),
    "sftp.requests": (": requests",), "session.want_reply": (" want_reply",),
    "close": (": close",), "channel_close": (": close",), "disconnect": (": close",),
}


def _verified(learned: Learned, same: list[str], diffs: list[Difference], written: set[str]) -> set[str]:
    """The learned keys the profile now holds as recorded: compared and equal, or rewritten.
    A key the comparison does not look at (auth.methods: what the flows chose, not the client's
    default) keeps its hand-written source."""
    differing = {d.fact for d in diffs}
    keys = set(written)
    for key in learned.data["learned"].get("facts") or {}:
        facts = _STANDS_FOR.get(key, (key,))
        agreeing = [f for f in same if f in facts or f.endswith(facts)]
        if agreeing and not any(f in facts or f.endswith(facts) for f in differing):
            keys.add(key)
    return keys


def _learned_block(learned: Learned, verified: set[str]) -> dict[str, Any]:
    """The learned profile's `learned:` block, its facts cut to the keys the recording verified,
    its `unobserved` keys inside it (at the top level `unobserved` would say the values are
    defaults; here they are the hand-written ones)."""
    block = dict(learned.data["learned"])
    facts = block.get("facts") or {}
    block["facts"] = {k: facts.get(k, block["source"]) for k in sorted(verified)}
    connections = block.pop("connections", None)
    block["unobserved"] = sorted(learned.data.get("unobserved", ()))
    if connections is not None:
        block["connections"] = connections
    return block


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=100000, allow_unicode=True).strip()
    return text[:-4].strip() if text.endswith("\n...") else text


def _section(lines: list[str], path: tuple[str, ...]) -> tuple[int, int, int] | None:
    """(first line, end line, indent) of the mapping at `path` (the top-level key first), or None."""
    start, end, indent = 0, len(lines), -2
    for part in path:
        child = indent + 2
        pattern = re.compile(rf"^{' ' * child}{re.escape(part)}:(\s|$)")
        found = next((i for i in range(start, end) if pattern.match(lines[i])), None)
        if found is None:
            return None
        stop = found + 1
        while stop < end and (not lines[stop].strip() or lines[stop].lstrip().startswith("#")
                              or _indent(lines[stop]) > child
                              or (lines[stop].lstrip().startswith("- ") and _indent(lines[stop]) == child)):
            stop += 1
        # Comments and blank lines after the block belong to what follows.
        while stop > found + 1 and (not lines[stop - 1].strip() or lines[stop - 1].lstrip().startswith("#")):
            stop -= 1
        start, end, indent = found, stop, child
    return start, end, indent


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _set(lines: list[str], path: tuple[str, ...], value: Any) -> list[str]:
    """`path` set to `value` (one line, flow style); inserted at the end of its section if absent."""
    found = _section(lines, path)
    if found is not None:
        start, end, indent = found
        return lines[:start] + [f"{' ' * indent}{path[-1]}: {_flow(value)}"] + lines[end:]
    parent = _section(lines, path[:-1]) if len(path) > 1 else None
    if parent is None and len(path) > 1:
        lines = _set(lines, path[:-1], {})
        parent = _section(lines, path[:-1])
    if parent is None:
        return _before_tail(lines, [f"{path[0]}: {_flow(value)}"])
    start, end, indent = parent
    inline = lines[start].split("#", 1)[0].split(":", 1)[1].strip()
    if inline not in ("", "{}"):
        raise _NotBlock(".".join(path[:-1]))
    if lines[start].rstrip().endswith("{}"):
        lines = lines[:start] + [lines[start].rstrip()[:-2].rstrip()] + lines[start + 1:]
    return lines[:end] + [f"{' ' * (indent + 2)}{path[-1]}: {_flow(value)}"] + lines[end:]


class _NotBlock(Exception):
    """The mapping a key goes into is a one-line flow mapping: no line of its own to edit."""


def _drop(lines: list[str], path: tuple[str, ...]) -> list[str]:
    found = _section(lines, path)
    return lines if found is None else lines[:found[0]] + lines[found[1]:]


def _before_tail(lines: list[str], new: list[str]) -> list[str]:
    """New top-level lines before `when:` and `learned:` (kept last), else at the end."""
    at = next((i for i, line in enumerate(lines) if line.startswith(("when:", "learned:"))), len(lines))
    while at > 0 and lines[at - 1].startswith("#"):
        at -= 1
    return lines[:at] + new + lines[at:]


def _replace_block(lines: list[str], key: str, blocks: dict[str, Any] | None) -> list[str]:
    """Top-level `key` removed (with its block); `blocks` dumped in block style at the end."""
    found = _section(lines, (key,))
    if found is not None:
        start = found[0]
        if lines[max(start - 2, 0):start] == _MARK:
            start -= 2
        lines = lines[:start] + lines[found[1]:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if blocks:
        lines = lines + _MARK
        lines += yaml.safe_dump(blocks, sort_keys=False, width=110, allow_unicode=True,
                                default_flow_style=False).rstrip("\n").split("\n")
    return lines
