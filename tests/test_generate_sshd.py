"""`sshsim generate` against the real local sshd: the corpus is what the labels say it is.

- fail2ban's own `fail2ban-regex` with its sshd filter finds exactly the failures the labels
  announce, per source address;
- this project's parser reads every generated line as a known event, and groups the lines into
  the labelled connections;
- the same spec and seed give byte-identical output (fresh recordings at INFO; pinned ones at
  DEBUG levels, where sshd's processes race to the log).

Corpora are small (a few hundred connections); the 1M-line figure is the benchmark's.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulator.generate import apply_overrides, generate, load_spec
from simulator.logs import group_connections, parse_file
from simulator.target.local import sshd_version

from conftest import needs_local_sshd

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = ROOT / "scenarios" / "generate"

pytestmark = [needs_local_sshd, pytest.mark.sshd]

# Every kind of connection the example spec has, in three hours at 3 a minute plus two bursts.
# `max_attempts` 7 gives sshd's "maximum authentication attempts exceeded" (MaxAuthTries 6); it
# costs ~18 s of PAM fail delays to record, so the tests that record twice lower it.
SPEC = f"""
vars: {{max_attempts: 7}}
seed: 11
host: gen-test
server: {{address: 192.0.2.20, listener_pid: 300000}}
window: {{start: "2024-03-11T08:00:00", duration: 3h, timezone: UTC}}
rate: {{per_minute: 3, curve: flat}}
users: [{{name: alice, uid: 1001}}, {{name: bob, uid: 1002}}]
sources:
  office: {{cidrs: [198.51.100.0/28], hosts: 6}}
  internet: {{cidrs: [203.0.113.0/24], hosts: 60}}
mix:
  - {{name: key-shell, scenario: {BLOCKS}/publickey-shell.yaml, weight: 5, profiles: [openssh-9.6, putty-0.80],
     sources: office, session: [30, 1800]}}
  - {{name: key-exec, scenario: {BLOCKS}/publickey-exec.yaml, weight: 3, profiles: [paramiko-3.4], sources: office,
     session: [0.2, 3]}}
  - {{name: password-login, scenario: {BLOCKS}/password-login.yaml, weight: 2, sources: office}}
  - {{name: sftp, scenario: {BLOCKS}/sftp-session.yaml, weight: 1, sources: office, session: [2, 300]}}
  - {{name: wrong-password, scenario: {BLOCKS}/password-attempts.yaml, weight: 2, vars: {{attempts: [1, 2]}},
     sources: office}}
  - {{name: invalid-user, scenario: {BLOCKS}/password-attempts.yaml, user: invalid, vars: {{attempts: 1}},
     sources: internet}}
  - {{name: scan-tcp, probe: tcp-close, sources: internet}}
  - {{name: scan-banner, probe: banner-close, weight: 0.5, sources: internet}}
  - {{name: scan-http, probe: bad-banner, weight: 0.5, sources: internet}}
  - {{name: kex-mismatch, scenario: {BLOCKS}/kex-mismatch.yaml, weight: 0.5, sources: internet}}
bursts:
  - name: bf
    sources: internet
    count: 2
    connections: [15, 25]
    interval: [2, 6]
    mix:
      - {{name: bf-root, scenario: {BLOCKS}/password-attempts.yaml, user: root, vars: {{attempts: [2, {{{{ max_attempts }}}}]}}}}
      - {{name: bf-invalid, scenario: {BLOCKS}/password-attempts.yaml, user: invalid, vars: {{attempts: [1, 2]}},
         weight: 2}}
      - {{name: bf-valid, scenario: {BLOCKS}/password-attempts.yaml, user: valid, vars: {{attempts: 1}}}}
