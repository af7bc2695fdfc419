"""Fact by fact: does a profile say what a recording shows? (`sshsim learn --check`, the tests)

`compare(profile, recordings)` holds a ClientProfile against recorded connections: the
connection-wide facts (banner, KEXINIT lists, the auth sequence, teardown) against the profile
learned from them, and each recorded session against the profile as it applies to that session
(its `when:` entries, its window rule, the request order the driver would send for what that
session asked). A fact the recording could not show is not compared. `impersonate` runs the
driver's impersonation of a profile through the standard flows against the capturing endpoint,
so the same comparison tells where the driver does not perform its own profile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncssh

from simulator.driver.runner import connect_profiled, end_connection, ending_profile
from simulator.driver.session import channel_size, request_order, run_session
from simulator.learn.endpoint import Endpoint
from simulator.learn.merge import Learned, describe, setup_requests, situation
from simulator.learn.record import ConnectionFacts, read_connection
from simulator.profiles import ClientProfile
from simulator.scenario.model import AuthStep, ConnectionPlan, SessionAction, SftpOp

FLOWS = ("exec", "shell", "sftp", "password")


@dataclass(frozen=True)
class Difference:
    fact: str
    profile: Any
    recorded: Any
    # What the two sides are (`learn --check P --against L`: L's facts, P's impersonation).
    labels: tuple[str, str] = ("profile", "recorded")

    def __str__(self) -> str:
        return f"{self.fact}: {self.labels[0]} {_show(self.profile)}, {self.labels[1]} {_show(self.recorded)}"


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def compare(profile: ClientProfile, conns: Sequence[ConnectionFacts], learned: Learned,
            unobserved: Sequence[str] = (), labels: tuple[str, str] = ("profile", "recorded"),
            ) -> tuple[list[str], list[Difference]]:
    """(facts that agree, differences), every recorded fact once; `unobserved`: facts the
    profile itself does not know (a learned profile's `unobserved`), not compared either."""
    same: list[str] = []
    diffs: list[Difference] = []
    data = learned.data
    skip = set(data.get("unobserved", ())) | set(unobserved)

    def check(fact: str, want: Any, got: Any) -> None:
        if fact in skip:
            return
        if _norm(want) == _norm(got):
            same.append(fact)
        else:
            diffs.append(Difference(fact, want, got, labels))

    check("banner", profile.banner, data["banner"])
    for key in ("kex", "host_key", "encryption", "mac", "compression"):
        check(key, list(getattr(profile, key)), data[key])
    check("hassh", profile.computed_hassh(), data["hassh"])
    auth = data["auth"]
    check("auth.none_first", profile.none_first, auth["none_first"])
    check("auth.publickey_query", profile.publickey_query, auth["publickey_query"])
    if "auth.signed_method" not in skip:
        check("auth.signed_method", profile.signed_method or "publickey", auth.get("signed_method", "publickey"))
    if "service_request_per_attempt" in auth:
        check("auth.service_request_per_attempt", profile.service_request_per_attempt,
              auth["service_request_per_attempt"])
    if "ignore_before_password" in auth:
        check("auth.ignore_before_password", profile.ignore_before_password, auth["ignore_before_password"])
    check("ignore_every_packet", profile.ignore_every_packet, bool(data.get("ignore_every_packet", False)))
    if "ignore_before_kbdint_response" in auth:
        check("auth.ignore_before_kbdint_response", profile.ignore_before_kbdint_response,
              auth["ignore_before_kbdint_response"])
    # IGNOREs no profile key expresses: none for a hand-written profile, what the recording of
    # a learned one showed.
    observed = (profile.data.get("learned") or {}).get("observations", ())
    expected = [o for o in observed if o.startswith("SSH_MSG_IGNORE")]
    ignores = [o for o in data["learned"]["observations"] if o.startswith("SSH_MSG_IGNORE")]
    check("ignore elsewhere", expected, ignores)
    check("channel.first_id", profile.first_channel, data["channel"]["first_id"])
    check("session.global_requests", list(profile.global_requests), data["session"].get("global_requests", []))
    for number, conn in enumerate(conns, 1):
        for channel in conn.sessions:
            if not channel.kind:
                continue
            sit = situation(conn, channel)
            where = describe(conn, channel, number)
            applied = profile.for_session(kind=sit.kind, pty=sit.pty, forwarding=sit.forwarding)
            sftp = sit.kind == "subsystem" and channel.subsystem == "sftp"
            window, max_packet = channel_size(applied, pty=sit.pty, sftp=sftp)
            check(f"{where}: window", window, channel.window)
            check(f"{where}: max_packet", max_packet, channel.max_packet)
            check(f"{where}: requests", _planned(applied, channel), setup_requests(channel))
            # PuTTY's winadj@ goes with each window adjust (the driver sends it since issue 14):
            # checked where the client adjusted its window, as the profile's name, want_reply 1.
            winadj = sorted({r.name for r in channel.requests if r.name.startswith("winadj@")})
            if channel.window_adjusts or winadj:
                check(f"{where}: window_adjust_request", applied.window_adjust_request,
                      winadj[0] if winadj else None)
            for request in channel.requests:
                if request.name in ("window-change", "signal", "break"):
                    continue
                wanted = True if request.name.startswith("winadj@") else applied.reply_wanted(request.name)
                check(f"{where}: {request.name} want_reply", wanted, request.want_reply)
        last = next((ch for ch in reversed(conn.sessions) if ch.kind), None)
        if last is None:
            continue
        sit = situation(conn, last)
        applied = profile.for_session(kind=sit.kind, pty=sit.pty, forwarding=sit.forwarding)
        where = f"connection {number}"
        ended = {"drop": "drop-tcp"}.get(conn.ended, conn.ended)
        check(f"{where}: close", {"drop": "drop-tcp"}.get(applied.close, applied.close), ended)
        if conn.disconnect is not None:
            check(f"{where}: disconnect", (applied.disconnect_code, applied.disconnect_text), conn.disconnect)
    session = data["session"]
    if "eof" in session or "session.eof" not in skip:
        check("session.eof", sorted(profile.eof_kinds), sorted(session.get("eof", [])))
    if "eof_on_server_eof" in session:
        check("session.eof_on_server_eof", profile.eof_on_server_eof, session["eof_on_server_eof"])
    if "session.pipelined" not in skip:
        check("session.pipelined", profile.pipelined, session["pipelined"])
    return same, diffs


def _norm(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def _planned(profile: ClientProfile, channel: Any) -> list[str]:
    """The request names the driver sends for a session asking what `channel` asked for."""
    names = {r.name for r in channel.requests}
    env = {r.shape.get("name", f"V{i}"): "x" for i, r in enumerate(channel.requests) if r.name == "env"}
    action = SessionAction(kind=channel.kind, pty="pty-req" in names, x11="x11-req" in names,
                           agent="auth-agent-req@openssh.com" in names, env=env,
                           subsystem=channel.subsystem or None, command="true" if channel.kind == "exec" else None)
    folded: list[str] = []
    for name, _ in request_order(profile, action):
        if not folded or folded[-1] != name:
            folded.append(name)
    return folded


def flow_plan(profile: ClientProfile, flow: str, password: str) -> ConnectionPlan:
    """One of the standard flows (the real-clients suite's): exec, shell with a pty, an SFTP
    listing, a wrong then a right password."""
    if flow == "password":
        auth = [AuthStep("password", "wrong-" + password), AuthStep("password", password)]
        action = SessionAction(kind="exec", command="true")
    else:
        auth = [AuthStep("publickey")]
        if flow == "exec":
            action = SessionAction(kind="exec", command="true")
        elif flow == "shell":
            action = SessionAction(kind="shell", pty=True, input="exit\n")
        else:
            action = SessionAction(kind="subsystem", subsystem="sftp", sftp=[SftpOp("ls", ".")])
    return ConnectionPlan(id=f"check-{flow}", profile=profile.name, auth=auth, actions=[action])


def flows_of(profile: ClientProfile) -> tuple[str, ...]:
    """The flows a profile can do: SFTP when it describes an SFTP channel, the password retry
    when it logs in by password."""
    return tuple(f for f in FLOWS if (f != "sftp" or profile.does_sftp)
                 and (f != "password" or "password" in profile.auth_methods))


def replay_plans(data: dict[str, Any], profile: ClientProfile, password: str) -> list[ConnectionPlan]:
    """The connections a learned profile recorded (`learned.connections`), as plans for `profile`."""
    plans = []
    for index, entry in enumerate(data.get("learned", {}).get("connections") or ()):
        methods = list(entry.get("auth") or ["publickey"])
        # The last password (or keyboard-interactive answer) was the right one, those before wrong.
        last_password = max((i for i, m in enumerate(methods) if m == "password"), default=-1)
        last_kbdint = max((i for i, m in enumerate(methods) if m == "keyboard-interactive"), default=-1)
        auth = []
        for i, method in enumerate(methods):
            if method == "password":
                auth.append(AuthStep("password", password if i == last_password else "wrong-" + password))
            elif method == "keyboard-interactive":
                auth.append(AuthStep("keyboard-interactive",
                                     responses=[password if i == last_kbdint else "wrong-" + password]))
            elif method == "publickey":
                auth.append(AuthStep("publickey"))
        actions: list[Any] = []
        for session in entry.get("sessions") or ():
            kind = session.get("kind", "shell")
            actions.append(SessionAction(
                kind=kind, pty=bool(session.get("pty")), x11=bool(session.get("x11")),
                agent=bool(session.get("agent")), env={name: "C" for name in session.get("env") or () if name},
                command="true" if kind == "exec" else None, subsystem=session.get("subsystem") or None,
                input="exit\n" if kind == "shell" else None,
                sftp=[SftpOp("ls", ".")] if kind == "subsystem" and session.get("subsystem") == "sftp" else []))
        plans.append(ConnectionPlan(id=f"replay-{index + 1}", profile=profile.name,
                                    auth=auth or [AuthStep("publickey")], actions=actions))
    return plans


async def impersonate(profile: ClientProfile, endpoint: Endpoint, plans: Sequence[ConnectionPlan]) -> None:
    """Run the profile's impersonation of each plan against the endpoint, one connection each."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    for plan in plans:
        methods = {step.method for step in plan.auth}
        conn = await connect_profiled(endpoint.host, endpoint.port, profile, username=endpoint.user, plan=plan,
                                      client_keys=[key] if "publickey" in methods else None)
        sessions = sum(isinstance(a, SessionAction) for a in plan.actions)
        try:
            for action in plan.actions:
                if isinstance(action, SessionAction):
                    await run_session(conn, profile, action, only_session=sessions == 1)
        finally:
            await end_connection(conn, plan, ending_profile(profile, plan))
        await endpoint.wait_idle()


def recorded(endpoint: Endpoint) -> list[ConnectionFacts]:
    return [read_connection(r.recorder) for r in endpoint.recordings]
