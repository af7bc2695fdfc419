"""The identities a generated connection shows: source addresses, client ports, pids, key fingerprints.

Recorded runs happen on loopback with whatever ports and pids the kernel gave; the log a user
gets must look like a real server's. Each value is drawn with the generator's seeded random
numbers and kept consistent where a real box would be: an address keeps its key fingerprint,
its ports step upwards, pids increase over time and wrap at pid_max, a user keeps one key.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import random

import numpy as np

from simulator.generate.spec import GenerateSpec, Pool, data


def fingerprint(seed: int, *parts: object) -> str:
    """A SHA256 key fingerprint as OpenSSH prints it, derived from the seed and a name."""
    digest = hashlib.sha256(":".join(map(str, (seed,) + parts)).encode()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class AddressBook:
    """Source addresses per pool: a fixed set of hosts per pool, users tied to a few of them."""

    def __init__(self, spec: GenerateSpec, rng: random.Random) -> None:
        self.rng = rng
        self.pools = spec.pools
        self._hosts: dict[str, list[str]] = {}
        self._user_hosts: dict[tuple[str, str], list[str]] = {}
        self._fresh_used: set[str] = set()

    def hosts(self, pool: str) -> list[str]:
        """The pool's addresses (drawn on first use, so unused pools cost nothing)."""
        got = self._hosts.get(pool)
        if got is None:
            spec = self.pools[pool]
            got = self._hosts[pool] = self._draw(spec, spec.hosts, set())
        return got

    def user_hosts(self, pool: str, user: str) -> list[str]:
        """The one to three machines of the pool a user logs in from (the first most often)."""
        key = (pool, user)
        mine = self._user_hosts.get(key)
        if mine is None:
            hosts = self.hosts(pool)
            mine = self._user_hosts[key] = self.rng.sample(hosts, min(len(hosts), self.rng.randint(1, 3)))
        return mine

    def fresh(self, pool: str) -> str:
        """An address of the pool that no other burst uses (an attacker's own)."""
        got = self._draw(self.pools[pool], 1, self._fresh_used)
        self._fresh_used.update(got)
        return got[0]

    def _draw(self, pool: Pool, count: int, avoid: set[str]) -> list[str]:
        sizes = [_usable(net) for net in pool.networks]
        total = sum(sizes)
        count = min(count, max(1, total - len(avoid)))
        out: list[str] = []
        seen: set[str] = set()  # besides `avoid`, which is not copied: a burst each draws from it
        tries = 0
        while len(out) < count and tries < count * 50:
            tries += 1
            offset = self.rng.randrange(total)
            index = 0
            while offset >= sizes[index]:  # the network the offset falls in
                offset -= sizes[index]
                index += 1
            net = pool.networks[index]
            first = 1 if net.version == 4 and net.prefixlen < 31 else 0
            text = str(net.network_address + first + offset)
            if text not in seen and text not in avoid:
                seen.add(text)
                out.append(text)
        if not out:  # every address of a tiny pool is taken: reuse one
            out.append(str(next(iter(pool.networks)).network_address))
        return out


def _usable(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    """Host addresses of a network (no network or broadcast address for IPv4 below /31)."""
    if net.version == 4 and net.prefixlen < 31:
        return max(1, net.num_addresses - 2)
    return net.num_addresses


class PortAllocator:
    """Client ports: per address, upwards in small random steps through the ephemeral range.

    Vectorised: `assign` gives the ports of a block of connections at once, carrying each
    address's last port over to the next block.
    """

    def __init__(self, rng: np.random.Generator, addresses: int) -> None:
        self.rng = rng
        defaults = data("defaults.yaml")
        self.low, self.high = defaults["client_ports"]
        self.step_low, self.step_high = defaults["client_port_step"]
        self.last = np.full(addresses, -1, dtype=np.int64)

    def assign(self, source: np.ndarray) -> np.ndarray:
        n = len(source)
        if not n:
            return np.zeros(0, dtype=np.int64)
        steps = self.rng.integers(self.step_low, self.step_high + 1, n)
        fresh = self.rng.integers(self.low, self.high + 1, n)
        order = np.argsort(source, kind="stable")
        src = source[order]
        st = steps[order]
        first = np.empty(n, dtype=bool)
        first[0] = True
        first[1:] = src[1:] != src[:-1]
        start_idx = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        csum = np.cumsum(st)
        within = csum - csum[start_idx]  # steps after the group's first connection
        prev = self.last[src[start_idx]]
        head = np.where(prev >= 0, prev + st[start_idx], fresh[order][start_idx])
        span = self.high - self.low + 1
        ports_sorted = self.low + (head + within - self.low) % span
        last_of_group = np.empty(n, dtype=bool)
        last_of_group[-1] = True
        last_of_group[:-1] = src[1:] != src[:-1]
        self.last[src[last_of_group]] = ports_sorted[last_of_group]
        ports = np.empty(n, dtype=np.int64)
        ports[order] = ports_sorted
        return ports


class PidAllocator:
    """Pids as a busy box hands them out: increasing with time, wrapping at pid_max to 300.

    A connection takes a run of `span` pids (its processes keep the distances the recording's
    kernel gave them); between two connections other processes take some, more the longer the
    pause. The listener keeps its pid for ever, so a wrapped run skips it.
    """

    def __init__(self, spec: GenerateSpec, rng: np.random.Generator, first: int, avoid: int) -> None:
        self.rng = rng
        defaults = data("defaults.yaml")["pids"]
        self.per_second = float(defaults["per_second"])
        self.extra = tuple(defaults["extra"])
        self.pid_max = spec.pid_max
        self.current = first
        self.last_time = 0.0
        self.avoid = avoid

    def assign(self, start: np.ndarray, span: np.ndarray) -> np.ndarray:
        """The first pid of each connection (`start` in seconds, ascending; `span` pids each)."""
        n = len(start)
        if not n:
            return np.zeros(0, dtype=np.int64)
        dt = np.diff(np.concatenate(([self.last_time], start)))
        gap = (np.maximum(dt, 0.0) * self.per_second).astype(np.int64)
        gap += self.rng.integers(self.extra[0], self.extra[1] + 1, n)
        span = span.astype(np.int64)
        base = self.current + np.cumsum(gap) + np.cumsum(span) - span
        self.current = int(base[-1] + span[-1])
        self.last_time = float(start[-1])
        room = self.pid_max - 300
        wrapped = 300 + (base - 300) % room
        wrapped = np.where(wrapped + span >= self.pid_max, 300, wrapped)
        clash = (wrapped <= self.avoid) & (self.avoid < wrapped + span)
        return np.where(clash, self.avoid + 1, wrapped)
