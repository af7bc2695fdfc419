"""When each generated connection starts, what it is, who makes it and from where.

Normal traffic is a Poisson process whose rate follows the spec's daily curve (drawn by
thinning); brute-force bursts are many connections from one fresh address at short intervals,
started at random in the window. Everything is drawn from random streams seeded by the spec's
seed, so the same spec and seed always give the same plan, whatever the recordings turn out to
be. The plan is a set of arrays (one row per connection, in start order): a day at a high rate
is a few hundred thousand rows, and drawing them one by one in Python would cost more than
writing their lines.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass

import numpy as np

from simulator.generate.addresses import AddressBook
from simulator.generate.spec import SYSTEM_USERS, Entry, GenerateSpec


def numpy_rng(seed: int, purpose: str) -> np.random.Generator:
    """A numpy generator for one purpose, derived from the seed (stable for a numpy version)."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))


def user_class(name: str, valid: set[str]) -> str:
    """How a user name is recorded: as a valid user, an invalid one, or as itself (root)."""
    if name in valid:
        return "valid"
    if name in SYSTEM_USERS:
        return name
    return "invalid"


@dataclass(slots=True)
class Planned:
    """One connection of the plan, as the recorder and the real engine see it."""

    id: int
    start: float
    entry: Entry
    variant: int
    user: str
    user_class: str
    source: str
    burst: str | None


@dataclass
class Plan:
    """Every connection of the window, in start order; connection ids are row + 1."""

    entries: list[Entry]
    users: list[str]  # user names the plan refers to ("" for probes)
    user_classes: list[str]  # per user name
    addresses: list[str]
    bursts: list[str]
    start: np.ndarray  # float64 seconds after the window start
    entry: np.ndarray  # int32 index into entries
    variant: np.ndarray  # int32
    user: np.ndarray  # int32 index into users
    source: np.ndarray  # int32 index into addresses
    burst: np.ndarray  # int32 index into bursts, -1 for none

    def __len__(self) -> int:
        return len(self.start)

    def row(self, i: int) -> Planned:
        u = int(self.user[i])
        b = int(self.burst[i])
        return Planned(i + 1, float(self.start[i]), self.entries[int(self.entry[i])], int(self.variant[i]),
                       self.users[u], self.user_classes[u], self.addresses[int(self.source[i])],
                       self.bursts[b] if b >= 0 else None)

    def __iter__(self):
        return (self.row(i) for i in range(len(self)))

    def template_keys(self) -> np.ndarray:
        """One integer per connection naming its (entry, variant, user class): connections with
        the same key share one recording in the synthetic engine."""
        classes = sorted(set(self.user_classes))
        class_of_user = np.array([classes.index(c) for c in self.user_classes], dtype=np.int64)
        nvar = max(len(e.variants) for e in self.entries)
        return (self.entry.astype(np.int64) * nvar + self.variant) * len(classes) + class_of_user[self.user]


class _Tables:
    """Interned names: users, addresses, bursts."""

    def __init__(self) -> None:
        self.users: list[str] = []
        self.user_index: dict[str, int] = {}
        self.addresses: list[str] = []
        self.address_index: dict[str, int] = {}

    def user(self, name: str) -> int:
        i = self.user_index.get(name)
        if i is None:
            i = self.user_index[name] = len(self.users)
            self.users.append(name)
        return i

    def address(self, text: str) -> int:
        i = self.address_index.get(text)
        if i is None:
            i = self.address_index[text] = len(self.addresses)
            self.addresses.append(text)
        return i


def curve_rate(spec: GenerateSpec, t: np.ndarray) -> np.ndarray:
    """Connections per second at window offsets `t`: the mean rate times the hourly curve."""
    curve = np.asarray(spec.curve, dtype=np.float64)
    curve = curve / curve.mean()
    local = spec.start.astimezone(spec.timezone)
    day_offset = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    hour = ((day_offset + t) % 86400.0) / 3600.0 - 0.5
    i = np.floor(hour).astype(np.int64)
    frac = hour - i
    a, b = curve[i % 24], curve[(i + 1) % 24]
    return spec.rate_per_s * (a + (b - a) * frac)


def _arrivals(spec: GenerateSpec, rng: np.random.Generator) -> np.ndarray:
    """Start times of the normal traffic: a Poisson process thinned by the curve."""
    curve = np.asarray(spec.curve, dtype=np.float64)
    lam_max = spec.rate_per_s * float(curve.max() / curve.mean())
    if lam_max <= 0:
        return np.zeros(0)
    parts = []
    t0 = 0.0
    while t0 < spec.duration:
        n = int(lam_max * (spec.duration - t0) * 1.05) + 64
        times = t0 + np.cumsum(rng.exponential(1.0 / lam_max, n))
        parts.append(times[times < spec.duration])
        t0 = float(times[-1])
    candidates = np.concatenate(parts)
    keep = rng.random(len(candidates)) * lam_max <= curve_rate(spec, candidates)
    return candidates[keep]


