"""Which of a scenario's expectations apply to the sshd it ran against (`requires:`).

Newer OpenSSH versions log what older ones cannot (PerSourcePenalties since 9.8) and move lines
between processes (the grace timeout to the listener in 9.8). A scenario states which versions
each expectation is for; here the ones the target's version does not meet are taken out and
reported as skipped, with the reason, so that a report tells "held", "failed" and "does not
apply to this version" apart. The version is the target's (`LocalSshd.version`, the Docker
target's), or what `sshsim verify` is told or reads in the log.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from simulator.scenario.model import Expectation, ExpectedEvent, Scenario
from simulator.yamlread import Position


@dataclass
class Skip:
    """An expectation (or the whole scenario: `connection` None) that does not apply, and why."""

    connection: str | None
    what: str
    reason: str
    position: Position | None = None

    def headline(self) -> str:
        where = f"{self.position[0]}:{self.position[1]}: " if self.position else ""
        who = f"connection {self.connection!r}: " if self.connection else ""
        return f"{where}{who}{self.what}: {self.reason}"


def scenario_skip(scenario: Scenario, version: str) -> Skip | None:
    """The skip of the whole scenario when the target's version does not meet its `requires:`."""
    if scenario.requires is None:
        return None
    why = scenario.requires.unmet(version)
    return None if why is None else Skip(None, "the scenario", why, _position_of(scenario))


def for_version(scenario: Scenario, version: str) -> tuple[Scenario, list[Skip]]:
    """`scenario` with only the expectations and expected events that apply to `version`, and a
    Skip for each one left out (in the file's order)."""
    skips: list[Skip] = []
    kept: dict[str, Expectation] = {}
    for conn_id, expectation in scenario.expectations.items():
        if expectation.requires is not None:
            why = expectation.requires.unmet(version)
            if why is not None:
                skips.append(Skip(conn_id, "its expectations", why, expectation.position))
                continue
        kept[conn_id] = dataclasses.replace(
            expectation,
            events=_applicable(conn_id, expectation.events, "expected", version, skips),
            absent=_applicable(conn_id, expectation.absent, "absent", version, skips),
        )
    if not skips:
        return scenario, []
    return dataclasses.replace(scenario, expectations=kept), skips


def _applicable(conn_id: str, events: list[ExpectedEvent], kind: str, version: str,
                skips: list[Skip]) -> list[ExpectedEvent]:
    out = []
    for expected in events:
        why = expected.requires.unmet(version) if expected.requires is not None else None
        if why is None:
            out.append(expected)
        else:
            skips.append(Skip(conn_id, f"{kind} {expected.event}", why, expected.position))
    return out


def _position_of(scenario: Scenario) -> Position | None:
    return scenario.requires_at or ((scenario.path, 1, 1) if scenario.path else None)


# sshd's own banner, which each connection logs at DEBUG1 (with a distribution's suffix:
# "Local version string SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10").
_VERSION_LINE = re.compile(r"Local version string SSH-2\.0-(OpenSSH_.*?)(?: \[preauth\])?$")


def version_in_log(lines: list[str]) -> str:
    """The sshd version a DEBUG1 log states (its banner, logged by every connection), or ""
    when it does not (INFO logs): then every `requires:` is unmet, and says so."""
    for line in lines:
        m = _VERSION_LINE.search(line)
        if m is not None:
            return m.group(1)
    return ""


def skip_dicts(skips: list[Skip]) -> list[dict[str, Any]]:
    """The skips as the JSON report writes them."""
    return [{"connection": s.connection, "what": s.what, "reason": s.reason,
             "position": list(s.position) if s.position else None} for s in skips]
