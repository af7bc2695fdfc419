"""A log is untrusted input: no log may make a command use unbounded memory or time.

/dev/zero (a "line" that never ends), a line of 100 MB, a line of a megabyte (sshd writes at
most about 1 KB), a log longer than a command holds: each ends in one line and exit 2, or is
processed with the long line cut, with the memory of the command measured (its peak resident
set, from wait4) and bounded. `diff` is O(n log n): checked by its parts (the pairing gives
what the quadratic rule gave, the stream matcher stays within its budget and finds the longest
common subsequence), never by timing.
"""

from __future__ import annotations

import difflib
import gzip
import io
import os
import random
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.commands import logio
from simulator.errors import BadInputError
from simulator.limits import MAX_LINE_CHARS, MAX_UNENDED_LINE_BYTES, QUOTE_CHARS, quote
from simulator.logs import normalise_event, parse_lines
from simulator.logs import reader as reader_mod
from simulator.logs.reader import LogReader
from simulator.scenario.model import Expectation, ExpectedEvent
from simulator.verify import diff as diff_mod
from simulator.verify.verifier import ParsedLog, check_expectation

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "tests" / "data" / "local"
SCENARIO = ROOT / "scenarios" / "seed" / "motty-secureblackbox.yaml"
# Peak resident memory allowed to one command on any of these inputs (it was about 1 GB a
# second of /dev/zero until the OOM killer, and 5 GB for a 100 MB line in verify).
RSS_BOUND_MB = 300
UNENDED = f"no line end in the first {MAX_UNENDED_LINE_BYTES} bytes of this line: not a text log"
SSHD_PREFIX = b"Jan 29 11:23:02 user-sicharge sshd[10348]: debug1: "