"""


@dataclass
class Corpus:
    folder: Path
    spec: Path
    log: Path
    labels: list[dict[str, Any]]
    recordings: Path


def read_labels(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.with_name(log.name + ".labels.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    folder = tmp_path_factory.mktemp("generate")
    spec_path = folder / "spec.yaml"
    spec_path.write_text(SPEC)
    log = folder / "corpus.log"
    recordings = folder / "recordings"
    result = generate(load_spec(spec_path), log, parallel=16, recordings=recordings)
    assert result.lines > 500 and result.connections > 400
    return Corpus(folder, spec_path, log, read_labels(log), recordings)


def test_fail2ban_finds_exactly_the_labelled_failures_per_source(corpus: Corpus) -> None:
    regex = shutil.which("fail2ban-regex")
    if regex is None:
        pytest.skip("fail2ban-regex not installed (apt-get install fail2ban)")
    expected: collections.Counter[str] = collections.Counter()
    for label in corpus.labels:
        if label["fail2ban_failures"]:
            expected[label["source"]] += label["fail2ban_failures"]
    done = subprocess.run([regex, "-o", "ip", str(corpus.log), "/etc/fail2ban/filter.d/sshd.conf"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = collections.Counter(line.strip() for line in done.stdout.splitlines() if line.strip())
    assert found == expected
    # per line too: the lines fail2ban matches are exactly the labels' failure_lines
    done = subprocess.run([regex, "--print-all-matched", "--print-no-missed", str(corpus.log),
                           "/etc/fail2ban/filter.d/sshd.conf"], capture_output=True, text=True, timeout=300)
    matched = collections.Counter(line[3:] for line in done.stdout.splitlines() if line.startswith("|  ")
                                  and line[3:4].isalpha() and " sshd[" in line)
    lines = corpus.log.read_text().splitlines()
    labelled = collections.Counter(lines[n - 1] for label in corpus.labels for n in label["failure_lines"])
    assert matched == labelled
    # and the labels name the sshd they were recorded against, and the format
    system = sshd_version("/usr/sbin/sshd")
    assert system.startswith("OpenSSH_")
    assert {(l["openssh"], l["format"], l["failures_as"]) for l in corpus.labels} == {
        (system, "syslog", "fail2ban sshd filter (filter.d/sshd.conf), mode normal, as of fail2ban 1.0")}
    # the corpus has what a filter must catch: bursts, invalid users, MaxAuthTries
    assert len(expected) >= 5
    scenarios = {l["scenario"] for l in corpus.labels if l["fail2ban_failures"]}
    assert {"bf-root", "bf-invalid", "invalid-user", "wrong-password"} <= scenarios
    text = corpus.log.read_text()
    assert "maximum authentication attempts exceeded" in text and "Invalid user" in text


def test_parser_reads_every_line_as_a_known_event(corpus: Corpus) -> None:
    events = list(parse_file(corpus.log))
    unknown = [e.raw for e in events if not e.known]
    assert not unknown, unknown[:5]
    # the labels cover every line exactly once
    numbers = sorted(n for label in corpus.labels for n in label["lines"])
    assert numbers == list(range(1, len(events) + 1))
    assert [l["id"] for l in corpus.labels] == list(range(1, len(corpus.labels) + 1))
    # and say what the lines say
    by_line = {e.line: e for e in events}
    for label in corpus.labels:
        mine = [by_line[n] for n in label["lines"]]
        names = {e.event for e in mine}
        assert ("auth.accepted" in names) == (label["outcome"] == "accepted"), label
        failures = sum(1 for e in mine if e.event == "auth.failed")
        assert failures == label["auth_failures"], label
        for e in mine:
            addr = e.fields.get("addr") or e.fields.get("rhost")
            if addr:
                assert addr == label["source"], (label, e.raw)
            if e.fields.get("port") is not None and e.fields.get("addr") == label["source"]:
                assert e.fields["port"] == label["port"], (label, e.raw)
            if e.fields.get("user") and label["user"]:
                assert e.fields["user"] == label["user"], (label, e.raw)


def test_nothing_of_the_recording_run_shows(corpus: Corpus) -> None:
    """Loopback addresses, stand-in user names and uids, the recorder's pids: all rewritten."""
    import re

    text = corpus.log.read_text()
    assert not re.search(r"(?<![\d.])127\.\d+\.\d+\.\d+", text)
    for stand_in in ("zzsimuser", "zznouser", "recorder", "4711"):
        assert stand_in not in text
    # pids are the generated box's: the spec's listener pid, its connections' above it (the
    # recording's pid namespace started at 7300)
    pids = {int(p) for p in re.findall(r"sshd\[(\d+)\]", text)}
    assert len(pids) > 300 and min(pids) > 300000
    # every address is the pools', and a source keeps one key fingerprint
    keys: dict[str, set[str]] = collections.defaultdict(set)
    for line in text.splitlines():
        m = re.search(r"Accepted publickey for (\S+) from (\S+) port \d+ ssh2: ED25519 (SHA256:\S+)", line)
        if m:
            keys[m.group(1)].add(m.group(3))
    assert keys and all(len(v) == 1 for v in keys.values())  # one key per user


