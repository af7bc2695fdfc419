"""Run a command and learn its own peak RSS, for the tests that bound memory.

A child's ru_maxrss from wait4 is no measure here: Linux carries a process's high-water mark
across fork and exec, so a command started from a pytest process that has grown to 300 MB
reports at least 300 MB. A small fresh interpreter in between starts the command instead; the
command is its only child, so the launcher's RUSAGE_CHILDREN is the command's own peak.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def run_with_peak(argv: list[str], peak_file: Path, *, stdin: IO[bytes] | int | None = None,
                  stdout: IO[bytes] | int | None = None, stderr: IO[bytes] | int | None = None,
                  env: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, float]:
    """(exit code, peak RSS in MB) of `argv`; the whole process group is killed on a timeout
    (raising subprocess.TimeoutExpired)."""
    proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(peak_file), *argv], stdin=stdin,
                            stdout=stdout, stderr=stderr, env=env, start_new_session=True)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return code, int(peak_file.read_text() or 0) / 1024
