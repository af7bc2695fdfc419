"""Where built sshd versions live, and how to tell a finished build from a broken one.

A build's paths are compiled into its binaries (sshd execs `<prefix>/libexec/sshd-session`, its
privsep chroot is `<prefix>/empty`), so a build belongs to the folder it was configured for: it
is found only at that folder, and moving the cache means building again. A build counts as done
only when its manifest, written last, names the same prefix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST = "build.json"


def cache_root() -> Path:
    """`$SSHSIM_CACHE`, else `~/.cache/sshsim` (XDG_CACHE_HOME honoured)."""
    explicit = os.environ.get("SSHSIM_CACHE")
    if explicit:
        return Path(explicit).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "sshsim"


def install_dir(version: str) -> Path:
    """The prefix one version is configured and installed into."""
    return cache_root() / "openssh" / version


def installed_sshd(version: str) -> Path | None:
    """The built sshd of `version`, or None when it is not (completely) built here."""
    prefix = install_dir(version)
    try:
        manifest = json.loads((prefix / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    sshd = prefix / "sbin" / "sshd"
    if not isinstance(manifest, dict) or manifest.get("prefix") != str(prefix) or not os.access(sshd, os.X_OK):
        return None
    return sshd
