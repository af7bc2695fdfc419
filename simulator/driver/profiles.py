"""Client profiles: what a real SSH client sends, loaded from simulator/data/profiles/*.yaml.

A profile is data (schema in simulator/data/profiles/README.md): adding a client means adding a
file, not touching the driver. A scenario names a profile, or takes one and replaces some keys
(`profile: {base: putty-0.80, banner: ...}`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from simulator.errors import BadInputError

_FOLDER = "profiles"


@dataclass(frozen=True)
class ClientProfile:
    """Everything about a client that shows on the wire or in the server's log."""

    name: str
    banner: str
    kex: tuple[str, ...]
    host_key: tuple[str, ...]
    encryption: tuple[str, ...]
    mac: tuple[str, ...]
    compression: tuple[str, ...]
    client: str = ""
    version: str = ""
    hassh: str | None = None
    none_first: bool = True
    publickey_query: bool = True
    first_channel: int = 0
    window: int = 2 * 1024 * 1024
    max_packet: int = 32768
    # Sessions without a pty: OpenSSH halves its window and packet for interactive ones only.
    no_pty_window: int | None = None
    no_pty_max_packet: int | None = None
    session_requests: tuple[str, ...] = ("env", "pty-req", "x11-req", "auth-agent-req@openssh.com", "shell")
    pipelined: bool = False
    want_reply: dict[str, bool] = field(default_factory=dict)
    sftp_want_reply: dict[str, bool] = field(default_factory=dict)
    sftp_window: int | None = None
    sftp_max_packet: int | None = None
    # Request order for an SFTP session when it differs (psftp's simple@putty hint).
    sftp_requests: tuple[str, ...] = ()
    close: str = "disconnect"
    disconnect_code: int = 11
    disconnect_text: str = "disconnected by user"
    guess: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def ext_info(self) -> bool:
        """The client asks for SSH2_MSG_EXT_INFO (sshd then logs "Sending SSH2_MSG_EXT_INFO")."""
        return "ext-info-c" in self.kex

    @property
    def strict_kex(self) -> bool:
        """Strict KEX (CVE-2023-48795 countermeasure): sshd then resets sequence numbers."""
        return "kex-strict-c-v00@openssh.com" in self.kex

    def computed_hassh(self) -> str:
        """HASSH of the lists as the profile file gives them (the wire check is in the tests)."""
        text = ";".join(",".join(x) for x in (self.kex, self.encryption, self.mac, self.compression))
        return hashlib.md5(text.encode()).hexdigest()

    def reply_wanted(self, request: str) -> bool:
        if request in self.want_reply:
            return self.want_reply[request]
        if request in self.sftp_want_reply:
            return self.sftp_want_reply[request]
        return request not in ("env", "auth-agent-req@openssh.com")


def _folder() -> Any:
    return resources.files("simulator.data").joinpath(_FOLDER)


@lru_cache(maxsize=1)
def known_profiles() -> frozenset[str]:
    """Names of all profiles shipped with the product."""
    return frozenset(e.name.rsplit(".", 1)[0] for e in _folder().iterdir()
                     if e.name.endswith(".yaml") and not e.name.startswith("_"))


@lru_cache(maxsize=None)
def _raw(name: str) -> dict[str, Any]:
    if name not in known_profiles():
        raise BadInputError(f"unknown client profile {name!r} (known: {', '.join(sorted(known_profiles()))})")
    entry = _folder().joinpath(f"{name}.yaml")
    try:
        data = yaml.safe_load(entry.read_text())
    except yaml.YAMLError as exc:
        raise BadInputError(f"profile file is not valid YAML: {exc}", file=str(entry)) from None
    if not isinstance(data, dict):
        raise BadInputError("profile file must be a mapping", file=str(entry))
    return data


def load_profile(spec: str | dict[str, Any]) -> ClientProfile:
    """A profile by name, or a named base with some keys replaced."""
    if isinstance(spec, str):
        return _from_data(spec, _raw(spec))
    base = dict(_raw(spec["base"]))
    for key, value in spec.items():
        if key == "base":
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return _from_data(spec.get("name", f"{spec['base']}+custom"), base)


def _from_data(name: str, data: dict[str, Any]) -> ClientProfile:
    where = f"simulator/data/profiles/{name}.yaml"
    try:
        auth = data.get("auth", {}) or {}
        channel = data.get("channel", {}) or {}
        session = data.get("session", {}) or {}
        sftp = data.get("sftp", {}) or {}
        disconnect = data.get("disconnect", {}) or {}
        return ClientProfile(
            name=data.get("name", name),
            banner=str(data["banner"]),
            kex=tuple(data["kex"]),
            host_key=tuple(data["host_key"]),
            encryption=tuple(data["encryption"]),
            mac=tuple(data.get("mac") or ()),
            compression=tuple(data["compression"]),
            client=str(data.get("client", "")),
            version=str(data.get("version", "")),
            hassh=data.get("hassh"),
            none_first=bool(auth.get("none_first", True)),
            publickey_query=bool(auth.get("publickey_query", True)),
            first_channel=int(channel.get("first_id", 0)),
            window=int(channel.get("window", 2 * 1024 * 1024)),
            max_packet=int(channel.get("max_packet", 32768)),
            no_pty_window=channel.get("no_pty_window"),
            no_pty_max_packet=channel.get("no_pty_max_packet"),
            # request_order: every request the client can make, in its order; requests: older form.
            session_requests=tuple(session.get("request_order") or session.get("requests")
                                   or ClientProfile.session_requests),
            pipelined=bool(session.get("pipelined", False)),
            want_reply={str(k): bool(v) for k, v in (session.get("want_reply") or {}).items()},
            sftp_window=sftp.get("window"),
            sftp_max_packet=sftp.get("max_packet"),
            sftp_requests=tuple(sftp.get("requests") or ()),
            sftp_want_reply={str(k): bool(v) for k, v in (sftp.get("want_reply") or {}).items()},
            close={"drop-tcp": "drop"}.get(str(data.get("close", "disconnect")), str(data.get("close", "disconnect"))),
            disconnect_code=int(disconnect.get("code", 11)),
            disconnect_text=str(disconnect.get("text", "disconnected by user")),
            guess=tuple(data.get("guess") or ()),
            sources=tuple(str(s) for s in data.get("sources") or ()),
        )
    except KeyError as exc:
        raise BadInputError(f"profile is missing required key {exc.args[0]!r}", file=where) from None
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"profile has a value of the wrong type: {exc}", file=where) from None
