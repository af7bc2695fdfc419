"""Work folders of targets (keys, account files, sshd_config, the log socket).

A target removes its folder when it stops, also on Ctrl-C and on failure. A process killed
outright (SIGKILL, a test runner's timeout) cannot: its sshd dies with it (PDEATHSIG) but the
folder stays. So each folder carries its owner's pid and start time, and the next target that
starts removes the folders whose owner is gone. Only folders with that mark are touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

OWNER_MARK = ".sshsim-owner"
PREFIX = "sshsim-"  # every target's folder name starts with it (local: "sshsim-", docker: "sshsim-docker-")


def process_start(pid: int) -> str | None:
    """The start time of a live process (clock ticks since boot), or None when it is gone.

    With the pid it names one process: a pid reused later has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()[19]  # field 22 counted from the comm's end


def make_workdir(prefix: str) -> Path:
    """A new private folder in the temp dir, marked with this process as its owner."""
    remove_orphans()
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / OWNER_MARK).write_text(f"{os.getpid()} {process_start(os.getpid())}\n")
    return path


def remove_orphans(root: Path | None = None) -> list[Path]:
    """Remove the marked work folders whose owner process has ended; return them."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            pid_text, start = (path / OWNER_MARK).read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            continue  # not ours, or just made and not marked yet
        if pid != os.getpid() and process_start(pid) != start:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
