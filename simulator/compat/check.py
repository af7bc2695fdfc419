"""One server per config, every client profile against it at once, a row per profile.

The server is the user's sshd_config used as written (simulator/target/userconfig.py), at
LogLevel DEBUG1 (the negotiated algorithms are read from sshd's DEBUG1 lines), with one
throwaway account that has a client key and a password. Profiles run concurrently, but never
more connections at once than the config's MaxStartups lets start without throttling (sshd
drops connections at random beyond it, and the config is the user's, so sshsim does not raise
it; see `concurrency`): a whole run takes seconds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from simulator.compat.evidence import config_line, connections_by_endpoint, explaining_line, negotiated
from simulator.compat.probe import PASSWORD, USER, Attempt, attempt
from simulator.errors import BadInputError
from simulator.logs import parse_records
from simulator.profiles import ClientProfile, known_profiles, load_profile
from simulator.target.base import ServerSpec, UserSpec
from simulator.target.factory import make_target
from simulator.target.userconfig import notice

DEFAULT_MAX_STARTUPS = 10  # sshd's default MaxStartups 10:30:100


@dataclass
class Row:
    """One profile's line of the table (its JSON is the issue's shape, plus `verdict` and
    `auth.methods`)."""

    profile: str
    ok: bool
    verdict: str
    kex: str | None
    host_key: str | None
    cipher: str | None
    mac: str | None
    compression: str | None
    offered: list[str]
    result: str
    methods: dict[str, str]
    session: str
    sftp: str | None
    evidence: str | None

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "ok": self.ok, "verdict": self.verdict, "kex": self.kex,
                "host_key": self.host_key, "cipher": self.cipher, "mac": self.mac, "compression": self.compression,
                "auth": {"offered": self.offered, "result": self.result, "methods": self.methods},
                "session": self.session, "sftp": self.sftp, "evidence": self.evidence}


@dataclass
class Table:
    """The outcome for one config on one target."""

    target: str
    sshd_version: str
    config: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    notice: str = ""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "sshd_version": self.sshd_version, "config": self.config,
                "rows": [r.to_json() for r in self.rows]}


def select_profiles(spec: str) -> list[ClientProfile]:
    """`all` or NAME,NAME,... (an unknown name is bad input, with the known ones listed)."""
    names = sorted(known_profiles()) if spec.strip() == "all" else [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise BadInputError("no profile named (all, or NAME,NAME,...)", key="--profiles")
    unknown = [n for n in names if n not in known_profiles()]
    if unknown:
        raise BadInputError(f"unknown profile {unknown[0]!r} (known: {', '.join(sorted(known_profiles()))})",
                            key="--profiles")
    return [load_profile(n) for n in names]


def concurrency(config: Any) -> int:
    """Connections at once: half the config's MaxStartups start (sshd keeps the LAST line).
    Half, not all: the listener frees a connection's slot only once it notices the connection
    ended, a moment after the client has moved on, and sshd drops at random past the start."""
    lines = config.keyword_lines("maxstartups") if config is not None else []
    start = DEFAULT_MAX_STARTUPS
    if lines:
        try:
            start = int(lines[-1][2][0].split(":", 1)[0])
        except (IndexError, ValueError):
            pass  # sshd -t refuses the value; the start fails with the line
    return max(1, start // 2)


def server_spec(config: Any) -> ServerSpec:
    return ServerSpec(users=[UserSpec(name=USER, password=PASSWORD)], config_file=config,
                      log_level="DEBUG1", own_log_level=True)


async def check(config: Any, profiles: list[ClientProfile], target: str = "local") -> Table:
    """Start one server for `config`, run every profile against it, build the rows."""
    started = time.monotonic()
    spec = server_spec(config)
    server = make_target(spec, target)
    await asyncio.to_thread(server.start)
    try:
        identity = str(server.identity(USER))
        limit = asyncio.Semaphore(concurrency(config))
        host = server.host.strip("[]")

        async def one(profile: ClientProfile, method: str, source: str) -> Attempt:
            async with limit:
                return await attempt(host, server.port, profile, method, source, identity, work=True)

        jobs: list[tuple[ClientProfile, Any]] = []
        n = 2
        for profile in profiles:
            for method in profile.auth_methods:
                jobs.append((profile, asyncio.ensure_future(one(profile, method, f"127.0.{n // 250}.{n % 250 + 2}"))))
                n += 1
        await asyncio.gather(*(j for _, j in jobs))
        await asyncio.to_thread(server.wait_idle)
        events = parse_records(server.log.records, server.log.host)
        version = getattr(server, "version", "")
    finally:
        await asyncio.to_thread(server.stop)
    by_endpoint = connections_by_endpoint(events)
    table = Table(target=target, sshd_version=version, config=config.shown,
                  notice=notice(config, spec.log_level))
    for profile in profiles:
        attempts = [j.result() for p, j in jobs if p is profile]
        table.rows.append(build_row(profile, attempts, by_endpoint, config))
    table.seconds = time.monotonic() - started
    return table


def build_row(profile: ClientProfile, attempts: list[Attempt], by_endpoint: dict, config: Any) -> Row:
    """The profile's row from its attempts (client side) and sshd's log (server side)."""
    conns = {a.method: by_endpoint.get((a.source, a.port)) if a.port else None for a in attempts}
    methods = {a.method: a.auth for a in attempts}
    offered = next((a.offered for a in attempts if a.offered is not None), None)
    if offered is None:  # the client never heard the list (it got in at once): what got in
        offered = [a.method for a in attempts if a.auth == "accepted"]
    inside = next((a for a in attempts if a.auth == "accepted"), None)
    algorithms = negotiated(next((c for c in conns.values() if c is not None and c.kex and c.kex != "(no match)"),
                                 None))
    if inside is not None:
        result = "accepted"
    elif all(r == "not offered" for r in methods.values()):
        result = "not offered"
    elif any(r == "failed" for r in methods.values()):
        result = "failed"
    elif any(r == "not testable" for r in methods.values()):
        result = "not testable"
    else:
        result = "not reached"
    session = inside.session or "not run" if inside is not None else "not reached"
    sftp = (inside.sftp or "not run" if inside is not None else "not reached") if profile.does_sftp else None
    ok = inside is not None and session == "ok" and (sftp is None or sftp == "ok")
    evidence: str | None = None
    if inside is None:
        verdict = "locked out" if result != "not testable" else "not testable"
        evidence = _auth_evidence(attempts, conns, offered, config)
    elif session != "ok":
        verdict = "no session"
        evidence = explaining_line(conns.get(inside.method), after_auth=True)
    elif sftp not in (None, "ok"):
        verdict = "no sftp"
        evidence = explaining_line(conns.get(inside.method), after_auth=True)
    else:
        verdict = "ok"
    return Row(profile=profile.name, ok=ok, verdict=verdict, offered=list(offered), result=result, methods=methods,
               session=session, sftp=sftp, evidence=evidence, **algorithms)


def _auth_evidence(attempts: list[Attempt], conns: dict, offered: list[str], config: Any) -> str | None:
    """Why no method got in: sshd's line for the first method that was tried (a failed
    negotiation or authentication), else the config line that turned the methods off."""
    for a in attempts:
        if a.auth in ("failed", "not reached", "not testable"):
            line = explaining_line(conns.get(a.method))
            if line:
                return line
    failure = next((a.failure for a in attempts if a.auth != "not offered" and a.failure), None)
    if failure:  # tried but sshd logged no reason: the client's words
        return f"client: {failure}"
    for a in attempts:
        if a.auth == "not offered":
            line = config_line(config, a.method)
            if line:
                return f"{line} (sshd offers: {', '.join(offered) or 'nothing'})"
    failure = next((a.failure for a in attempts if a.failure), None)
    return f"client: {failure}" if failure else None
