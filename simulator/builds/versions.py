"""The OpenSSH releases sshsim knows how to fetch and check, read from
simulator/data/openssh/versions.yaml (schema-checked once per process).

A known version carries the sha256 of its release tarball, which every tarball source is checked
against; a version not listed can still be built from a tarball the user gives (`--tarball`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from simulator.yamlread import load_yaml_with_positions, schema_error

DATA = "openssh/versions.yaml"
# The form of an upstream portable release ("10.3p1"), checked before the name becomes a folder of
# the cache. The scenario and versions schemas state the same form for their data.
RELEASE = re.compile(r"[0-9]{1,2}\.[0-9]{1,2}p[0-9]{1,2}")


def is_release(text: str) -> bool:
    """Whether `text` is written as an upstream release (not whether it is known or built)."""
    return RELEASE.fullmatch(text) is not None


@dataclass(frozen=True)
class KnownVersion:
    """One upstream release: its tarball's identity and the Debian source package that carries it."""

    version: str
    debian_source: str    # e.g. "1:10.3p1-4": the source version known to carry the tarball
    debian_suite: str     # the suite whose source index listed that version
    orig_file: str        # Debian's name for the upstream tarball (openssh_10.3p1.orig.tar.gz)
    size: int
    sha256: str
    ci: bool              # built by `sshsim setup --tests`, tested in CI

    @property
    def compression(self) -> str:
        """"gz" or "xz": the release's own tarball is compressed the same way as Debian's copy."""
        return self.orig_file.rsplit(".", 1)[1]

    @property
    def upstream_file(self) -> str:
        """The release's file name on the upstream site (openssh-10.3p1.tar.gz)."""
        return f"openssh-{self.version}.tar.{self.compression}"


@cache
def _table() -> tuple[str, dict[str, KnownVersion]]:
    source = resources.files("simulator.data").joinpath(DATA)
    data, positions = load_yaml_with_positions(source.read_text(), DATA)
    schema = json.loads(resources.files("simulator.schema").joinpath("versions.schema.json").read_text())
    problem = schema_error(data, positions, DATA, schema)
    if problem is not None:
        raise RuntimeError(f"shipped version table is invalid: {problem}")  # a bug: exit 3
    known = {}
    for version, entry in data["versions"].items():
        if entry["orig"]["file"] != f"openssh_{version}.orig.{entry['orig']['file'].split('.orig.', 1)[1]}":
            raise RuntimeError(f"shipped version table: {version}: orig file names another version")
        known[version] = KnownVersion(
            version=version, debian_source=entry["debian"]["source"], debian_suite=entry["debian"]["suite"],
            orig_file=entry["orig"]["file"], size=entry["orig"]["size"], sha256=entry["orig"]["sha256"],
            ci=entry["ci"])
    return data["upstream"], known


def known_versions() -> dict[str, KnownVersion]:
    """Every known release by its version string, in the data file's order (oldest first)."""
    return _table()[1]


def ci_versions() -> list[str]:
    """The versions CI builds (and `sshsim setup --tests` builds before the tests run)."""
    return [v for v, known in known_versions().items() if known.ci]


def upstream_base() -> str:
    """The release site's folder URL: $SSHSIM_OPENSSH_MIRROR (a mirror of it) or the data file's."""
    base = os.environ.get("SSHSIM_OPENSSH_MIRROR") or _table()[0]
    return base if base.endswith("/") else base + "/"
