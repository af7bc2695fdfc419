"""The typed plan a scenario file becomes: what each client does and what the server must log.

The loader validates a file against the JSON Schema first, so these constructors can trust the
shape of what they get; they only turn it into names the driver and verifier read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.builds.features import Requirement, requirement_from
from simulator.target.base import Origin, ServerSpec, UserSpec
from simulator.target.chroots import as_chroot_dirs
from simulator.target.userconfig import load_user_config
from simulator.yamlread import Position  # where a value came from in the scenario file


@dataclass
class SyncPoint:
    """Wait until the server logs `event` (with `fields`) for `connection`."""

    connection: str | None
    event: str
    fields: dict[str, Any] = field(default_factory=dict)
    timeout: float = 30.0


@dataclass
class AuthStep:
    """One authentication attempt, in the order the client makes them."""

    method: str  # none | publickey | password | keyboard-interactive
    password: str | None = None
    responses: list[str] = field(default_factory=list)
    # publickey: the key's type (ed25519 | ecdsa | rsa), the signature algorithm to sign with
    # (None: what the client and server agree on) and whether authorized_keys holds the key.
    key: str = "ed25519"
    algorithm: str | None = None
    authorized: bool = True


@dataclass
class SftpOp:
    op: str  # put | get | ls | mkdir | rm | stat | realpath | rename
    path: str
    size: int | None = None
    content: str | None = None
    target: str | None = None


@dataclass
class SessionAction:
    """A session channel: its requests, then shell, exec or a subsystem."""

    x11: bool = False
    agent: bool = False
    pty: bool = False
    term: str = "xterm"
    cols: int = 80
    rows: int = 24
    env: dict[str, str] = field(default_factory=dict)
    kind: str = "shell"  # shell | exec | subsystem
    command: str | None = None
    subsystem: str | None = None
    requests: list[str] | None = None
    input: str | None = None
    sftp: list[SftpOp] = field(default_factory=list)
    exit_status: int | None = None
    expect_refused: list[str] = field(default_factory=list)
    close: str = "wait"


@dataclass
class ForwardAction:
    """A direct-tcpip channel (ssh -L), to loopback only."""

    host: str
    port: int
    expect_refused: bool = False
    data: str | None = None


@dataclass
class WaitAction:
    seconds: float


@dataclass
class WaitForAction:
    sync: SyncPoint


Action = SessionAction | ForwardAction | WaitAction | WaitForAction


@dataclass
class RawPlan:
    """A client that does no SSH (`raw:`): TCP only, the banner line if asked, then a hold."""

    send_banner: bool = False
    hold: float = 0.0


@dataclass
class ConnectionPlan:
    """One client connection: who it impersonates, how it logs in, what it does, how it ends."""

    id: str
    profile: str | dict[str, Any] = "asyncssh-2.24.1"
    user: str = "user"
    source: str = "127.0.0.1"
    start: float = 0.0
    after: SyncPoint | None = None
    auth: list[AuthStep] = field(default_factory=lambda: [AuthStep("publickey")])
    actions: list[Action] = field(default_factory=list)
    end: str = "profile"  # profile | disconnect | drop
    disconnect_code: int | None = None
    disconnect_text: str | None = None
    timeout: float = 60.0
    # before-point -> what to wait for there (e.g. "signed-publickey").
    pauses: dict[str, SyncPoint] = field(default_factory=dict)
    position: Position | None = None
    raw: RawPlan | None = None


@dataclass
class ExpectedEvent:
    event: str
    fields: dict[str, Any] = field(default_factory=dict)
    optional: bool = False
    role: str | None = None
    position: Position | None = None
    # Logged somewhere in the connection, in no particular order with the other expected events.
    anywhere: bool = False
    requires: Requirement | None = None


@dataclass
class Expectation:
    """What the server must log for one connection."""

    connection: str
    events: list[ExpectedEvent] = field(default_factory=list)
    strict: bool = False
    absent: list[ExpectedEvent] = field(default_factory=list)
    auth: str | None = None  # accepted | failed | none
    outcome: str | None = None  # established | refused | closed
    position: Position | None = None
    requires: Requirement | None = None


@dataclass
class Scenario:
    """A whole scenario, ready to run: the server, the connections, the expectations."""

    name: str
    path: str
    server: ServerSpec
    target: str
    connections: list[ConnectionPlan]
    expectations: dict[str, Expectation]
    description: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    # The matrix cell ("user=a,profile=b") this scenario is, or "" outside a matrix: reports
    # name the scenario and the cell apart (JUnit classname and name, pytest item ids).
    cell: str = ""
    # `requires:`: the OpenSSH versions the whole scenario applies to (None: every version).
    requires: Requirement | None = None
    requires_at: Position | None = None  # where that `requires:` is in the file

    def connection(self, conn_id: str) -> ConnectionPlan:
        for conn in self.connections:
            if conn.id == conn_id:
                return conn
        raise KeyError(conn_id)


def build_scenario(data: dict[str, Any], path: str, positions: dict[tuple, Position],
                   variables: dict[str, Any] | None = None) -> Scenario:
    """Turn validated scenario data into the typed plan."""
    server_data = data.get("server", {})
    config_items = list(server_data.get("sshd_config", []))
    users = [UserSpec(**{k: v for k, v in u.items()}) for u in server_data.get("users", [])] or [UserSpec()]
    server = ServerSpec(
        users=users,
        overrides=[item if isinstance(item, str) else item["line"] for item in config_items],
        override_origins=[Origin(*positions[("server", "sshd_config", i)], key="server.sshd_config")
                          if ("server", "sshd_config", i) in positions else Origin(file=path, key="server.sshd_config")
                          for i in range(len(config_items))],
        override_requires=[None if isinstance(item, str) else requirement_from(item["requires"])
                           for item in config_items],
        log_level=server_data.get("log_level", "DEBUG1"),
        host_name=server_data.get("host_name", "localhost"),
        first_pid=server_data.get("first_pid"),
        chroot_dirs=as_chroot_dirs(server_data.get("chroot_dirs", [])),
        config_file=_user_config(server_data, path, positions),
        # With a user's sshd_config, LogLevel is sshsim's only when the scenario names one.
        own_log_level="log_level" in server_data,
        openssh=server_data.get("openssh"),
        host_key_types=tuple(server_data.get("host_keys", ServerSpec.host_key_types)),
        own_host_keys="host_keys" in server_data,
        openssh_origin=(Origin(*positions[("server", "openssh")], key="server.openssh")
                        if ("server", "openssh") in positions else Origin(file=path, key="server.openssh")),
    )
    connections = [
        _connection(c, positions.get(("connections", i))) for i, c in enumerate(data["connections"])
    ]
    _add_client_keys(users, connections)
    expectations = {
        conn_id: _expectation(conn_id, exp, positions, ("expect", conn_id))
        for conn_id, exp in (data.get("expect") or {}).items()
    }
    return Scenario(
        name=data.get("name") or path.rsplit("/", 1)[-1].rsplit(".", 1)[0],
        path=path,
        server=server,
        target=server_data.get("target", "local"),
        connections=connections,
        expectations=expectations,
        description=data.get("description", ""),
        variables=dict(variables or {}),
        requires=requirement_from(data["requires"]) if "requires" in data else None,
        requires_at=positions.get(("requires",)),
    )


def _sync(data: dict[str, Any], default_connection: str | None = None) -> SyncPoint:
    return SyncPoint(
        connection=data.get("connection", default_connection),
        event=data["event"],
        fields=dict(data.get("fields", {})),
        timeout=float(data.get("timeout", 30.0)),
    )


def _add_client_keys(users: list[UserSpec], connections: list[ConnectionPlan]) -> None:
    """Every (key type, authorized) the connections' publickey steps use, on the user that logs
    in with it, so the target makes those keys; users the server does not have get none (the
    driver then offers a throw-away key of the type)."""
    by_name = {user.name: user for user in users}
    for conn in connections:
        user = by_name.get(conn.user)
        for step in conn.auth:
            wanted = (step.key, step.authorized)
            if user is not None and step.method == "publickey" and wanted not in user.client_keys:
                user.client_keys.append(wanted)


def _auth(step: Any) -> AuthStep:
    if isinstance(step, str):
        return AuthStep(step)
    if "publickey" in step:
        key = step["publickey"]
        return AuthStep("publickey", key=key.get("key", "ed25519"), algorithm=key.get("algorithm"),
                        authorized=key.get("authorized", True))
    if "password" in step:
        return AuthStep("password", password=step["password"])
    return AuthStep("keyboard-interactive", responses=list(step["keyboard-interactive"]))


def _session(data: dict[str, Any]) -> SessionAction:
    pty = data.get("pty", False)
    session = SessionAction(
        x11=data.get("x11", False),
        agent=data.get("agent", False),
        pty=bool(pty),
        env=dict(data.get("env", {})),
        requests=data.get("requests"),
        input=data.get("input"),
        exit_status=data.get("exit_status"),
        expect_refused=list(data.get("expect_refused", [])),
        close=data.get("close", "wait"),
    )
    if isinstance(pty, dict):
        session.term = pty.get("term", session.term)
        session.cols = pty.get("cols", session.cols)
        session.rows = pty.get("rows", session.rows)
    if "exec" in data:
        session.kind, session.command = "exec", data["exec"]
    elif "subsystem" in data or "sftp" in data:
        session.kind, session.subsystem = "subsystem", data.get("subsystem", "sftp")
    for op in data.get("sftp", []):
        (name, arg), = op.items()
        if name == "put":
            session.sftp.append(SftpOp("put", arg["path"], size=arg.get("size"), content=arg.get("content")))
        elif name == "rename":
            session.sftp.append(SftpOp("rename", arg[0], target=arg[1]))
        else:
            session.sftp.append(SftpOp(name, arg))
    return session


def _action(data: dict[str, Any], conn_id: str) -> Action:
    (name, arg), = data.items()
    if name == "session":
        return _session(arg)
    if name == "forward":
        return ForwardAction(host=arg.get("host", "127.0.0.1"), port=arg["port"],
                             expect_refused=arg.get("expect_refused", False), data=arg.get("data"))
    if name == "wait":
        return WaitAction(float(arg))
    return WaitForAction(_sync(arg, conn_id))


def _connection(data: dict[str, Any], position: Position | None) -> ConnectionPlan:
    plan = ConnectionPlan(id=data["id"], position=position)
    plan.profile = data.get("profile", plan.profile)
    plan.user = data.get("user", plan.user)
    plan.source = data.get("source", plan.source)
    plan.start = float(data.get("start", 0.0))
    plan.timeout = float(data.get("timeout", plan.timeout))
    if "after" in data:
        plan.after = _sync(data["after"])
    if "auth" in data:
        plan.auth = [_auth(step) for step in data["auth"]]
    plan.actions = [_action(a, plan.id) for a in data.get("actions", [])]
    plan.pauses = {p["before"]: _sync(p["until"]) for p in data.get("pause", [])}
    if "raw" in data:
        plan.raw = RawPlan(bool(data["raw"].get("send_banner", False)), float(data["raw"].get("hold", 0.0)))
    end = data.get("end", "profile")
    if isinstance(end, dict):
        plan.end = "disconnect"
        plan.disconnect_code = end["disconnect"].get("code")
        plan.disconnect_text = end["disconnect"].get("text")
    else:
        plan.end = end
    return plan


def _expected(item: Any, position: Position | None) -> ExpectedEvent:
    if isinstance(item, str):
        return ExpectedEvent(item, position=position)
    return ExpectedEvent(item["event"], dict(item.get("fields", {})), item.get("optional", False),
                         item.get("role"), position, item.get("anywhere", False),
                         requirement_from(item["requires"]) if "requires" in item else None)


def _expectation(conn_id: str, data: dict[str, Any], positions: dict[tuple, Position],
                 base: tuple) -> Expectation:
    outcome = data.get("outcome", {})
    return Expectation(
        connection=conn_id,
        events=[_expected(e, positions.get(base + ("events", i))) for i, e in enumerate(data.get("events", []))],
        strict=data.get("strict", False),
        absent=[_expected(e, positions.get(base + ("absent", i))) for i, e in enumerate(data.get("absent", []))],
        auth=outcome.get("auth"),
        outcome=outcome.get("connection"),
        position=positions.get(base),
        requires=requirement_from(data["requires"]) if "requires" in data else None,
    )


def _user_config(server_data: dict[str, Any], path: str, positions: dict[tuple, Position]) -> Any:
    """`server.sshd_config_file`: the user's own sshd_config, relative to the scenario's folder
    and confined to it (simulator/target/userconfig.py)."""
    name = server_data.get("sshd_config_file")
    if name is None:
        return None


    at = positions.get(("server", "sshd_config_file"))
    origin = Origin(*at, key="server.sshd_config_file") if at else Origin(file=path, key="server.sshd_config_file")
    return load_user_config(name, base=Path(path).parent, origin=origin)