def _grouping_mismatches(log: Path) -> list[dict[str, Any]]:
    events = list(parse_file(log))
    group_connections(events)
    conn_of = {e.line: e.conn for e in events}
    members: dict[int | None, list[int]] = collections.defaultdict(list)
    for e in events:
        members[e.conn].append(e.line)
    bad = []
    for label in read_labels(log):
        conns = {conn_of[n] for n in label["lines"]}
        if len(conns) != 1 or sorted(members[conns.pop()]) != label["lines"]:
            bad.append(label)
    return bad


def test_parser_groups_info_corpus_into_the_labelled_connections(corpus: Corpus) -> None:
    assert _grouping_mismatches(corpus.log) == []


def _small_spec(corpus: Corpus, **overrides: Any) -> Any:
    return apply_overrides(load_spec(corpus.spec, {"max_attempts": 2}), **overrides)


def test_parser_groups_debug_corpus_into_the_labelled_connections(corpus: Corpus, tmp_path: Path) -> None:
    """At DEBUG1 sshd logs the process lineage (Forked child, User child is on pid)."""
    log = tmp_path / "debug.log"
    generate(_small_spec(corpus, log_level="DEBUG1"), log, parallel=16, recordings=tmp_path / "rec")
    events = list(parse_file(log))
    assert all(e.known for e in events)
    assert sum(1 for e in events if e.event == "listener.forked_child") == len(read_labels(log)) > 300
    assert _grouping_mismatches(log) == []
    # pinned recordings: the same output again, at a LogLevel where sshd's processes race
    again = tmp_path / "again.log"
    generate(_small_spec(corpus, log_level="DEBUG1"), again, recordings=tmp_path / "rec")
    assert again.read_bytes() == log.read_bytes()


def test_same_spec_and_seed_give_byte_identical_output(corpus: Corpus, tmp_path: Path) -> None:
    """Two runs that each record afresh against their own sshd instances."""
    first, second, other = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "c.log"
    generate(_small_spec(corpus), first, parallel=16)
    generate(_small_spec(corpus), second, parallel=16)
    assert first.read_bytes() == second.read_bytes()
    labels = lambda p: p.with_name(p.name + ".labels.jsonl").read_bytes()  # noqa: E731
    assert labels(first) == labels(second)
    generate(_small_spec(corpus, seed=12), other, recordings=corpus.recordings)
    assert other.read_bytes() != first.read_bytes()


def test_edited_recordings_are_recorded_again(corpus: Corpus, tmp_path: Path) -> None:
    """A recordings folder is the user's: a file in it that is not a template this writer can
    replay (a slot it does not fill, a line holding the character that ends lines while they
    are made, a broken structure) is recorded again, never replayed, and the corpus comes out
    as from the untouched folder."""
    clean = tmp_path / "clean.log"
    generate(_small_spec(corpus), clean, recordings=corpus.recordings)
    edited = tmp_path / "edited"
    shutil.copytree(corpus.recordings, edited)
    files = sorted(edited.glob("*.json"))
    assert len(files) >= 3
    breakage = [lambda t: t["lines"][0].__setitem__(3, t["lines"][0][3] + "\x00nosuchslot\x00"),
                lambda t: t["lines"][0].__setitem__(3, t["lines"][0][3] + "\x1e<30>fake line"),
                lambda t: t.__setitem__("lines", 3)]
    for path, breaking in zip(files, breakage):
        data = json.loads(path.read_text())
        breaking(data["templates"][0])
        path.write_text(json.dumps(data))
    said: list[str] = []
    log = tmp_path / "edited.log"
    generate(_small_spec(corpus), log, recordings=edited, progress=said.append)
    assert log.read_bytes() == clean.read_bytes()
    assert Path(str(log) + ".labels.jsonl").read_bytes() == Path(str(clean) + ".labels.jsonl").read_bytes()
    told = [m for m in said if "recording it again" in m]
    assert len(told) == 2 and "unknown slots ['nosuchslot']" in told[0] + told[1], said
    assert any("\\x1e" in m for m in told), said
    recorded = [int(m.split()[1]) for m in said if m.startswith("recording ")]
    assert recorded and recorded[0] >= 3, said  # the broken one too, silently (jobs may share a file)


