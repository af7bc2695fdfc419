"""Key material of a run: host keys for sshd and a fresh client key pair per user.

Both targets write the same files (the container sees the host keys under another path), so
this is shared. Host keys are generated once per type and kept (simulator/target/hostkeys.py
says where and why); every run gets its own copies. Client keys are always fresh.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh

from simulator.target.accounts import make_home
from simulator.target.base import CLIENT_KEY_ALGS, ServerSpec, client_key_name
from simulator.target.hostkeys import host_key


def write_host_keys(spec: ServerSpec, keydir: Path, inner: str | None = None) -> list[str]:
    """Copies of the kept host keys of the spec's types (mode 0600, or sshd ignores them);
    returns their paths as sshd will see them (under `inner` when given, e.g. in a container)."""
    keydir.mkdir(mode=0o700)
    paths = []
    for kind in spec.host_key_types:
        private, public = host_key(kind, spec.rsa_bits)
        path = keydir / f"ssh_host_{kind}_key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private)
        (keydir / f"{path.name}.pub").write_bytes(public)
        paths.append(f"{inner}/{path.name}" if inner else str(path))
    return paths


def write_users(spec: ServerSpec, clientdir: Path, home_root: Path) -> dict[str, Path]:
    """Client key pairs (for users with generate_key, and each further key a scenario's
    publickey steps use) and every user's home with its authorized_keys; returns user name (or
    client_key_name for a further key) -> private key path."""
    clientdir.mkdir(mode=0o700)
    identities: dict[str, Path] = {}
    for user in spec.users:
        authorized = list(user.authorized_keys)
        if user.generate_key:
            key = asyncssh.generate_private_key(user.key_type)
            path = clientdir / f"{user.name}_key"
            key.write_private_key(str(path))
            key.write_public_key(str(path) + ".pub")
            os.chmod(path, 0o600)
            identities[user.name] = path
            pub = key.export_public_key().decode().strip()
            authorized.insert(0, f"{user.key_options} {pub}".strip())
        for kind, allowed in user.client_keys:
            if user.generate_key and allowed and CLIENT_KEY_ALGS[kind] == user.key_type:
                continue  # the generated key is this one
            key = (asyncssh.generate_private_key(CLIENT_KEY_ALGS[kind], key_size=3072) if kind == "rsa"
                   else asyncssh.generate_private_key(CLIENT_KEY_ALGS[kind]))
            path = clientdir / f"{user.name}_{kind}_{'authorized' if allowed else 'refused'}_key"
            key.write_private_key(str(path))
            os.chmod(path, 0o600)
            identities[client_key_name(user.name, kind, allowed)] = path
            if allowed:
                authorized.append(f"{user.key_options} {key.export_public_key().decode().strip()}".strip())
        make_home(user, home_root, authorized)
    return identities
