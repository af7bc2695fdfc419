"""The parser's C twin (simulator/logs/csrc/, module _speedups) against its Python reference, line by line.

Both loops must give the same events (every slot, fields included) and the same grouping, on
real logs (the reference log, local captures at four LogLevels, fail2ban's corpora, a long log
of repeated real connections that makes the grouping sweep) and on the awkward lines real files
hold (non-ASCII, CRLF, furniture after the prefix, another format in the middle, huge pids).
Each implementation has a catalogue of its own: given the same lines in the same order, the
two catalogues' caches go through the same states, so the answers must be equal.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator import speedups
from simulator.logs import connections, events, parser
from simulator.logs import reader as reader_mod
from simulator.logs.catalogue import Catalogue, load_specs
from simulator.logs.connections import ConnectionTracker

ROOT = Path(__file__).resolve().parents[1]
LOCAL = sorted((ROOT / "tests" / "data" / "local").glob("*.log"))
C_PARSER = parser._speedups

needs_c = pytest.mark.skipif(
    C_PARSER is None,
    reason="the C parser is not built here (no compiler, or SSHSIM_PURE_PYTHON set); "
    "CI sets SSHSIM_REQUIRE_SPEEDUPS=1, which makes its absence an import error",
)

_SPECS = load_specs()
_CATALOGUES = {True: Catalogue(_SPECS), False: Catalogue(_SPECS)}


def _run(lines: list[str], use_c: bool, window: int = 1024, tally: bool = False,
         input_format: str | None = None, seen_limit: int | None = None,
         summaries: bool = False) -> list[tuple]:
    """Parse + group with one implementation; every slot of every event, as tuples."""
    saved = (parser._speedups, connections._speedups, events._build_fields, parser.SEEN_LIMIT)
    if seen_limit is not None:
        parser.SEEN_LIMIT = seen_limit
    if not use_c:
        parser._speedups = connections._speedups = events._build_fields = None
    try:
        cat = _CATALOGUES[use_c]
        done: list = []
        tracker = ConnectionTracker(window=window, on_done=done.append, summaries=summaries, tally=tally)
        out = []
        for ev in tracker.run(parser.parse_lines(lines, input_format=input_format, catalogue=cat)):
            out.append((ev.line, ev.raw, ev.format, ev.ts, ev.host, ev.program, ev.pid, ev.level,
                        ev.event, ev.message, ev.relay, ev.spec.key if ev.spec else None,
                        ev.spec.pattern if ev.spec else None, ev._groups, ev.extra, ev.conn,
                        ev.role, ev.fields))
        # the connections as grouping leaves them (summaries=False: only what grouping needs)
        out.append(sorted((c.to_dict() for c in done), key=lambda d: d["conn"]))
        return out
    finally:
        parser._speedups, connections._speedups, events._build_fields, parser.SEEN_LIMIT = saved


def _same(lines: list[str], **kw) -> list[tuple]:
    c = _run(lines, True, **kw)
    py = _run(lines, False, **kw)
    assert len(c) == len(py) == len(lines) + 1
    for a, b in zip(c[:-1], py[:-1]):
        assert a == b, f"line {b[0]}: C {a} != Python {b}"
    for a, b in zip(c[-1], py[-1]):
        assert a == b, f"connection {b['conn']}: C {a} != Python {b}"
    assert len(c[-1]) == len(py[-1])
    return c[:-1]


_PID = re.compile(r"(sshd\[|Forked child |User child is on pid |session_by_pid: pid |pid )(\d+)")
_PORT = re.compile(r"(\bport |\]:)(\d+)")


def _repeated(lines: list[str], times: int, reuse_pids: bool = False) -> Iterator[str]:
    """Real connections repeated with fresh pids and client ports (a long-running server), or
    with the same pids each time (pids reused by new connections)."""
    for rep in range(times):
        pid_map: dict[str, str] = {}
        port_map: dict[str, str] = {}
        base, pbase = 1000 + (0 if reuse_pids else rep * 40), 20000 + rep * 7
        for line in lines:
            line = _PID.sub(lambda m: m.group(1) + pid_map.setdefault(m.group(2), str(base + len(pid_map))), line)
            yield _PORT.sub(lambda m: m.group(0) if int(m.group(2)) < 1024 else
                            m.group(1) + port_map.setdefault(m.group(2), str(pbase + len(port_map))), line)


@needs_c
def test_reference_log_same_in_c_and_python(seed_log_path: Path) -> None:
    _same(seed_log_path.read_text().splitlines(), window=8)  # the window: grouped by the loop
    out = _same(seed_log_path.read_text().splitlines())
    assert {row[16] for row in out} == {"listener", "monitor", "preauth", "user", "session", None}  # None: logind
    assert all(row[8] != "unknown" for row in out)


@needs_c
@pytest.mark.parametrize("path", LOCAL, ids=[p.name for p in LOCAL])
def test_local_captures_same_in_c_and_python(path: Path) -> None:
    _same(path.read_text().splitlines(), window=16)
    _same(path.read_text().splitlines(), window=16, summaries=True, tally=True)  # `sshsim parse --format summary`


@needs_c
def test_fail2ban_corpora_same_in_c_and_python() -> None:
    from tests.test_parser_fail2ban import LOGS

    if LOGS is None:
        pytest.skip("fail2ban is not installed (apt-get install fail2ban): its sshd test logs are the corpus")
    for name in ("sshd", "sshd-journal"):
        lines = (LOGS / name).read_text(encoding="utf-8", errors="backslashreplace").splitlines()
        _same(lines, window=16)


@needs_c
def test_long_log_with_sweeps_same_in_c_and_python() -> None:
    """Enough lines for the tracker to sweep (every 2 windows here) and reuse nothing wrongly;
    with per-connection counters kept (tally) as `sshsim parse --format summary` keeps them."""
    base = LOCAL[0].read_text().splitlines() if LOCAL else []
    lines = list(_repeated(base, 60))
    assert len(lines) > 5000
    out = _same(lines, window=64)
    assert len({row[15] for row in out}) > 60
    _same(lines[:3000], window=32, tally=True)
    # the same pids again and again: every connection reuses the pids of an ended one
    _same(list(_repeated(base, 8, reuse_pids=True)), window=16)
    # a small message cache, emptied every few lines (by either loop: a slow line among them)
    mixed = lines[:2000]
    mixed[5::50] = [l.replace("port", "pört") for l in mixed[5::50]]
    _same(mixed, seen_limit=7)


AWKWARD = [
    "Jan  5 11:23:02 host sshd[42]: Server listening on 0.0.0.0 port 22.",
    "Jan 15 11:23:02 host sshd[42]: Accepted password for bob from 192.0.2.1 port 5000 ssh2",
    "Jan 5 11:23:02 host sshd[43]: Accepted password for bob from 192.0.2.1 port 5001 ssh2",
    "Feb 05 01:02:03 host sshd[44]: Connection closed by 192.0.2.9 port 1 [preauth]\r",
    "Mar  1 00:00:00 host sshd[45]: Invalid user jörg from 192.0.2.2 port 33",
    "Mar  1 00:00:00 host sshd[45]: ",
    "Mar  1 00:00:00 host sshd[45]:",
    "Mar  1 00:00:00 host sshd[45]: [ID 800047 auth.info] Failed password for root from 192.0.2.3 port 1 ssh2",
    "Mar  1 00:00:00 host kernel: [ 1.0] something",
    "Mar  1 00:00:00 host sshd[123456789012345678901234]: Connection from 192.0.2.4 port 1 on 10.0.0.1 port 22",
    "Mar  1 00:00:00 host sshd[046]: debug1: Forked child 47.",
    "Mar  1 00:00:00 host sshd[47]: debug3: mm_request_send: entering, type 4",
    "Mar  1 00:00:00 host sshd[47]: debug4: nothing of ours",
    "Mar  1 00:00:00 host sshd[47]: error: kex_exchange_identification: Connection closed by remote host",
    "Mar  1 00:00:00 host sshd[47]: fatal: Timeout before authentication for 192.0.2.5 port 9",
    "Mar  1 00:00:00 host sshd[47]: Disconnected from user bob 192.0.2.1 port 5000 [postauth]",
    "Mär  1 00:00:00 host sshd[48]: Accepted publickey for bob from 192.0.2.1 port 5002 ssh2: ED25519 SHA256:abc",
    "2024-01-29T11:23:02.123+01:00 host sshd[49]: Accepted password for eve from 192.0.2.6 port 6 ssh2",
    "<38>Mar  1 00:00:00 host sshd[50]: Connection closed by 192.0.2.7 port 7",
    "Mar  1 00:00:00 host-with-dash sshd-session[51]: Connection closed by 192.0.2.8 port 8",
    "Mar  1 00:00:00 host sshd-auth[52]: Failed password for invalid user x from 192.0.2.8 port 8 ssh2",
    "Mar  1 00:00:00 host sftp-server[53]: session opened for local user bob from [192.0.2.1]",
    "Mar  1 00:00:00 host sshd[54]: Received disconnect from 192.0.2.1 port 5000:11: Bye \xff [preauth]",
    "Mar  1 00:00:00 host CRON[55]: pam_unix(cron:session): session opened for user root",
    "garbage that is no log line at all",
    "",
    "Mar  1 00:00:00 host sshd[56]: " + "A" * 1_000_000,
    "Mar 32 00:00:00 host sshd[57]: Server listening on :: port 22.",
    "Mar  1 24:00:00 host sshd[58]: Server listening on :: port 22.",
    "Mar  1 00:00:00  sshd[59]: two spaces, no host",
]


@needs_c
def test_awkward_lines_same_in_c_and_python() -> None:
    _same(AWKWARD)
    _same(AWKWARD[::-1], window=2)  # a window smaller than the input: grouped by the loop, not flush
    _same(AWKWARD, window=1, input_format="syslog")


@needs_c
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(AWKWARD[:24]) | st.text(max_size=120), max_size=25),
       st.integers(min_value=0, max_value=40))
def test_random_lines_same_in_c_and_python(lines: list[str], cut: int) -> None:
    lines = [l[: len(l) - cut] if cut < len(l) else l for l in lines]
    lines = [l.replace("\n", " ") for l in lines]
    _same(lines, window=4)


def test_build_fields_matches_python() -> None:
    if events._build_fields is None:
        pytest.skip("the C parser is not built here")
    cat = Catalogue(_SPECS)
    line = "Accepted publickey for bob from 192.0.2.1 port 5002 ssh2: ED25519 SHA256:abc"
    spec, groups = cat.match(line)
    built = events._build_fields(groups, spec.named, spec.int_fields)
    assert built["port"] == 5002 and built["user"] == "bob" and built["addr"] == "192.0.2.1"
    assert list(built) == [name for _, name in spec.named]
    # an int-typed field that does not parse as one stays text, as in the Python twin
    named = ((0, "pid"), (1, "user"))
    assert events._build_fields(("12x", "bob"), named, frozenset({"pid"})) == {"pid": "12x", "user": "bob"}
    assert events._build_fields((" 7 ", None), named, frozenset({"pid", "user"})) == {"pid": 7, "user": None}
    with pytest.raises(TypeError):
        events._build_fields([], (), frozenset())


def test_required_speedups_are_there() -> None:
    """CI sets SSHSIM_REQUIRE_SPEEDUPS=1: the C path must then have been the one tested."""
    if not speedups.REQUIRED:
        pytest.skip("SSHSIM_REQUIRE_SPEEDUPS is not set")
    assert parser._speedups is not None and connections._speedups is not None
    assert events._build_fields is not None


def test_pure_python_switch(tmp_path: Path) -> None:
    """SSHSIM_PURE_PYTHON=1 gives the Python loops, and the same output as the default."""
    import subprocess
    import sys

    log = tmp_path / "a.log"
    log.write_text("\n".join(AWKWARD[:24]) + "\n")
    script = ("import sys, simulator.logs.parser as p; from simulator.logs import parse_file, group_events;"
              "print(p._speedups is None); [print(e.line, e.event, e.conn, e.role) for e in group_events(parse_file(sys.argv[1]))]")
    env = {k: v for k, v in os.environ.items() if k != "SSHSIM_REQUIRE_SPEEDUPS"}
    pure = subprocess.run([sys.executable, "-c", script, str(log)], env={**env, "SSHSIM_PURE_PYTHON": "1"},
                          capture_output=True, text=True, check=True).stdout.splitlines()
    default = subprocess.run([sys.executable, "-c", script, str(log)], env=env,
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert pure[0] == "True"
    assert pure[1:] == default[1:]


def _python_lines(path: Path) -> list[str]:
    saved = reader_mod._speedups
    reader_mod._speedups = None
    try:
        return list(reader_mod.LogReader(path).lines())
    finally:
        reader_mod._speedups = saved



@needs_c
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"\xc3\xa9", b"\xc3", b"\xa9", b"\xff",
                                 b"\xe2\x82\xac", b"\xe2\x82", b"\x00", b"Jan  5 ", b"sshd[1]: "]), max_size=60),
       st.integers(min_value=1, max_value=9))
def test_line_reader_same_in_c_and_python(tmp_path: Path, parts: list[bytes], chunk: int) -> None:
    """Any bytes, any chunk size: the same lines (UTF-8 escapes, \\r\\n, a lone \\r, the last line)."""
    path = tmp_path / "bytes.log"
    path.write_bytes(b"".join(parts))
    with path.open("rb") as fh:
        c_lines = list(reader_mod._speedups.ChunkLines(fh, chunk, None, reader_mod.READ_ERRORS))
    assert c_lines == _python_lines(path)
    assert list(reader_mod.LogReader(path).lines()) == c_lines


@needs_c
def test_line_reader_read_error_is_a_warning(tmp_path: Path) -> None:
    class Failing:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, n: int) -> bytes:
            self.calls += 1
            if self.calls > 1:
                raise OSError(5, "Input/output error")
            return b"one\ntwo\nthr"

        def close(self) -> None:
            self.closed = True

    seen: list[BaseException] = []
    f = Failing()
    lines = list(reader_mod._speedups.ChunkLines(f, 4, seen.append, reader_mod.READ_ERRORS))
    assert lines == ["one", "two"] and isinstance(seen[0], OSError) and f.closed


def _real_lines() -> list[str]:
    from tests.test_parser_fail2ban import LOGS

    lines = [l for p in LOCAL for l in p.read_text().splitlines()]
    if LOGS is not None:  # INFO lines of many versions: PAM children, endpoints, drops
        lines += (LOGS / "sshd").read_text(encoding="utf-8", errors="backslashreplace").splitlines()
    return lines


_REAL = _real_lines()


@needs_c
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, max(len(_REAL) - 1, 0)), st.integers(1, 40)), min_size=1, max_size=80),
       st.integers(2, 16))
def test_real_lines_shuffled_with_colliding_pids_same_in_c_and_python(picks: list[tuple[int, int]],
                                                                      window: int) -> None:
    """Real lines in random order with pids from a small range (children before parents, pids
    reused, PAM and session children next to strangers): every placement rule in both twins."""
    lines = [_PID.sub(lambda m: m.group(1) + str(1000 + pid), _REAL[i]) for i, pid in picks]
    _same(lines, window=window)
