"""Replay templates as a corpus: fresh identities per connection, interleaved by time, written fast.

This is the hot path of `sshsim generate` (the target is 500k lines/s into a file), so it works on
blocks of connections with arrays, not line by line, and leaves loops over rows to C where it can
(`operator.itemgetter` gathers, slice assignment, `join`, `split`, numpy for numbers):

1. fill: a template is compiled once per output format into the literal pieces of all its
   lines and the slots between them (values the same for every connection written in); the
   connections of a block that share a template are made together, each slot a column, by one
   `join` of pieces and columns, and one `split` of the block cuts the lines apart. A join
   copies memory; a `%` format would read its format string a character at a time;
2. time: every line's time from the template's gap model (numpy, seeded);
3. write: a stable sort by time together with the lines still pending from earlier blocks, then
   stamps (columns gathered from tables: once per second or per day) joined to bodies, written
   in 1 MiB pieces;
4. label: once every line of a connection is out, its JSON line, in id order; line numbers are
   kept as arrays and turned into text for a block of labels at once (`decimal_groups`).

A line is written once no connection that starts later can come before it: lines after the next
block's first start (a session held open for an hour, say) wait for the next block's sort.
"""

from __future__ import annotations

import errno
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO, Any

import numpy as np

from simulator.generate.addresses import PidAllocator, PortAllocator, fingerprint
from simulator.generate.outputs import Column, OutputFormat, decimal_groups, decimal_texts, gather, interleave
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
    pieces: list[str]  # literal text, a slot between each two; "\x1e" ends every line
    names: list[str]  # the slot between pieces[i] and pieces[i + 1]
    nlines: int
    before: list[str]  # per line, what comes before its stamp (rfc5424's "<PRI>1 ")
    pid_offsets: list[int]  # pid<i> is the connection's first pid plus pid_offsets[i]
    span: int  # pids the connection takes
    vols: dict[str, tuple]  # ranges of the vol slots in use: (low, high[, decimals])
    label_head: str  # the label's fields that come from the recording
    failure_index: list[int]  # which of its lines a failure detector must match (0-based)
    penalty_index: list[int]  # which are the listener's penalty and drop lines
    user_json: str | None  # the recorded user, when the template has no user slot


def template_problem(tpl: Template) -> str | None:
    """What keeps a template from being replayed (None: nothing): a slot this writer does not
    fill, or a line holding the character that ends lines while they are made. A recording
    made here has neither; one read from a recordings folder may (the folder is the user's)."""
    offsets = tpl.pid_offsets or list(range(tpl.npids))
    known = set(FIXED_SLOTS) | {f"pid{i}" for i in range(len(offsets))} | set(tpl.ranges)
    names = {ln.pid for ln in tpl.lines if ln.pid is not None}
    names.update(n for ln in tpl.lines for n in ln.text.split(MARK)[1::2])
    unknown = {n for n in names if n not in known and not n.startswith(("fpo", "fph"))}
    if unknown:
        return f"unknown slots {sorted(unknown)}"
    if any(_SEP in ln.text or _SEP in ln.program for ln in tpl.lines):
        return "a line holds the character \\x1e"
    return None


def fold(ct: Compiled, value: Callable[[str], str | None]) -> Compiled:
    """The template with the slots whose value is the same for every connection (the server's
    address, the listener's pid, a host key: `value` gives it, None for the others) written
    into the literal pieces around them: fewer columns to join per connection."""
    pieces = [ct.pieces[0]]
    names: list[str] = []
    for name, piece in zip(ct.names, ct.pieces[1:], strict=True):
        known = value(name)
        if known is None:
            names.append(name)
            pieces.append(piece)
        else:
            pieces[-1] += known + piece
    return replace(ct, pieces=pieces, names=names)


