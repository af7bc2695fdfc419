"""`sshsim detect`: the real fail2ban-regex and the real crowdsec, on corpora recorded against the
real sshd (the system's 9.2 and upstream 10.0p1), scored against the labels.

The assertions are the measured truth per cell (README, "Detection table"):
- 9.2, classic syslog: fail2ban's stock sshd filter finds exactly the labelled failure lines and
  bans exactly the sources the labels' failures would ban; crowdsec's sshd parser finds every
  labelled line and, on top, PAM's "authentication failure" lines and "Connection closed by
  authenticating/invalid user" lines (which the labels, following fail2ban, do not count), and
  alerts on every source the labels' failures overflow its buckets for;
- RFC 5424 and journal JSON (read as files): neither tool matches a line;
- 10.0p1 (sshd-session writes the per-connection lines, 9.8+): neither tool matches a line in
  any format, although the labels hold as many failures as on 9.2.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.detect import Cell, parse_tool, run_matrix
from simulator.detect.crowdsec import buckets
from simulator.detect.fail2ban import jail_settings
from simulator.detect.score import bucket_alerts, jail_bans
from simulator.errors import BadInputError
from simulator.limits import MAX_DETECT_LINES
from simulator.generate import load_spec

from conftest import needs_local_sshd

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "scenarios" / "generate" / "detect-bruteforce.yaml"
FORMATS = ["syslog", "rfc5424", "journal-json"]

pytestmark = [
    needs_local_sshd, pytest.mark.sshd,
    pytest.mark.skipif(shutil.which("fail2ban-regex") is None or shutil.which("crowdsec") is None,
                       reason="fail2ban and crowdsec are not installed (sshsim setup --tests)"),
]


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[tuple[str, str, str], Cell], Path]:
    folder = tmp_path_factory.mktemp("detect")
    recordings = folder / "recordings"
    cells = run_matrix(load_spec(SPEC), [parse_tool("fail2ban"), parse_tool("crowdsec")], ["local", "local:10.0p1"],
                       FORMATS, folder / "corpora", recordings=recordings)
    return {(c.tool, c.target, c.format): c for c in cells}, recordings


def test_system_sshd_syslog_fail2ban_agrees_with_the_labels(measured: tuple[dict, Path]) -> None:
    cells, _ = measured
    cell = cells[("fail2ban:sshd", "local", "syslog")]
    assert cell.openssh.startswith("OpenSSH_9.2p1")
    assert cell.lines.expected > 50
    assert (cell.lines.recall, cell.lines.precision) == (1.0, 1.0)
    assert cell.sources.expected >= 3  # the three bursts at least
    assert (cell.sources.recall, cell.sources.precision) == (1.0, 1.0)


def test_system_sshd_syslog_crowdsec_finds_every_failure_and_more(measured: tuple[dict, Path]) -> None:
    cells, _ = measured
    cell = cells[("crowdsec", "local", "syslog")]
    assert cell.lines.recall == 1.0
    # it also counts PAM's line and the preauth close of each failed attempt: about half its lines
    assert cell.lines.precision is not None and 0.3 < cell.lines.precision < 0.8
    assert cell.sources.recall == 1.0 and cell.sources.expected >= 3
    # counting three lines per failed attempt, it alerts on an office address too (a user who
    # mistyped a password a few times), which the labels' failures do not overflow a bucket for
    assert cell.sources.extra and all(s.startswith("198.51.100.") for s in cell.sources.extra)


@pytest.mark.parametrize("target, fmt", [("local", "rfc5424"), ("local", "journal-json"),
                                         ("local:10.0p1", "syslog"), ("local:10.0p1", "rfc5424"),
                                         ("local:10.0p1", "journal-json")])
@pytest.mark.parametrize("tool", ["fail2ban:sshd", "crowdsec"])
def test_blind_spots_find_nothing(measured: tuple[dict, Path], tool: str, target: str, fmt: str) -> None:
    cells, _ = measured
    cell = cells[(tool, target, fmt)]
    # the labels know the failures all the same: as many as the 9.2 syslog corpus has
    assert cell.lines.expected == cells[(tool, "local", "syslog")].lines.expected
    assert (cell.lines.found, cell.lines.recall, cell.sources.found) == (0, 0.0, 0)
    if target == "local:10.0p1":
        assert cell.openssh.startswith("OpenSSH_10.0")


def test_ban_rules() -> None:
    """fail2ban's jail: maxretry within findtime; crowdsec: a leaky bucket's overflow."""
    times = {"a": [0.0, 1, 2, 3, 4], "b": [0.0, 100, 200, 300, 400], "c": [0.0, 1, 2, 3]}
    assert jail_bans(times, 5, 600) == {"a", "b"}
    assert jail_bans(times, 5, 300) == {"a"}
    assert bucket_alerts({"a": [0.0, 1, 2, 3, 4, 5]}, 5, 10) == {"a"}
    assert bucket_alerts({"a": [0.0, 10, 20, 30, 40, 50]}, 5, 10) == set()
    maxretry, findtime = jail_settings()
    assert (maxretry, findtime) == (5, 600.0)  # Debian 12's jail.conf defaults
    assert {(b.name, b.capacity, b.leakspeed) for b in buckets()} == {
        ("crowdsecurity/ssh-bf", 5, 10.0), ("crowdsecurity/ssh-slow-bf", 10, 60.0)}


def test_tool_names() -> None:
    assert parse_tool("fail2ban").name == "fail2ban:sshd"
    assert parse_tool("fail2ban:sshd[mode=aggressive]").name == "fail2ban:sshd[mode=aggressive]"
    for bad in ("fail2ban:nosuch", "fail2ban:../x", "snort", "crowdsec:x"):
        with pytest.raises(BadInputError):
            parse_tool(bad)


def test_command_table_report_and_exit_codes(measured: tuple[dict, Path], tmp_path: Path) -> None:
    _, recordings = measured
    report = tmp_path / "detect.json"
    cmd = [sys.executable, "-m", "simulator", "detect", str(SPEC), "--tool", "fail2ban", "--target", "local",
           "--format", "syslog,rfc5424", "--recordings", str(recordings), "--report", "json", str(report), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert rows[0][:4] == ["tool", "target", "OpenSSH", "format"]
    assert [r[:6] for r in rows[1:]] == [["fail2ban:sshd", "local", "9.2p1", "syslog", "1.00", "1.00"],
                                         ["fail2ban:sshd", "local", "9.2p1", "rfc5424", "0.00", "-"]]
    data = json.loads(report.read_text())
    assert [(c["format"], c["lines"]["recall"]) for c in data["cells"]] == [("syslog", 1.0), ("rfc5424", 0.0)]
    # the report is not overwritten without --force; a low recall fails only when asked to
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 2 and "--force" in again.stderr
    strict = subprocess.run(cmd[:-4] + ["--min-recall", "0.9", "-q"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert strict.returncode == 1, strict.stderr
    bad = subprocess.run(cmd[:5] + ["--tool", "snort"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "snort" in bad.stderr


def test_corpus_too_large_to_score_is_bad_input(measured: tuple[dict, Path], tmp_path: Path) -> None:
    """MAX_DETECT_LINES: a corpus is generated (from the fixture's recordings), found too large,
    refused with the spec's line, and nothing runs a tool on it."""
    _, recordings = measured
    spec = dataclasses.replace(load_spec(SPEC), rate_per_s=20.0)
    with pytest.raises(BadInputError) as caught:
        run_matrix(spec, [parse_tool("crowdsec")], ["local"], ["syslog"], tmp_path, recordings=recordings)
    assert f"at most {MAX_DETECT_LINES:,}" in str(caught.value) and "detect-bruteforce.yaml" in str(caught.value)
