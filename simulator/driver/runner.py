"""Run a scenario's connections against a started target, as the profiled clients would.

Each connection is one asyncio task: wait for its start offset and sync point, connect with the
profile's banner and KEXINIT lists, authenticate in the scenario's order, do its actions, and end
the way the client ends (PuTTY drops TCP; OpenSSH sends a disconnect message).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from simulator.aio import gather_or_cancel
from simulator.driver import fidelity
from simulator.driver.raw import play_raw
from simulator.driver.session import run_forward, run_session
from simulator.driver.tracker import ConnectionTracker, SyncTimeout
from simulator.errors import TargetError
from simulator.profiles import ClientProfile, load_profile
from simulator.scenario.model import (
    AuthStep,
    ConnectionPlan,
    ForwardAction,
    Scenario,
    SessionAction,
    WaitAction,
    WaitForAction,
)
from simulator.target.base import CLIENT_KEY_ALGS, KEY_SIG_ALGS


@dataclass
class ConnectionResult:
    """What happened to one connection, from the client's side."""

    id: str
    profile: str
    source: str
    port: int | None = None
    auth_ok: bool | None = None
    error: str | None = None
    # Expected failures (auth refused, negotiation failure) are outcomes, not errors.
    failure: str | None = None
    exit_statuses: list[int | None] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0


@dataclass
class RunResult:
    scenario: str
    connections: dict[str, ConnectionResult]

    @property
    def errors(self) -> list[str]:
        return [f"{c.id}: {c.error}" for c in self.connections.values() if c.error]


class ProfiledClient(asyncssh.SSHClient):
    """asyncssh client callbacks: installs the fidelity hooks, answers auth in scenario order."""

    def __init__(self, plan: ConnectionPlan, wire: fidelity.WireLists, profile: ClientProfile,
                 tracker: ConnectionTracker | _NullTracker, before_signed: Any = None,
                 on_connection: Any = None) -> None:
        self.before_signed = before_signed
        self.on_connection = on_connection
        self.plan = plan
        self.wire = wire
        self.profile = profile
        self.tracker = tracker
        self.passwords = [s.password for s in plan.auth if s.method == "password"]
        self.kbdint = [s.responses for s in plan.auth if s.method == "keyboard-interactive"]

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        fidelity.attach_profile(conn, self.wire, self.profile.first_channel,
                                none_first=self.profile.none_first,
                                publickey_query=self.profile.publickey_query,
                                methods=_auth_methods(self.plan.auth), before_signed=self.before_signed,
                                signed_method=self.profile.signed_method,
                                ignore_before_password=self.profile.ignore_before_password,
                                ignore_before_kbdint=self.profile.ignore_before_kbdint_response,
                                ignore_every_packet=self.profile.ignore_every_packet,
                                service_per_attempt=self.profile.service_request_per_attempt)
        sockname = conn.get_extra_info("sockname")
        if sockname:
            self.tracker.set_port(self.plan.id, sockname[1])
        if self.on_connection is not None:
            self.on_connection(conn)

    def password_auth_requested(self) -> str | None:
        return self.passwords.pop(0) if self.passwords else None

    def kbdint_auth_requested(self) -> str | None:
        return "" if self.kbdint else None

    def kbdint_challenge_received(self, name: str, instructions: str, lang: str,
                                  prompts: Sequence[tuple[str, bool]]) -> list[str] | None:
        if not prompts:
            return []
        if not self.kbdint:
            return None
        responses = self.kbdint.pop(0)
        return (responses + [""] * len(prompts))[: len(prompts)]


def wire_lists(profile: ClientProfile) -> fidelity.WireLists:
    implemented = fidelity.implemented_algorithms()
    return fidelity.WireLists(
        kex=tuple(n.encode() for n in profile.kex),
        host_key=tuple(n.encode() for n in profile.host_key),
        encryption=tuple(n.encode() for n in profile.encryption),
        mac=tuple(n.encode() for n in profile.mac),
        compression=tuple(n.encode() for n in profile.compression),
        strict_kex=profile.strict_kex,
        ext_info=profile.ext_info,
        implemented=implemented,
    )


