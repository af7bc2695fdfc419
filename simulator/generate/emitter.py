"""Replay templates as a corpus: fresh identities per connection, interleaved by time, written fast.

This is the hot path of `sshsim generate` (the target is 500k lines/s into a file), so it works on
blocks of connections with arrays, not line by line, and leaves loops over rows to C where it can
(`operator.itemgetter` gathers, slice assignment, one `join`, one `split`):

1. fill: a template is compiled once per output format into one %-format string holding all its
   lines; the connections of a block that share a template are filled together, each slot a
   column, so a connection costs one `%`;
2. time: every line's time from the template's gap model (numpy, seeded);
3. write: a stable sort by time together with the lines still pending from earlier blocks, then
   stamps (from tables: once per second or per day) joined to bodies, written in 1 MiB pieces;
4. label: line numbers per connection, and one JSON line per finished connection, in id order.

A line is written once no connection that starts later can come before it: lines after the next
block's first start (a session held open for an hour, say) wait for the next block's sort.

"""

from __future__ import annotations

import errno
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from simulator.generate.addresses import PidAllocator, PortAllocator, fingerprint
from simulator.generate.outputs import OutputFormat, gather, interleave
from simulator.generate.spec import GenerateSpec, data
from simulator.generate.template import MARK, Template
from simulator.generate.timeline import Plan, epoch_us, numpy_rng

_SEP = "\x1e"  # between the lines of one compiled template (never in an sshd message)
BLOCK = 16384  # connections per block
# Lines per block at most: the writer's memory follows a block's lines, and at DEBUG levels a
# connection has a hundred or more (at INFO a block of BLOCK connections stays well below).
BLOCK_LINES = 1 << 17
FIXED_SLOTS = ("saddr", "sport", "L", "addr", "port", "user", "uid", "fpu", "fps")
WRITE_CHUNK = 1 << 20


def write_text(f: IO[bytes], text: str) -> None:
    """Write text as UTF-8 in 1 MiB pieces: several times faster than one multi-megabyte write
    (the source stays in the CPU cache while the kernel copies it). An unbuffered file may take
    less than offered (write(2) on a disk that fills up): the rest is offered again, so the
    error comes out instead of a silent gap."""
    data = memoryview(text.encode("utf-8"))
    for i in range(0, len(data), WRITE_CHUNK):
        piece = data[i:i + WRITE_CHUNK]
        while piece:
            done = f.write(piece)
            if not done:
                raise OSError(errno.EIO, "write(2) wrote nothing")
            piece = piece[done:]


def blocks(nlines: np.ndarray) -> Iterator[tuple[int, int]]:
    """Blocks (a, b) of connections a..b-1 in order: BLOCK of them, fewer where those would have
    more than BLOCK_LINES lines (one at least): a DEBUG3 corpus keeps memory bounded by lines,
    not only connections. The same spec gives the same blocks, so the same random draws."""
    n = len(nlines)
    ends = np.cumsum(nlines)
    a = 0
    while a < n:
        b = min(n, a + BLOCK)
        before = int(ends[a - 1]) if a else 0
        if int(ends[b - 1]) - before > BLOCK_LINES:
            b = max(a + 1, int(np.searchsorted(ends, before + BLOCK_LINES, side="right")))
        yield a, b
        a = b


@dataclass(slots=True)
class Compiled:
    """A template ready for one output format."""

    template: Template
    fmt: str  # all lines, "\x1e" between them; "%s" where a slot goes
    names: list[str]  # the slot of each "%s", in order
    nlines: int
    before: list[str]  # per line, what comes before its stamp (rfc5424's "<PRI>1 ")
    pid_offsets: list[int]  # pid<i> is the connection's first pid plus pid_offsets[i]
    span: int  # pids the connection takes
    vols: dict[str, tuple]  # ranges of the vol slots in use: (low, high[, decimals])
    label_head: str  # the label's fields that come from the recording
    failure_index: list[int]  # which of its lines a failure detector must match (0-based)
    penalty_index: list[int]  # which are the listener's penalty and drop lines
    user_json: str | None  # the recorded user, when the template has no user slot


