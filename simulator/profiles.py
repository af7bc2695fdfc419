"""Client profiles: what a real SSH client sends, loaded from simulator/data/profiles/*.yaml.

A profile is data, checked against the JSON Schema shipped beside the scenario schema
(simulator/schema/profile.schema.json, `sshsim schema --profile`): adding a client means adding
a file, not touching the driver. A scenario names a profile, or takes one and replaces some keys
(`profile: {base: putty-0.80, banner: ...}`); a misspelt key in either is a file:line:column
error, never a silently ignored setting.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from simulator.errors import BadInputError
from simulator.io import read_report
from simulator.kex.kexinit import hassh
from simulator.yamlread import Position, key_path, load_yaml_with_positions, nearest, schema_error

_FOLDER = "profiles"
# Folders (':'-separated) of the user's own profile files, e.g. ones `sshsim learn` wrote; a
# scenario names them as it names a shipped profile. A shipped name is never shadowed.
PROFILE_PATH_ENV = "SSHSIM_PROFILE_PATH"


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
    # How `hassh` was measured from the real client; empty when it is only computed.
    hassh_measured: str = ""
    none_first: bool = True
    publickey_query: bool = True
    # The methods the client uses by default, in its order (sshsim compat tries each).
    auth_methods: tuple[str, ...] = ("publickey", "keyboard-interactive", "password")
    # The client does SFTP (the profile describes its SFTP channel).
    does_sftp: bool = False
    first_channel: int = 0
    window: int = 2 * 1024 * 1024
    max_packet: int = 32768
    # Sessions without a pty: OpenSSH halves its window and packet for interactive ones only.
    no_pty_window: int | None = None
    no_pty_max_packet: int | None = None
    # PuTTY's winadj@putty.projects.tartarus.org: sent (want_reply) before each WINDOW_ADJUST.
    window_adjust_request: str | None = None
    session_requests: tuple[str, ...] = ("env", "pty-req", "x11-req", "auth-agent-req@openssh.com", "shell")
    pipelined: bool = False
    want_reply: dict[str, bool] = field(default_factory=dict)
    sftp_want_reply: dict[str, bool] = field(default_factory=dict)
    sftp_window: int | None = None
    sftp_max_packet: int | None = None
    # Request order for an SFTP session when it differs (psftp's simple@putty hint).
    sftp_requests: tuple[str, ...] = ()
    close: str = "disconnect"
    # "before": CHANNEL_CLOSE exchanged before the connection ends; "none": ended with it open.
    channel_close: str = "before"
    # Method name of the signed publickey request when the server offers host binding.
    signed_method: str | None = None
    ignore_before_password: bool = False
    ignore_before_kbdint_response: bool = False
    ignore_every_packet: bool = False
    service_request_per_attempt: bool = False
    # The client answers the server's CHANNEL_EOF with its own before closing (PuTTY).
    eof_on_server_eof: bool = False
    global_requests: tuple[str, ...] = ()
    # Session kinds after whose input the client sends CHANNEL_EOF by itself.
    eof_kinds: tuple[str, ...] = ()
    disconnect_code: int = 11
    disconnect_text: str = "disconnected by user"
    guess: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    # Conditional behaviour (`when:` in the file): ((facts, overrides), ...), see for_session.
    when: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = field(default=(), compare=False, repr=False)
    # The file's data, so a `when:` entry can be merged into it the way a scenario override is.
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def for_session(self, *, kind: str, pty: bool, forwarding: bool) -> ClientProfile:
        """This profile as it behaves for one session: every matching `when:` entry applied.

        A client like plink decides its channel window and requests from what the session asks
        for (simple mode when nothing is forwarded); the profile states that as data, and the
        driver asks here, per session, instead of knowing any client by name.
        """
        facts = {"kind": kind, "pty": pty, "forwarding": forwarding}
        data = self.data
        for condition, overrides in self.when:
            if all(facts.get(key) == value for key, value in condition.items()):
                data = _merge(data, overrides)
        return self if data is self.data else _from_data(self.name, data)

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
        return hassh(self.kex, self.encryption, self.mac, self.compression)

    def reply_wanted(self, request: str) -> bool:
        if request in self.want_reply:
            return self.want_reply[request]
        if request in self.sftp_want_reply:
            return self.sftp_want_reply[request]
        return request not in ("env", "auth-agent-req@openssh.com")


def _folder() -> Any:
    return resources.files("simulator.data").joinpath(_FOLDER)


@lru_cache(maxsize=1)
def profile_schema() -> dict[str, Any]:
    """The published JSON Schema of profile files (simulator/schema/profile.schema.json)."""
    return json.loads(resources.files("simulator").joinpath("schema/profile.schema.json").read_text())


@lru_cache(maxsize=1)
def override_schema() -> dict[str, Any]:
    """What a scenario's `profile: {base: ..., ...}` may hold: any profile key, none required.

    Derived from the profile schema (never written out twice): every `required` and the
    close/disconnect rule dropped, since the named base supplies what the override leaves out.
    """
    schema = copy.deepcopy(profile_schema())

    def loosen(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("required", None)
            for value in node.values():
                loosen(value)

    loosen(schema)
    schema.pop("if", None)
    schema.pop("then", None)
    schema["properties"]["base"] = {"type": "string", "description": "The profile the override starts from."}
    schema["required"] = ["base"]
    return schema


def check_override(spec: dict[str, Any], positions: dict[tuple, Position], path: str, at: tuple) -> None:
    """A scenario's profile override against the profile schema, errors placed in the scenario file.

    `at` is where the override stands in the scenario (("connections", 0, "profile")). A key the
    driver does not perform yet is refused too: a scenario setting it would expect an effect.
    """
    inner = {key[len(at):]: pos for key, pos in positions.items() if key[:len(at)] == at}
    error = schema_error(spec, inner, path, override_schema())
    if error is not None:
        own = "" if error.key in (None, "(top)") else error.key
        outer = key_path(at) if at else ""
        error.key = outer + ("" if not (outer and own) or own.startswith("[") else ".") + own or None
        raise error


def parse_profile(text: str, path: str) -> dict[str, Any]:
    """A profile file's data, checked against the schema; errors name path:line:column and the key."""
    data, positions = load_yaml_with_positions(text, path)
    if not isinstance(data, dict):
        raise BadInputError("a profile file is a mapping of keys (name, banner, kex, ...)", file=path, line=1)
    error = schema_error(data, positions, path, profile_schema())
    if error is not None:
        raise error
    for index, entry in enumerate(data.get("when") or ()):
        # What a session would get must be a valid profile too (a `then` setting a bad window).
        merged = _merge(data, entry["then"])
        merged.pop("when", None)
        error = schema_error(merged, {}, path, profile_schema())
        if error is not None:
            pos = positions.get(("when", index, "then")) or nearest(positions, ("when", index, "then"))
            raise BadInputError(f"this entry makes an invalid profile: {error.key or ''}: {error.message}", file=path,
                                line=pos[1] if pos else None, column=pos[2] if pos else None,
                                key=f"when[{index}].then")
    return data


