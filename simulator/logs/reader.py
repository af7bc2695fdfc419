"""Open a log robustly: a path, ``-`` for stdin, gzip by content; lines streamed, never loaded.

Real logs hold bytes that are not UTF-8 (user names typed by attackers, other encodings), lines
of a megabyte, a last line cut short by rotation, CRLF from ``sshd -E``: none of that may stop a
parse. Undecodable bytes are kept visible as ``\\xNN`` escapes; a damaged gzip stream ends the
input with a warning instead of a traceback.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import zlib
from itertools import chain
from pathlib import Path
from typing import IO, Iterator

GZIP_MAGIC = b"\x1f\x8b"
# Characters decoded at a time from a plain regular file (see LogReader.lines).
CHUNK_CHARS = 1 << 18
# What ends a damaged input early, with a warning instead of a traceback.
READ_ERRORS = (EOFError, OSError, zlib.error, gzip.BadGzipFile)


class LogReader:
    """Iterate the text lines of a log file (without line ends); collect warnings."""

    def __init__(self, path: str | Path, *, stdin: IO[bytes] | None = None) -> None:
        self.path = str(path)
        self._stdin = stdin
        self.warnings: list[str] = []

    def _open_binary(self) -> IO[bytes]:
        if self.path == "-":
            raw: IO[bytes] = self._stdin or sys.stdin.buffer
        else:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed by lines()
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type]
        head = buffered.peek(2)[:2]
        if head == GZIP_MAGIC:
            return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
        return buffered

    def lines(self) -> Iterator[str]:
        """Each line as text; ``\\r\\n`` and ``\\n`` removed (a lone ``\\r`` stays in the line).

        The file is opened now.
        """
        binary = self._open_binary()
        return chain.from_iterable(self._batches(binary))

    def _read_failed(self, exc: BaseException) -> None:
        self.warnings.append(f"{self.path}: input ends early: {exc}")

    def _batches(self, binary: IO[bytes]) -> Iterator[list[str]]:
        """Lists of lines: a chunk's worth from a plain file (`lines` flattens them in C, one
        generator step per chunk rather than per line), one line at a time from a stream."""
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="backslashreplace", newline="\n")
        try:
            if self._is_plain_file(binary):
                # A line cut by a chunk boundary is carried over, and so is a \r that ends a
                # chunk, until the \n that may follow it is read.
                read = text.read
                pending = ""
                while True:
                    chunk = read(CHUNK_CHARS)
                    if not chunk:
                        break
                    if pending:
                        chunk = pending + chunk
                    if "\r" in chunk:
                        chunk = chunk.replace("\r\n", "\n")
                    parts = chunk.split("\n")
                    pending = parts.pop()
                    yield parts
                if pending:
                    yield [pending]
                return
            for line in text:
                if line[-1:] == "\n":
                    line = line[:-2] if line[-2:-1] == "\r" else line[:-1]
                yield [line]
        except READ_ERRORS as exc:
            self._read_failed(exc)
        finally:
            if self.path != "-":
                text.close()

    def _is_plain_file(self, binary: IO[bytes]) -> bool:
        """An uncompressed regular file: safe to read in large chunks (a pipe, a FIFO or stdin
        is read line by line, so that a live stream is parsed as it comes)."""
        if self.path == "-" or not isinstance(binary, io.BufferedReader):
            return False
        try:
            return stat.S_ISREG(os.fstat(binary.fileno()).st_mode)
        except (OSError, ValueError):
            return False

    def __iter__(self) -> Iterator[str]:
        return self.lines()


def read_lines(path: str | Path) -> Iterator[str]:
    """The lines of a log file (see `LogReader`)."""
    return LogReader(path).lines()
