"""Record connections against a real sshd and turn each into a template.

Every generated line comes from here: a scenario (or a scanner probe) is played by the product's
own driver against a real sshd (the local target, or a container for other OpenSSH versions),
its syslog is captured with pids, and the records of each connection become a `Template`.

Why several servers, each running one job at a time: a connection's lines are then exactly the
records the server logged between the job's start and the moment it was idle again, whatever
the LogLevel (INFO lines carry no lineage to group them by) and whatever the interleaving of
its processes. Jobs still run in parallel, one per server; a failed-password attempt spends two
seconds in PAM's fail delay, so this matters.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.aio import gather_or_cancel
from simulator.builds.features import Requirement
from simulator.errors import BadInputError, TargetError
from simulator.generate.spec import Entry, GenerateSpec, Variant
from simulator.generate.template import Canonicaliser, Template, TemplateLine, Tokens, connection_labels, gaps
from simulator.scenario.loader import load_scenarios
from simulator.scenario.model import Scenario
from simulator.target.base import ServerSpec, UserSpec

# Stand-ins the synthetic engine records with, replaced by slots: unusual enough to occur in no
# other word or number of an sshd line. Pids in the recording's pid namespace start at FIRST_PID,
# far from the uid and from ephemeral ports.
SENTINEL_USER = "zzsimuser"
SENTINEL_INVALID = "zznouser"
SENTINEL_UID = 4711
FIRST_PID = 7300
PASSWORD = "Gen-erated-7q"
DEFAULT_MAX_STARTUPS = "10:30:100"  # sshd's own (sshd_config(5))
HOLDER_BANNER_WAIT = 10.0  # seconds a held connection waits for sshd's banner (its slot is taken)
_PID_FIELD = re.compile(r"pid", re.IGNORECASE)


@dataclass
class Job:
    """One recording: a mix entry's variant played once, as one user."""

    key: Any  # what the template is filed under
    entry: Entry
    variant: Variant
    user: str  # rendered as the scenario's `user` variable
    valid_user: str  # a user the server has (the scenario's `valid_user`)
    uid: int
    user_class: str
    sentinel: bool  # user and uid are stand-ins that become slots
    scenario: Scenario | None = None
    server: ServerSpec | None = None
    group: tuple = ()
    source_key: str | None = None  # the planned source (real engine): with penalties, one address and sshd
    concurrent: int = 1  # its burst's `concurrent`: connections the attacker keeps in flight (real engine)


@dataclass
class Recorded:
    """A job's templates, one per client connection of its scenario."""

    job: Job
    templates: list[Template] = field(default_factory=list)