@lru_cache(maxsize=1)
def shipped_profiles() -> frozenset[str]:
    """Names of the profiles shipped with the product."""
    return frozenset(e.name.rsplit(".", 1)[0] for e in _folder().iterdir()
                     if e.name.endswith(".yaml") and not e.name.startswith("_"))


@lru_cache(maxsize=1)
def _user_profiles() -> dict[str, Path]:
    """name -> file of each profile in the folders of $SSHSIM_PROFILE_PATH (shipped names left out)."""
    found: dict[str, Path] = {}
    for folder in filter(None, os.environ.get(PROFILE_PATH_ENV, "").split(":")):
        if not os.path.isdir(folder):
            continue
        for entry in sorted(Path(folder).glob("*.yaml")):
            name = entry.name[:-len(".yaml")]
            if name not in shipped_profiles() and name not in found and not entry.is_symlink():
                found[name] = entry
    return found


def known_profiles() -> frozenset[str]:
    """Names of all profiles: the shipped ones and those in $SSHSIM_PROFILE_PATH."""
    return shipped_profiles() | frozenset(_user_profiles())


@cache
def _raw(name: str) -> dict[str, Any]:
    if name not in known_profiles():
        raise BadInputError(f"unknown client profile {name!r} (known: {', '.join(sorted(known_profiles()))})")
    if name in shipped_profiles():
        entry = _folder().joinpath(f"{name}.yaml")
        return parse_profile(entry.read_text(encoding="utf-8"), str(entry))
    return _read_file(_user_profiles()[name])