def sshsim(args: list[str], tmp_path: Path, stdin: Path | None = None,
           timeout: float = 120) -> tuple[int, str, str, float]:
    """Run `python -m simulator ARGS`: (exit code, stdout, stderr, peak RSS in MB).

    The peak is the child's ru_maxrss from wait4. Linux keeps a process's high-water mark
    across exec, so it counts this test process's own size at the fork too: an upper bound
    (the commands themselves peak at 20-40 MB on these inputs)."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as o, err.open("wb") as e, \
            (stdin.open("rb") if stdin else open(os.devnull, "rb")) as i:
        proc = subprocess.Popen([sys.executable, "-m", "simulator", *args], stdin=i, stdout=o, stderr=e)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                pytest.fail(f"sshsim {' '.join(args)} still running after {timeout} s")
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out.read_text(errors="replace"), err.read_text(errors="replace"), usage.ru_maxrss / 1024


def real_lines(name: str = "sshd-9.2-debug1.log") -> list[str]:
    return (LOCAL / name).read_text().splitlines()


def log_with_line(path: Path, line: bytes, at: int = 20) -> int:
    """A real log with `line` put in as line `at` (1-based); returns `at`."""
    lines = [x.encode() for x in real_lines()]
    path.write_bytes(b"\n".join(lines[: at - 1] + [line] + lines[at - 1:]) + b"\n")
    return at


def zeros_file(path: Path, size: int = 40 << 20) -> Path:
    """`size` zero bytes (a sparse file: no disk used), like `head -c 40M /dev/zero`."""
    with path.open("wb") as f:
        f.truncate(size)
    return path


def commands(log: str, other: str) -> dict[str, list[str]]:
    """Every command that reads a log, given `log`."""
    return {
        "parse": ["parse", log],
        "diff": ["diff", log, other],
        "diff-b": ["diff", other, log],
        "verify": ["verify", log, str(SCENARIO)],
        "infer": ["infer", log],
        "replay": ["replay", log],
    }


# -- /dev/zero and other endless lines -----------------------------------------------------------
@pytest.mark.parametrize("command", ["parse", "diff", "diff-b", "verify", "infer", "replay"])
def test_dev_zero_is_one_line_exit_2_in_bounded_memory(command: str, tmp_path: Path) -> None:
    args = commands("/dev/zero", str(LOCAL / "sshd-9.2-info.log"))[command]
    code, _, err, rss = sshsim(args, tmp_path)
    assert code == 2
    assert err == f"sshsim: error: /dev/zero:1: {UNENDED}\n"
    assert rss < RSS_BOUND_MB


@pytest.mark.parametrize("source", ["file", "stdin", "fifo", "gzip"])
def test_zeros_from_every_kind_of_input(source: str, tmp_path: Path) -> None:
    """40 MB of zero bytes as a plain file, on stdin, through a FIFO and gzipped."""
    zeros = zeros_file(tmp_path / "zeros")
    stdin = None
    writer = None
    if source == "file":
        log = str(zeros)
    elif source == "stdin":
        log, stdin = "-", zeros
    elif source == "gzip":
        log = str(tmp_path / "zeros.gz")
        Path(log).write_bytes(gzip.compress(bytes(40 << 20), compresslevel=1))
    else:
        log = str(tmp_path / "fifo")
        os.mkfifo(log)

        def feed() -> None:
            try:
                with open(log, "wb") as f:
                    for _ in range(40):
                        f.write(bytes(1 << 20))
            except BrokenPipeError:  # the reader stopped at its limit, as it should
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
    code, _, err, rss = sshsim(["parse", log], tmp_path, stdin=stdin)
    if writer is not None:
        writer.join(30)
    name = "<stdin>" if log == "-" else log
    assert (code, err) == (2, f"sshsim: error: {name}:1: {UNENDED}\n")
    assert rss < RSS_BOUND_MB


@pytest.mark.parametrize("command", ["parse", "diff", "verify", "infer"])
def test_line_of_100_mb_is_one_line_exit_2_in_bounded_memory(command: str, tmp_path: Path) -> None:
    log = tmp_path / "huge.log"
    lines = [x.encode() for x in real_lines()]
    with log.open("wb") as f:
        f.write(b"\n".join(lines[:19]) + b"\n" + SSHD_PREFIX)
        f.seek(100 << 20, io.SEEK_CUR)  # 100 MB of zero bytes, without writing them
        f.write(b"\n" + b"\n".join(lines[19:]) + b"\n")
    args = commands(str(log), str(LOCAL / "sshd-9.2-info.log"))[command]
    code, _, err, rss = sshsim(args, tmp_path)
    assert (code, err) == (2, f"sshsim: error: {log}:20: {UNENDED}\n")
    assert rss < RSS_BOUND_MB


# -- a long line that does end: cut, parsed as unknown, processed --------------------------------
def test_megabyte_line_is_cut_and_parsed_as_unknown(tmp_path: Path) -> None:
    import json

    log = tmp_path / "long.log"
    line = SSHD_PREFIX + b"Invalid user " + b"A" * (1 << 20) + b" from 192.0.2.1 port 1"
    at = log_with_line(log, line)
    code, out, err, rss = sshsim(["parse", str(log)], tmp_path)
    assert code == 0 and rss < RSS_BOUND_MB
    rows = [json.loads(r) for r in out.splitlines()]
    assert len(rows) == len(real_lines()) + 1
    row = rows[at - 1]
    assert row["event"] == "unknown" and row["pid"] == 10348 and row["raw"] == line[:MAX_LINE_CHARS].decode()
    assert err == (f"warning: {log}:{at}: line longer than {MAX_LINE_CHARS} characters: "
                   f"cut to its first {MAX_LINE_CHARS}\n")
    # the same line in both logs: diff holds and matches it, exit 0
    code, out, err, rss = sshsim(["diff", str(log), str(log), "--no-color"], tmp_path)
    assert code == 0 and out.splitlines()[-1] == f"matched {len(rows)}/{len(rows)} lines" and rss < RSS_BOUND_MB


def test_verify_report_quotes_a_long_line_not_repeats_it(seed_log_path: Path, tmp_path: Path) -> None:
    """The expected seqnr resets of the reference log, and the ECDH lines just before them,
    made lines of a megabyte: the failure shows the lines around, each cut to QUOTE_CHARS (it
    used to repeat them whole)."""
    lines = seed_log_path.read_bytes().splitlines()
    for i, raw in enumerate(lines):
        if (b"resetting" in raw and b"seqnr" in raw) or b"ECDH_INIT" in raw:
            lines[i] = raw.replace(b"debug1: ", b"debug1: " + b"A" * (1 << 20), 1)
    log = tmp_path / "seed-long.log"
    log.write_bytes(b"\n".join(lines) + b"\n")
    code, out, err, rss = sshsim(["verify", str(log), str(SCENARIO), "--no-color"], tmp_path)
    assert code == 1 and out.startswith("FAIL") and rss < RSS_BOUND_MB
    report = [r for r in err.splitlines() if not r.startswith("warning: ")]
    assert any("kex.strict_seqnr_reset" in r for r in report)
    assert any("ECDH" not in r and r.endswith("AAAA\u2026") for r in report)
    assert max(len(r) for r in report) < QUOTE_CHARS + 20


def test_verify_context_is_quoted(seed_log_path: Path) -> None:
    lines = seed_log_path.read_text().splitlines()
    log = ParsedLog.from_lines(lines)
    conn = next(c for c in log.connections if c.client_version == "MoTTY_Release_0.80")
    events = log.events_of(conn)
    long_lines = [line + " " + "B" * 5000 for line in lines]
    [failure] = check_expectation(Expectation("motty", [ExpectedEvent("auth.accepted", {"user": "nobody"})]),
                                  events, long_lines)
    assert failure.context and all(len(c) <= 7 + QUOTE_CHARS + 1 for c in failure.context)
    assert all(c.endswith("\u2026") for c in failure.context)


def test_quote_cuts_with_an_ellipsis() -> None:
    line = real_lines()[0]
    assert quote(line) == line and len(line) <= QUOTE_CHARS
    long = line + "x" * 1000
    assert quote(long) == long[:QUOTE_CHARS] + "\u2026"


# -- what a command holds, and one exit code for a missing log -----------------------------------
def test_a_log_longer_than_a_command_holds_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    log = LOCAL / "sshd-9.2-debug1.log"
    monkeypatch.setattr(logio, "MAX_HELD_LOG_LINES", 100)
    with pytest.raises(SystemExit) as done:
        main(["diff", str(log), str(log)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"sshsim: error: {log}:101: the log goes on past 100 lines")
    monkeypatch.setattr(logio, "MAX_HELD_LOG_LINES", 10_000)
    monkeypatch.setattr(logio, "MAX_HELD_LOG_CHARS", 1000)
    with pytest.raises(BadInputError, match="1000 characters"):
        logio.read_log_lines(log)


@pytest.mark.parametrize("command", ["parse", "diff", "verify", "infer"])
def test_missing_log_is_exit_2_for_every_command(command: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.log"
    with pytest.raises(SystemExit) as done:
        main(commands(str(missing), str(LOCAL / "sshd-9.2-info.log"))[command])
    assert done.value.code == 2
    assert capsys.readouterr().err == f"sshsim: error: {missing}: log file not found\n"


# -- the reader: pure functions on real lines ----------------------------------------------------
def test_reader_cuts_long_real_lines_and_says_where_once(tmp_path: Path) -> None:
    lines = real_lines()
    long = [lines[0] + " " + "x" * (MAX_LINE_CHARS * 3), lines[1] + " " + "\u00e9" * MAX_LINE_CHARS]
    path = tmp_path / "real.log"
    path.write_text("\n".join(lines[:3] + long + lines[3:10] + long) + "\n")
    reader = LogReader(path)
    got = list(reader.lines())
    assert got == lines[:3] + [x[:MAX_LINE_CHARS] for x in long] + lines[3:10] + [x[:MAX_LINE_CHARS] for x in long]
    assert reader.warnings == [
        f"{path}:4: line longer than {MAX_LINE_CHARS} characters: cut to its first {MAX_LINE_CHARS}",
        f"{path}: 3 more line(s) longer than {MAX_LINE_CHARS} characters cut likewise"]
    events = list(parse_lines(got))
    assert [e.event for e in events[3:5]] == ["unknown", "unknown"]
    assert events[3].pid == events[0].pid  # still placed: the prefix is intact
    assert [e.event for e in events[:3]] == [e.event for e in parse_lines(lines[:3])]


def _read_all(reader: LogReader) -> tuple[list[object], list[str]]:
    out: list[object] = []
    try:
        out.extend(reader.lines())
    except BadInputError as exc:
        out.append(("error", exc.line, exc.message))
    return out, [w.replace(reader.name, "LOG") for w in reader.warnings]


_PIECES = [x.encode() for x in real_lines()[:6]] + [b"\n", b"\r\n", b"\r", b"\xc3\xa9", b"\xff", b"\xe2\x82",
                                                     b"\xf0\x9f\x98\x80", b"x" * 7, b"y" * 40]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.integers(1, 90), st.integers(1, 400),
       st.integers(1, 64))
def test_every_reader_path_gives_the_same_lines_warnings_and_errors(
        tmp_path: Path, pieces: list[bytes], max_chars: int, max_unended: int, chunk: int) -> None:
    """A plain file (chunks of any size, and the C twin where it is built), stdin and gzip:
    the same lines, cuts and errors, with limits small enough to hit."""
    data = b"".join(pieces)
    path = tmp_path / "bytes.log"
    path.write_bytes(data)
    zipped = tmp_path / "bytes.gz"
    zipped.write_bytes(gzip.compress(data))
    saved = reader_mod._speedups, reader_mod.CHUNK_BYTES
    try:
        reader_mod._speedups, reader_mod.CHUNK_BYTES = None, chunk
        plain = _read_all(LogReader(path, max_chars=max_chars, max_unended=max_unended))
    finally:
        reader_mod._speedups, reader_mod.CHUNK_BYTES = saved
    assert _read_all(LogReader("-", stdin=io.BytesIO(data), max_chars=max_chars, max_unended=max_unended)) == plain
    assert _read_all(LogReader(zipped, max_chars=max_chars, max_unended=max_unended)) == plain
    if reader_mod._speedups is not None:
        c = LogReader(path, max_chars=max_chars, max_unended=max_unended)
        with path.open("rb") as fh:
            c.lines = lambda: reader_mod._speedups.ChunkLines(  # type: ignore[method-assign]
                fh, chunk, c._read_failed, reader_mod.READ_ERRORS, max_chars, max_unended, c._note_cut, c._unended)
            assert _read_all(c) == plain
    # what the bounds promise, whatever the input
    lines = [x for x in plain[0] if isinstance(x, str)]
    assert all(len(x) <= max_chars for x in lines)
    if not any(isinstance(x, tuple) for x in plain[0]):
        whole = data.decode("utf-8", "backslashreplace").replace("\r\n", "\n").split("\n")
        if whole[-1] == "":
            whole.pop()
        assert lines == [x[:max_chars] for x in whole]


# -- diff: O(n log n) by its parts ---------------------------------------------------------------
def _streams(name: str) -> list[list[str]]:
    """The normalised process streams of a real log, one list a (connection, role)."""
    from simulator.logs import group_connections

    events = list(parse_lines(real_lines(name)))
    group_connections(events)
    out: dict[tuple, list[str]] = {}
    for e in diff_mod._sshd_events(events):
        out.setdefault((e.conn, e.role), []).append(normalise_event(e))
    return list(out.values())


def _lcs_length(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def _valid(pairs: list[tuple[int, int]], a: list[str], b: list[str]) -> bool:
    return all(a[i] == b[j] for i, j in pairs) and all(
        p[0] < q[0] and p[1] < q[1] for p, q in pairwise(pairs))


_REAL_STREAMS = [s for name in ("sshd-9.2-debug1.log", "sshd-9.2-debug3.log") for s in _streams(name) if len(s) > 5]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(_REAL_STREAMS) - 1),
       st.lists(st.tuples(st.integers(0, 10_000), st.booleans()), max_size=diff_mod.WINDOW))
def test_common_subsequence_is_a_longest_one_on_edited_real_streams(pick: int,
                                                                    edits: list[tuple[int, bool]]) -> None:
    """A real stream against itself with lines dropped or added: the longest common
    subsequence, as an exact (quadratic) LCS finds it. (In any longest one, a line's copies
    left out number at most the edits, so its k-th copy in A pairs with a copy of rank within
    that many of k in B: inside the window.)"""
    a = _REAL_STREAMS[pick]
    b = list(a)
    for where, drop in edits:
        k = where % (len(b) + 1)
        if drop and b:
            del b[min(k, len(b) - 1)]
        else:
            b.insert(k, a[where % len(a)])
    pairs = diff_mod.common_subsequence(a, b)
    assert _valid(pairs, a, b) and len(pairs) == _lcs_length(a, b)
    assert diff_mod.common_subsequence(a, a) == [(i, i) for i in range(len(a))]


def test_real_streams_are_matched_by_difflib_as_before() -> None:
    """Every pair of real streams (across log levels too) stays within the difflib budget, so
    the diff of real logs is what it always was."""
    streams = (_streams("sshd-9.2-debug3.log")[:12] + _streams("sshd-9.2-info.log")
               + _streams("sshd-9.2-debug1.log")[:12])
    for a in streams:
        for b in streams:
            blocks = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()
            assert diff_mod.match_lines(a, b) == [(m.a + k, m.b + k) for m in blocks for k in range(m.size)]


def test_crafted_stream_pair_leaves_difflib_within_its_budget() -> None:
    """`x` against `x y` (1,024 lines each) costs difflib ~500,000 steps a line (cubic): the
    matcher gives up within DIFFLIB_STEPS_PER_LINE a line and the LCS finder answers."""
    a, b = ["x"] * 1024, ["x", "y"] * 512
    with pytest.raises(diff_mod._TooCostly):
        diff_mod._BoundedMatcher(a, b, diff_mod.DIFFLIB_STEPS_PER_LINE * 2048).get_matching_blocks()
    pairs = diff_mod.match_lines(a, b)
    assert _valid(pairs, a, b) and len(pairs) == 512


def _pair_quadratic(a: list, b: list) -> list[tuple]:
    """The pairing rule as first written (each A connection scans all of B): the reference."""
    pairs, used = [], set()
    b_sorted = sorted(b, key=lambda c: c.first_line)
    for conn in sorted(a, key=lambda c: c.first_line):
        same = [c for c in b_sorted if c.kind == conn.kind and id(c) not in used]
        pick = next((c for c in same if conn.kind == "connection" and conn.client_version
                     and c.client_version == conn.client_version), None) or (same[0] if same else None)
        if pick is not None:
            used.add(id(pick))
        pairs.append((conn, pick))
    return pairs + [(None, c) for c in b_sorted if id(c) not in used]


def test_pairing_is_the_rule_it_always_was_on_real_logs(seed_log_path: Path) -> None:
    from simulator.logs import group_connections

    logs = [real_lines(p.name) for p in sorted(LOCAL.glob("*.log"))] + [seed_log_path.read_text().splitlines()]
    rng = random.Random(12)
    conns = [group_connections(list(parse_lines(lines))) for lines in logs]
    for a in conns:
        for b in conns:
            shuffled = rng.sample(b, len(b))  # the order given must not matter
            got = diff_mod.pair_connections(a, shuffled)
            want = _pair_quadratic(a, shuffled)
            assert [(id(x), id(y)) for x, y in got] == [(id(x), id(y)) for x, y in want]


def _long_logs(tmp_path: Path, lines: int) -> tuple[list, list]:
    """Events of real INFO connections repeated (pids and ports shifted) to about `lines`
    lines, and of the same log missing every 50th line (bench_diff.py's logs, shorter)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_diff import DROP_EVERY, drop_lines, templates
    from bench_parse import build_log

    a, b = tmp_path / "a.log", tmp_path / "b.log"
    build_log(a, lines, templates("info"))
    drop_lines(a, b, DROP_EVERY)
    return (list(parse_lines(a.read_text().splitlines())), list(parse_lines(b.read_text().splitlines())))


def test_diff_of_a_long_log_with_itself_matches_every_line(tmp_path: Path) -> None:
    a, _ = _long_logs(tmp_path, 20_000)
    result = diff_mod.diff_events(a, a)
    assert result.complete and result.matched == result.total_a > 19_000
    assert len(result.connections) > 3000


def test_diff_of_long_logs_is_what_the_quadratic_pairing_gave(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A log against itself missing lines: the same diff, line for line, as with the pairing
    rule as first written."""
    a, b = _long_logs(tmp_path, 3000)
    got = diff_mod.render(diff_mod.diff_events(a, b))
    monkeypatch.setattr(diff_mod, "pair_connections", _pair_quadratic)
    assert got == diff_mod.render(diff_mod.diff_events(a, b))
    assert got.count("\n  - A:") > 50


def test_fifo_whose_writer_stops_mid_line(tmp_path: Path) -> None:
    """A live stream read as it comes: the last line, with no end, is given as it is."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    lines = real_lines()[:5]

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(("\n".join(lines)).encode())

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    reader = LogReader(fifo)
    assert list(reader.lines()) == lines and reader.warnings == []
    t.join(10)
