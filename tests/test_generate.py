"""`sshsim generate` without an sshd: specs are checked before anything runs, plans are seeded.

The tests that record against the real sshd and check the corpus (fail2ban, the parser,
byte-identical output) are in test_generate_sshd.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simulator.errors import BadInputError
from simulator.generate import apply_overrides, load_spec, plan
from simulator.generate.outputs import Clock, decimal_groups, decimal_texts, hex_texts, interleave, make_format
from simulator.generate.spec import parse_duration, parse_timezone

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = ROOT / "scenarios" / "generate"
EXAMPLE = BLOCKS / "bruteforce-mix.yaml"


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def minimal(extra: str = "", mix: str | None = None) -> str:
    mix = mix if mix is not None else f"""
mix:
  - {{name: login, scenario: {BLOCKS}/publickey-exec.yaml}}
"""
    return f"""
window: {{start: "2024-03-11T00:00:00", duration: 1h}}
rate: {{per_minute: 2}}
{extra}
{mix}
"""


def test_example_spec_loads_with_its_defaults() -> None:
    spec = load_spec(EXAMPLE)
    assert spec.name == "bruteforce-mix"
    assert spec.engine == "synthetic" and spec.format == "syslog" and spec.log_level == "INFO"
    assert spec.duration == 86400 and spec.rate_per_s == pytest.approx(2 / 60)
    assert [b.name for b in spec.bursts] == ["brute-force"] and spec.bursts[0].count == 5
    assert {e.name for e in spec.entries()} >= {"key-shell", "invalid-user", "scan-tcp", "bf-root"}
    # variants: profiles times variables
    assert len(next(e for e in spec.mix if e.name == "key-shell").variants) == 3
    assert len(next(e for e in spec.mix if e.name == "wrong-password").variants) == 2


def test_example_spec_renders_every_building_block() -> None:
    """Each entry's scenario renders with the generator's variables (no sshd needed)."""
    from simulator.generate.engine import preflight
    from simulator.generate.recorder import Recorder

    for engine in ("synthetic", "real"):
        spec = apply_overrides(load_spec(EXAMPLE), engine=engine)
        preflight(spec, Recorder(spec, "local", synthetic=engine == "synthetic"), engine == "synthetic")


@pytest.mark.parametrize(
    "extra, mix, key, message",
    [
        ("colour: blue", None, "colour", "unknown key 'colour'"),
        ("format: csv", None, "format", "is not one of"),
        ("", "mix:\n  - {name: x, scenario: nowhere.yaml}\n", "mix[0].scenario", "scenario file not found"),
        ("", f"mix:\n  - {{name: x, scenario: {BLOCKS}/publickey-exec.yaml, profiles: [putty-9.99]}}\n",
         "mix[0].profiles[0]", "unknown client profile 'putty-9.99'"),
        ("sources:\n  bad: [10.0.0.0/33]", None, "sources.bad[0]", "not a CIDR network"),
        ("sources:\n  lo: {cidrs: [127.0.0.0/8]}", None, "sources.lo.cidrs[0]", "loopback"),
        ("", f"mix:\n  - {{name: x, scenario: {BLOCKS}/publickey-exec.yaml, sources: office}}\n",
         "mix[0].sources", "unknown source pool 'office'"),
        ("window: {start: yesterday}", "", "window.start", "not an ISO 8601"),
        ("", "mix:\n  - {name: x, probe: tcp-close, profiles: [putty-0.80]}\n", "mix[0].profiles", "takes no"),
        ("", "bursts:\n  - {mix: [{probe: tcp-close}], interval: [5, 1]}\n", "bursts[0].interval", "goes downwards"),
    ],
)
def test_bad_specs_name_file_line_and_key(tmp_path: Path, extra: str, mix: str | None, key: str,
                                          message: str) -> None:
    text = minimal(extra, mix)
    if extra.startswith("window"):
        text = text.replace('window: {start: "2024-03-11T00:00:00", duration: 1h}\n', "")
    path = write(tmp_path, text)
    with pytest.raises(BadInputError) as info:
        load_spec(path)
    error = info.value
    assert error.file == str(path)
    assert error.line is not None
    assert error.key == key
    assert message in error.message
    assert "\n" not in str(error)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "mix:\n  - {name: x, scenario: a.yaml\n")
    with pytest.raises(BadInputError) as info:
        load_spec(path)
    assert info.value.file == str(path) and info.value.line == 3


def test_non_loopback_source_in_a_scenario_is_bad_input(tmp_path: Path) -> None:
    """Exit 2, one line naming the scenario file, the line and the key; no sshd is started."""
    scenario = write(tmp_path, """