def _read_file(path: Path) -> dict[str, Any]:
    return parse_profile(read_report(path, "profile file"), str(path))


def load_profile_file(path: Path) -> ClientProfile:
    """A profile from a file the user names (`sshsim learn --check FILE`), checked like any."""
    data = _read_file(path)
    return _from_data(str(data.get("name") or Path(path).stem), data)


def profile_from_data(name: str, data: dict[str, Any]) -> ClientProfile:
    """A profile from data already checked by parse_profile (a profile `sshsim learn` made)."""
    return _from_data(name, data)


def load_profile(spec: str | dict[str, Any]) -> ClientProfile:
    """A profile by name, or a named base with some keys replaced."""
    if isinstance(spec, str):
        return _from_data(spec, _raw(spec))
    # Scenarios are checked with positions when they load (check_override); this covers callers
    # that build a plan in code, so an unknown key is never silently ignored.
    check_override(spec, {}, "", ())
    base = _merge(_raw(spec["base"]), {k: v for k, v in spec.items() if k != "base"})
    return _from_data(spec.get("name", f"{spec['base']}+custom"), base)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` over `base`: a nested mapping (auth, channel, ...) merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


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
            hassh_measured=str(data.get("hassh_measured", "")),
            none_first=bool(auth.get("none_first", True)),
            publickey_query=bool(auth.get("publickey_query", True)),
            auth_methods=tuple(auth.get("methods") or ClientProfile.auth_methods),
            does_sftp="sftp" in data,
            first_channel=int(channel.get("first_id", 0)),
            window=int(channel.get("window", 2 * 1024 * 1024)),
            max_packet=int(channel.get("max_packet", 32768)),
            no_pty_window=channel.get("no_pty_window"),
            no_pty_max_packet=channel.get("no_pty_max_packet"),
            window_adjust_request=channel.get("window_adjust_request"),
            # request_order: every request the client can make, in its order; requests: older form.
            session_requests=tuple(session.get("request_order") or session.get("requests")
                                   or ClientProfile.session_requests),
            pipelined=bool(session.get("pipelined", False)),
            want_reply={str(k): bool(v) for k, v in (session.get("want_reply") or {}).items()},
            sftp_window=sftp.get("window"),
            sftp_max_packet=sftp.get("max_packet"),
            sftp_requests=tuple(sftp.get("requests") or ()),
            sftp_want_reply={str(k): bool(v) for k, v in (sftp.get("want_reply") or {}).items()},
            channel_close=str(data.get("channel_close", "before")),
            signed_method=auth.get("signed_method"),
            ignore_before_password=bool(auth.get("ignore_before_password", False)),
            ignore_before_kbdint_response=bool(auth.get("ignore_before_kbdint_response", False)),
            ignore_every_packet=bool(data.get("ignore_every_packet", False)),
            service_request_per_attempt=bool(auth.get("service_request_per_attempt", False)),
            eof_on_server_eof=bool(session.get("eof_on_server_eof", False)),
            global_requests=tuple(session.get("global_requests") or ()),
            eof_kinds=tuple(session.get("eof") or ()),
            close={"drop-tcp": "drop"}.get(str(data.get("close", "disconnect")), str(data.get("close", "disconnect"))),
            disconnect_code=int(disconnect.get("code", 11)),
            disconnect_text=str(disconnect.get("text", "disconnected by user")),
            guess=tuple(data.get("guess") or ()),
            sources=tuple(str(s) for s in data.get("sources") or ()),
            when=tuple((dict(entry["if"]), dict(entry["then"])) for entry in data.get("when") or ()),
            data=data,
        )
    except KeyError as exc:
        raise BadInputError(f"profile is missing required key {exc.args[0]!r}", file=where) from None
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"profile has a value of the wrong type: {exc}", file=where) from None
