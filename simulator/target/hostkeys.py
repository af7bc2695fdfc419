"""Host keys kept between runs: in this process, and in the cache folder across runs.

Generating an RSA-3072 host key took about 150 ms of the local target's 250 ms start, for keys
no scenario looks at twice. So each key type is generated once and kept in
`cache_root()/hostkeys/` (simulator/builds/cache.py), and every run gets copies in its own work
folder. The folder is 0700 and each key 0600, both owned by this user, written whole (a temp
file renamed into place). A key that cannot be trusted is made again, never used:
- a file that is not a regular file of ours with mode 0600 (another user could have put a key
  there whose secret half they know), or a symlink (never followed: opened with O_NOFOLLOW and
  replaced by the rename, which replaces the link itself);
- a file that does not parse as an OpenSSH private key of the wanted type and size (a crash
  while writing, a disk error).
A folder with a wrong mode is put back to 0700 and its keys made again (anyone could have
written them); a folder that is a symlink or not ours is not used (keys are then kept in this
process only).

The private key is parsed without RSA's consistency check (which costs as much as 250 ms
here): the file is our own, and a corrupt file fails to parse or has the wrong size.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import asyncssh
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

from simulator.builds.cache import cache_root
from simulator.limits import MAX_HOST_KEY_BYTES

KEY_ALGS = {"rsa": "ssh-rsa", "ecdsa": "ecdsa-sha2-nistp256", "ed25519": "ssh-ed25519"}

# (type, RSA bits) -> (private key file text, public key line): this process's keys.
_kept: dict[tuple[str, int], tuple[bytes, bytes]] = {}


def key_folder() -> Path | None:
    """The cache's host-key folder (made 0700 on first need), or None when it cannot be trusted."""
    folder = cache_root() / "hostkeys"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return None
    if stat.S_IMODE(info.st_mode) != 0o700:
        try:
            os.chmod(folder, 0o700, follow_symlinks=False)
        except OSError:
            return None
        for old in folder.iterdir():
            _unlink(old)
    return folder


def _file_name(kind: str, bits: int) -> str:
    return f"ssh_host_rsa{bits}_key" if kind == "rsa" else f"ssh_host_{kind}_key"


def _read_trusted(path: Path, kind: str, bits: int) -> tuple[bytes, bytes] | None:
    """(private text, public line) of a kept key, or None when it is missing or untrusted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid()
                or stat.S_IMODE(info.st_mode) != 0o600 or info.st_size > MAX_HOST_KEY_BYTES):
            return None
        data = fh.read(MAX_HOST_KEY_BYTES + 1)
    try:
        key = load_ssh_private_key(data, None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError):
        return None
    wanted = {"rsa": rsa.RSAPrivateKey, "ecdsa": ec.EllipticCurvePrivateKey,
              "ed25519": ed25519.Ed25519PrivateKey}[kind]
    if not isinstance(key, wanted) or (kind == "rsa" and key.key_size != bits):  # type: ignore[union-attr]
        return None
    if kind == "ecdsa" and key.curve.name != "secp256r1":  # type: ignore[union-attr]
        return None
    public = asyncssh.import_public_key(_public_line(key)).export_public_key()
    return data, public


def _public_line(key: object) -> bytes:
    # imported here: start-up cost: serialization's enums only when a kept key is read
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)  # type: ignore[attr-defined]


def _write_whole(folder: Path, name: str, data: bytes) -> None:
    """`data` at folder/name, mode 0600, whole or not at all; a link there is replaced, not followed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)  # 0600, O_EXCL
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, folder / name)
    finally:
        _unlink(Path(tmp))


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def host_key(kind: str, bits: int) -> tuple[bytes, bytes]:
    """(private key file text, public key line) of the kept host key of `kind` (RSA: of `bits`)."""
    wanted = (kind, bits if kind == "rsa" else 0)
    if wanted in _kept:
        return _kept[wanted]
    folder = key_folder()
    name = _file_name(kind, bits)
    found = _read_trusted(folder / name, kind, bits) if folder is not None else None
    if found is None:
        key = (asyncssh.generate_private_key(KEY_ALGS[kind], key_size=bits) if kind == "rsa"
               else asyncssh.generate_private_key(KEY_ALGS[kind]))
        found = key.export_private_key(), key.export_public_key()
        if folder is not None:
            try:
                _write_whole(folder, name, found[0])
            except OSError:
                pass  # a full or read-only cache: this process keeps the key all the same
    _kept[wanted] = found
    return found


def forget_kept() -> None:
    """Drop this process's keys (tests: the next host_key reads the cache folder again)."""
    _kept.clear()
