"""One client profile against a running sshd: a connection per authentication method it uses.

Each method gets its own connection (only that method), so each has a result of its own:
`accepted`, `failed` (offered, tried, refused), `not offered` (the server's list lacked it, so
the client never tried it) or `not reached` (the connection ended before authentication, e.g.
no common algorithm). A connection that got in runs a command (exec) and, when the client does
SFTP, an SFTP session; both run over the profile's own channel requests, windows and packet
sizes (simulator/driver/session.py).

Every connection comes from its own loopback address (127.0.0.N): sshd's per-source limits
(PerSourcePenalties from 9.8, PerSourceMaxStartups) are the user's, and one client's refusals
must not penalise the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncssh

from simulator.driver.runner import connect_profiled, end_connection
from simulator.driver.session import run_session
from simulator.profiles import ClientProfile
from simulator.scenario.model import AuthStep, ConnectionPlan, SessionAction, SftpOp

USER = "compat"
# A throwaway password of an account that exists only inside the private sshd's namespace.
PASSWORD = "sshsim-compat-Pw1"
COMMAND = "echo sshsim-compat"


def sftp_ops(name: str) -> list[SftpOp]:
    """What a client does over SFTP: where am I, upload, list, remove. `name` is the attempt's
    own file: every profile works in the same home folder at the same time."""
    return [SftpOp("realpath", "."), SftpOp("put", name, content="sshsim compat\n"), SftpOp("ls", "."),
            SftpOp("rm", name)]


@dataclass
class Attempt:
    """One connection of one profile with one authentication method, from the client's side."""

    profile: str
    method: str
    source: str
    port: int | None = None
    offered: list[str] | None = None
    auth: str = "not reached"  # accepted | failed | not offered | not reached | not testable
    failure: str | None = None  # the client's words for how it ended, when it did not get in
    session: str | None = None  # ok | refused | failed: ... (None: not run)
    sftp: str | None = None
    refused: list[str] = field(default_factory=list)


class _Ports:
    """Stands in for the scenario tracker: the client's port, learnt at connect."""

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt

    def set_port(self, conn_id: str, port: int) -> None:
        self.attempt.port = port


async def attempt(host: str, port: int, profile: ClientProfile, method: str, source: str, identity: str,
                  *, work: bool) -> Attempt:
    """Connect as `profile` with `method` only; with `work`, run a command and SFTP once in."""
    result = Attempt(profile.name, method, source)
    plan = ConnectionPlan(id=f"{profile.name}/{method}", user=USER, source=source,
                          auth=[AuthStep(method, password=PASSWORD if method == "password" else None,
                                         responses=[PASSWORD] if method == "keyboard-interactive" else [])])
    seen: list[Any] = []
    try:
        conn = await connect_profiled(host, port, profile, username=USER, plan=plan,
                                      client_keys=[identity] if method == "publickey" else None,
                                      tracker=_Ports(result), on_connection=seen.append)  # type: ignore[arg-type]
    except asyncssh.PermissionDenied as exc:
        result.offered = _offered(seen)
        result.auth = "not offered" if result.offered is not None and method not in result.offered else "failed"
        result.failure = f"authentication failed: {exc.reason}"
        return result
    except (asyncssh.KeyExchangeFailed, asyncssh.ProtocolError) as exc:
        result.offered = _offered(seen)
        result.auth = "not testable" if "cannot do" in str(exc.reason) else "not reached"
        result.failure = f"key exchange failed: {exc.reason}"
        return result
    except asyncssh.DisconnectError as exc:
        result.offered = _offered(seen)
        result.failure = f"disconnected by the server: {exc.reason}"
        return result
    except OSError as exc:
        result.offered = _offered(seen)
        result.failure = f"connection failed: {exc.strerror or exc}"
        return result
    result.offered = _offered(seen)
    result.auth = "accepted"
    try:
        if work:
            result.session = await _session(conn, profile, SessionAction(kind="exec", command=COMMAND), result)
            if profile.does_sftp:
                sftp = SessionAction(kind="subsystem", subsystem="sftp", sftp=sftp_ops(f"sshsim-compat-{source}.txt"))
                result.sftp = await _session(conn, profile, sftp, result)
    finally:
        await end_connection(conn, plan, profile)
    return result


def _offered(seen: list[Any]) -> list[str] | None:
    """The methods the server listed first (simulator/driver/fidelity.py hook 11), or None."""
    return getattr(seen[0], "_sshsim_offered", None) if seen else None


async def _session(conn: asyncssh.SSHClientConnection, profile: ClientProfile, action: SessionAction,
                   result: Attempt) -> str:
    """ok, refused (the server said no to the channel or its request) or failed: why."""
    try:
        status, refused = await run_session(conn, profile, action)
    except asyncssh.ChannelOpenError as exc:
        return f"refused: {exc.reason}"
    except (asyncssh.Error, OSError) as exc:
        return f"failed: {getattr(exc, 'reason', None) or exc}"
    result.refused.extend(refused)
    final = [r for r in refused if r in ("exec", "subsystem")]
    if final:
        return "refused"
    if action.kind == "exec" and status not in (0, None):
        return f"failed: exit status {status}"
    return "ok"
