"""Reading a log named on the command line: a one-line error instead of a traceback."""

from __future__ import annotations

from pathlib import Path

from simulator.errors import BadInputError


def read_log_lines(path: Path) -> list[str]:
    """All lines of a log file ('-' for stdin, .gz read directly), undecodable bytes replaced."""
    from simulator.logs.reader import LogReader

    if str(path) != "-" and not path.exists():
        raise BadInputError("log file not found", file=str(path))
    if str(path) != "-" and path.is_dir():
        raise BadInputError("is a directory, not a log file", file=str(path))
    try:
        return list(LogReader(str(path)))
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