@pytest.mark.parametrize("fmt, input_format", [("rfc3339", "iso"), ("rfc5424", "rfc5424"),
                                               ("journal-json", "journal-json")])
def test_other_formats_carry_the_same_lines(corpus: Corpus, tmp_path: Path, fmt: str, input_format: str) -> None:
    log = tmp_path / f"corpus.{fmt}"
    generate(apply_overrides(load_spec(corpus.spec), format=fmt), log, recordings=corpus.recordings)
    classic = list(parse_file(corpus.log))
    other = list(parse_file(log, input_format=input_format))
    assert all(e.known for e in other)
    assert [(e.event, e.pid, e.message, e.host) for e in other] == [(e.event, e.pid, e.message, e.host) for e in classic]
    # the labels say which format their line numbers are of; everything else is the same
    assert {l["format"] for l in read_labels(log)} == {fmt}
    assert [dict(l, format=None) for l in read_labels(log)] == [dict(l, format=None) for l in corpus.labels]


def test_json_lines_format(corpus: Corpus, tmp_path: Path) -> None:
    log = tmp_path / "corpus.jsonl"
    generate(apply_overrides(load_spec(corpus.spec), format="jsonl"), log, recordings=corpus.recordings)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    classic = list(parse_file(corpus.log))
    assert len(rows) == len(classic)
    for row, event in zip(rows, classic):
        assert row["host"] == "gen-test" and row["program"] == event.program and row["pid"] == event.pid
        assert event.raw.endswith(": " + row["message"])
        assert row["time"].startswith("2024-03-11T") and row["time"].endswith("+00:00")
    times = [row["time"] for row in rows]
    assert times == sorted(times)


def test_real_engine_runs_every_connection_against_sshd(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC.replace("duration: 3h", "duration: 8m").replace("count: 2", "count: 1")
                         .replace("connections: [15, 25]", "connections: [3, 4]"))
    spec = apply_overrides(load_spec(spec_path, {"max_attempts": 2}), engine="real")
    log = tmp_path / "real.log"
    result = generate(spec, log, parallel=16)
    labels = read_labels(log)
    assert result.recordings == result.connections == len(labels) >= 15
    events = list(parse_file(log))
    assert all(e.known for e in events)
    assert sorted(n for l in labels for n in l["lines"]) == list(range(1, len(events) + 1))
    # real users on the real server, addresses rewritten from loopback to the pools
    text = log.read_text()
    assert "127." not in text and ("alice" in text or "bob" in text)