def compile_template(tpl: Template, out: OutputFormat) -> Compiled:
    """Turn a template into one format string (all lines, "\\x1e" between) and its slot list."""
    pieces: list[str] = []
    names: list[str] = []
    for line in tpl.lines:
        head, tail = out.body(line.program, line.pid is not None, line.priority)
        pieces.append(head.replace("%s", "\x01"))
        if line.pid is not None:
            names.extend([line.pid] * head.count("%s"))
        for i, part in enumerate(line.text.split(MARK)):
            if i % 2:
                pieces.append("\x01")
                names.append(part)
            else:
                pieces.append(out.escape(part))
        pieces.append(tail)
        pieces.append(_SEP)
    if pieces:
        pieces.pop()
    fmt = "".join(pieces).replace("%", "%%").replace("\x01", "%s")
    offsets = tpl.pid_offsets or list(range(tpl.npids))
    known = set(FIXED_SLOTS) | {f"pid{i}" for i in range(len(offsets))} | set(tpl.ranges)
    unknown = {n for n in names if n not in known and not n.startswith(("fpo", "fph"))}
    if unknown:
        raise ValueError(f"template {tpl.key}: unknown slots {sorted(unknown)}")
    labels = tpl.labels
    head = (f',"scenario":{json.dumps(tpl.entry)},"variant":{json.dumps(tpl.variant)},'
            f'"profile":{json.dumps(tpl.profile)},"outcome":{json.dumps(labels.get("outcome"))},'
            f'"auth_failures":{labels.get("auth_failures", 0)},'
            f'"fail2ban_failures":{labels.get("fail2ban_failures", 0)},'
            f'"invalid_user":{json.dumps(labels.get("invalid_user"))},'
            f'"openssh":{json.dumps(labels.get("openssh"))},"format":{json.dumps(out.name)},'
            f'"failures_as":{json.dumps(data("fail2ban.yaml")["assumes"])},"user":')
    return Compiled(
        template=tpl,
        fmt=fmt if names else fmt.replace("%%", "%"),
        names=names,
        nlines=len(tpl.lines),
        before=[out.before(ln.priority) for ln in tpl.lines],
        pid_offsets=list(offsets),
        span=(offsets[-1] + 1) if offsets else 0,
        vols={n: tpl.ranges[n] for n in dict.fromkeys(names) if n.startswith("vol")},
        label_head=head,
        failure_index=list(labels.get("failure_index", ())),
        penalty_index=list(labels.get("penalty_index", ())),
        user_json=json.dumps(tpl.user) if tpl.user is not None else None,
    )


@dataclass
class _Corpus:
    """What the whole run shares: compiled templates as arrays, slot values per user/address."""

    compiled: list[Compiled]
    nlines_of: np.ndarray  # per template
    span_of: np.ndarray
    first_of: np.ndarray  # per template, its first line in the arrays below
    gap_lo: np.ndarray  # per template line
    gap_span: np.ndarray
    hold: np.ndarray
    before: list[str] | None
    entry_hold: np.ndarray  # per entry: [low, high] seconds of a held session
    users: list[str]
    uids: list[str]
    user_keys: list[str]
    user_json: list[str]
    addresses: list[str]
    source_keys: list[str]
    address_json: list[str]
    burst_json: list[str]
    constants: dict[str, str]


@dataclass
class _State:
    """What carries over from block to block."""

    n: int
    start_us: np.ndarray
    nlines: np.ndarray
    remaining: np.ndarray  # lines of each connection not yet written
    end_us: np.ndarray
    heads: list[str]  # label text known at the start, per connection ("" once written)
    frags: list[str]  # line numbers written so far, per connection
    pending_t: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending_c: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending_b: list[str] = field(default_factory=list)
    pending_h: list[str] = field(default_factory=list)
    lineno: int = 0
    next_label: int = 0


