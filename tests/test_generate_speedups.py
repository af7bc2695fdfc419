"""The C writer of `sshsim generate` (simulator/generate/_emit.c) against its Python twin.

- Real corpora (templates recorded against the local sshd, as test_generate_sshd.py does) are
  written once through each path and must be byte-identical, log and labels, in every output
  format, at INFO and DEBUG1, in time zones with a DST change, a half-hour offset and a new
  year, in one block and in many small ones (lines held over to the next block);
- the C functions on their own: stamps against outputs.Clock across midnight, a new year, DST
  changes and before 1970; nothing to write; lines ending on and crossing the 1 MiB write size;
  non-ASCII user names; labels; bad input raising instead of writing out of bounds;
- the switches: SSHSIM_PURE_PYTHON=1 takes the Python path, SSHSIM_REQUIRE_SPEEDUPS=1 fails the
  import when the extension is missing.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from simulator.generate import apply_overrides, emitter, generate, labels_path_for, load_spec
from simulator.generate.outputs import Clock, make_format
from simulator.generate.spec import parse_timezone

from conftest import needs_local_sshd
from test_generate_sshd import SPEC

ROOT = Path(__file__).resolve().parents[1]


def _extension() -> ModuleType | None:
    """The built extension, whatever SSHSIM_PURE_PYTHON says (the tests compare both paths)."""
    try:
        return importlib.import_module("simulator.generate._emit")
    except ImportError:
        if os.environ.get("SSHSIM_REQUIRE_SPEEDUPS", "") not in ("", "0"):
            raise
        return None


_emit = _extension()
needs_extension = pytest.mark.skipif(_emit is None, reason="simulator.generate._emit is not built (pip install -e .)")


# -- whole corpora, both paths ------------------------------------------------------------------
WINDOWS = {
    # the sshd tests' own window
    "utc": None,
    # Paris springs forward at 02:00 local on 2024-03-31: stamps jump from 01:59 to 03:00
    "paris-dst": 'window: {start: "2024-03-31T00:30:00", duration: 3h, timezone: Europe/Paris}',
    # midnight and a new year, at a half-hour offset (the offset table is per hour)
    "new-year": 'window: {start: "2023-12-31T22:30:00", duration: 3h, timezone: "+05:30"}',
}
FORMATS = ("syslog", "rfc3339", "rfc5424", "journal-json", "jsonl")


def _spec_text(window: str | None) -> str:
    if window is None:
        return SPEC
    return SPEC.replace('window: {start: "2024-03-11T08:00:00", duration: 3h, timezone: UTC}', window)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Spec files (one per window) and one folder of INFO recordings they all replay."""
    folder = tmp_path_factory.mktemp("speedups")
    specs = {}
    for name, window in WINDOWS.items():
        specs[name] = folder / f"{name}.yaml"
        specs[name].write_text(_spec_text(window))
    recordings = folder / "recordings"
    for path in specs.values():  # the first records against the sshd; the others mostly reuse
        generate(load_spec(path, {"max_attempts": 2}), folder / "warm.log", force=True, parallel=16,
                 recordings=recordings)
    return {"recordings": recordings, **specs}


def _both_paths(spec: Any, recordings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                block: int | None = None) -> tuple[bytes, bytes]:
    """Generate through the C path and the Python path; both outputs (log, labels) must match."""
    if block is not None:
        monkeypatch.setattr(emitter, "BLOCK", block)
    tmp_path.mkdir(parents=True, exist_ok=True)
    outputs = {}
    lines = {}
    for name, module in (("c", _emit), ("python", None)):
        monkeypatch.setattr(emitter, "_emit", module)
        log = tmp_path / f"{name}.log"
        result = generate(spec, log, force=True, recordings=recordings)
        outputs[name] = (log.read_bytes(), labels_path_for(log).read_bytes())
        lines[name] = result.lines
    assert lines["c"] == lines["python"]
    c_log, c_labels = outputs["c"]
    py_log, py_labels = outputs["python"]
    if c_log != py_log:  # say where, not just that
        first = next(i for i, (x, y) in enumerate(zip(c_log.splitlines(), py_log.splitlines())) if x != y)
        pytest.fail(f"logs differ at line {first + 1}:\nC:      {c_log.splitlines()[first]!r}\n"
                    f"Python: {py_log.splitlines()[first]!r}")
    assert c_labels == py_labels
    assert c_log.count(b"\n") == lines["c"] and c_labels.count(b"\n") > 0
    return c_log, c_labels


