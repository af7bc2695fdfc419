"""Orphaned work folders: a target's folder outlives an owner killed outright; the next removes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simulator.target.workdirs import OWNER_MARK, make_workdir, process_start, remove_orphans


def test_only_marked_folders_of_ended_owners_are_removed(tmp_path: Path) -> None:
    # a real process that has ended: its pid and start time no longer name a live process
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(done.stdout)
    orphan = tmp_path / "sshsim-orphan"
    orphan.mkdir()
    (orphan / OWNER_MARK).write_text(f"{dead_pid} 12345\n")
    (orphan / "sshd_config").write_text("Port 22\n")
    live = tmp_path / "sshsim-live"
    live.mkdir()
    (live / OWNER_MARK).write_text(f"{os.getppid()} {process_start(os.getppid())}\n")
    reused = tmp_path / "sshsim-reused"  # a live pid, but another start time: the pid was reused
    reused.mkdir()
    (reused / OWNER_MARK).write_text(f"{os.getppid()} 1\n")
    unmarked = tmp_path / "sshsim-users-own"
    unmarked.mkdir()
    other = tmp_path / "not-ours"
    other.mkdir()
    (other / OWNER_MARK).write_text(f"{dead_pid} 1\n")

    assert sorted(remove_orphans(tmp_path)) == sorted([orphan, reused])
    assert not orphan.exists() and not reused.exists()
    assert live.exists() and unmarked.exists() and other.exists()


def test_make_workdir_marks_this_process() -> None:
    path = make_workdir("sshsim-test-")
    try:
        pid, start = (path / OWNER_MARK).read_text().split()
        assert int(pid) == os.getpid() and start == process_start(os.getpid())
        assert path.stat().st_mode & 0o077 == 0  # private, as mkdtemp makes it
        assert path not in remove_orphans()  # its owner is alive
    finally:
        import shutil

        shutil.rmtree(path)