class Emitter:
    """Writes the planned connections, replayed from compiled templates, and their labels."""

    def __init__(self, spec: GenerateSpec, out: OutputFormat, seed: int, templates: list[Template],
                 template_index: np.ndarray, *, progress: Callable[[float, int], None] | None = None) -> None:
        self.spec = spec
        self.out = out
        self.seed = seed
        self.templates = templates
        self.template_index = np.asarray(template_index, dtype=np.int64)
        self.progress = progress
        self.rng = numpy_rng(seed, "instances")
        self.vol_rng = random.Random(f"{seed}:volatile")
        listener = spec.listener_pid or random.Random(f"{seed}:listener").randint(400, 1800)
        self.listener = str(listener)
        self.pids = PidAllocator(spec, self.rng, listener + int(self.rng.integers(50, 400)), listener)
        self.hold_default = tuple(float(x) for x in data("timing.yaml")["hold"]["seconds"])
        self.lines_written = 0
        self._failure_index: list[list[int]] = []
        self._has_failures = np.zeros(1, dtype=bool)
        self._penalty_index: list[list[int]] = []
        self._has_penalties = np.zeros(1, dtype=bool)

    def run(self, plan: Plan, log: IO[bytes], labels: IO[bytes]) -> None:
        """Write every planned connection's lines in time order, and one label line each
        (both files opened in binary mode)."""
        n = len(plan)
        corpus = self._corpus(plan)
        nlines = corpus.nlines_of[self.template_index] if n else np.zeros(0, np.int64)
        state = _State(n=n, start_us=epoch_us(self.spec, 0.0) + np.round(plan.start * 1e6).astype(np.int64),
                       nlines=nlines, remaining=nlines.copy(), end_us=np.zeros(n, dtype=np.int64),
                       heads=[""] * n, frags=[""] * n)
        ports = PortAllocator(self.rng, len(plan.addresses))
        for a, b in blocks(state.nlines):
            t_idx = self.template_index[a:b]
            port_l = list(map(str, ports.assign(plan.source[a:b]).tolist()))
            pid_base = self.pids.assign(plan.start[a:b], corpus.span_of[t_idx])
            bodies = self._fill(corpus, plan, a, b, port_l, pid_base)
            self._heads(corpus, plan, state, a, b, port_l)
            times, conns, tline = self._times(corpus, plan, state, a, b)
            befores = list(gather(corpus.before, tline.tolist())) if corpus.before is not None else []
            self._write(state, log, times, conns, bodies, befores, None if b >= n else int(state.start_us[b]))
            self._labels(state, labels, b)
            if self.progress is not None:
                self.progress(b / n, state.lineno)
        self.lines_written = state.lineno

    # -- set-up ---------------------------------------------------------------------------
    def _corpus(self, plan: Plan) -> _Corpus:
        spec, out = self.spec, self.out
        compiled = [compile_template(t, out) for t in self.templates]
        self._failure_index = [c.failure_index for c in compiled]
        self._has_failures = np.array([bool(c.failure_index) for c in compiled] or [False], dtype=bool)
        self._penalty_index = [c.penalty_index for c in compiled]
        self._has_penalties = np.array([bool(c.penalty_index) for c in compiled] or [False], dtype=bool)
        nlines_of = np.array([c.nlines for c in compiled], dtype=np.int64)
        lines = [ln for t in self.templates for ln in t.lines]
        uid_of = {u.name: str(u.uid) for u in spec.users}
        return _Corpus(
            compiled=compiled,
            nlines_of=nlines_of,
            span_of=np.array([c.span for c in compiled], dtype=np.int64),
            first_of=np.concatenate(([0], np.cumsum(nlines_of)[:-1])).astype(np.int64),
            gap_lo=np.array([ln.gap[0] for ln in lines], dtype=np.float64),
            gap_span=np.array([ln.gap[1] - ln.gap[0] for ln in lines], dtype=np.float64),
            hold=np.array([ln.hold for ln in lines], dtype=bool),
            before=[x for c in compiled for x in c.before] if out.uses_before else None,
            entry_hold=np.array([e.session if e.session else self.hold_default for e in plan.entries],
                                dtype=np.float64).reshape(-1, 2),
            users=plan.users,
            uids=[uid_of.get(u, "1000") for u in plan.users],
            user_keys=[fingerprint(self.seed, "user-key", u) for u in plan.users],
            user_json=[json.dumps(u or None) for u in plan.users],
            addresses=plan.addresses,
            source_keys=[fingerprint(self.seed, "client-key", x) for x in plan.addresses],
            address_json=[f',"source":"{x}","port":' for x in plan.addresses],
            # each label beginning ends in "\x00", to split a block's text into them
            burst_json=[',"burst":' + json.dumps(x) + "\x00" for x in plan.bursts] + [',"burst":null\x00'],
            constants={"saddr": spec.server_address, "sport": str(spec.server_port), "L": self.listener},
        )

    # -- 1. fill --------------------------------------------------------------------------
    def _fill(self, corpus: _Corpus, plan: Plan, a: int, b: int, ports: list[str],
              pid_base: np.ndarray) -> list[str]:
        """The body of every line of connections a..b-1, connection after connection."""
        t_idx = self.template_index[a:b]
        sources, users = plan.source[a:b].tolist(), plan.user[a:b].tolist()
        order = np.argsort(t_idx, kind="stable")
        grouped = t_idx[order]
        cuts = np.flatnonzero(grouped[1:] != grouped[:-1]) + 1
        position = np.zeros(b - a, dtype=np.int64)  # of each connection's text in `texts`
        texts: list[str] = []
        for g0, g1 in zip(np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [b - a])).tolist(), strict=True):
            ct = corpus.compiled[int(grouped[g0])]
            if not ct.nlines:
                continue
            members = order[g0:g1]
            position[members] = np.arange(len(texts), len(texts) + g1 - g0)
            texts.extend(self._fill_group(corpus, ct, members, a, sources, users, ports, pid_base))
        with_lines = position[corpus.nlines_of[t_idx] > 0].tolist()
        return _SEP.join(gather(texts, with_lines)).split(_SEP) if with_lines else []

    def _fill_group(self, corpus: _Corpus, ct: Compiled, members: np.ndarray, a: int, sources: list[int],
                    users: list[int], ports: list[str], pid_base: np.ndarray) -> list[str]:
        """The texts of one template's connections: each slot a column, each row one `%`."""
        count = len(members)
        if not ct.names:
            return [ct.fmt] * count
        mk = members.tolist()
        src = gather(sources, mk)
        usr = gather(users, mk)
        columns: dict[str, Any] = {}
        for name in dict.fromkeys(ct.names):  # first-use order: the vol slots draw in a fixed order
            if name == "addr":
                col: Any = gather(corpus.addresses, src)
            elif name == "port":
                col = gather(ports, mk)
            elif name == "user":
                col = gather(corpus.users, usr)
            elif name == "uid":
                col = gather(corpus.uids, usr)
            elif name == "fpu":
                col = gather(corpus.user_keys, usr)
            elif name == "fps":
                col = gather(corpus.source_keys, src)
            elif name in corpus.constants:
                col = [corpus.constants[name]] * count
            elif name.startswith("pid"):
                col = list(map(str, (pid_base[members] + ct.pid_offsets[int(name[3:])]).tolist()))
            elif name.startswith("fph"):
                col = [self._host_key(name)] * count
            else:
                col = self._drawn(ct, name, a, mk)
            columns[name] = col
        fmt = ct.fmt
        return [fmt % row for row in zip(*[columns[name] for name in ct.names], strict=True)]

    def _host_key(self, name: str) -> str:
        return fingerprint(self.seed, "host-key", self.spec.host, name)

    def _drawn(self, ct: Compiled, name: str, a: int, members: list[int]) -> list[str]:
        """A column of values of their own per connection: vol<i> (drawn from the volatile
        stream, in the order the slots are first used) or fpo<i> (a key seen once)."""
        if name.startswith("vol"):
            lo, hi, *decimals = ct.vols[name]
            if decimals:
                return [f"{self.vol_rng.uniform(lo, hi):.{decimals[0]}f}" for _ in members]
            return [str(self.vol_rng.randint(lo, hi)) for _ in members]
        return [fingerprint(self.seed, "other-key", a + k, name) for k in members]

    def _heads(self, corpus: _Corpus, plan: Plan, state: _State, a: int, b: int, ports: list[str]) -> None:
        """The labels' beginnings: '{"id":7,"scenario":...,"user":"bob","source":...,"burst":null'."""
        t_l = self.template_index[a:b].tolist()
        shown = gather(corpus.user_json, plan.user[a:b].tolist())
        fixed = [k for k, t in enumerate(t_l) if corpus.compiled[t].user_json is not None]
        if fixed:
            shown = list(shown)
            for k in fixed:
                shown[k] = corpus.compiled[t_l[k]].user_json
        state.heads[a:b] = interleave(
            [f'{{"id":{i}' for i in range(a + 1, b + 1)], gather([c.label_head for c in corpus.compiled], t_l), shown,
            gather(corpus.address_json, plan.source[a:b].tolist()), ports,
            gather(corpus.burst_json, plan.burst[a:b].tolist()), n=b - a).split("\x00")[:-1]

    # -- 2. time --------------------------------------------------------------------------
    def _times(self, corpus: _Corpus, plan: Plan, state: _State, a: int,
               b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each line's time (start + the connection's cumulative gaps), connection, and template
        line (an index into the corpus's lines, all templates' lines one after the other)."""
        t_idx = self.template_index[a:b]
        nl = state.nlines[a:b]
        total = int(nl.sum())
        conn_first = np.concatenate(([0], np.cumsum(nl)[:-1])).astype(np.int64)
        conns = np.repeat(np.arange(a, b, dtype=np.int64), nl)
        tline = np.repeat(corpus.first_of[t_idx] - conn_first, nl) + np.arange(total)
        u = self.rng.random(total)
        gaps = corpus.gap_lo[tline] + corpus.gap_span[tline] * u
        held = corpus.hold[tline]
        if held.any():  # a session's lifetime: log-uniform between the entry's bounds
            lohi = corpus.entry_hold[plan.entry[conns[held]]]
            lo, hi = lohi[:, 0], lohi[:, 1]
            log_uniform = (lo > 0) & (hi > lo)
            safe_lo = np.where(log_uniform, lo, 1.0)
            ratio = np.where(log_uniform, hi / safe_lo, 1.0)
            gaps[held] = np.where(log_uniform, safe_lo * np.exp(u[held] * np.log(ratio)), lo + (hi - lo) * u[held])
        gap_us = (gaps * 1_000_000).astype(np.int64)
        csum = np.cumsum(gap_us)
        at = np.minimum(conn_first, max(total - 1, 0))
        before_first = (csum[at] - gap_us[at]) if total else np.zeros(len(nl), dtype=np.int64)
        times = np.repeat(state.start_us[a:b] - before_first, nl) + csum
        block_end = state.end_us[a:b]
        block_end[:] = state.start_us[a:b]
        has = nl > 0
        if total:
            block_end[has] = times[(conn_first + nl - 1)[has]]
        return times, conns, tline

    # -- 3. write -------------------------------------------------------------------------
    def _write(self, state: _State, log: IO[bytes], times: np.ndarray, conns: np.ndarray, bodies: list[str],
               befores: list[str], horizon: int | None) -> None:
        """Sort the new lines with the pending ones; write those at or before `horizon`."""
        out = self.out
        all_t = np.concatenate((state.pending_t, times))
        all_c = np.concatenate((state.pending_c, conns))
        all_b = state.pending_b + bodies if state.pending_b else bodies
        all_h = state.pending_h + befores if out.uses_before else None
        order = np.argsort(all_t, kind="stable")
        sorted_t = all_t[order]
        cut = len(order) if horizon is None else int(np.searchsorted(sorted_t, horizon, side="right"))
        take = order[:cut].tolist()
        texts, which = out.stamps(sorted_t[:cut], state.lineno + 1)
        stamps = gather(texts, which) if which is not None else texts
        if all_h is not None:
            write_text(log, interleave(gather(all_h, take), stamps, gather(all_b, take), n=cut))
        else:
            write_text(log, interleave(stamps, gather(all_b, take), n=cut))
        if cut:
            self._line_numbers(state, all_c[order[:cut]], np.arange(state.lineno + 1, state.lineno + cut + 1))
        state.lineno += cut
        rest = order[cut:]
        rest_l = rest.tolist()
        state.pending_t, state.pending_c = all_t[rest], all_c[rest]
        state.pending_b = list(gather(all_b, rest_l))
        state.pending_h = list(gather(all_h, rest_l)) if all_h is not None else []

    # -- 4. label -------------------------------------------------------------------------
    def _picked(self, state: _State, first: int, ready: int, index: list[list[int]], has: np.ndarray) -> list[str]:
        """Per connection first..ready-1, the numbers of its lines at the template's positions
        `index` (failure or penalty lines; "" for most). A connection's lines are written in its
        own order (its times never go back, and the sort is stable), so they are its written
        line numbers at those positions."""
        out = [""] * (ready - first)
        for k in np.flatnonzero(has[self.template_index[first:ready]]).tolist():
            numbers = state.frags[first + k].split(",")
            out[k] = ",".join(numbers[i] for i in index[int(self.template_index[first + k])])
        return out

    @staticmethod
    def _line_numbers(state: _State, conns: np.ndarray, numbers: np.ndarray) -> None:
        """Add written line numbers to their connections' label text ("3,4,9")."""
        by_conn = np.argsort(conns, kind="stable")
        wc = conns[by_conn]
        last = np.empty(len(wc), dtype=bool)
        last[-1] = True
        last[:-1] = wc[1:] != wc[:-1]
        # every number, "," after it within a connection, "\x00" after a connection's last: one
        # join and one split give each connection's part (numpy strings drop NULs: gather them)
        seps = gather((",", "\x00"), last.view(np.int8).tolist())
        parts = interleave(list(map(str, numbers[by_conn].tolist())), seps, n=len(wc)).split("\x00")
        parts.pop()  # the empty text after the last connection's "\x00"
        ends = np.flatnonzero(last)
        firsts = np.concatenate(([0], ends[:-1] + 1))
        who = wc[ends]
        earlier = (state.remaining[who] != state.nlines[who]).tolist()  # lines written by an earlier block
        frags = state.frags
        for conn, part, more in zip(who.tolist(), parts, earlier, strict=True):
            frags[conn] = frags[conn] + "," + part if more else part
        state.remaining[who] -= ends - firsts + 1

    def _labels(self, state: _State, labels: IO[bytes], limit: int) -> None:
        """One JSON line for every finished connection, in id order."""
        first = state.next_label
        still_open = np.flatnonzero(state.remaining[first:limit])
        ready = first + (int(still_open[0]) if len(still_open) else limit - first)
        if ready == first:
            return
        m = ready - first
        isos = self.out.clock.iso_many(np.concatenate((state.start_us[first:ready], state.end_us[first:ready])))
        write_text(labels, interleave(state.heads[first:ready], ',"start":"', isos[:m], '","end":"', isos[m:],
                                      '","lines":[', state.frags[first:ready], '],"failure_lines":[',
                                      self._picked(state, first, ready, self._failure_index, self._has_failures),
                                      '],"penalty_lines":[',
                                      self._picked(state, first, ready, self._penalty_index, self._has_penalties),
                                      "]}\n", n=m))
        state.heads[first:ready] = [""] * m
        state.frags[first:ready] = [""] * m
        state.next_label = ready
