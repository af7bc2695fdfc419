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


def chroot_parts(path: str) -> list[str]:
    """The folder names of a chroot path under /srv; `..`, `.` and NUL refused (one-line error)."""
    parts = [p for p in path.split("/") if p]
    if not parts or any(p in (".", "..") or "\0" in p for p in parts):
        raise BadInputError(f"chroot folder {path!r} must name a folder under /srv without '.' or '..'",
                            key="server.chroot_dirs")
    return parts


def _open_folder(name: str, parent_fd: int, what: str) -> int:
    """Open (making it if missing) the folder `name` of `parent_fd`, never through a link."""
    created = True
    try:
        os.mkdir(name, 0o755, dir_fd=parent_fd)
    except FileExistsError:
        created = False
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError as exc:
        raise BadInputError(f"chroot folder {what!r}: {name!r} is not a folder sshsim made "
                            f"({exc.strerror})", key="server.chroot_dirs") from None
    if created:
        os.fchmod(fd, 0o755)  # whatever the umask: sshd wants every folder above a chroot 0755
    return fd


def prepare_chroots(spec: Any, srv: Path) -> list[str]:
    """Make the folders under `srv` (the target's /srv); returns the /srv paths of log sockets.

    Defence in depth (the scenario loader refuses such paths already, with their file:line):
    sshsim runs as root and chmods and chowns what it makes, so every step is taken from the
    folder above by descriptor, never following a link, and `..` is refused, so nothing outside
    the run's own /srv can be reached, whatever the path or the files already there."""
    sockets = []
    users = {u.name: u for u in spec.users}
    srv.mkdir(mode=0o755, exist_ok=True)
    root_fd = os.open(srv, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for entry in as_chroot_dirs(spec.chroot_dirs):
            parts = chroot_parts(entry.path)
            user = users.get(entry.owner) if entry.owner else None
            if entry.owner and user is None:
                raise BadInputError(f"chroot folder {entry.path!r}: owner {entry.owner!r} is not a server user",
                                    key="server.chroot_dirs")
            fd = os.dup(root_fd)
            try:
                for name in parts:
                    child = _open_folder(name, fd, entry.path)
                    os.close(fd)
                    fd = child
                os.fchmod(fd, 0o755)
                if user is not None:
                    os.fchown(fd, user.uid, user.group_id)
                if entry.dev_log:
                    os.close(_open_folder("dev", fd, entry.path))
                    sockets.append("/srv/" + "/".join(parts) + "/dev/log")
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
    return sockets
