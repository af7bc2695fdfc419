"""What an OpenSSH version does, read from simulator/data/openssh/features.yaml.

Versions are compared by their upstream number only ("9.2p1 Debian-2+deb12u3" is 9.2): features
arrive with upstream releases, and distributions' backports are not modelled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from simulator.yamlread import load_yaml_with_positions, schema_error

_VERSION = re.compile(r"(?:OpenSSH_|^)(\d+)\.(\d+)")


@dataclass(frozen=True)
class Feature:
    name: str
    since: tuple[int, int]
    description: str
    until: tuple[int, int] | None = None  # the first release without it (None: still there)
    # (compiled regex on the version text, why): builds that lack it although their number has it
    unless: tuple[tuple[re.Pattern[str], str], ...] = ()
    # compiled regexes on the version text: builds that have it before `since` (a distribution's backport)
    also: tuple[re.Pattern[str], ...] = ()

    def span(self) -> str:
        """"OpenSSH >= 9.8" or "OpenSSH 7.0 to 9.7": the releases that have it, for messages."""
        since = ".".join(map(str, self.since))
        if self.until is None:
            return f"OpenSSH >= {since}"
        return f"OpenSSH >= {since} and < {'.'.join(map(str, self.until))}"


def parse_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of "OpenSSH_10.3p1, OpenSSL ...", "10.3p1" or "9.2"; None when none is named."""
    m = _VERSION.search(text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


@cache
def features() -> dict[str, Feature]:
    """The table, checked against its schema once per process."""
    source = resources.files("simulator.data").joinpath("openssh/features.yaml")
    data, positions = load_yaml_with_positions(source.read_text(), "openssh/features.yaml")
    schema = json.loads(resources.files("simulator.schema").joinpath("features.schema.json").read_text())
    problem = schema_error(data, positions, "openssh/features.yaml", schema)
    if problem is not None:
        raise RuntimeError(f"shipped feature table is invalid: {problem}")  # a bug: exit 3
    out = {}
    for name, entry in data["features"].items():
        since = parse_version(entry["since"])
        assert since is not None  # the schema's pattern
        until = parse_version(entry["until"]) if "until" in entry else None
        unless = tuple((re.compile(u["pattern"]), u["reason"]) for u in entry.get("unless", []))
        also = tuple(re.compile(a["pattern"]) for a in entry.get("also", []))
        out[name] = Feature(name, since, " ".join(entry["description"].split()), until, unless, also)
    return out


def has_feature(version: str, name: str) -> bool:
    """Whether the OpenSSH of `version` (any form parse_version reads) has feature `name`.

    An unknown feature name is a bug (KeyError); an unreadable version has no feature."""
    return missing_because(version, name) is None


def feature(name: str) -> Feature:
    """The table's entry `name`; an unknown name is a bug of the caller (KeyError naming it)."""
    try:
        return features()[name]
    except KeyError:
        raise KeyError(f"unknown OpenSSH feature {name!r}") from None


def missing_because(version: str, name: str) -> str | None:
    """None when the OpenSSH of `version` has feature `name`, else why not, in words a skip
    report can print ("OpenSSH_9.2p1 Debian-2+deb12u10 predates it: needs OpenSSH >= 9.8")."""
    entry = feature(name)
    parsed = parse_version(version)
    shown = version or "an unknown version"
    if parsed is None:
        said = f" ({version})" if version else ""
        return f"the sshd version{said} is not known: {name} needs {entry.span()}"
    if parsed < entry.since and not any(p.search(version) for p in entry.also):
        return f"{shown} predates it: {name} needs {entry.span()}"
    if entry.until is not None and parsed >= entry.until:
        return f"{shown} no longer does it: {name} is {entry.span()}"
    for pattern, reason in entry.unless:
        if pattern.search(version):
            return f"{shown}: {reason}"
    return None


@dataclass(frozen=True)
class Requirement:
    """`requires:` in a scenario: the OpenSSH versions a scenario, an expectation, an expected
    event or an sshd_config line applies to: those with `feature` (`present`), or those without
    it (`requires: {without: NAME}`, for what older versions do instead). `reason` is the
    author's words for why, printed with the skip."""

    feature: str
    present: bool = True
    reason: str = ""

    def unmet(self, version: str) -> str | None:
        """None when `version` meets it, else the skip's reason (the author's, then the table's)."""
        if self.present:
            why = missing_because(version, self.feature)
        elif missing_because(version, self.feature) is None:
            why = f"{version} has {self.feature} ({feature(self.feature).span()})"
        else:
            why = None
        if why is None:
            return None
        return f"{self.reason} ({why})" if self.reason else why


def first_unmet(requirements: Iterable[Requirement], version: str) -> str | None:
    """The first requirement `version` does not meet, as a reason; None when all are met."""
    for requirement in requirements:
        why = requirement.unmet(version)
        if why is not None:
            return why
    return None


def requirement_from(data: dict[str, str]) -> Requirement:
    """A schema-checked `requires:` mapping ({feature: X} or {without: X}, optional reason)."""
    if "without" in data:
        return Requirement(data["without"], present=False, reason=data.get("reason", ""))
    return Requirement(data["feature"], reason=data.get("reason", ""))