def plan_connections(spec: GenerateSpec, seed: int) -> Plan:
    """The plan: normal traffic by entry weights, then the bursts, merged in start order."""
    rng = numpy_rng(seed, "plan")
    book = AddressBook(spec, random.Random(f"{seed}:addresses"))
    tables = _Tables()
    entries: list[Entry] = list(spec.mix) + [e for b in spec.bursts for e in b.mix]
    entry_index = {id(e): i for i, e in enumerate(entries)}
    valid = {u.name for u in spec.users}
    user_ids = np.array([tables.user(u.name) for u in spec.users], dtype=np.int32)
    user_cum = np.cumsum([u.weight for u in spec.users])
    invalid_ids = np.array([tables.user(n) for n in spec.invalid_users], dtype=np.int32)
    probe_user = tables.user("")

    def users_for(entry: Entry, n: int) -> np.ndarray:
        if entry.probe is not None:
            return np.full(n, probe_user, dtype=np.int32)
        if entry.user == "valid":
            return user_ids[np.searchsorted(user_cum, rng.random(n) * user_cum[-1], side="right")]
        if entry.user == "invalid":
            return invalid_ids[rng.integers(0, len(invalid_ids), n)]
        names = (entry.user,) if isinstance(entry.user, str) else entry.user
        ids = np.array([tables.user(x) for x in names], dtype=np.int32)
        return ids[rng.integers(0, len(ids), n)]

    def sources_for(entry: Entry, users: np.ndarray) -> np.ndarray:
        out = np.empty(len(users), dtype=np.int32)
        hosts = np.array([tables.address(a) for a in book.hosts(entry.sources)], dtype=np.int32)
        is_valid = np.array([tables.users[u] in valid for u in range(len(tables.users))])[users]
        picks = rng.integers(0, len(hosts), len(users))
        out[:] = hosts[picks]
        for u in np.unique(users[is_valid]):
            mask = is_valid & (users == u)
            mine = np.array([tables.address(a) for a in book.user_hosts(entry.sources, tables.users[u])],
                            dtype=np.int32)
            k = int(mask.sum())
            choice = np.where(rng.random(k) < 0.7, 0, rng.integers(0, len(mine), k))
            out[mask] = mine[choice]
        return out

    starts, ents, variants, users, sources, bursts = [], [], [], [], [], []
    burst_names: list[str] = []
    if spec.mix:
        t = _arrivals(spec, rng)
        weights = np.cumsum([e.weight for e in spec.mix])
        which = np.searchsorted(weights, rng.random(len(t)) * weights[-1], side="right")
        for k, entry in enumerate(spec.mix):
            mask = which == k
            n = int(mask.sum())
            if not n:
                continue
            u = users_for(entry, n)
            starts.append(t[mask])
            ents.append(np.full(n, entry_index[id(entry)], dtype=np.int32))
            variants.append(rng.integers(0, len(entry.variants), n).astype(np.int32))
            users.append(u)
            sources.append(sources_for(entry, u))
            bursts.append(np.full(n, -1, dtype=np.int32))
    prng = random.Random(f"{seed}:bursts")
    for burst in spec.bursts:
        weights = np.cumsum([e.weight for e in burst.mix])
        for k in range(burst.count):
            source = tables.address(book.fresh(burst.sources))
            burst_names.append(f"{burst.name}#{k + 1}")
            n = prng.randint(round(burst.connections[0]), round(burst.connections[1]))
            t0 = prng.uniform(0.0, spec.duration)
            gaps = np.array([0.0] + [prng.uniform(*burst.interval) for _ in range(n - 1)])
            t = t0 + np.cumsum(gaps)
            t = t[t < spec.duration]
            n = len(t)
            if not n:
                continue
            which = np.searchsorted(weights, rng.random(n) * weights[-1], side="right")
            e_idx = np.array([entry_index[id(burst.mix[w])] for w in which], dtype=np.int32)
            u = np.empty(n, dtype=np.int32)
            v = np.empty(n, dtype=np.int32)
            for w, entry in enumerate(burst.mix):
                mask = which == w
                m = int(mask.sum())
                if m:
                    u[mask] = users_for(entry, m)
                    v[mask] = rng.integers(0, len(entry.variants), m)
            starts.append(t)
            ents.append(e_idx)
            variants.append(v)
            users.append(u)
            sources.append(np.full(n, source, dtype=np.int32))
            bursts.append(np.full(n, len(burst_names) - 1, dtype=np.int32))

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    start = cat(starts, np.float64)
    order = np.argsort(start, kind="stable")  # ties keep the order they were drawn in
    return Plan(
        entries=entries,
        users=tables.users,
        user_classes=[user_class(n, valid) if n else "probe" for n in tables.users],
        addresses=tables.addresses,
        bursts=burst_names,
        start=start[order],
        entry=cat(ents, np.int32)[order],
        variant=cat(variants, np.int32)[order],
        user=cat(users, np.int32)[order],
        source=cat(sources, np.int32)[order],
        burst=cat(bursts, np.int32)[order],
    )


def epoch_us(spec: GenerateSpec, t: float) -> int:
    """Microseconds since the Unix epoch of a window offset."""
    start = spec.start.astimezone(dt.UTC)
    base = int(start.timestamp()) * 1_000_000 + start.microsecond
    return base + int(round(t * 1_000_000))
