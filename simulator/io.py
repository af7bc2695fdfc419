"""Writing output files without ever losing what the user already had.

An existing file is only replaced with --force, and new content goes to a temporary file in the
same folder that is renamed over the target once complete, so an interrupted run leaves either
the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from simulator.errors import BadInputError


def refuse_overwrite(path: Path, force: bool) -> None:
    """One-line error when `path` exists (and --force was not given) or cannot be written."""
    if path.exists() and not force:
        raise BadInputError("exists; not overwriting it (use --force)", file=str(path))
    if path.exists() and not path.is_file():
        raise BadInputError("is not a regular file", file=str(path))
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BadInputError(f"folder {parent} does not exist", file=str(path))


def new_file_mode() -> int:
    """The mode a file the user asks for gets (0666 less the umask): temp files are made 0600,
    and a log renamed into place should read like any other file the user writes."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for row in fh:
                if row.startswith("Umask:"):
                    return 0o666 & ~int(row.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to a temp file beside `path`, then rename it into place."""
    parent = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
