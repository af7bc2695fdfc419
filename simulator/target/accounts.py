"""The private account files (/etc/passwd, group, shadow) and home tree of a run.

They are bind-mounted over the host's inside the target's mount namespace, so the scenario's
users exist for sshd and PAM while the host's own files never change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import string
import threading
from functools import lru_cache
from pathlib import Path

from simulator.errors import BadInputError
from simulator.target.base import ServerSpec, UserSpec

_SALT_CHARS = string.ascii_letters + string.digits + "./"


# crypt(3) returns a static buffer and ctypes lets other threads run during the call: targets
# started in parallel threads (sshsim generate records several at once) must take turns.
_CRYPT_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _libcrypt() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


def hash_password(password: str) -> str:
    """SHA-512 crypt via the system libcrypt, the form pam_unix verifies on every Debian."""
    lib = _libcrypt()
    salt = "$6$" + "".join(secrets.choice(_SALT_CHARS) for _ in range(16)) + "$"
    with _CRYPT_LOCK:
        result = lib.crypt(password.encode(), salt.encode())
        if not result or result.startswith(b"*"):
            raise RuntimeError("libcrypt could not hash a password")
        return result.decode()


# The system's own accounts and groups in the private passwd/group/shadow (the privsep user's uid
# is the spec's). A scenario user may not take one of these names: the first entry of a name
# wins, so a user called "root" would be root, whose home and files are the host's.
SYSTEM_ACCOUNTS = ("root", "daemon", "bin", "sshd", "nobody")
SYSTEM_GROUPS = ("root", "daemon", "bin", "tty", "utmp", "nogroup")
RESERVED_NAMES = frozenset(SYSTEM_ACCOUNTS + SYSTEM_GROUPS)


def passwd_lines(spec: ServerSpec) -> list[str]:
    lines = [
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "bin:x:2:2:bin:/bin:/usr/sbin/nologin",
        f"sshd:x:{spec.privsep_uid}:65534::/run/sshd:/usr/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
    ]
    for user in spec.users:
        if user.name in RESERVED_NAMES:  # the loader says so at the scenario's line; this is the floor
            raise BadInputError(f"user name {user.name!r} is a system account or group of the private sshd")
        lines.append(f"{user.name}:x:{user.uid}:{user.group_id}:{user.name}:/home/{user.name}:{user.shell}")
    return lines


def group_lines(spec: ServerSpec) -> list[str]:
    lines = ["root:x:0:", "daemon:x:1:", "bin:x:2:", "tty:x:5:", "utmp:x:43:", "nogroup:x:65534:"]
    seen = {0, 1, 2, 5, 43, 65534}
    for user in spec.users:
        if user.group_id not in seen:
            lines.append(f"{user.name}:x:{user.group_id}:")
            seen.add(user.group_id)
    return lines


def shadow_lines(spec: ServerSpec) -> list[str]:
    lines = ["root:*:19000:0:99999:7:::", "daemon:*:19000:0:99999:7:::", "bin:*:19000:0:99999:7:::",
             "sshd:*:19000:0:99999:7:::", "nobody:*:19000:0:99999:7:::"]
    for user in spec.users:
        # "*" (not "!"): a locked password would make sshd refuse even key logins under PAM.
        hashed = hash_password(user.password) if user.password else "*"
        lines.append(f"{user.name}:{hashed}:19000:0:99999:7:::")
    return lines


def write_account_files(spec: ServerSpec, etc: Path) -> dict[str, Path]:
    """Write passwd, group and shadow under `etc`; returns their paths by name."""
    etc.mkdir(parents=True, exist_ok=True)
    files = {
        "passwd": (passwd_lines(spec), 0o644),
        "group": (group_lines(spec), 0o644),
        "shadow": (shadow_lines(spec), 0o640),
    }
    paths = {}
    for name, (lines, mode) in files.items():
        path = etc / name
        path.write_text("\n".join(lines) + "\n")
        os.chmod(path, mode)
        paths[name] = path
    return paths


def make_home(user: UserSpec, home_root: Path, authorized: list[str]) -> Path:
    """/home/<user> with .ssh/authorized_keys, owned and moded as sshd's StrictModes wants."""
    home = home_root / user.name
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text("".join(line.rstrip("\n") + "\n" for line in authorized))
    os.chmod(home, 0o755)
    os.chmod(ssh_dir, 0o700)
    os.chmod(keys, 0o600)
    for path in (home, ssh_dir, keys):
        os.chown(path, user.uid, user.group_id)
    return home