connections:
  - id: c
    source: 10.1.2.3
    auth: [publickey]
""", "outside.yaml")
    spec = write(tmp_path, minimal(mix=f"mix:\n  - {{name: x, scenario: {scenario}}}\n"))
    done = subprocess.run([sys.executable, "-m", "simulator", "generate", str(spec), "-o", str(tmp_path / "out.log")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{scenario}:4:" in lines[0] and "connections[0].source" in lines[0]
    assert not (tmp_path / "out.log").exists()


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    out.write_text("keep me\n")
    spec = write(tmp_path, minimal())
    done = subprocess.run([sys.executable, "-m", "simulator", "generate", str(spec), "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "use --force" in done.stderr and done.stderr.count("\n") == 1
    assert out.read_text() == "keep me\n"


def test_plan_is_a_function_of_spec_and_seed() -> None:
    spec = load_spec(EXAMPLE)
    a, b = plan(spec), plan(spec)
    for name in ("start", "entry", "variant", "user", "source", "burst"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.addresses == b.addresses and a.users == b.users
    other = plan(apply_overrides(spec, seed=spec.seed + 1))
    assert not np.array_equal(a.start, other.start)


def test_plan_follows_rate_curve_and_bursts() -> None:
    spec = load_spec(EXAMPLE)
    p = plan(spec)
    normal = p.burst < 0
    # 2 a minute on average over the day (Poisson: within a few percent)
    assert abs(int(normal.sum()) - 2880) < 250
    # the daily curve: afternoon busier than the small hours
    hours = (p.start[normal] // 3600).astype(int)
    assert (hours == 14).sum() > 3 * (hours == 3).sum()
    # five bursts, each from its own address, none of them used by another burst
    assert len(p.bursts) == 5
    burst_sources = {b: set(p.source[p.burst == b].tolist()) for b in range(5)}
    assert all(len(s) == 1 for s in burst_sources.values())
    assert len(set().union(*burst_sources.values())) == 5
    assert np.all(np.diff(p.start) >= 0)
    # addresses come from the spec's pools (documentation ranges), never loopback
    assert all(a.startswith(("198.51.100.", "192.0.2.", "203.0.113.")) for a in p.addresses)


def test_valid_users_keep_to_a_few_machines() -> None:
    spec = load_spec(EXAMPLE)
    p = plan(spec)
    key_shell = next(i for i, e in enumerate(p.entries) if e.name == "key-shell")
    for name in ("alice", "deploy"):
        u = p.users.index(name)
        rows = (p.entry == key_shell) & (p.user == u)
        assert 1 <= len(set(p.source[rows].tolist())) <= 3


def test_durations_and_time_zones() -> None:
    assert parse_duration("24h") == 86400 and parse_duration("90") == 90 and parse_duration("1.5m") == 90
    with pytest.raises(ValueError):
        parse_duration("soon")
    assert parse_timezone("+02:00").utcoffset(None).total_seconds() == 7200
    paris = parse_timezone("Europe/Paris")
    clock = Clock(paris)
    winter = np.array([1710144000_000000])  # 2024-03-11T08:00:00Z
    summer = np.array([1720684800_000000])  # 2024-07-11T08:00:00Z
    assert _rows(clock.iso_columns(winter), 1) == ["2024-03-11T09:00:00.000000+01:00"]
    assert _rows(clock.iso_columns(summer, "!"), 1) == ["2024-07-11T10:00:00.000000+02:00!"]
    # a block across the change to summer time (31 March, 01:00 UTC), and across days
    spring = np.array([1711846799_999999, 1711846800_000001, 1711929600_250000])
    assert _rows(clock.iso_columns(spring), 3) == ["2024-03-31T01:59:59.999999+01:00", "2024-03-31T03:00:00.000001+02:00",
                                                  "2024-04-01T02:00:00.250000+02:00"]
    texts, which = clock.classic_many(np.array([1710144000_000000, 1710144000_500000, 1710144001_000000]))
    assert [texts[i] for i in which] == ["Mar 11 09:00:00", "Mar 11 09:00:00", "Mar 11 09:00:01"]


def test_numbers_made_in_bulk_read_as_python_writes_them() -> None:
    """decimal_groups, decimal_texts and hex_texts make digits for whole arrays at once: they
    must give what str() and format() give, at every length and at the ends of the types."""
    edges = [0, 1, 9, 10, 15, 16, 99, 100, 255, 256, 999, 1000, 65535, 10**6 - 1, 10**6, 2**31, 2**32 - 1, 2**32,
             2**40 + 7, 10**15 + 1, 2**62]
    numbers = np.array(edges, dtype=np.int64)
    assert decimal_texts(numbers) == [str(x) for x in edges]
    assert hex_texts(numbers) == [f"{x:x}" for x in edges]
    assert hex_texts(numbers, 16) == [f"{x:016x}" for x in edges]
    wide = np.array([2**64 - 1, 2**63], dtype=np.uint64)
    assert hex_texts(wide, 16) == ["ffffffffffffffff", "8000000000000000"]
    assert decimal_texts(wide) == [str(2**64 - 1), str(2**63)]
    run = np.arange(990, 1010)  # one length, then another
    assert decimal_texts(run) == [str(x) for x in range(990, 1010)]
    last = np.array([False, True, True, False, False, True])
    assert decimal_groups(np.array([3, 4, 1000, 9, 10, 7]), last) == ["3,4", "1000", "9,10,7"]
    assert decimal_groups(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)) == []


def _rows(columns: list, n: int) -> list[str]:
    """The texts that `interleave` makes of stamp columns, one per row."""
    return interleave(*columns, "\n", n=n).split("\n")[:-1]


def test_output_format_line_shapes() -> None:
    """Each format's prefix, as its tools expect it (the sshd-run tests parse whole corpora)."""
    tz = parse_timezone("UTC")
    t = np.array([1710144002_123456])
    syslog = make_format("syslog", "h1", tz, 1)
    head, tail = syslog.body("sshd", True, 38)
    assert _rows(syslog.stamps(t, 1), 1)[0] + head % "42" + "msg" + tail == "Mar 11 08:00:02 h1 sshd[42]: msg\n"
    r5424 = make_format("rfc5424", "h1", tz, 1)
    head, tail = r5424.body("sshd", True, 38)
    assert (r5424.before(38) + _rows(r5424.stamps(t, 1), 1)[0] + head % "42" + "msg" + tail
            == "<38>1 2024-03-11T08:00:02.123456+00:00 h1 sshd 42 - - msg\n")
    journal = make_format("journal-json", "h1", tz, 1)
    head, tail = journal.body("sshd", True, 86)
    obj = json.loads(_rows(journal.stamps(t, 7), 1)[0] + head % ("42", "42") + 'a \\"quoted\\" msg' + tail)
    assert obj["__REALTIME_TIMESTAMP"] == "1710144002123456" and obj["SYSLOG_PID"] == "42"
    assert obj["PRIORITY"] == "6" and obj["SYSLOG_FACILITY"] == "10" and obj["MESSAGE"] == 'a "quoted" msg'
    assert ";i=7;" in obj["__CURSOR"]
    jsonl = make_format("jsonl", "h1", tz, 1)
    head, tail = jsonl.body("sshd", False, 35)
    obj = json.loads(_rows(jsonl.stamps(t, 1), 1)[0] + head + "m" + tail)
    assert obj == {"time": "2024-03-11T08:00:02.123456+00:00", "host": "h1", "program": "sshd", "pid": None,
                   "facility": "auth", "severity": "err", "message": "m"}
