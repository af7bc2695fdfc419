"""Reading a log named on the command line: one-line errors, bounded memory.

`parse` streams a log of any length (`log_lines`); `diff`, `verify`, `infer` and `replay` need
all of a log at once (`read_log_lines`) and hold at most MAX_HELD_LOG_LINES lines and
MAX_HELD_LOG_CHARS characters of it. Either way each line is bounded by the reader
(simulator/logs/reader.py), and the reader's warnings reach the user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from simulator.errors import BadInputError
from simulator.io import read_report
from simulator.limits import MAX_HELD_LOG_CHARS, MAX_HELD_LOG_LINES
from simulator.logs.reader import LogReader


def open_log(path: Path | str) -> LogReader:
    """A reader of the log the user named ('-' for stdin, .gz read directly); a missing file
    or a folder is a one-line error now, before any work."""
    name = str(path)
    if name != "-":
        if not Path(name).exists():
            raise BadInputError("log file not found", file=name)
        if Path(name).is_dir():
            raise BadInputError("is a directory, not a log file", file=name)
    return LogReader(name)


def log_lines(reader: LogReader) -> Iterator[str]:
    """The reader's lines, streamed; the file is opened now (a file that cannot be opened is a
    one-line error; a read that fails later ends the lines with a warning)."""
    try:
        return reader.lines()
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror or exc}", file=reader.name) from None


def echo_warnings(reader: LogReader) -> None:
    for warning in reader.warnings:
        click.echo(f"warning: {warning}", err=True)


def read_log_lines(path: Path | str) -> list[str]:
    """All lines of a log, for a command that needs them at once: a log longer than
    MAX_HELD_LOG_LINES lines or MAX_HELD_LOG_CHARS characters is a one-line error."""
    reader = open_log(path)
    lines: list[str] = []
    append = lines.append
    chars = 0
    for line in log_lines(reader):
        chars += len(line)
        append(line)
        if len(lines) > MAX_HELD_LOG_LINES or chars > MAX_HELD_LOG_CHARS:
            raise BadInputError(
                f"the log goes on past {MAX_HELD_LOG_LINES} lines or {MAX_HELD_LOG_CHARS} characters, "
                "more than this command holds at once (`sshsim parse` streams a log of any length)",
                file=reader.name, line=len(lines))
    echo_warnings(reader)
    return lines


def read_run_report(path: Path, option: str | None = None) -> dict[str, Any]:
    """A JSON report of `sshsim run` (`--report json FILE`), read back: untrusted, so bounded by
    MAX_REPORT_BYTES and checked to hold a `scenarios` list (one-line errors)."""
    text = read_report(path, "the report", key=option)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadInputError(f"not a JSON report of sshsim run: {getattr(exc, 'msg', exc)}", file=str(path),
                            line=getattr(exc, "lineno", None), key=option) from None
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise BadInputError("not a JSON report of sshsim run (no `scenarios` list)", file=str(path), key=option)
    return data
