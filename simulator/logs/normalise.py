"""Normalisation for comparing sshd logs from different hosts, runs and OpenSSH versions.

Two logs of the same client behaviour differ in pids, times, addresses, ports, fingerprints,
host names, the sshd version string, the privsep uid, and in wording that changed between
OpenSSH versions. The rules for all of that are one documented table,
``simulator/data/normalise.yaml``: wording rules first (on the text as sshd wrote it), then
token rules. This module only applies them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from simulator.logs.events import Event

TABLE = Path(__file__).resolve().parent.parent / "data" / "normalise.yaml"


@dataclass(frozen=True, slots=True)
class Rule:
    """One row of the table."""

    name: str
    kind: str  # wording | tokens
    regex: re.Pattern[str]
    replace: str
    description: str
    versions: str | None = None
    events: frozenset[str] | None = None
    relay: str | None = None

    def applies(self, event: str | None, relay: str | None) -> bool:
        if self.events is not None and event not in self.events:
            return False
        if self.relay is not None and relay != self.relay:
            return False
        return True


def load_rules(path: Path = TABLE) -> list[Rule]:
    """The table's rules, wording before tokens, in file order."""
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh) or {}
    rules: list[Rule] = []
    for kind in ("wording", "tokens"):
        for i, row in enumerate(data.get(kind) or []):
            try:
                regex = re.compile(row["regex"])
            except (KeyError, re.error) as exc:
                raise ValueError(f"{path.name}: {kind} rule {i + 1}: {exc}") from None
            events = row.get("events")
            rules.append(
                Rule(
                    name=str(row.get("name", f"{kind}-{i + 1}")),
                    kind=kind,
                    regex=regex,
                    replace=str(row.get("replace", "")),
                    description=str(row.get("description", "")),
                    versions=row.get("versions"),
                    events=frozenset(events) if events else None,
                    relay=row.get("relay"),
                )
            )
    return rules


_RULES: list[Rule] | None = None


def default_rules() -> list[Rule]:
    """The packaged table, loaded once."""
    global _RULES
    if _RULES is None:
        _RULES = load_rules()
    return _RULES


def normalise_message(
    message: str,
    *,
    event: str | None = None,
    relay: str | None = None,
    rules: list[Rule] | None = None,
    wording: bool = True,
) -> str:
    """A message (level prefix and relay suffix already removed) with the table applied.

    ``wording=False`` keeps each version's own wording and only replaces tokens.
    """
    for rule in rules if rules is not None else default_rules():
        if not wording and rule.kind == "wording":
            continue
        if rule.applies(event, relay):
            message = rule.regex.sub(rule.replace, message)
    return message


def normalise_program(program: str | None) -> str | None:
    """sshd-session (9.8+) and sshd-auth (10.0+) are still sshd for comparisons."""
    if program is not None and program.startswith("sshd"):
        return "sshd"
    return program


def normalise_event(ev: Event, *, wording: bool = True) -> str:
    """An event as a line that compares equal across hosts and runs:
    ``PROGRAM ROLE LEVEL: MESSAGE [relay]`` (no time, host or pid)."""
    msg = normalise_message(ev.message or ev.raw, event=ev.event, relay=ev.relay, wording=wording)
    relay = f" [{ev.relay}]" if ev.relay else ""
    return f"{normalise_program(ev.program) or '-'} {ev.role or '-'} {ev.level or '-'}: {msg}{relay}"