def test_command_line_progress_force_and_atomic_rename(corpus: Corpus, tmp_path: Path) -> None:
    out = tmp_path / "cli.log"
    cmd = [sys.executable, "-m", "simulator", "generate", str(corpus.spec), "-o", str(out),
           "--recordings", str(corpus.recordings), "--seed", "11"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "writing: 100% of the window" in done.stderr and "planned" in done.stderr
    assert f"to {out}" in done.stdout
    assert out.read_bytes() == corpus.log.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.log", "cli.log.labels.jsonl"]  # no temp files left
    # the umask's mode, as any file the user writes (not the temp file's 0600)
    umask = os.umask(0o022)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {0o666 & ~umask}
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 2 and "--force" in again.stderr
    forced = subprocess.run(cmd + ["--force", "-q"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert forced.returncode == 0 and forced.stderr == ""


def test_several_formats_from_one_recording(corpus: Corpus, tmp_path: Path) -> None:
    """`--format syslog,rfc5424,journal-json`: OUT.FORMAT each, from the one recording, each the
    bytes a run of its own format gives (the syslog one: the fixture's corpus)."""
    out = tmp_path / "multi.log"
    cmd = [sys.executable, "-m", "simulator", "generate", str(corpus.spec), "-o", str(out), "-q",
           "--recordings", str(corpus.recordings), "--format", "syslog,rfc5424,journal-json"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"multi.log.{f}{x}" for f in ("syslog", "rfc5424", "journal-json") for x in ("", ".labels.jsonl"))
    assert (tmp_path / "multi.log.syslog").read_bytes() == corpus.log.read_bytes()
    single = tmp_path / "single" / "one.log"
    single.parent.mkdir()
    generate(apply_overrides(load_spec(corpus.spec), format="rfc5424"), single, recordings=corpus.recordings)
    assert (tmp_path / "multi.log.rfc5424").read_bytes() == single.read_bytes()
    for fmt in ("rfc5424", "journal-json"):
        labels = read_labels(tmp_path / f"multi.log.{fmt}")
        assert [dict(l, format=None) for l in labels] == [dict(l, format=None) for l in corpus.labels]
    # an unknown format among them is bad input, before anything is written
    again = subprocess.run(cmd[:-1] + ["syslog,rfc5242"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert again.returncode == 2 and "unknown format 'rfc5242'" in again.stderr


def test_export_fail2ban_sample_log(corpus: Corpus, tmp_path: Path) -> None:
    """`--export fail2ban DIR`: fail2ban's sample-log layout, checked by the real fail2ban-regex:
    the lines it matches are exactly the ones marked `"match": true`, with the marked host."""
    regex = shutil.which("fail2ban-regex")
    if regex is None:
        pytest.skip("fail2ban-regex not installed (apt-get install fail2ban)")
    out = tmp_path / "fixture.log"
    cmd = [sys.executable, "-m", "simulator", "generate", str(corpus.spec), "-o", str(out), "-q",
           "--recordings", str(corpus.recordings), "--export", "fail2ban", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    sample = tmp_path / "logs" / "sshd"
    rows = sample.read_text().splitlines()
    marked: list[tuple[dict[str, Any], str]] = []
    for note, line in zip(rows[1::2], rows[2::2], strict=True):
        assert note.startswith("# failJSON: ")
        marked.append((json.loads(note[len("# failJSON: "):]), line))
    assert [line for _, line in marked] == out.read_text().splitlines()
    must = [(n, line) for n, line in marked if n["match"]]
    assert len(must) == sum(l["fail2ban_failures"] for l in corpus.labels) > 50
    assert all(n["time"].startswith("2024-03-11T") and n["time"][11:19] == line[7:15] for n, line in must)
    found = subprocess.run([regex, "--print-all-matched", "--print-no-missed", str(sample), "sshd"],
                           capture_output=True, text=True, timeout=300)
    matched = [row[3:] for row in found.stdout.splitlines() if row.startswith("|  ") and " sshd[" in row]
    assert collections.Counter(matched) == collections.Counter(line for _, line in must)
    hosts = subprocess.run([regex, "-o", "ip", str(sample), "sshd"], capture_output=True, text=True, timeout=300)
    assert collections.Counter(hosts.stdout.split()) == collections.Counter(n["host"] for n, _ in must)
    # the fixture is not overwritten without --force; other formats are refused before any work
    again = subprocess.run(cmd[:6] + [str(tmp_path / "other.log")] + cmd[7:], capture_output=True, text=True,
                           cwd=ROOT, timeout=300)
    assert again.returncode == 2 and "--force" in again.stderr
    json_export = subprocess.run(cmd[:6] + [str(tmp_path / "j.log"), "--format", "jsonl"] + cmd[7:],
                                 capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert json_export.returncode == 2 and "syslog" in json_export.stderr
    assert not (tmp_path / "j.log").exists()


# What a hub checkout's .tests/ folder holds besides the tests: the templates `cscli hubtest`
# builds each test's runtime from (Debian's hub snapshot has none). sshsim's own, minimal ones.
HUBTEST_CONFIG = """common: {daemonize: false, log_media: stdout, log_level: warning, working_dir: .}
config_paths: {config_dir: ./runtime/, data_dir: ./runtime/data/, simulation_path: ./runtime/simulation.yaml,
               hub_dir: ./runtime/hub/, index_path: ./runtime/hub/.index.json}
crowdsec_service: {parser_routines: 1}
db_config: {type: sqlite, db_path: ./runtime/data/crowdsec.db}
api:
  client: {credentials_path: ./runtime/local_api_credentials.yaml}
  server: {listen_uri: "127.0.0.1:PORT", profiles_path: ./runtime/profiles.yaml}
prometheus: {enabled: false}
"""
HUBTEST_PROFILES = """name: default_ip_remediation
filters: ['Alert.Remediation == true && Alert.GetScope() == "Ip"']
decisions: [{type: ban, duration: 4h}]
on_success: break
"""


def test_export_crowdsec_hubtest(corpus: Corpus, tmp_path: Path) -> None:
    """`--export crowdsec DIR`: a hubtest that the real `cscli hubtest run` passes on the
    system's 9.2 corpus, in a hub made of the snapshot Debian's crowdsec package ships."""
    cscli, hub_snapshot = shutil.which("cscli"), Path("/usr/share/crowdsec/hub")
    if cscli is None or not hub_snapshot.is_dir():
        pytest.skip("crowdsec not installed (sshsim setup --tests)")
    export = tmp_path / "export"
    export.mkdir()
    out = tmp_path / "fixture.log"
    done = subprocess.run([sys.executable, "-m", "simulator", "generate", str(corpus.spec), "-o", str(out), "-q",
                           "--recordings", str(corpus.recordings), "--export", "crowdsec", str(export)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    test = export / ".tests" / "sshsim-spec"
    assert sorted(p.name for p in test.iterdir()) == ["config.yaml", "parser.assert", "scenario.assert",
                                                        "sshsim-spec.log"]
    assert (test / "sshsim-spec.log").read_bytes() == out.read_bytes()
    parser_asserts = (test / "parser.assert").read_text().splitlines()
    assert len(parser_asserts) == 2 * sum(l["fail2ban_failures"] for l in corpus.labels)
    hub = tmp_path / "hub"
    shutil.copytree(hub_snapshot, hub, symlinks=True)
    shutil.copytree(export / ".tests", hub / ".tests")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (hub / ".tests" / "template_config.yaml").write_text(HUBTEST_CONFIG.replace("PORT", str(port)))
    (hub / ".tests" / "template_profiles.yaml").write_text(HUBTEST_PROFILES)
    (hub / ".tests" / "template_simulation.yaml").write_text("simulation: off\n")
    run = [cscli, "-c", str(hub / ".tests" / "template_config.yaml"), "hubtest", "run", "sshsim-spec", "--hub",
           str(hub), "--clean"]
    first = subprocess.run(run, capture_output=True, text=True, cwd=hub, timeout=300, stdin=subprocess.DEVNULL)
    # Measured: the hub's sshd parser does not read "maximum authentication attempts exceeded",
    # which the labels (as fail2ban) count: exactly those lines' assertions fail.
    assert first.returncode == 1
    lines = out.read_text().splitlines()
    failing = {int(m) for m in re.findall(r'🔴  => results\["s01-parse"\]\["crowdsecurity/sshd-logs"\]\[(\d+)\]',
                                          first.stdout + first.stderr)}
    assert failing and all("maximum authentication attempts exceeded" in lines[i] for i in failing)
    assert len(failing) == sum("maximum authentication attempts exceeded" in line for line in lines)
    # without them, the fixture passes: every other labelled failure line is ssh_failed-auth from its source
    kept = [a for a in parser_asserts if int(re.search(r"\]\[(\d+)\]", a).group(1)) not in failing]
    (hub / ".tests" / "sshsim-spec" / "parser.assert").write_text("\n".join(kept) + "\n")
    passed = subprocess.run(run, capture_output=True, text=True, cwd=hub, timeout=300, stdin=subprocess.DEVNULL)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"({len(kept) + 1} assertions)" in passed.stdout + passed.stderr
