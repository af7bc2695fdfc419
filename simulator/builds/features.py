"""What an OpenSSH version does, read from simulator/data/openssh/features.yaml.

Versions are compared by their upstream number only ("9.2p1 Debian-2+deb12u3" is 9.2): features
arrive with upstream releases, and distributions' backports are not modelled.
"""

from __future__ import annotations

import json
import re
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
        out[name] = Feature(name, since, entry["description"])
    return out


def has_feature(version: str, name: str) -> bool:
    """Whether the OpenSSH of `version` (any form parse_version reads) has feature `name`.

    An unknown feature name is a bug (KeyError); an unreadable version has no feature."""
    try:
        feature = features()[name]
    except KeyError:
        raise KeyError(f"unknown OpenSSH feature {name!r}") from None
    parsed = parse_version(version)
    return parsed is not None and parsed >= feature.since
