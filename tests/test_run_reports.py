"""`sshsim run` reports a CI server can trust (issue 17): errors apart from failures, the run going
on past a scenario that cannot run, the summary and every report on every exit path, reports
replaced as pytest's are, one log per scenario and matrix cell, and a connection that fails where
nothing says it should read as a failure. Real sshd, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from conftest import ROOT, needs_local_sshd, running

LIBRARY = ROOT / "scenarios" / "library"
ENV = dict(os.environ, PYTHONPATH=str(ROOT))

BROKEN = """\
name: broken-server
server:
  sshd_config: ["MaxAuthTries notanumber"]
connections:
  - id: c
expect:
  c:
    outcome: {auth: accepted}
"""
# A wrong password and no expectation at all: it used to print PASS.
UNEXPECTED_FAILURE = """\
name: refused-unsaid
connections:
  - id: c
    auth: [{password: wrong}]
"""
# The connection outlives its own timeout: the driver gives up, an error rather than a verdict.
DRIVER_ERROR = """\
name: client-gives-up
connections:
  - id: c
    timeout: 1
    actions:
      - session: {exec: "sleep 5"}
"""


def sshsim(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args, "--no-color"], capture_output=True,
                          text=True, cwd=cwd, env=ENV, timeout=timeout)


def cases(report: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(report).getroot().iter("testcase")}


@needs_local_sshd
def test_errors_apart_from_failures_and_the_run_goes_on(tmp_path: Path) -> None:
    for name, text in (("broken.yaml", BROKEN), ("unsaid.yaml", UNEXPECTED_FAILURE),
                       ("gives-up.yaml", DRIVER_ERROR)):
        (tmp_path / name).write_text(text)
    report = tmp_path / "report.xml"
    report.write_text("last run's report\n")  # replaced without --force, as pytest's --junitxml
    out = sshsim("run", "broken.yaml", "unsaid.yaml", "gives-up.yaml", str(LIBRARY / "exec-exit-status.yaml"),
                 "--report", "junit", "report.xml", cwd=tmp_path)
    assert "ERROR broken-server" in out.stdout and "PASS exec-exit-status" in out.stdout, out.stdout
    assert "FAIL refused-unsaid" in out.stdout and "ERROR client-gives-up" in out.stdout, out.stdout
    assert "1 passed, 1 failed, 2 errors" in out.stdout
    # A scenario whose server refused its config is bad input: exit 2, said last in one line,
    # once every other scenario has run and every report is written.
    assert out.returncode == 2, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("sshsim: error: broken.yaml:3:17: server.sshd_config: sshd rejected"), last
    assert "Traceback" not in out.stderr
    suite = ET.parse(report).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "2")
    got = cases(report)
    assert {n: c.get("classname") for n, c in got.items()} == {
        "broken-server": "broken-server", "refused-unsaid": "refused-unsaid",
        "client-gives-up": "client-gives-up", "exec-exit-status": "exec-exit-status"}
    assert got["broken-server"].find("error") is not None and got["broken-server"].find("failure") is None
    assert "MaxAuthTries integer value invalid" in got["broken-server"].find("error").get("message")
    assert got["client-gives-up"].find("error") is not None
    assert "did not finish within its timeout of 1 s" in got["client-gives-up"].find("error").text
    failure = got["refused-unsaid"].find("failure")
    assert failure is not None and got["refused-unsaid"].find("error") is None
    assert "the connection failed (authentication failed" in failure.get("message")
    assert "expects nothing of it" in failure.get("message")
    assert not list(got["exec-exit-status"])


@needs_local_sshd
def test_log_dir_one_log_per_matrix_cell_with_safe_names(tmp_path: Path) -> None:
    (tmp_path / "cells.yaml").write_text(
        "name: cells\n"
        "matrix:\n"
        "  who: [alice, bob]\n"
        "  label: ['../up', 'a/b']\n"
        "server:\n"
        "  users: [{name: '{{ who }}', uid: 1000}]\n"
        "connections:\n"
        "  - {id: c, user: '{{ who }}'}\n"
        "expect:\n"
        "  c: {outcome: {auth: accepted}}\n")
    logs = tmp_path / "logs"
    out = sshsim("run", "cells.yaml", "--log-dir", "logs", "--log-out", "all.log", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 passed, 0 failed" in out.stdout
    names = sorted(p.name for p in logs.iterdir())
    assert names == sorted(f"cells_who={w}_label={lab}.log" for w in ("alice", "bob")
                           for lab in (".._up", "a_b")), names
    for name in names:
        who = name.split("who=")[1].split("_")[0]
        text = (logs / name).read_text()
        other = "bob" if who == "alice" else "alice"
        assert f"Accepted publickey for {who} " in text and f"for {other} " not in text
    whole = (tmp_path / "all.log").read_text()
    assert whole == "".join((logs / n).read_text() for n in [
        "cells_who=alice_label=.._up.log", "cells_who=alice_label=a_b.log",
        "cells_who=bob_label=.._up.log", "cells_who=bob_label=a_b.log"])
    # The captured logs keep the never-overwrite rule; a second run names the file at once.
    again = sshsim("run", "cells.yaml", "--log-dir", "logs", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().startswith("sshsim: error: logs/cells_who=alice_label=.._up.log: exists; "
                                           "not overwriting it (use --force)"), again.stderr
    forced = sshsim("run", "cells.yaml", "--log-dir", "logs", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in logs.iterdir()) == names, "replaced in place, no temp file left"


def test_log_out_still_needs_force_and_reports_do_not(tmp_path: Path) -> None:
    (tmp_path / "all.log").write_text("the user's log\n")
    out = sshsim("run", "missing.yaml", "--log-out", "all.log", "--report", "json", "r.json", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == "sshsim: error: all.log: exists; not overwriting it (use --force)"
    assert (tmp_path / "all.log").read_text() == "the user's log\n"


@needs_local_sshd
def test_sigterm_writes_the_summary_every_report_and_the_cut_scenario_as_an_error(tmp_path: Path) -> None:
    (tmp_path / "slow.yaml").write_text(
        "name: slow\n"
        "connections:\n"
        "  - id: c\n"
        "    actions:\n"
        "      - session: {exec: 'sleep 33', close: wait}\n")
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "run", str(LIBRARY / "exec-exit-status.yaml"),
                             "slow.yaml", "--report", "junit", "r.xml", "--report", "json", "r.json",
                             "--log-dir", "logs", "--no-color"], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if running("sleep 33"):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the slow command never ran")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    stdout, stderr = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    assert code == 143
    assert "PASS exec-exit-status" in stdout and "1 passed, 0 failed, 1 error" in stdout, stdout
    assert stderr.strip().startswith("sshsim: interrupted by SIGTERM; kept logs, r.xml, r.json"), stderr
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")
    error = cases(tmp_path / "r.xml")["slow"].find("error")
    assert error is not None and error.get("message") == "interrupted before its run ended"
    assert '"errored": 1' in (tmp_path / "r.json").read_text()
    assert "Accepted publickey for user" in (tmp_path / "logs" / "slow.log").read_text(), "the log so far"
    assert (tmp_path / "logs" / "exec-exit-status.log").stat().st_size > 0


def test_safe_file_names_stay_one_plain_name_in_their_folder() -> None:
    from simulator.io import safe_file_name
    from simulator.limits import MAX_OUTPUT_NAME_CHARS

    taken: set[str] = set()
    assert safe_file_name("../../etc/passwd", ".log", taken) == "etc_passwd.log"
    assert safe_file_name("..", ".log", taken) == "scenario.log"
    assert safe_file_name(".hidden[user=a b]", ".log", taken) == "hidden_user=a_b.log"
    assert safe_file_name("etc/passwd", ".log", taken) == "etc_passwd-2.log", "a second of the same name"
    long = safe_file_name("x" * 5000, ".log", taken)
    assert long == "x" * MAX_OUTPUT_NAME_CHARS + ".log"
    assert all("/" not in name and not name.startswith(".") for name in taken)
