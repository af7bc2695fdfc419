"""Open a log robustly: a path, ``-`` for stdin, gzip by content; lines streamed, never loaded.

Real logs hold bytes that are not UTF-8 (user names typed by attackers, other encodings), a
last line cut short by rotation, CRLF from ``sshd -E``: none of that may stop a parse.
Undecodable bytes are kept visible as ``\\xNN`` escapes; a damaged gzip stream ends the input
with a warning instead of a traceback.

A log is also untrusted input (simulator/limits.py): a line longer than ``MAX_LINE_CHARS`` is
kept cut to that many characters, its rest read and thrown away as it comes, never buffered
(sshd never writes such a line: it parses as an ``unknown`` event), with a warning; a "line"
with no end in ``MAX_UNENDED_LINE_BYTES`` (``/dev/zero``, a binary file) ends the read with a
`BadInputError` naming the file and line. Memory stays flat whatever the input.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import IO, cast

from simulator.errors import BadInputError
from simulator.limits import MAX_LINE_CHARS, MAX_UNENDED_LINE_BYTES

GZIP_MAGIC = b"\x1f\x8b"
# Bytes read at a time from a plain regular file (see LogReader.lines).
CHUNK_BYTES = 1 << 18
# UTF-8 spends at most this many bytes on a character (and an undecodable byte becomes four
# characters), so a line's first UTF8_MAX * max_chars bytes always hold its first max_chars
# characters: all of an over-long line that is ever kept.
UTF8_MAX = 4
# What ends a damaged input early, with a warning instead of a traceback.
READ_ERRORS = (EOFError, OSError, zlib.error, gzip.BadGzipFile)


class LogReader:
    """Iterate the text lines of a log file (without line ends); collect warnings.

    ``max_chars`` and ``max_unended`` default to the limits; tests pass small ones.
    """

    def __init__(self, path: str | Path, *, stdin: IO[bytes] | None = None,
                 max_chars: int = MAX_LINE_CHARS, max_unended: int = MAX_UNENDED_LINE_BYTES) -> None:
        self.path = str(path)
        # What messages call the input.
        self.name = "<stdin>" if self.path == "-" else self.path
        self._stdin = stdin
        self.max_chars = max_chars
        self.max_unended = max_unended
        self._warnings: list[str] = []
        self._cut_lines = 0

    @property
    def warnings(self) -> list[str]:
        """What the read noticed: the first line cut (and how many more), an early end. One line
        each, however many lines were cut."""
        out = list(self._warnings)
        if self._cut_lines > 1:
            out.append(f"{self.name}: {self._cut_lines - 1} more line(s) longer than {self.max_chars} "
                       f"characters cut likewise")
        return out

    def _open_binary(self) -> IO[bytes]:
        if self.path == "-":
            raw: IO[bytes] = self._stdin or sys.stdin.buffer
        else:
            raw = open(self.path, "rb")  # noqa: SIM115 - closed by lines()
        # Any binary stream with readinto() can be buffered (typeshed asks for a RawIOBase), and a
        # GzipFile is a binary stream (typeshed types it as BufferedIOBase, not IO[bytes]).
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
        head = buffered.peek(2)[:2]
        if head == GZIP_MAGIC:
            return cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))
        return buffered

    def lines(self) -> Iterator[str]:
        """Each line as text; ``\\r\\n`` and ``\\n`` removed (a lone ``\\r`` stays in the line).

        The file is opened now.
        """
        binary = self._open_binary()
        return chain.from_iterable(self._batches(binary))

    # -- what the loops report -------------------------------------------------------------
    def _read_failed(self, exc: BaseException) -> None:
        self._warnings.append(f"{self.name}: input ends early: {exc}")

    def _note_cut(self, lineno: int) -> None:
        """Line `lineno` was longer than max_chars and has been cut."""
        self._cut_lines += 1
        if self._cut_lines == 1:
            self._warnings.append(f"{self.name}:{lineno}: line longer than {self.max_chars} characters: "
                                  f"cut to its first {self.max_chars}")

    def _unended(self, lineno: int) -> None:
        raise BadInputError(f"no line end in the first {self.max_unended} bytes of this line: not a text log",
                            file=self.name, line=lineno)

    def _cut(self, text: str, lineno: int) -> str:
        if len(text) > self.max_chars:
            self._note_cut(lineno)
            return text[: self.max_chars]
        return text

    def _decode(self, data: bytes, lineno: int) -> str:
        return self._cut(data.decode("utf-8", "backslashreplace"), lineno)

    def _skip_rest(self, head: bytes, lineno: int, more: Callable[[], bytes]) -> tuple[str, bytes]:
        """An over-long line whose first bytes are `head` (no line end among them): read and
        drop the rest of it, counting bytes against max_unended. (The line cut to max_chars,
        what `more` gave after the line end: b"" at the end of the input.) The cut is told once
        the line has ended: one that never does is an error instead."""
        size = len(head)
        if size > self.max_unended:
            self._unended(lineno)
        text = head[: UTF8_MAX * self.max_chars].decode("utf-8", "backslashreplace")[: self.max_chars]
        rest = b""
        while True:
            data = more()
            if not data:
                break
            end = data.find(b"\n")
            size += len(data) if end < 0 else end
            if size > self.max_unended:
                self._unended(lineno)
            if end >= 0:
                rest = data[end + 1:]
                break
        self._note_cut(lineno)
        return text, rest

    # -- the loops -----------------------------------------------------------------------
    def _batches(self, binary: IO[bytes]) -> Iterator[list[str]]:
        """Lists of lines: a chunk's worth from a plain file (`lines` flattens them: one generator
        step per chunk rather than per line), one line at a time from a stream."""
        try:
            if self._is_plain_file(binary):
                yield from self._chunks(binary)
            else:
                yield from self._stream(binary)
        except READ_ERRORS as exc:
            self._read_failed(exc)
        finally:
            if self.path != "-":
                binary.close()

    def _chunks(self, binary: IO[bytes]) -> Iterator[list[str]]:
        """A plain file, CHUNK_BYTES at a time: the complete lines of a chunk are decoded and
        split at once (a UTF-8 sequence never holds a "\\n" byte, so this gives what decoding
        line by line does); the line a chunk boundary cuts is carried over, up to the length
        past which it can only be cut."""
        read = binary.read
        keep = UTF8_MAX * self.max_chars
        pending = b""
        n = 0  # lines given so far
        eof = False
        while not eof:
            data = read(CHUNK_BYTES)
            eof = not data
            chunk = pending + data if pending else data
            end = chunk.rfind(b"\n") + 1
            if end == 0:
                pending = chunk
                # One byte more than `keep` may be a "\r" whose "\n" is still to come.
                if len(pending) > keep + 1:
                    n += 1
                    text, pending = self._skip_rest(pending, n, lambda: read(CHUNK_BYTES))
                    yield [text]
                continue
            pending = chunk[end:]
            whole = chunk[:end]
            bad = self._first_unended(whole) if end > self.max_unended else 0
            if bad:
                whole = whole[: sum(map(len, whole.split(b"\n")[: bad - 1])) + bad - 1]
            text = whole.decode("utf-8", "backslashreplace")
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            parts = text.split("\n")
            parts.pop()
            if has_long_line(text, self.max_chars):
                parts = [self._cut(part, n + k) for k, part in enumerate(parts, 1)]
            n += len(parts)
            yield parts
            if bad:
                self._unended(n + 1)
        if pending:
            n += 1
            if len(pending) > self.max_unended:
                self._unended(n)
            yield [self._decode(pending, n)]

    def _first_unended(self, data: bytes) -> int:
        """The 1-based index of the first line of `data` (complete lines) longer than
        max_unended bytes, 0 if none (only asked when `data` itself is longer)."""
        for k, line in enumerate(data.split(b"\n"), 1):
            if len(line) > self.max_unended:
                return k
        return 0

    def _stream(self, binary: IO[bytes]) -> Iterator[list[str]]:
        """A pipe, a FIFO, stdin or a gzip stream, a line at a time (so that a live stream is
        parsed as it comes), each read bounded."""
        readline = binary.readline
        keep = UTF8_MAX * self.max_chars
        n = 0
        while True:
            data = readline(keep + 2)
            if not data:
                return
            n += 1
            if data[-1:] == b"\n":
                if len(data) - 1 > self.max_unended:
                    self._unended(n)
                data = data[:-2] if data[-2:-1] == b"\r" else data[:-1]
                yield [self._decode(data, n)]
            elif len(data) <= keep + 1:  # the last line, with no line end
                if len(data) > self.max_unended:
                    self._unended(n)
                yield [self._decode(data, n)]
            else:
                text, _ = self._skip_rest(data, n, lambda: readline(CHUNK_BYTES))
                yield [text]

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


def has_long_line(text: str, limit: int) -> bool:
    """Whether a line of `text` (lines ended by "\\n") is longer than `limit` characters.

    Asked of every chunk of a plain file, so it must not visit each line: a line longer than
    `limit` contains a whole window [k*half, (k+1)*half) of `half` = limit // 2 characters with
    no line end (it spans at least 2 * half + 1 positions), so looking for a "\\n" in each
    window (one `str.find` in C per `half` characters) rules most chunks out; only a chunk with
    a window free of line ends has its lines measured."""
    if len(text) <= limit:
        return False
    half = max(limit // 2, 1)
    find = text.find
    for start in range(0, len(text), half):
        if find("\n", start, start + half) < 0:
            return max(map(len, text.split("\n"))) > limit
    return False


def read_lines(path: str | Path) -> Iterator[str]:
    """The lines of a log file (see `LogReader`)."""
    return LogReader(path).lines()