def connect_options(profile: ClientProfile, wire: fidelity.WireLists) -> dict[str, Any]:
    """asyncssh.connect arguments for what asyncssh itself negotiates, in the profile's order."""
    imp = wire.implemented
    options = dict(
        client_version=profile.banner,
        kex_algs=fidelity.negotiable(profile.kex, imp["kex"]),
        server_host_key_algs=fidelity.negotiable(profile.host_key, imp["host_key"]),
        encryption_algs=fidelity.negotiable(profile.encryption, imp["encryption"]),
        mac_algs=fidelity.negotiable(profile.mac, imp["mac"]) or None,
        compression_algs=fidelity.negotiable(profile.compression, imp["compression"]),
    )
    return {k: v for k, v in options.items() if v is not None}


async def connect_profiled(host: str, port: int, profile: ClientProfile, *, username: str,
                           plan: ConnectionPlan | None = None, client_keys: Any = None,
                           tracker: ConnectionTracker | None = None,
                           before_signed: Any = None, on_connection: Any = None) -> asyncssh.SSHClientConnection:
    """Open an SSH connection that looks, on the wire, like the profile's client.

    `on_connection(conn)` is called as soon as the TCP connection exists, so a caller can read
    what the connection learnt (the methods offered) even when it then fails."""
    fidelity.install_hooks()
    plan = plan or ConnectionPlan(id="adhoc", user=username)
    wire = wire_lists(profile)
    client = ProfiledClient(plan, wire, profile, tracker or _NullTracker(), before_signed, on_connection)
    methods = _auth_methods(plan.auth)
    return await asyncssh.connect(
        host, port, username=username, local_addr=(plan.source, 0),
        client_factory=lambda: client, known_hosts=None, client_keys=client_keys,
        password=None, preferred_auth=methods or ["none"], agent_path=None,
        agent_forwarding=False, x11_forwarding=False, ignore_encrypted=True,
        **connect_options(profile, wire), **signature_options(plan.auth),
    )


def signature_options(steps: list[AuthStep]) -> dict[str, Any]:
    """asyncssh's `signature_algs` when a publickey step names its algorithm: that algorithm for
    its key type, every algorithm for the other steps' key types (asyncssh picks a key's first
    algorithm the server's server-sig-algs also lists); no option otherwise (asyncssh's own)."""
    keyed = [step for step in steps if step.method == "publickey"]
    if not any(step.algorithm for step in keyed):
        return {}
    algs: list[str] = []
    for step in keyed:
        for alg in (step.algorithm,) if step.algorithm else KEY_SIG_ALGS[step.key]:
            if alg not in algs:
                algs.append(alg)
    return {"signature_algs": algs}


class _NullTracker:
    """Stands in when nothing waits on this connection's server events."""

    def set_port(self, conn_id: str, port: int) -> None:
        pass


