"""The OpenSSH feature table (simulator/data/openssh/features.yaml) read against real version strings."""

from __future__ import annotations

import subprocess

import pytest

from simulator.builds.features import features, has_feature, parse_version
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
