"""Building upstream OpenSSH portable into the cache (simulator/builds/cache.py)."""

from __future__ import annotations

from pathlib import Path

from simulator.builds.cache import installed_sshd
from simulator.errors import EnvironmentProblem


def ensure_sshd(version: str, *, tarball: Path | None = None, force: bool = False) -> Path:
    """The sshd of `version`, built into the cache first when it is not there yet."""
    found = installed_sshd(version)
    if found is not None and not force:
        return found
    raise EnvironmentProblem(f"OpenSSH {version} is not built here: run `sshsim build-sshd {version}`")