class ScenarioRunner:
    """Plays every connection of a scenario against `server` (a started target)."""

    def __init__(self, scenario: Scenario, server: Any, *, max_concurrency: int | None = None) -> None:
        # At most this many connections in flight (benchmarks, large generated runs); None: all.
        self._limit = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.scenario = scenario
        self.server = server
        self.tracker = ConnectionTracker(server.log)
        self.results: dict[str, ConnectionResult] = {}
        self._done: dict[str, asyncio.Event] = {}
        # connection id -> (connection, event) it is waiting for right now (after:, pause, wait_for)
        self._waiting: dict[str, tuple[str | None, str]] = {}
        self._deadlocks: dict[str, str] = {}  # connection id -> the cycle it was found in

    async def run(self) -> RunResult:
        fidelity.install_hooks()
        # Load every profile first: an unknown name fails before any connection is made.
        profiles = {c.id: load_profile(c.profile) for c in self.scenario.connections}
        self._t0 = time.monotonic()
        for conn in self.scenario.connections:
            self._done[conn.id] = asyncio.Event()
        tasks = [asyncio.ensure_future(self._limited(c, profiles[c.id])) for c in self.scenario.connections]
        await gather_or_cancel(tasks)
        for conn_id, result in self.results.items():
            if result.port is None:
                result.port = self.tracker.ports.get(conn_id)
        return RunResult(self.scenario.name, self.results)

    async def _limited(self, plan: ConnectionPlan, profile: ClientProfile) -> None:
        if self._limit is None:
            return await self._connection(plan, profile)
        async with self._limit:
            return await self._connection(plan, profile)

    def _finished_reason(self, conn_id: str | None) -> str | None:
        if conn_id is None or conn_id not in self._done or not self._done[conn_id].is_set():
            return None
        result = self.results.get(conn_id)
        why = (result.error or result.failure or "closed") if result else "closed"
        return f"connection {conn_id!r} already ended ({why})"

    async def _sync(self, waiter: str, conn_id: str | None, event: str, fields: dict[str, Any],
                    timeout: float) -> None:
        """`waiter` waits for `event` of `conn_id`; a timeout says what was awaited, and calls a
        wait that another one waits on in turn (a cycle of after:/pause/wait_for) a deadlock."""
        self._waiting[waiter] = (conn_id, event)
        try:
            await self.tracker.wait(conn_id, event, fields, timeout, lambda: self._finished_reason(conn_id))
        except SyncTimeout:
            cycle = self._cycle(waiter) or self._deadlocks.get(waiter)
            if cycle:
                raise SyncTimeout(f"deadlock: {cycle} (each waits for the next; gave up after {timeout:g} s)") from None
            raise
        finally:
            self._waiting.pop(waiter, None)

    def _cycle(self, start: str) -> str | None:
        """'a' waits for E of 'b', which waits for F of 'a': the chain back to `start`, or None."""
        steps: list[str] = []
        at: str | None = start
        seen: set[str] = set()
        while at is not None and at not in seen and at in self._waiting:
            seen.add(at)
            target, event = self._waiting[at]
            steps.append(f"{at!r} waits for {event} of {target!r}")
            if target == start:
                # A connection waiting for its own server event is no deadlock: the server logs
                # it whatever the client does.
                if len(steps) < 2:
                    return None
                cycle = ", ".join(steps)
                for member in seen:  # the others give up at about the same time: same words
                    self._deadlocks[member] = cycle
                return cycle
            at = target
        return None

    async def _connection(self, plan: ConnectionPlan, profile: ClientProfile) -> None:
        result = ConnectionResult(plan.id, profile.name, plan.source)
        self.results[plan.id] = result
        try:
            delay = plan.start - (time.monotonic() - self._t0)
            if delay > 0:
                await asyncio.sleep(delay)
            if plan.after is not None:
                await self._sync(plan.id, plan.after.connection, plan.after.event, plan.after.fields,
                                 plan.after.timeout)
            result.started = time.time()
            play = asyncio.ensure_future(self._play(plan, profile, result))
            try:
                done, _ = await asyncio.wait([play], timeout=plan.timeout)
            except BaseException:  # cancelled (SIGTERM, another connection failed): stop it too
                play.cancel()
                await asyncio.gather(play, return_exceptions=True)
                raise
            if not done:
                # The connection's own time limit; distinct from any timeout raised inside it.
                awaited = self._waiting.get(plan.id)
                play.cancel()
                await asyncio.gather(play, return_exceptions=True)
                doing = f" (still waiting for {awaited[1]} of {awaited[0]!r})" if awaited else ""
                result.error = f"did not finish within its timeout of {plan.timeout:g} s{doing}"
            else:
                play.result()
        except SyncTimeout as exc:
            result.error = str(exc)
        except TimeoutError as exc:
            result.error = f"timed out: {exc or type(exc).__name__}"
        except (asyncssh.Error, OSError) as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            result.ended = time.time()
            self._done[plan.id].set()

    async def _play(self, plan: ConnectionPlan, profile: ClientProfile, result: ConnectionResult) -> None:
        if plan.raw is not None:
            await play_raw(self.server.host.strip("[]"), self.server.port, plan, profile, result, self.tracker)
            return
        before_signed = self._pause_hook(plan, "signed-publickey")
        methods = _auth_methods(plan.auth)
        keys = self._client_keys(plan) if "publickey" in methods else None
        try:
            conn = await connect_profiled(
                self.server.host.strip("[]"), self.server.port, profile, username=plan.user, plan=plan,
                client_keys=keys, tracker=self.tracker, before_signed=before_signed)
        except asyncssh.PermissionDenied as exc:
            result.auth_ok = False
            result.failure = f"authentication failed: {exc.reason}"
            return
        except (asyncssh.KeyExchangeFailed, asyncssh.ProtocolError) as exc:
            if "cannot do" in str(exc):
                raise
            result.failure = f"key exchange failed: {exc.reason}"
            return
        except asyncssh.DisconnectError as exc:
            result.failure = f"disconnected by the server: {exc.reason}"
            return
        except ConnectionResetError as exc:
            result.failure = f"connection reset: {exc}"
            return
        result.auth_ok = True
        result.port = conn.get_extra_info("sockname")[1]
        try:
            for action in plan.actions:
                await self._action(conn, plan, profile, action, result)
        finally:
            await self._end(conn, plan, ending_profile(profile, plan))

    def _pause_hook(self, plan: ConnectionPlan, point: str) -> Any:
        """A coroutine function that waits for the plan's sync point at `point`, or None."""
        sync = plan.pauses.get(point)
        if sync is None:
            return None

        async def pause() -> None:
            await self._sync(plan.id, sync.connection, sync.event, sync.fields, sync.timeout)

        return pause

    def _client_keys(self, plan: ConnectionPlan) -> list[Any]:
        """One key per publickey step, in the plan's order (asyncssh offers them in turn)."""
        keys: list[Any] = []
        for step in plan.auth:
            if step.method != "publickey":
                continue
            default = step.key == "ed25519" and step.authorized
            try:
                path = (self.server.identity(plan.user) if default
                        else self.server.identity(plan.user, step.key, step.authorized))
                keys.append(str(path))
            except TargetError:
                # A user the server does not have (invalid-user scenarios): any key of the type will do.
                keys.append(asyncssh.generate_private_key(CLIENT_KEY_ALGS[step.key]))
        return keys

    async def _end(self, conn: asyncssh.SSHClientConnection, plan: ConnectionPlan, profile: ClientProfile) -> None:
        await end_connection(conn, plan, profile)

    async def _action(self, conn: asyncssh.SSHClientConnection, plan: ConnectionPlan, profile: ClientProfile,
                      action: Any, result: ConnectionResult) -> None:
        if isinstance(action, WaitAction):
            await asyncio.sleep(action.seconds)
        elif isinstance(action, WaitForAction):
            sync = action.sync
            await self._sync(plan.id, sync.connection or plan.id, sync.event, sync.fields, sync.timeout)
        elif isinstance(action, SessionAction):
            forwards = any(isinstance(a, ForwardAction) for a in plan.actions)
            sessions = sum(isinstance(a, SessionAction) for a in plan.actions)
            status, refused = await run_session(conn, profile, action, forwards=forwards,
                                                only_session=sessions == 1)
            result.exit_statuses.append(status)
            result.refused.extend(refused)
        elif isinstance(action, ForwardAction):
            if await run_forward(conn, action):
                result.refused.append(f"direct-tcpip {action.host}:{action.port}")