def compile_template(tpl: Template, out: OutputFormat) -> Compiled:
    """Turn a template into the literal pieces of all its lines and the slots between them."""
    pieces = [""]
    names: list[str] = []
    for line in tpl.lines:
        head, tail = out.body(line.program, line.pid is not None, line.priority)
        for i, part in enumerate(head.split("%s")):  # each "%s" of the head stands for the pid
            if i:
                names.append(str(line.pid))
                pieces.append("")
            pieces[-1] += part
        for i, part in enumerate(line.text.split(MARK)):
            if i % 2:
                names.append(part)
                pieces.append("")
            else:
                pieces[-1] += out.escape(part)
        pieces[-1] += tail + _SEP
    problem = template_problem(tpl)
    if problem:
        raise ValueError(f"template {tpl.key}: {problem}")
    offsets = tpl.pid_offsets or list(range(tpl.npids))
    labels = tpl.labels
    head = (f',"scenario":{json.dumps(tpl.entry)},"variant":{json.dumps(tpl.variant)},'
            f'"profile":{json.dumps(tpl.profile)},"outcome":{json.dumps(labels.get("outcome"))},'
            f'"auth_failures":{json.dumps(labels.get("auth_failures", 0))},'
            f'"fail2ban_failures":{json.dumps(labels.get("fail2ban_failures", 0))},'
            f'"invalid_user":{json.dumps(labels.get("invalid_user"))},'
            f'"openssh":{json.dumps(labels.get("openssh"))},"format":{json.dumps(out.name)},'
            f'"failures_as":{json.dumps(data("fail2ban.yaml")["assumes"])},"user":')
    return Compiled(
        template=tpl,
        pieces=pieces,
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
    failure_line: np.ndarray  # per template line: a failure detector must match it
    penalty_line: np.ndarray  # per template line: a listener's penalty or drop line
    entry_hold: np.ndarray  # per entry: [low, high] seconds of a held session
    users: list[str]
    uids: list[str]
    user_keys: list[str]
    user_json: list[str]  # per user of the plan, then the recorded users of user_shown
    user_shown: np.ndarray  # per template: -1 (the plan's user) or its recorded user in user_json
    label_heads: list[str]  # per template
    addresses: list[str]
    source_keys: list[str]
    address_json: list[str]
    burst_json: list[str]


@dataclass
class _State:
    """What carries over from block to block."""

    n: int
    start_us: np.ndarray
    nlines: np.ndarray
    remaining: np.ndarray  # lines of each connection not yet written
    end_us: np.ndarray
    port: np.ndarray  # each connection's client port (assigned a block at a time)
    # lines not yet written (they come after the next block's first start): time, connection,
    # template line (an index into the corpus's lines), body
    pending_t: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending_c: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending_l: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending_b: list[str] = field(default_factory=list)
    # lines written whose connection has no label yet: connection, line number, template line
    written_c: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    written_n: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    written_l: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
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

    def run(self, plan: Plan, log: IO[bytes], labels: IO[bytes]) -> None:
        """Write every planned connection's lines in time order, and one label line each
        (both files opened in binary mode)."""
        n = len(plan)
        corpus = self._corpus(plan)
        nlines = corpus.nlines_of[self.template_index] if n else np.zeros(0, np.int64)
        state = _State(n=n, start_us=epoch_us(self.spec, 0.0) + np.round(plan.start * 1e6).astype(np.int64),
                       nlines=nlines, remaining=nlines.copy(), end_us=np.zeros(n, dtype=np.int64),
                       port=np.zeros(n, dtype=np.int64))
        ports = PortAllocator(self.rng, len(plan.addresses))
        for a, b in blocks(state.nlines):
            t_idx = self.template_index[a:b]
            state.port[a:b] = ports.assign(plan.source[a:b])
            port_l = decimal_texts(state.port[a:b])
            pid_base = self.pids.assign(plan.start[a:b], corpus.span_of[t_idx])
            bodies, where = self._fill(corpus, plan, a, b, port_l, pid_base)
            times, conns, tline = self._times(corpus, plan, state, a, b)
            self._write(corpus, state, log, times, conns, tline, bodies, where,
                        None if b >= n else int(state.start_us[b]))
            self._labels(corpus, plan, state, labels, b)
            if self.progress is not None:
                self.progress(b / n, state.lineno)
        self.lines_written = state.lineno

    # -- set-up ---------------------------------------------------------------------------
    def _corpus(self, plan: Plan) -> _Corpus:
        spec, out = self.spec, self.out
        constants = {"saddr": spec.server_address, "sport": str(spec.server_port), "L": self.listener}
        compiled = [fold(compile_template(t, out), lambda name: constants.get(name) or (
            self._host_key(name) if name.startswith("fph") else None)) for t in self.templates]
        nlines_of = np.array([c.nlines for c in compiled], dtype=np.int64)
        first_of = np.concatenate(([0], np.cumsum(nlines_of)[:-1])).astype(np.int64)
        lines = [ln for t in self.templates for ln in t.lines]
        uid_of = {u.name: str(u.uid) for u in spec.users}
        # the label's user: the plan's (an index into user_json), or the one the recording has
        fixed = [k for k, c in enumerate(compiled) if c.user_json is not None]
        user_shown = np.full(len(compiled), -1, dtype=np.int64)
        user_shown[fixed] = len(plan.users) + np.arange(len(fixed), dtype=np.int64)
        return _Corpus(
            compiled=compiled,
            nlines_of=nlines_of,
            span_of=np.array([c.span for c in compiled], dtype=np.int64),
            first_of=first_of,
            gap_lo=np.array([ln.gap[0] for ln in lines], dtype=np.float64),
            gap_span=np.array([ln.gap[1] - ln.gap[0] for ln in lines], dtype=np.float64),
            hold=np.array([ln.hold for ln in lines], dtype=bool),
            before=[x for c in compiled for x in c.before] if out.uses_before else None,
            failure_line=_marked(nlines_of, first_of, [c.failure_index for c in compiled]),
            penalty_line=_marked(nlines_of, first_of, [c.penalty_index for c in compiled]),
            entry_hold=np.array([e.session if e.session else self.hold_default for e in plan.entries],
                                dtype=np.float64).reshape(-1, 2),
            users=plan.users,
            uids=[uid_of.get(u, "1000") for u in plan.users],
            user_keys=[fingerprint(self.seed, "user-key", u) for u in plan.users],
            user_json=[json.dumps(u or None) for u in plan.users] + [compiled[k].user_json or "" for k in fixed],
            user_shown=user_shown,
            label_heads=[c.label_head for c in compiled],
            addresses=plan.addresses,
            source_keys=[fingerprint(self.seed, "client-key", x) for x in plan.addresses],
            address_json=[f',"source":"{x}","port":' for x in plan.addresses],
            burst_json=[',"burst":' + json.dumps(x) + ',"start":"' for x in plan.bursts] + [',"burst":null,"start":"'],
        )

    # -- 1. fill --------------------------------------------------------------------------
    def _fill(self, corpus: _Corpus, plan: Plan, a: int, b: int, ports: list[str],
              pid_base: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The bodies of the lines of connections a..b-1, template by template, and where each
        line (connection after connection, each in its own order) is among them."""
        t_idx = self.template_index[a:b]
        sources, users = plan.source[a:b].tolist(), plan.user[a:b].tolist()
        order = np.argsort(t_idx, kind="stable")
        grouped = t_idx[order]
        cuts = np.flatnonzero(grouped[1:] != grouped[:-1]) + 1
        nl = corpus.nlines_of[t_idx]
        conn_first = np.cumsum(nl) - nl
        where = np.empty(int(nl.sum()), dtype=np.int64)
        texts: list[str] = []
        done = 0
        for g0, g1 in zip(np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [b - a])).tolist(), strict=True):
            ct = corpus.compiled[int(grouped[g0])]
            if not ct.nlines:
                continue
            members = order[g0:g1]
            count = g1 - g0
            texts.append(self._fill_group(corpus, ct, members, a, sources, users, ports, pid_base))
            lines = count * ct.nlines
            where[(conn_first[members][:, None] + np.arange(ct.nlines)).ravel()] = np.arange(done, done + lines)
            done += lines
        bodies = "".join(texts).split(_SEP)
        bodies.pop()  # the empty text after the last line's end
        return bodies, where

    def _fill_group(self, corpus: _Corpus, ct: Compiled, members: np.ndarray, a: int, sources: list[int],
                    users: list[int], ports: list[str], pid_base: np.ndarray) -> str:
        """The lines of one template's connections, one after the other: each slot a column,
        the columns and the literal pieces between them joined in one go."""
        count = len(members)
        if not ct.names:
            return ct.pieces[0] * count
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
            elif name.startswith("pid"):
                col = decimal_texts(pid_base[members] + ct.pid_offsets[int(name[3:])])
            else:
                col = self._drawn(ct, name, a, mk)
            columns[name] = col
        parts: list[Column] = [ct.pieces[0]]
        for name, piece in zip(ct.names, ct.pieces[1:], strict=True):
            parts.append(columns[name])
            parts.append(piece)
        return interleave(*parts, n=count)

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
    def _write(self, corpus: _Corpus, state: _State, log: IO[bytes], times: np.ndarray, conns: np.ndarray,
               tlines: np.ndarray, bodies: list[str], where: np.ndarray, horizon: int | None) -> None:
        """Sort the new lines with the pending ones; write those at or before `horizon`.
        `where`: each new line's body among `bodies`."""
        all_t = np.concatenate((state.pending_t, times))
        all_c = np.concatenate((state.pending_c, conns))
        all_l = np.concatenate((state.pending_l, tlines))
        held = len(state.pending_b)
        all_b = state.pending_b + bodies if held else bodies
        all_i = np.concatenate((np.arange(held), where + held))  # each line's body in all_b
        order = np.argsort(all_t, kind="stable")
        sorted_t = all_t[order]
        cut = len(order) if horizon is None else int(np.searchsorted(sorted_t, horizon, side="right"))
        now, rest = order[:cut], order[cut:]
        take = all_i[now].tolist()
        columns = self.out.stamps(sorted_t[:cut], state.lineno + 1)
        if corpus.before is not None:
            columns.insert(0, gather(corpus.before, all_l[now].tolist()))
        write_text(log, interleave(*columns, gather(all_b, take), n=cut))
        if cut:
            written = all_c[now]
            state.written_c = np.concatenate((state.written_c, written))
            state.written_n = np.concatenate((state.written_n, np.arange(state.lineno + 1, state.lineno + cut + 1)))
            state.written_l = np.concatenate((state.written_l, all_l[now]))
            low = int(written.min())
            counts = np.bincount(written - low)
            state.remaining[low:low + len(counts)] -= counts
        state.lineno += cut
        state.pending_t, state.pending_c, state.pending_l = all_t[rest], all_c[rest], all_l[rest]
        state.pending_b = list(gather(all_b, all_i[rest].tolist()))

    # -- 4. label -------------------------------------------------------------------------
    def _labels(self, corpus: _Corpus, plan: Plan, state: _State, labels: IO[bytes], limit: int) -> None:
        """One JSON line for every finished connection, in id order."""
        first = state.next_label
        still_open = np.flatnonzero(state.remaining[first:limit])
        ready = first + (int(still_open[0]) if len(still_open) else limit - first)
        if ready == first:
            return
        m = ready - first
        # the written lines of connections first..ready-1, by connection; a connection's lines
        # were written in its own order (its times never go back and the sort is stable), so
        # its numbers ascend and its k-th is its template's k-th line
        done = state.written_c < ready
        picked = np.flatnonzero(done)
        picked = picked[np.argsort(state.written_c[picked], kind="stable")]
        conns, numbers, tlines = state.written_c[picked], state.written_n[picked], state.written_l[picked]
        keep = ~done
        state.written_c, state.written_n, state.written_l = (
            state.written_c[keep], state.written_n[keep], state.written_l[keep])
        failing = corpus.failure_line[tlines]
        penalty = corpus.penalty_line[tlines]
        t_idx = self.template_index[first:ready]
        shown = corpus.user_shown[t_idx]
        shown = np.where(shown < 0, plan.user[first:ready], shown)
        clock = self.out.clock
        write_text(labels, interleave(
            '{"id":', decimal_texts(np.arange(first + 1, ready + 1)), gather(corpus.label_heads, t_idx.tolist()),
            gather(corpus.user_json, shown.tolist()), gather(corpus.address_json, plan.source[first:ready].tolist()),
            decimal_texts(state.port[first:ready]), gather(corpus.burst_json, plan.burst[first:ready].tolist()),
            *clock.iso_columns(state.start_us[first:ready], '","end":"'),
            *clock.iso_columns(state.end_us[first:ready], '","lines":['), numbers_text(conns, numbers, first, m),
            '],"failure_lines":[', numbers_text(conns[failing], numbers[failing], first, m),
            '],"penalty_lines":[', numbers_text(conns[penalty], numbers[penalty], first, m),
            "]}\n", n=m))
        state.next_label = ready


def _marked(nlines_of: np.ndarray, first_of: np.ndarray, index: list[list[int]]) -> np.ndarray:
    """Per template line, whether it is one of its template's `index` lines (0-based; one out
    of the template's range, from a recordings folder edited by hand, marks nothing)."""
    marked = np.zeros(int(nlines_of.sum()), dtype=bool)
    for t, positions in enumerate(index):
        for i in positions:
            if 0 <= i < nlines_of[t]:
                marked[first_of[t] + i] = True
    return marked


def numbers_text(conns: np.ndarray, numbers: np.ndarray, first: int, m: int) -> list[str]:
    """Per connection first..first+m-1, its numbers as a JSON list's inside ("3,4,9"; "" for
    none), from numbers grouped by connection (`conns` ascending)."""
    if not len(conns):
        return [""] * m
    last = np.empty(len(conns), dtype=bool)
    last[-1] = True
    last[:-1] = conns[1:] != conns[:-1]
    parts = decimal_groups(numbers, last)
    who = conns[last] - first
    if len(who) == m:
        return parts
    index = np.full(m, len(parts), dtype=np.int64)
    index[who] = np.arange(len(parts))
    return list(gather(parts + [""], index.tolist()))