class Recorder:
    """Plays jobs against real sshd servers (one per parallel slot) and builds their templates."""

    def __init__(self, spec: GenerateSpec, target: str, *, parallel: int = 8, synthetic: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.spec = spec
        self.target = target
        self.parallel = max(1, parallel)
        self.synthetic = synthetic
        self.progress = progress
        self._source_counter = itertools.count(1)
        self._source_of: dict[str, str] = {}  # planned source -> its recording address (penalties)
        # planned source of a concurrent burst -> whether each of its connections so far got a slot
        self._in_flight: dict[str, list[bool]] = {}
        self.penalties = spec.per_source_penalties is not None and not synthetic
        # MaxStartups as the spec says; sshd's own default (not sshsim's roomy one) where a
        # burst is concurrent, as the attacker would meet it
        self.max_startups = None if synthetic else (
            spec.max_startups or (DEFAULT_MAX_STARTUPS if any(b.concurrent > 1 for b in spec.bursts) else None))
        self._done = 0
        self._total = 0

    # -- preparing ------------------------------------------------------------------------
    def base_users(self) -> list[UserSpec]:
        if self.synthetic:
            return [UserSpec(name=SENTINEL_USER, uid=SENTINEL_UID, password=PASSWORD)]
        return [UserSpec(name=u.name, uid=u.uid, password=PASSWORD) for u in self.spec.users]

    def prepare(self, job: Job) -> Job:
        """Render the job's scenario and decide the server it needs (its group)."""
        spec = self.spec
        users = self.base_users()
        overrides = list(spec.sshd_config)
        chroot: list[str] = []
        if job.entry.scenario is not None:
            variables = {"user": job.user, "valid_user": job.valid_user, "uid": job.uid, "password": PASSWORD}
            if job.variant.profile:
                variables["profile"] = job.variant.profile
            variables.update(dict(job.variant.vars))
            scenario = load_scenarios(str(job.entry.scenario), variables)[0]
            for conn in scenario.connections:
                if not conn.source.startswith("127."):
                    pos = conn.position
                    raise BadInputError(f"source {conn.source!r} is not a loopback address",
                                        file=pos[0] if pos else scenario.path, line=pos[1] if pos else None,
                                        key=f"connections.{conn.id}.source")
                if job.variant.profile:
                    conn.profile = job.variant.profile
            names = {u.name for u in users}
            users += [u for u in scenario.server.users if u.name not in names]
            overrides += scenario.server.overrides
            chroot = list(scenario.server.chroot_dirs)
            job.scenario = scenario
        requires: list[Any] = []
        if self.max_startups is not None:
            overrides.append(f"MaxStartups {self.max_startups}")
        if self.penalties:
            # sshsim's own sshd_config switches them off; a first line wins. Versions before 9.8
            # have no such keyword: the target leaves the line out for them (requires).
            requires = [None] * len(overrides) + [Requirement("per_source_penalties", reason="PerSourcePenalties "
                                                              "arrived in OpenSSH 9.8")]
            overrides.append(f"PerSourcePenalties {spec.per_source_penalties}")
        job.server = ServerSpec(users=users, overrides=overrides, override_requires=requires, log_level=spec.log_level,
                                host_name="recorder", first_pid=FIRST_PID, chroot_dirs=chroot,
                                host_key_types=("rsa", "ecdsa", "ed25519"),
                                config_file=spec.sshd_config_file, own_log_level=True)
        job.group = (tuple(overrides), tuple(chroot),
                     tuple((u.name, u.uid, u.password, u.generate_key, u.key_type, u.key_options,
                            tuple(u.authorized_keys)) for u in users))
        return job

    # -- running --------------------------------------------------------------------------
    async def record(self, jobs: list[Job]) -> list[Recorded]:
        """Record every job (already prepared); results in the order of `jobs`."""
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(job.group, []).append(i)
        results: list[Recorded | None] = [None] * len(jobs)
        self._total = len(jobs)
        self._done = 0
        tasks = []
        for indexes in groups.values():
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in indexes:
                queue.put_nowait(i)
            server_spec = jobs[indexes[0]].server
            assert server_spec is not None, "record() takes prepared jobs"
            workers = min(self.parallel, len(indexes))
            if not self.penalties and not any(jobs[i].concurrent > 1 for i in indexes):
                for _ in range(workers):
                    tasks.append(asyncio.ensure_future(self._worker(server_spec, jobs, queue, results)))
                continue
            # Penalties build up in one sshd over one address's connections, and a concurrent
            # burst's connections wait on one sshd: each source's connections go, in plan order,
            # to one worker (its own sshd).
            queues: list[asyncio.Queue[int]] = [asyncio.Queue() for _ in range(workers)]
            owner: dict[str | None, int] = {}
            for i in indexes:
                key = jobs[i].source_key
                queues[owner.setdefault(key, len(owner) % workers)].put_nowait(i)
            for own in queues:
                if not own.empty():
                    tasks.append(asyncio.ensure_future(self._worker(server_spec, jobs, own, results)))
        await gather_or_cancel(tasks)
        return [r for r in results if r is not None]

    async def _worker(self, server_spec: ServerSpec, jobs: list[Job], queue: asyncio.Queue[int],
                      results: list[Recorded | None]) -> None:
        # imported here: start-up cost: a generate run served from the cache never starts a target
        from simulator.target.factory import make_target

        server = make_target(server_spec, self.target)
        await asyncio.to_thread(server.start)
        try:
            await asyncio.to_thread(server.wait_idle)
            listener = _listener_pid(server)
            keys = _host_key_fingerprints(server)
            while not queue.empty():
                i = queue.get_nowait()
                results[i] = await self._one(jobs[i], server, listener, keys)
                self._done += 1
                if self.progress:
                    self.progress(self._done, self._total)
        finally:
            await asyncio.to_thread(server.stop)

    def _source_for(self, job: Job, connections: int) -> str:
        """A fresh loopback address; with penalties, one per planned source (of a
        one-connection scenario), so sshd penalises it as it would the real address."""
        if not self.penalties or job.source_key is None or connections != 1:
            return self._source()
        if job.source_key not in self._source_of:
            self._source_of[job.source_key] = self._source()
        return self._source_of[job.source_key]

    def _waiting(self, job: Job) -> int:
        """How many of its burst's earlier connections still wait unauthenticated when `job`'s
        arrives: the attacker keeps `concurrent` in flight, so the last concurrent - 1 of them,
        less those sshd turned away (they hold no slot)."""
        if job.concurrent < 2 or job.source_key is None:
            return 0
        recent = self._in_flight.get(job.source_key, [])[-(job.concurrent - 1):]
        return sum(recent)

    def _source(self) -> str:
        n = next(self._source_counter)
        a, b = divmod(n, 250)
        return f"127.{100 + (a >> 8) % 100}.{a & 255}.{b + 1}"

    async def _one(self, job: Job, server: Any, listener: int | None, host_keys: tuple[str, ...]) -> Recorded:
        before = len(server.log.records)
        host = server.host.strip("[]")
        sources: dict[str, str] = {}  # connection id -> source address
        ports: dict[str, int | None] = {}
        outcomes: dict[str, str | None] = {}  # what happened, as the client saw it (None: cannot tell)
        label = f"{job.entry.name} ({job.variant.key or 'default'}, user {job.user or '-'})"
        holders: list[str] = []  # held connections' addresses (a concurrent burst)
        result = None
        if job.entry.probe is not None:
            # imported here: start-up cost: the driver and probes (asyncssh) only when recording
            from simulator.generate.probes import run_probe

            source = self._source()
            try:
                port = await run_probe(job.entry.probe, source, host, server.port)
            except (TimeoutError, OSError) as exc:
                raise TargetError(f"recording {label}: probe failed: {exc}") from None
            sources["probe"], ports["probe"] = source, port
            outcomes["probe"] = "closed-preauth"
        else:
            # imported here: start-up cost: the driver and probes (asyncssh) only when recording
            from simulator.driver.runner import ScenarioRunner

            scenario = copy.deepcopy(job.scenario)
            assert scenario is not None
            for conn in scenario.connections:
                conn.source = sources[conn.id] = self._source_for(job, len(scenario.connections))
            holders = [self._source() for _ in range(self._waiting(job))]
            held = await _hold(holders, host, server.port)
            try:
                result = await ScenarioRunner(scenario, server).run()
            finally:
                await _release(held)
        await asyncio.to_thread(server.wait_idle)  # every line in before the checks below
        records = server.log.records[before:]
        if result is not None:
            may_drop = self.penalties or self.max_startups is not None
            for conn_id, res in result.connections.items():
                turned_away = may_drop and _turned_away(records, sources[conn_id])
                if job.concurrent > 1 and job.source_key is not None:
                    self._in_flight.setdefault(job.source_key, []).append(not turned_away)
                if res.error and not turned_away:
                    raise TargetError(f"recording {label}: connection {conn_id}: {res.error}",
                                      file=str(job.entry.scenario))
                ports[conn_id] = res.port
                outcomes[conn_id] = _client_outcome(res)
        if holders:
            records = _without(records, holders, listener)
            if not records:
                raise TargetError(f"recording {label}: sshd logged nothing for the connection (with {len(holders)} "
                                  "held connections waiting)", file=str(job.entry.scenario))
        user_keys = _user_key_fingerprints(server, job)
        recorded = Recorded(job)
        parts = {next(iter(sources)): records} if len(sources) == 1 else _split(records, sources)
        for conn_id, part in parts.items():
            tpl = self._template(job, conn_id, part, sources[conn_id], ports.get(conn_id), server, listener,
                                 host_keys, user_keys)
            if tpl.labels.get("outcome") == "closed-preauth" and outcomes.get(conn_id):
                tpl.labels["outcome"] = outcomes[conn_id]  # where the LogLevel keeps sshd quiet about it
            recorded.templates.append(tpl)
        return recorded

    def _template(self, job: Job, conn_id: str, records: list[Any], source: str, port: int | None, server: Any,
                  listener: int | None, host_keys: tuple[str, ...], user_keys: frozenset[str]) -> Template:
        # imported here: start-up cost: the event catalogue only when recording
        from simulator.logs import parse_records

        records = [r for r in records if r.pid is not None and r.program != "sshsim"]
        events = parse_records(records, "recorder")  # the capture's records as they are
        pids: set[int] = {r.pid for r in records if r.pid != listener}
        pid_events = []
        for ev in events:
            has_pid = bool(ev.spec is not None and any(_PID_FIELD.search(n or "") for n in ev.spec.fields))
            pid_events.append(has_pid)
            if has_pid:
                for name, value in ev.fields.items():
                    if _PID_FIELD.search(name) and isinstance(value, int) and value != listener and value > 1:
                        pids.add(value)
        if port is None:
            for r in records:
                # "from ADDR port N"; a connection the listener dropped: "from [ADDR]:N"
                m = re.search(re.escape(source) + r" port (\d+)|\[" + re.escape(source) + r"\]:(\d+)", r.message)
                if m:
                    port = int(m.group(1) or m.group(2))
                    break
        tokens = Tokens(
            client_addr=source,
            client_port=port,
            server_addr=server.host.strip("[]"),
            server_port=server.port,
            listener_pid=listener,
            pids=sorted(pids),
            user_sentinel=job.user if job.sentinel else None,
            uid_sentinel=SENTINEL_UID if job.sentinel and job.user_class == "valid" else None,
            user_keys=user_keys,
            host_keys=host_keys,
        )
        canon = Canonicaliser(tokens)
        timing = gaps([(ev.event, ev.fields if ev.spec is not None else {}) for ev in events])
        tlines = []
        for r, ev, has_pid, (gap, hold) in zip(records, events, pid_events, timing, strict=True):
            pid_slot = "L" if r.pid == listener else canon.pid_slot.get(r.pid)
            text = canon.text(r.message, has_pid)
            tlines.append(TemplateLine(r.program, pid_slot, r.priority, text, ev.event, gap, hold))
        labels = connection_labels((ev.event, ev.fields if ev.spec is not None else {}) for ev in events)
        labels["unknown_lines"] = sum(1 for ev in events if ev.spec is None)
        # the sshd's own version string (`sshd -V`, or the image's): what the labels assume
        labels["openssh"] = getattr(server, "version", "") or None
        profile = None
        if job.scenario is not None:
            plan = job.scenario.connection(conn_id)
            profile = plan.profile if isinstance(plan.profile, str) else \
                plan.profile.get("name") or f"{plan.profile.get('base')}+custom"
            user = None if job.sentinel and plan.user == job.user else plan.user
        else:
            user = None
        return Template(
            key=str(job.key),
            entry=job.entry.name,
            variant=job.variant.key,
            profile=profile,
            user_class=job.user_class,
            user=user,
            lines=tlines,
            npids=len(tokens.pids),
            labels=labels,
            ranges=dict(canon.ranges),
            pid_offsets=_pid_offsets(tokens.pids),
        )


async def _hold(addresses: list[str], host: str, port: int) -> list[asyncio.StreamWriter]:
    """Open one connection from each address and wait for sshd's banner (or its refusal): the
    listener has then counted it among its unauthenticated connections (MaxStartups). Nothing
    is sent, so each keeps its slot until released."""
    async def one(address: str) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection(host, port, local_addr=(address, 0))
        try:
            await asyncio.wait_for(reader.readline(), HOLDER_BANNER_WAIT)
        except (TimeoutError, ConnectionError):
            pass  # refused (MaxStartups dropped it too) or slow: the slot is sshd's to count
        return writer

    writers: list[asyncio.StreamWriter] = []
    try:
        for address in addresses:  # in order, as the attacker's connections arrived
            writers.append(await one(address))
    except BaseException:
        await _release(writers)
        raise
    return writers


async def _release(writers: list[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # reset by the server: the connection is gone all the same


def _without(records: list[Any], addresses: list[str], listener: int | None) -> list[Any]:
    """The records of a job without those of its held connections: lines naming their
    addresses, and every line of the processes that do."""
    named = re.compile(r"(?<![\d.])(?:" + "|".join(re.escape(a) for a in addresses) + r")(?![\d])")
    pids = {r.pid for r in records if r.pid is not None and r.pid != listener and named.search(r.message)}
    return [r for r in records if r.pid not in pids and not named.search(r.message)]


def _turned_away(records: list[Any], source: str) -> bool:
    """Whether the listener dropped a connection from `source` (a PerSourcePenalties penalty or
    MaxStartups): the client then sees its connection end before any banner."""
    mark = f"from [{source}]:"
    return any(r.message.startswith("drop connection #") and mark in r.message for r in records)


def _client_outcome(result: Any) -> str | None:
    """accepted / failed / negotiation-failed, from the driver's result (None: it cannot tell)."""
    if result.auth_ok:
        return "accepted"
    failure = result.failure or ""
    if failure.startswith("authentication failed") or result.auth_ok is False or "authentication" in failure:
        return "failed"
    if failure.startswith("key exchange failed"):
        return "negotiation-failed"
    return None


def _pid_offsets(pids: list[int]) -> list[int]:
    """Distances of a connection's pids from its first; ranks when the recording's are implausible."""
    if not pids:
        return []
    offsets = [pid - pids[0] for pid in pids]
    return offsets if offsets[-1] < 64 else list(range(len(pids)))


def _split(records: list[Any], sources: dict[str, str]) -> dict[str, list[Any]]:
    """A multi-connection scenario's records, per connection (the parser's pid lineage)."""
    # imported here: start-up cost: the event catalogue only when recording
    from simulator.logs import group_connections, parse_records

    kept = [r for r in records if r.pid is not None]
    events = parse_records(kept, "recorder")  # the capture's records as they are
    conns = group_connections(events)
    by_addr = {source: conn_id for conn_id, source in sources.items()}
    owner: dict[int, str] = {c.id: by_addr[c.addr] for c in conns if c.addr in by_addr}
    out: dict[str, list[Any]] = {conn_id: [] for conn_id in sources}
    for r, ev in zip(kept, events, strict=True):
        if ev.conn in owner:
            out[owner[ev.conn]].append(r)
    return out


def _listener_pid(server: Any) -> int | None:
    for r in server.log.records:
        if r.message.startswith("Server listening on "):
            return r.pid
    return None


def _host_key_fingerprints(server: Any) -> tuple[str, ...]:
    """SHA256 fingerprints of the server's host keys, where the target exposes its key files."""
    # imported here: start-up cost: asyncssh only when recording
    import asyncssh

    workdir = getattr(server, "workdir", None)
    if workdir is None:
        return ()
    out = []
    for path in sorted(Path(workdir).glob("**/ssh_host_*_key.pub")):
        try:
            out.append(asyncssh.read_public_key(str(path)).get_fingerprint("sha256"))
        except (OSError, ValueError, asyncssh.KeyImportError):
            continue
    return tuple(out)


def _user_key_fingerprints(server: Any, job: Job) -> frozenset[str]:
    # imported here: start-up cost: asyncssh only when recording
    import asyncssh

    out = set()
    for name in {job.user, job.valid_user}:
        try:
            out.add(asyncssh.read_private_key(str(server.identity(name))).get_fingerprint("sha256"))
        except Exception:  # no key for this user on this server: nothing to recognise
            continue
    return frozenset(out)