async def end_connection(conn: asyncssh.SSHClientConnection, plan: ConnectionPlan, profile: ClientProfile) -> None:
    """End the way the client does (PuTTY drops TCP; OpenSSH sends a disconnect), or as the plan says."""
    how = profile.close if plan.end == "profile" else plan.end
    if how == "drop":
        conn.abort()
    elif how == "reset":
        fidelity.reset_tcp(conn)
    else:
        code = plan.disconnect_code if plan.disconnect_code is not None else profile.disconnect_code
        text = plan.disconnect_text if plan.disconnect_text is not None else profile.disconnect_text
        conn.disconnect(code, text)
    try:
        await asyncio.wait_for(conn.wait_closed(), 10)
    except TimeoutError:
        conn.abort()


def ending_profile(profile: ClientProfile, plan: ConnectionPlan) -> ClientProfile:
    """The profile as it applies to how this connection ends: its last session's (`when:`), so a
    client that tears down differently after SFTP than after exec (paramiko) can say so."""
    sessions = [a for a in plan.actions if isinstance(a, SessionAction)]
    if not sessions:
        return profile
    last = sessions[-1]
    forwards = any(isinstance(a, ForwardAction) for a in plan.actions)
    return profile.for_session(kind=last.kind, pty=last.pty, forwarding=forwards or last.x11 or last.agent)


def _auth_methods(steps: list[AuthStep]) -> list[str]:
    methods: list[str] = []
    for step in steps:
        if step.method != "none" and step.method not in methods:
            methods.append(step.method)
    return methods


async def run_scenario(scenario: Scenario, server: Any) -> RunResult:
    """Play `scenario` against a started target and wait until the server has logged it all."""
    result = await ScenarioRunner(scenario, server).run()
    await asyncio.to_thread(server.wait_idle)
    return result

