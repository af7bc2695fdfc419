"""The one way sshsim writes a file the user named: safe against overwrites, symlinks and full disks.

Every output (`run --log-out`/`--report`, `sshd --log`, `generate -o` and its labels, `infer -o`,
`replay --log-out`/`--scenario-out`) goes through here, because sshsim runs as root and a path
is input like any other:

- `check_output` runs before the work starts: an existing file is refused without --force, a
  symbolic link is refused always (root writing through a link planted in a shared folder would
  overwrite whatever it points to), and the folder is proven writable by creating and removing a
  probe file, so a read-only or missing folder fails in milliseconds rather than after the run.
- Content goes to a temp file made beside the target with O_EXCL|O_NOFOLLOW (tempfile.mkstemp),
  and is then put in place by link() (without --force: fails if anything appeared there
  meanwhile) or rename() (with --force: replaces a link itself, never writes through it). An
  interrupted write leaves the old file or the new one, never half of one, and no temp file.
- A log is a stream of lines, so a full disk keeps the lines that fit (cut at a line end) and
  says how many; a report, whose prefix means nothing, is written whole or not at all. Either
  way the failure is one line (`OutputError`), never a traceback.
- `LogStream` serves `sshd --log`, which must be readable while sshd runs (`tail -f`): it puts
  a file it created itself in place at once and appends to it through its own descriptor, never
  reopening the path.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from simulator.errors import BadInputError, OutputError
from simulator.limits import MAX_OUTPUT_NAME_CHARS, MAX_REPORT_BYTES

_CHUNK = 1 << 16


def _folder(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    return exc.strerror or str(exc)


def check_output(path: Path, force: bool) -> None:
    """Refuse, before any work, an output that must not or cannot be written (one-line errors)."""
    path = Path(path)
    try:
        st: os.stat_result | None = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise BadInputError(f"cannot check the output: {_reason(exc)}", file=str(path)) from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise BadInputError("is a symbolic link; sshsim never writes through one (remove it or "
                                "name another file)", file=str(path))
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError("is not a regular file", file=str(path))
        if not force:
            raise BadInputError("exists; not overwriting it (use --force)", file=str(path))
    folder = _folder(path)
    if not folder.is_dir():
        raise BadInputError(f"folder {folder} does not exist", file=str(path))
    # As root, permission bits say little (a read-only mount, a full disk, an immutable folder):
    # only creating a file proves it. The probe is removed at once.
    fd, probe = temp_beside(path)
    os.close(fd)
    os.unlink(probe)


def safe_file_name(name: str, suffix: str, taken: set[str]) -> str:
    """A file name made from untrusted text (a scenario name, a matrix cell) that stays one plain
    name in its folder: only letters, digits, '.', '_', '-' and '=' survive (no '/', no '..', no
    leading dot), at most MAX_OUTPUT_NAME_CHARS long, and never one of `taken` (a second scenario
    of the same name gets '-2'); the name returned is added to `taken`."""
    stem = re.sub(r"[^A-Za-z0-9._=-]+", "_", name).strip("._") or "scenario"
    stem = stem[:MAX_OUTPUT_NAME_CHARS]
    candidate, n = stem + suffix, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    taken.add(candidate)
    return candidate


# The old name: callers that only need the checks.
refuse_overwrite = check_output


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


def temp_beside(path: Path) -> tuple[int, str]:
    """A new file beside `path` (O_EXCL|O_NOFOLLOW, mode 0600), or a one-line OutputError."""
    folder = _folder(path)
    try:
        return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {_reason(exc)}", file=str(path)) from None


def _unlink_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def place(tmp: str, path: Path, force: bool) -> None:
    """Put the finished temp file at `path`; the temp name is gone afterwards either way."""
    try:
        os.chmod(tmp, new_file_mode())
        if force:
            os.replace(tmp, path)  # replaces a link itself; never writes through it
            return
        try:
            os.link(tmp, path)  # fails if anything (a file, a link) appeared there meanwhile
        except FileExistsError:
            raise BadInputError("appeared while sshsim worked; not overwriting it (use --force)",
                                file=str(path)) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # A file system without hard links: check again, then rename.
            if os.path.lexists(path):
                raise BadInputError("appeared while sshsim worked; not overwriting it (use --force)",
                                    file=str(path)) from None
            os.replace(tmp, path)
    finally:
        _unlink_quietly(tmp)


@contextmanager
def output_file(path: Path, force: bool, *, binary: bool = False) -> Iterator[IO]:
    """A file object for `path`'s content, put in place when the block ends without error.

    Whole or nothing: on any error the temp file is removed and `path` is left as it was; a
    write error (full disk) becomes a one-line OutputError."""
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        # Binary: unbuffered, as writers that also hand the descriptor to C (generate) need.
        with (os.fdopen(fd, "wb", buffering=0) if binary else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            yield fh
        place(tmp, path, force)
    except OSError as exc:
        raise OutputError(f"cannot write: {_reason(exc)}; nothing written", file=str(path)) from None
    finally:
        _unlink_quietly(tmp)


def atomic_write_text(path: Path, text: str, *, force: bool = False) -> None:
    """Write a whole file (a report, a scenario) through `output_file`."""
    with output_file(Path(path), force) as fh:
        fh.write(text)


def write_lines(path: Path, lines: Iterable[str], *, force: bool = False) -> int:
    """Write a log (one line each); returns the count. On a full disk the lines that fit are
    kept, cut at a line end, and an OutputError says how many were written."""
    path = Path(path)
    data = "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")
    total = data.count(b"\n")
    fd, tmp = temp_beside(path)
    try:
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                done += os.write(fd, view[done:done + _CHUNK])
        except OSError as exc:
            keep = data.rfind(b"\n", 0, done) + 1
            os.ftruncate(fd, keep)
            kept = data.count(b"\n", 0, keep)
            os.close(fd)
            fd = -1
            if kept:
                place(tmp, path, force)
                raise OutputError(f"cannot write: {_reason(exc)}; kept the first {kept} of {total} lines",
                                  file=str(path)) from None
            raise OutputError(f"cannot write: {_reason(exc)}; nothing written", file=str(path)) from None
        os.close(fd)
        fd = -1
        place(tmp, path, force)
    except OSError as exc:
        raise OutputError(f"cannot write: {_reason(exc)}", file=str(path)) from None
    finally:
        if fd >= 0:
            os.close(fd)
        _unlink_quietly(tmp)
    return total


def read_report(path: Path, what: str, *, key: str | None = None) -> str:
    """The text of a JSON report the user names (`diff --report-a`, `compat --baseline`): bounded
    by MAX_REPORT_BYTES, so /dev/zero or a huge file ends in a one-line error, not in memory."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_REPORT_BYTES + 1)
    except FileNotFoundError:
        raise BadInputError(f"{what} not found", file=str(path), key=key) from None
    except OSError as exc:
        raise BadInputError(f"cannot read {what}: {_reason(exc)}", file=str(path), key=key) from None
    if len(raw) > MAX_REPORT_BYTES:
        raise BadInputError(f"{what} is larger than {MAX_REPORT_BYTES} bytes", file=str(path), key=key)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{what} is not UTF-8 text (byte {exc.start})", file=str(path), key=key) from None


