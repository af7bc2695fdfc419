"""The OpenSSH feature table (simulator/data/openssh/features.yaml) read against real version strings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from simulator.builds.features import Requirement, features, has_feature, missing_because, parse_version
from simulator.errors import BadInputError
from simulator.scenario import load_scenario
from simulator.target.base import ServerSpec
from simulator.target.config import for_version
from simulator.target.local import find_sshd


@pytest.mark.parametrize("text,expected", [
    ("OpenSSH_9.2p1 Debian-2+deb12u7, OpenSSL 3.0.17 1 Jul 2025", (9, 2)),   # Debian 12's sshd -V
    ("OpenSSH_10.3p1, OpenSSL 3.0.19 27 Jan 2026", (10, 3)),                # an upstream build's
    ("SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3", (8, 4)),                     # a banner
    ("10.0p1", (10, 0)),
    ("dropbear_2022.83", None),
])
def test_parse_version(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_version(text) == expected


def test_features_by_version() -> None:
    assert not has_feature("OpenSSH_9.7p1", "per_source_penalties")
    assert has_feature("OpenSSH_9.8p1", "per_source_penalties")
    assert has_feature("OpenSSH_10.0p1", "sshd_auth") and not has_feature("OpenSSH_9.9p2", "sshd_auth")
    assert not has_feature("unknown", "sshd_session")
    with pytest.raises(KeyError):
        has_feature("OpenSSH_10.0p1", "no_such_feature")


def test_system_sshd_version_is_read() -> None:
    out = subprocess.run([find_sshd(), "-V"], capture_output=True, text=True)
    version = parse_version(out.stderr or out.stdout)
    assert version is not None and version >= (8, 0)
    assert {f.name for f in features().values()} == set(features())


@pytest.mark.parametrize("version, child, listener", [
    ("OpenSSH_8.4p1", False, False),                        # sigdie silent on Linux before 8.5
    ("OpenSSH_9.2", True, False),                           # an upstream 9.2p1 build's sshd -V
    ("OpenSSH_9.2p1 Debian-2+deb12u10", False, False),      # Debian 12's CVE-2024-6387 fix
    ("OpenSSH_9.2p1 Debian-2+deb12u2", True, False),        # before that fix
    ("OpenSSH_10.0p2", False, True),
    ("OpenSSH_10.3p1", False, True),
])
def test_grace_timeout_features(version: str, child: bool, listener: bool) -> None:
    assert has_feature(version, "grace_timeout_by_child") is child
    assert has_feature(version, "grace_timeout_by_listener") is listener


def test_missing_because_says_why() -> None:
    assert missing_because("OpenSSH_10.3p1", "per_source_penalties") is None
    assert missing_because("OpenSSH_9.2p1 Debian-2+deb12u10", "per_source_penalties") == (
        "OpenSSH_9.2p1 Debian-2+deb12u10 predates it: per_source_penalties needs OpenSSH >= 9.8")
    assert "no longer does it" in missing_because("OpenSSH_10.3p1", "grace_timeout_by_child")
    assert "CVE-2024-6387" in missing_because("OpenSSH_9.2p1 Debian-2+deb12u10", "grace_timeout_by_child")
    assert missing_because("", "sshd_session") == "the sshd version is not known: sshd_session needs OpenSSH >= 9.8"


def test_requirement_with_and_without() -> None:
    having = Requirement("per_source_penalties", reason="arrived in 9.8")
    lacking = Requirement("per_source_penalties", present=False)
    assert having.unmet("OpenSSH_10.0p2") is None
    assert having.unmet("OpenSSH_9.7p1") == ("arrived in 9.8 (OpenSSH_9.7p1 predates it: "
                                             "per_source_penalties needs OpenSSH >= 9.8)")
    assert lacking.unmet("OpenSSH_9.7p1") is None
    assert lacking.unmet("OpenSSH_9.8p1") == "OpenSSH_9.8p1 has per_source_penalties (OpenSSH >= 9.8)"


def test_a_scenario_naming_an_unknown_feature_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("connections:\n  - id: a\n    raw: {hold: 0}\n"
                    "expect:\n  a:\n    requires: {feature: per_source_penalty}\n    events: [connection.from]\n")
    with pytest.raises(BadInputError) as caught:
        load_scenario(str(path))
    assert caught.value.line == 6
    assert "unknown OpenSSH feature 'per_source_penalty' (did you mean 'per_source_penalties'?)" in str(caught.value)


def test_a_raw_connection_does_no_ssh(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("connections:\n  - id: a\n    raw: {hold: 1}\n    auth: [publickey]\n")
    with pytest.raises(BadInputError) as caught:
        load_scenario(str(path))
    assert caught.value.line == 4 and "a raw connection does no SSH: auth cannot apply" in str(caught.value)


def test_sshd_config_lines_for_other_versions_are_left_out() -> None:
    spec = ServerSpec(overrides=["LoginGraceTime 2", "PerSourcePenalties authfail:30"],
                      override_requires=[None, Requirement("per_source_penalties")])
    assert for_version(spec, "OpenSSH_9.2p1 Debian-2+deb12u10").overrides == ["LoginGraceTime 2"]
    assert for_version(spec, "OpenSSH_10.3p1").overrides == spec.overrides


def test_backports_count_as_the_feature() -> None:
    """`also`: distribution builds that have a feature before its upstream release (Terrapin's
    strict key exchange, backported by Debian 11/12 and Ubuntu 22.04), by their real version strings."""
    assert has_feature("OpenSSH_9.2p1 Debian-2+deb12u10", "strict_kex")
    assert has_feature("OpenSSH_8.4p1 Debian-5+deb11u7", "strict_kex")
    assert has_feature("OpenSSH_8.9p1 Ubuntu-3ubuntu0.6", "strict_kex")  # the reference log's server
    assert not has_feature("OpenSSH_8.9p1 Ubuntu-3ubuntu0.5", "strict_kex")
    assert not has_feature("OpenSSH_9.2", "strict_kex")  # upstream 9.2p1's own -V
    assert has_feature("OpenSSH_9.6p1", "strict_kex")