@needs_local_sshd
@needs_extension
@pytest.mark.sshd
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("window", list(WINDOWS))
def test_c_and_python_paths_write_the_same_corpus(recorded: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, fmt: str, window: str) -> None:
    """Blocks of 37 connections: most lines of a held session wait for a later block."""
    spec = apply_overrides(load_spec(recorded[window], {"max_attempts": 2}), format=fmt)
    log, labels = _both_paths(spec, recorded["recordings"], tmp_path, monkeypatch, block=37)
    if window == "paris-dst" and fmt == "syslog":
        text = log.decode()
        assert "Mar 31 01:5" in text and "Mar 31 03:0" in text and "Mar 31 02:" not in text
    if window == "new-year" and fmt == "rfc3339":
        text = log.decode()
        assert "2023-12-31T23:" in text and "2024-01-01T00:" in text and "+05:30 " in text
    assert json.loads(labels.splitlines()[-1])["lines"]


@needs_local_sshd
@needs_extension
@pytest.mark.sshd
@pytest.mark.parametrize("fmt", FORMATS)
def test_one_block_corpus_is_the_same_every_time(recorded: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """The default block size (the whole corpus in one block), and the same output twice."""
    spec = apply_overrides(load_spec(recorded["utc"], {"max_attempts": 2}), format=fmt)
    first = _both_paths(spec, recorded["recordings"], tmp_path / "a", monkeypatch)
    again = _both_paths(spec, recorded["recordings"], tmp_path / "b", monkeypatch)
    assert first == again


@pytest.fixture(scope="module")
def recorded_debug(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sshd tests' spec at DEBUG1 (pinned recordings: sshd's processes race to the log)."""
    folder = tmp_path_factory.mktemp("speedups-debug")
    spec = folder / "spec.yaml"
    spec.write_text(SPEC)
    recordings = folder / "recordings"
    generate(apply_overrides(load_spec(spec, {"max_attempts": 2}), log_level="DEBUG1"), folder / "warm.log",
             parallel=16, recordings=recordings)
    return spec, recordings


@needs_local_sshd
@needs_extension
@pytest.mark.sshd
@pytest.mark.parametrize("fmt", FORMATS)
def test_debug1_corpus_is_the_same_through_both_paths(recorded_debug: tuple[Path, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    spec_path, recordings = recorded_debug
    spec = apply_overrides(load_spec(spec_path, {"max_attempts": 2}), log_level="DEBUG1", format=fmt)
    log, _ = _both_paths(spec, recordings, tmp_path, monkeypatch, block=53)
    assert b"debug1: " in log


# -- the C functions on their own ---------------------------------------------------------------
def _i64(values: Any) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.int64)


class Hand:
    """A hand-made Corpus: `nlines` lines per connection, all of template line `tline`."""

    def __init__(self, lines: tuple, n: int = 1, nlines: int = 1, stamp: tuple = ("syslog", b"", b"", b""),
                 users: tuple = (b"alice",), user_json: tuple = (b'"alice"',), start_us: Any = None,
                 end_us: Any = None) -> None:
        assert _emit is not None
        self.n = n
        self.counts = np.full(n, nlines, dtype=np.int64)
        self.remaining = self.counts.copy()
        self.line_first = _i64(np.concatenate(([0], np.cumsum(self.counts))))
        self.lineno = np.zeros(int(self.line_first[-1]), dtype=np.int64)
        self.port = _i64(np.arange(n) + 40000)
        self.pid = _i64(np.arange(n) * 10 + 2000)
        self.start_us = _i64(start_us if start_us is not None else np.full(n, 1710144000_000000))
        self.end_us = _i64(end_us if end_us is not None else self.start_us + 1_500_000)
        self.corpus = _emit.Corpus(
            lines=lines, stamp=stamp, addresses=(b"192.0.2.7", b"2001:db8::5"), users=users,
            uids=tuple(b"100%d" % i for i in range(len(users))), user_keys=tuple(b"SHA256:u%d" % i for i in range(len(users))),
            source_keys=(b"SHA256:s0", b"SHA256:s1"), heads=(b',"scenario":"x","user":',),
            template_user=(None,), user_json=user_json, address_json=(b',"source":"192.0.2.7","port":',
                                                                      b',"source":"2001:db8::5","port":'),
            burst_json=(b',"burst":"bf#1"', b',"burst":null'),
            template=np.zeros(n, dtype=np.int64), source=_i64(np.arange(n) % 2), user=_i64(np.arange(n) % len(users)),
            burst=_i64(np.where(np.arange(n) % 3 == 0, 0, -1)), port=self.port, pid=self.pid,
            start_us=self.start_us, end_us=self.end_us, remaining=self.remaining, line_first=self.line_first,
            lineno=self.lineno)


def _offsets(tz: str, times: Any) -> tuple[int, np.ndarray]:
    times = np.asarray(times, dtype=np.int64)
    return Clock(parse_timezone(tz)).hour_offsets(int(times.min()), int(times.max()))


def _write_lines(hand: Hand, path: Path, times: Any, conns: Any, tlines: Any, order: Any = None,
                 first_number: int = 1, tz: str = "UTC", boot_us: int = 0) -> bytes:
    times = _i64(times)
    h0, offsets = _offsets(tz, times) if len(times) else (0, _i64([0]))
    order = _i64(np.argsort(times, kind="stable") if order is None else order)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        hand.corpus.write_lines(fd, times, _i64(conns), _i64(tlines), order, first_number, h0, offsets, boot_us)
    finally:
        os.close(fd)
    return path.read_bytes()


# Moments around midnight and a new year, both DST changes of 2024 in Paris, and the epoch.
MOMENTS = {
    "new-year": [1704063599_500000, 1704063600_250000,  # 22:59:59.5Z / 23:00:00.25Z: midnight in Paris
                 1704067199_999999, 1704067200_000000, 1704067200_000001],  # 2023-12-31T23:59:59.999999Z ...
    "spring": [1711846799_000000, 1711846800_000000, 1711850400_000000],  # 01:00Z: 02:00 -> 03:00 in Paris
    "autumn": [1729990799_999999, 1729990800_000000, 1729994400_000000],  # 01:00Z: 03:00 -> 02:00 in Paris
    "epoch": [-3_600_000_001, -1, 0, 59_000001],  # floor division before 1970
}


@needs_extension
@pytest.mark.parametrize("moments", list(MOMENTS))
@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris", "+05:30", "-03:00", "America/St_Johns"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_stamps_match_outputs_clock(tmp_path: Path, tz: str, fmt: str, moments: str) -> None:
    """Stamp + newline per line, in time order, against the Python path's formats."""
    times = MOMENTS[moments]
    out = make_format(fmt, "h", parse_timezone(tz), 1)
    hand = Hand(((("stamp", 0), b"\n"),), n=len(times), stamp=out.stamp_rule())
    boot = out.boot(times[0])
    got = _write_lines(hand, tmp_path / "stamps", times, np.arange(len(times)), np.zeros(len(times)), tz=tz,
                       boot_us=boot, first_number=7)
    texts, which = out.stamps(np.asarray(times, dtype=np.int64), 7)
    want = [texts[i] for i in which] if which is not None else texts
    assert got.decode().split("\n")[:-1] == want
    assert list(hand.lineno) == list(range(7, 7 + len(times)))
    assert not hand.remaining.any()


@needs_extension
def test_dst_and_new_year_stamps_read_as_expected(tmp_path: Path) -> None:
    """What the comparison above checks against, spelled out for two cases."""
    paris = make_format("syslog", "h", parse_timezone("Europe/Paris"), 1)
    hand = Hand(((("stamp", 0), b"\n"),), n=3, stamp=paris.stamp_rule())
    got = _write_lines(hand, tmp_path / "paris", [1711846799_000000, 1711846800_000000, 1729990800_000000],
                       [0, 1, 2], [0, 0, 0], tz="Europe/Paris")
    assert got == b"Mar 31 01:59:59\nMar 31 03:00:00\nOct 27 02:00:00\n"
    iso = make_format("rfc3339", "h", parse_timezone("+05:30"), 1)
    hand = Hand(((("stamp", 0), b"\n"),), n=2, stamp=iso.stamp_rule())
    got = _write_lines(hand, tmp_path / "new-year", [1704047399_999999, 1704047400_000000], [0, 1], [0, 0],
                       tz="+05:30")
    assert got == b"2023-12-31T23:59:59.999999+05:30\n2024-01-01T00:00:00.000000+05:30\n"


@needs_extension
def test_nothing_to_write(tmp_path: Path) -> None:
    hand = Hand(((("stamp", 0), b" x\n"),), n=2)
    assert _write_lines(hand, tmp_path / "none", [], [], []) == b""
    fd = os.open(tmp_path / "labels", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        h0, offsets = _offsets("UTC", hand.start_us)
        assert hand.corpus.write_labels(fd, 0, 2, h0, offsets) == 0  # both still have a line to write
        assert hand.corpus.write_labels(fd, 1, 1, h0, offsets) == 1
    finally:
        os.close(fd)
    assert (tmp_path / "labels").read_bytes() == b""
    empty = Hand(((("stamp", 0), b"\n"),), n=0)
    assert _write_lines(empty, tmp_path / "empty", [], [], []) == b""


@needs_extension
@pytest.mark.parametrize("line_size, count", [(256, 4096), (256, 4097), (255, 4113), (1 << 20, 1), (3 << 20, 2)])
def test_lines_on_and_across_the_write_size(tmp_path: Path, line_size: int, count: int) -> None:
    """4096 lines of 256 bytes end exactly on the 1 MiB buffer; others cross it mid-line, or
    are longer than the buffer."""
    assert _emit is not None and _emit.CHUNK == 1 << 20
    stamp_len = len("Mar 11 08:00:00")
    body = (b"%d" % line_size).ljust(line_size - stamp_len - 1, b".") + b"\n"
    hand = Hand(((("stamp", 0), body),), n=count)
    times = 1710144000_000000 + np.arange(count, dtype=np.int64) * 1000
    got = _write_lines(hand, tmp_path / "big", times, np.arange(count), np.zeros(count))
    texts, which = Clock(parse_timezone("UTC")).classic_many(times)
    assert got == b"".join(texts[i].encode() + body for i in which)
    assert len(got) == line_size * count


@needs_extension
def test_slots_and_non_ascii_user_names(tmp_path: Path) -> None:
    users = ("jürgen", "用户", "o'brien")
    line = (("stamp", 0), b" host sshd[", ("pid", 1), b"]: Accepted password for ", ("user", 0), b" from ",
            ("addr", 0), b" port ", ("port", 0), b" ssh2 uid=", ("uid", 0), b" key ", ("fpu", 0), b" src ",
            ("fps", 0), b"\n")
    hand = Hand((line,), n=3, users=tuple(u.encode() for u in users),
                user_json=tuple(json.dumps(u, ensure_ascii=False).encode() for u in users))
    got = _write_lines(hand, tmp_path / "log", [1710144000_000000] * 3, [0, 1, 2], [0, 0, 0]).decode()
    assert got.splitlines() == [
        "Mar 11 08:00:00 host sshd[2001]: Accepted password for jürgen from 192.0.2.7 port 40000 ssh2 uid=1000 key SHA256:u0 src SHA256:s0",
        "Mar 11 08:00:00 host sshd[2011]: Accepted password for 用户 from 2001:db8::5 port 40001 ssh2 uid=1001 key SHA256:u1 src SHA256:s1",
        "Mar 11 08:00:00 host sshd[2021]: Accepted password for o'brien from 192.0.2.7 port 40002 ssh2 uid=1002 key SHA256:u2 src SHA256:s0",
    ]
    fd = os.open(tmp_path / "labels", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        assert hand.corpus.write_labels(fd, 0, 3, *_offsets("UTC", [hand.start_us.min(), hand.end_us.max()])) == 3
    finally:
        os.close(fd)
    labels = [json.loads(l) for l in (tmp_path / "labels").read_text(encoding="utf-8").splitlines()]
    assert [l["user"] for l in labels] == list(users)
    assert labels[1] == {"id": 2, "scenario": "x", "user": "用户", "source": "2001:db8::5", "port": 40001,
                         "burst": None, "start": "2024-03-11T08:00:00.000000+00:00",
                         "end": "2024-03-11T08:00:01.500000+00:00", "lines": [2]}
    assert labels[0]["burst"] == "bf#1"


@needs_extension
def test_labels_list_each_connections_lines_in_written_order(tmp_path: Path) -> None:
    """Lines of three connections interleaved by time; labels wait for a connection's last line."""
    hand = Hand(((("stamp", 0), b" a\n"), (("stamp", 0), b" b\n")), n=3, nlines=2)
    t0 = 1710144000_000000
    #          conn 0 a,   conn 1 a,    conn 0 b,    conn 2 a,    conn 2 b         (conn 1 b later)
    times = [t0, t0 + 10, t0 + 20, t0 + 30, t0 + 40]
    _write_lines(hand, tmp_path / "log", times, [0, 1, 0, 2, 2], [0, 0, 1, 0, 1])
    fd = os.open(tmp_path / "labels", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        offsets = _offsets("UTC", [t0, t0 + 2_000_000])
        assert hand.corpus.write_labels(fd, 0, 3, *offsets) == 1  # connection 1 is still open
        _write_lines(hand, tmp_path / "log", [t0 + 50], [1], [1], first_number=6)
        assert hand.corpus.write_labels(fd, 1, 3, *offsets) == 3
    finally:
        os.close(fd)
    assert [json.loads(l)["lines"] for l in (tmp_path / "labels").read_text().splitlines()] == [[1, 3], [2, 6], [4, 5]]
    assert (tmp_path / "log").read_text().splitlines()[-1] == "Mar 11 08:00:00 b"


@needs_extension
def test_extra_slots_are_set_once_per_connection(tmp_path: Path) -> None:
    line = (("stamp", 0), b" Transferred: sent ", ("extra", 0), b", received ", ("extra", 1), b" bytes\n")
    hand = Hand((line,), n=2)
    with pytest.raises(TypeError):
        hand.corpus.set_extras(0, ("text", b"2"))
    hand.corpus.set_extras(0, (b"2800", b"64000"))
    hand.corpus.set_extras(1, (b"9", "ü".encode()))
    with pytest.raises(ValueError):
        hand.corpus.set_extras(1, (b"1", b"2"))  # a writer in another thread may be reading them
    got = _write_lines(hand, tmp_path / "log", [1710144000_000000] * 2, [0, 1], [0, 0]).decode()
    assert got == ("Mar 11 08:00:00 Transferred: sent 2800, received 64000 bytes\n"
                   "Mar 11 08:00:00 Transferred: sent 9, received ü bytes\n")
    no_extras = Hand(((("stamp", 0), b"\n"),))
    with pytest.raises(ValueError):
        no_extras.corpus.set_extras(0, (b"1",))


@needs_extension
def test_bad_input_raises_and_writes_nothing_out_of_bounds(tmp_path: Path) -> None:
    t = [1710144000_000000]
    hand = Hand(((("stamp", 0), b" x\n"),), n=2)
    with pytest.raises(IndexError):
        _write_lines(hand, tmp_path / "a", t, [2], [0])  # no connection 2
    with pytest.raises(IndexError):
        _write_lines(hand, tmp_path / "b", t, [0], [1])  # no template line 1
    with pytest.raises(IndexError):
        _write_lines(hand, tmp_path / "c", t, [0], [0], order=[1])  # order beyond the lines
    _write_lines(hand, tmp_path / "d", t, [0], [0])
    with pytest.raises(ValueError, match="no line left"):
        _write_lines(hand, tmp_path / "e", t, [0], [0])  # connection 0 had one line
    with pytest.raises(ValueError, match="outside the hours"):
        fd = os.open(tmp_path / "e", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            hand.corpus.write_lines(fd, _i64(t), _i64([1]), _i64([0]), _i64([0]), 1, 0, _i64([0]), 0)
        finally:
            os.close(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with pytest.raises(TypeError):
            hand.corpus.write_lines(devnull, np.array(t, dtype=np.float64), _i64([1]), _i64([0]), _i64([0]), 1,
                                    *_offsets("UTC", t), 0)
    finally:
        os.close(devnull)
    with pytest.raises(OSError):
        fresh = Hand(((("stamp", 0), b" x\n"),))
        fresh.corpus.write_lines(-1, _i64(t), _i64([0]), _i64([0]), _i64([0]), 1, *_offsets("UTC", t), 0)
    missing = Hand(((("stamp", 0), b" ", ("extra", 0), b"\n"),), n=1)
    with pytest.raises(ValueError, match="lacks its value"):
        _write_lines(missing, tmp_path / "g", t, [0], [0])
    with pytest.raises(ValueError):
        _emit.Corpus(**{**_corpus_kwargs(hand), "line_first": _i64([0, 1])})  # lengths disagree
    with pytest.raises(ValueError):
        _emit.Corpus(**{**_corpus_kwargs(hand), "lines": (((("nope", 0),),))})


def _corpus_kwargs(hand: Hand) -> dict[str, Any]:
    return dict(lines=((("stamp", 0), b"\n"),), stamp=("syslog", b"", b"", b""), addresses=(b"a",), users=(b"u",),
                uids=(b"1",), user_keys=(b"k",), source_keys=(b"s",), heads=(b"",), template_user=(None,),
                user_json=(b'"u"',), address_json=(b"",), burst_json=(b"",), template=np.zeros(hand.n, np.int64),
                source=np.zeros(hand.n, np.int64), user=np.zeros(hand.n, np.int64), burst=np.zeros(hand.n, np.int64),
                port=hand.port, pid=hand.pid, start_us=hand.start_us, end_us=hand.end_us,
                remaining=hand.counts.copy(), line_first=hand.line_first, lineno=hand.lineno.copy())


# -- which path runs ----------------------------------------------------------------------------
def _import_emitter(env: dict[str, str], block_extension: bool = False) -> subprocess.CompletedProcess[str]:
    code = ("import sys\n"
            + ("sys.modules['simulator.generate._emit'] = None\n" if block_extension else "")
            + "from simulator.generate import emitter\nprint(emitter.speedups())\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SSHSIM_")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**environ, **env}, timeout=120)


@needs_extension
def test_environment_chooses_the_path() -> None:
    assert _import_emitter({}).stdout.strip() == "c"
    assert _import_emitter({"SSHSIM_PURE_PYTHON": "1"}).stdout.strip() == "python"
    assert _import_emitter({"SSHSIM_REQUIRE_SPEEDUPS": "1"}).stdout.strip() == "c"


def test_missing_extension_falls_back_unless_required() -> None:
    assert _import_emitter({}, block_extension=True).stdout.strip() == "python"
    done = _import_emitter({"SSHSIM_REQUIRE_SPEEDUPS": "1"}, block_extension=True)
    assert done.returncode != 0
    assert "SpeedupsMissing" in done.stderr and "simulator.generate._emit is not built" in done.stderr
