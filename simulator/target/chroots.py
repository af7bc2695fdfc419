"""Directories for ChrootDirectory scenarios, under the run's private /srv (both targets).

sshd demands that a chroot and every folder above it be root-owned and writable by no one else,
so the folders are made root-owned; an entry with an `owner` is a folder inside the chroot that
user may write to (an upload folder). An entry with `dev_log` gets a syslog socket inside it,
as rsyslog's extra listen sockets give a real server: without one, everything the chrooted
session logs (internal-sftp included) is lost, which is also faithful, and the default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import BadInputError


@dataclass(frozen=True)
class ChrootDir:
    path: str
    owner: str | None = None
    dev_log: bool = False


def as_chroot_dirs(entries: list[Any]) -> list[ChrootDir]:
    """Scenario entries (a path, or {path, owner, dev_log}) as ChrootDir."""
    out = []
    for entry in entries:
        if isinstance(entry, ChrootDir):
            out.append(entry)
        elif isinstance(entry, str):
            out.append(ChrootDir(entry))
        else:
            out.append(ChrootDir(entry["path"], entry.get("owner"), bool(entry.get("dev_log", False))))
    return out


def prepare_chroots(spec: Any, srv: Path) -> list[str]:
    """Make the folders under `srv` (the target's /srv); returns the /srv paths of log sockets."""
    sockets = []
    users = {u.name: u for u in spec.users}
    for entry in as_chroot_dirs(spec.chroot_dirs):
        relative = entry.path.strip("/")
        folder = srv / relative
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)
        if entry.owner:
            user = users.get(entry.owner)
            if user is None:
                raise BadInputError(f"chroot folder {entry.path!r}: owner {entry.owner!r} is not a server user")
            os.chown(folder, user.uid, user.group_id)
        if entry.dev_log:
            (folder / "dev").mkdir(exist_ok=True)
            sockets.append(f"/srv/{relative}/dev/log")
    return sockets
