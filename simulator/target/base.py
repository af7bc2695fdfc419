"""What every target is told (ServerSpec) and what it hands back (a running server).

A target is anything that runs a real OpenSSH sshd for a scenario and captures its syslog with
pids: the private local sshd (the default) or a container. The driver only needs the address,
the users' client keys and the captured records, so both targets expose the same shape.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from simulator.capture.syslog import SyslogReceiver
from simulator.errors import TargetError


@dataclass(frozen=True)
class Origin:
    """Where an sshd_config line came from, so an error about it names the user's words: a
    scenario's file:line:column, or a command-line option (`key`), never the generated file."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    key: str | None = None


@dataclass
class UserSpec:
    """A login account that exists only for the run."""

    name: str = "user"
    uid: int = 1000
    gid: int | None = None
    password: str | None = None
    # Extra public keys (OpenSSH one-line form) for authorized_keys, with optional options prefix.
    authorized_keys: list[str] = field(default_factory=list)
    # Generate a client key pair for this user and authorize it (its path is `identity`).
    generate_key: bool = True
    key_type: str = "ssh-ed25519"
    # authorized_keys options written before the generated key, e.g. "no-pty".
    key_options: str = ""
    # Further client keys a scenario's publickey steps use: (type ed25519|ecdsa|rsa, authorized).
    # An authorized one goes into authorized_keys (with key_options); a refused one does not.
    client_keys: list[tuple[str, bool]] = field(default_factory=list)
    shell: str = "/bin/bash"

    @property
    def group_id(self) -> int:
        return self.gid if self.gid is not None else self.uid


@dataclass
class ServerSpec:
    """How the target sshd is configured for one run."""

    users: list[UserSpec] = field(default_factory=lambda: [UserSpec()])
    # sshd_config lines placed before the defaults (sshd_config is first-match-wins).
    overrides: list[str] = field(default_factory=list)
    # Where each override came from (same order; missing entries: unknown), for error messages.
    override_origins: list[Origin] = field(default_factory=list)
    # Per override (same order; missing entries: none): the simulator.builds.features.Requirement
    # the sshd's version must meet for the line to be written (a keyword older sshd rejects).
    override_requires: list[Any] = field(default_factory=list)
    log_level: str = "DEBUG1"
    # Host name written into the classic log lines (the receiver adds it, as rsyslog does).
    host_name: str = "localhost"
    listen: tuple[str, ...] = ("127.0.0.1", "::1")
    # A chosen port (`sshsim sshd --port`): a free one of 1024 and above, on loopback only.
    port: int | None = None
    # The upstream OpenSSH version a scenario asks for (`server.openssh`), and where it said so;
    # None: the target's own (simulator/target/factory.py decides between it and --target).
    openssh: str | None = None
    openssh_origin: Origin | None = None
    # The reference log shows the privsep user as uid 129 (Ubuntu); the private passwd can match.
    privsep_uid: int = 129
    # Pid the listener gets inside its pid namespace (None: a realistic random one; 0: the next).
    first_pid: int | None = None
    host_key_types: tuple[str, ...] = ("rsa", "ecdsa", "ed25519")
    # Whether host_key_types is the scenario's own (server.host_keys): it then wins over the
    # HostKey lines of a user's sshd_config file.
    own_host_keys: bool = False
    rsa_bits: int = 3072
    # PAM stack file under simulator/data/pam/.
    pam_profile: str = "debian"
    # Folders under the run's /srv for ChrootDirectory scenarios (simulator/target/chroots.py):
    # paths (root-owned) or ChrootDir entries with an owner or a log socket inside.
    chroot_dirs: list[Any] = field(default_factory=list)
    # A user's own sshd_config (simulator/target/userconfig.py UserConfig): used as written
    # instead of sshsim's template, except the lines sshsim owns.
    config_file: Any = None
    # With config_file: whether sshsim sets LogLevel (a command or scenario asked for one) or
    # the file's own stays.
    own_log_level: bool = True


# A scenario's client key types (auth: {publickey: {key: ...}}) as asyncssh names them, and the
# signature algorithms each can sign with, in asyncssh's order of preference.
CLIENT_KEY_ALGS = {"ed25519": "ssh-ed25519", "ecdsa": "ecdsa-sha2-nistp256", "rsa": "ssh-rsa"}
KEY_SIG_ALGS = {"ed25519": ("ssh-ed25519",), "ecdsa": ("ecdsa-sha2-nistp256",),
                "rsa": ("rsa-sha2-256", "rsa-sha2-512", "ssh-rsa")}


def client_key_name(user: str, key: str, authorized: bool) -> str:
    """The identities entry of a user's further key (user names cannot hold '/')."""
    return f"{user}/{key}/{'authorized' if authorized else 'refused'}"


class ManagedTarget:
    """What both targets share: `with` / `async with` (start on entry, stop on every exit path)
    and the users' client keys (`_identities`, filled when the target prepares its run)."""

    _identities: dict[str, Path]

    def identity(self, user: str, key: str | None = None, authorized: bool = True) -> Path:
        """Path of the private key that logs in as `user`: the generated one, or (with `key`) the
        user's key of that type that authorized_keys holds (or, authorized False, does not)."""
        try:
            if key is not None:
                named = client_key_name(user, key, authorized)
                if named in self._identities:
                    return self._identities[named]
            return self._identities[user]
        except KeyError:
            raise TargetError(f"user {user!r} has no generated client key on this server") from None

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Any:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)


class RunningServer(Protocol):
    """What a started target offers the driver and the commands."""

    host: str
    port: int
    log: SyslogReceiver
    log_path: Path | None

    def identity(self, user: str, key: str | None = None, authorized: bool = True) -> Path:
        """Path of the private key that logs in as `user` (of type `key`, authorized or not)."""

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Return once no connection is in progress and every line it logged is captured."""

    def stop(self) -> None:
        """Stop sshd and remove everything the target made."""