class LogStream:
    """A log written while it grows (`sshd --log`): in place from the start, append only.

    The file is one sshsim created (O_EXCL temp file, linked or renamed into place at once), and
    every write goes through the descriptor opened then: whatever happens to the path later, no
    other file is touched. Writing never raises (it may run in the capture thread): the first
    error stops the stream, the file keeps the complete lines written so far, and `error` says
    what went wrong (raised by `close`, unless asked not to).
    """

    def __init__(self, path: Path, force: bool) -> None:
        self.path = Path(path)
        self.lines = 0
        self.error: OutputError | None = None
        self._size = 0
        fd, tmp = temp_beside(self.path)
        try:
            place(tmp, self.path, force)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    def write(self, line: str) -> None:
        """Append one line (no newline in `line`)."""
        if self._fd is None or self.error is not None:
            return
        data = (line + "\n").encode("utf-8", "surrogateescape")
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError as exc:
            if done:
                try:
                    os.ftruncate(self._fd, self._size)  # no half line
                except OSError:
                    pass
            self.error = OutputError(f"cannot write: {_reason(exc)}; kept the first {self.lines} lines",
                                     file=str(self.path))
            return
        self._size += len(data)
        self.lines += 1

    def close(self, *, raise_error: bool = True) -> None:
        """Stop writing; raise the error that stopped the stream, if any."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if raise_error and self.error is not None:
            raise self.error

    def __enter__(self) -> LogStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(raise_error=exc[0] is None)
