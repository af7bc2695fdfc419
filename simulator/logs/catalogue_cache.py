"""The event catalogue in compiled form, cached per user: start-up without reading the YAML.

Reading the catalogue means parsing about 17,000 lines of YAML and turning some 3,500 templates
into regexes (checking each compiles): half a second in every process that parses a log. The
result is plain data (each entry's texts, field names, tags), so it is kept as JSON in
``$SSHSIM_CACHE`` (default ``~/.cache/sshsim``), filed under the SHA-256 of everything it is made
from: the catalogue files and the code that compiles them. A changed file is a new key.

The cache holds data only, never pickles or code, and it is trusted no further than the files
it was made from: a cache file is read only when it is a regular file (no symlink followed)
owned by this user and writable by nobody else, when its payload matches the checksum it
carries, and when every row has the expected shape. Anything else is ignored: the catalogue is
read from its YAML, and the cache written again (atomically; a cache that cannot be written is
not an error).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from itertools import chain
from pathlib import Path
from typing import Any

_CODE = (Path(__file__).with_name("catalogue.py"), Path(__file__).with_name("tags.py"), Path(__file__))
# one row per entry: name level pattern regex fields int_fields versions source origin fallback key tags
_ROW = (str, str, str, str, list, list, str, str, str, bool, str, list)


def cache_dir() -> Path:
    """Where sshsim keeps per-user caches: $SSHSIM_CACHE, else ~/.cache/sshsim."""
    env = os.environ.get("SSHSIM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "sshsim"


def data_key(files: list[Path], data_dir: Path) -> str:
    """SHA-256 of the catalogue files (names and bytes) and of the code that compiles them."""
    h = hashlib.sha256()
    for path in [*_CODE, *files]:
        name = str(path.relative_to(data_dir)) if path.is_relative_to(data_dir) else path.name
        data = path.read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _checksum(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load(folder: Path, key: str) -> list[tuple[Any, ...]] | None:
    """The cached entries for `key` as columns (one tuple per column of _ROW, an entry's values
    at the same index in each), or None (absent, untrusted, damaged or of another shape)."""
    path = folder / f"catalogue-{key}.json"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
            return None
        with os.fdopen(fd, "r", encoding="utf-8", closefd=False) as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)
    head, sep, payload = text.partition("\n")
    if not sep or head != _checksum(payload):
        return None
    try:
        rows = json.loads(payload)
    except ValueError:
        return None
    return _columns(rows)


# the types allowed in the list columns: fields (None: an unkept group), int_fields, tags
_FIELD_TYPES: tuple[set[type], ...] = ({str, type(None)}, {str}, {str})


def _columns(rows: object) -> list[tuple[Any, ...]] | None:
    """The rows' columns (one tuple per column of _ROW), or None unless every row has the
    expected shape and types (a damaged or hand-edited cache must be rebuilt, never trusted
    into a crash). Checked a column at a time with C-level map/set: a per-row Python check was
    half of a warm start-up. Columns, not rows, since the catalogue makes its entries a column
    at a time."""
    if type(rows) is not list:
        return None
    if not rows:
        return [() for _ in _ROW]
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {len(_ROW)}:
        return None
    columns = list(zip(*rows, strict=True))
    for column, kind in zip(columns, _ROW, strict=True):
        if set(map(type, column)) != {kind}:
            return None
    lists = (columns[4], columns[5], columns[11])
    if not all(set(map(type, chain.from_iterable(col))) <= allowed
               for col, allowed in zip(lists, _FIELD_TYPES, strict=True)):
        return None
    return columns


def save(folder: Path, key: str, rows: list[tuple[Any, ...]]) -> None:
    """Write the rows for `key` (best effort: an unwritable cache only costs start-up time)."""
    # imported here: start-up cost (tempfile brings shutil and random; a warm start-up only reads)
    import tempfile

    payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".catalogue-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(_checksum(payload) + "\n" + payload)
            os.replace(tmp, folder / f"catalogue-{key}.json")
        except BaseException:
            os.unlink(tmp)
            raise
        for old in folder.glob("catalogue-*.json"):  # other versions of the catalogue
            if old.name != f"catalogue-{key}.json" and not old.is_symlink():
                old.unlink(missing_ok=True)
    except OSError:
        pass
