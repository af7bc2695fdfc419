"""`sshsim matrix` through the CLI against the real local sshd: the table, the exit codes, the JSON
and JUnit files, what differs between targets, and Ctrl-C/SIGTERM leaving nothing behind.

`local` named twice is a matrix of two identical targets, run at once in two processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from conftest import ROOT, cli, needs_local_sshd

from simulator.commands.logio import read_log_lines, read_run_report
from simulator.verify.connection_events import connection_events, differences, event_names

LIBRARY = ROOT / "scenarios" / "library"


def wrong_password(path: Path, name: str, server: str, expect: str) -> Path:
    """A scenario file: one client tries a wrong password as a user sshd does not have."""
    path.write_text(f"name: {name}\n{server}connections:\n"
                    "  - {id: scanner, user: mallory, auth: [{password: nope}]}\n"
                    f"expect:\n  scanner: {expect}\n")
    return path


@needs_local_sshd
def test_two_identical_targets_pass_alike(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report, junit = tmp_path / "m.json", tmp_path / "m.xml"
    scenarios = [str(LIBRARY / "invalid-user.yaml"), str(LIBRARY / "password-success.yaml")]
    code, out, err = cli(["matrix", *scenarios, "--targets", "local,local", "--json", str(report),
                          "--junit", str(junit), "--no-color", "--progress"], capsys)
    assert code == 0, out + err
    rows = out.splitlines()
    assert rows[0].split() == ["scenario", "local", "local#2"]
    assert rows[1].split() == ["invalid-user", "PASS", "PASS"]
    assert rows[2].split() == ["password-success", "PASS", "PASS"]
    assert "4 passed, 0 failed" in out
    assert "differ" not in out  # two identical targets log the same events
    # Progress on stderr: both runs started before either finished (they run at once).
    said = [line for line in err.splitlines() if line.startswith("matrix: ")]
    assert said[:2] == ["matrix: local: started", "matrix: local#2: started"], err

    data = json.loads(report.read_text())
    assert [t["label"] for t in data["targets"]] == ["local", "local#2"]
    assert [t["target"] for t in data["targets"]] == ["local", "local"]
    assert (data["passed"], data["failed"], data["errored"]) == (4, 0, 0)
    first = data["scenarios"][0]
    assert first["name"] == "invalid-user" and first["differences"] == []
    for label in ("local", "local#2"):
        cell = first["results"][label]
        assert cell["status"] == "pass"
        assert "auth.invalid_user" in cell["events"]["scanner"]
        assert "listener.listening" in cell["events"]["listener"]
        run = data["runs"][label]["scenarios"][0]
        assert run["name"] == "invalid-user" and run["connections"]["scanner"]["auth_ok"] is False

    suites = ET.fromstring(junit.read_text())
    assert suites.tag == "testsuites"
    assert [s.get("name") for s in suites] == ["local", "local#2"]
    for suite in suites:
        assert suite.get("tests") == "2" and suite.get("failures") == "0" and suite.get("errors") == "0"
        assert [c.get("name") for c in suite] == [f"invalid-user [{suite.get('name')}]",
                                                  f"password-success [{suite.get('name')}]"]

    # The outputs exist now: without --force they are refused before anything runs.
    code, out, err = cli(["matrix", scenarios[0], "--targets", "local", "--json", str(report)], capsys)
    assert code == 2 and "exists; not overwriting it (use --force)" in err and not out


@needs_local_sshd
def test_a_failing_scenario_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = wrong_password(tmp_path / "wrong.yaml", "wrong", "", "{events: [auth.accepted]}")
    report, junit = tmp_path / "m.json", tmp_path / "m.xml"
    code, out, err = cli(["matrix", str(scenario), str(LIBRARY / "invalid-user.yaml"), "--targets", "local",
                          "--json", str(report), "--junit", str(junit), "--no-color"], capsys)
    assert code == 1, out + err
    assert out.splitlines()[1].split() == ["wrong", "FAIL"]
    assert out.splitlines()[2].split() == ["invalid-user", "PASS"]
    # The run's failure report, under the target's name.
    assert "--- local ---" in err and "=== wrong" in err and "auth.accepted" in err
    data = json.loads(report.read_text())
    assert (data["passed"], data["failed"]) == (1, 1)
    cell = data["scenarios"][0]["results"]["local"]
    assert cell["status"] == "fail" and "auth.accepted" in cell["message"]
    case = ET.fromstring(junit.read_text()).find("testsuite/testcase")
    assert case is not None and case.get("name") == "wrong [local]"
    failure = case.find("failure")
    assert failure is not None and "auth.accepted" in (failure.get("message") or "")


@pytest.mark.parametrize(("targets", "said"), [
    ("local,nosuch", "--targets: unknown target 'nosuch'"),
    ("local,,local", "--targets: an empty target name"),
])
def test_bad_targets_exit_2_in_one_line(targets: str, said: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code, out, err = cli(["matrix", str(LIBRARY / "invalid-user.yaml"), "--targets", targets], capsys)
    assert code == 2 and not out
    assert len(err.strip().splitlines()) == 1 and err.startswith("sshsim: error: ") and said in err, err
    assert time.monotonic() - started < 30  # refused before any sshd started (no run takes place)


def test_a_bad_scenario_exits_2_before_any_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("connections:\n  - {id: a, profile: no-such-profile}\n")
    code, out, err = cli(["matrix", str(scenario), "--targets", "local"], capsys)
    assert code == 2 and not out and len(err.strip().splitlines()) == 1 and str(scenario) in err, err


@needs_local_sshd
def test_differences_name_the_events_only_some_targets_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same client at INFO and at DEBUG1: the DEBUG1-only events are what differs."""
    scenario = wrong_password(tmp_path / "level.yaml", "level", "server: {log_level: '{{ level }}'}\n",
                              "{outcome: {auth: failed}}")
    names = {}
    for level in ("INFO", "DEBUG1"):
        log, report = tmp_path / f"{level}.log", tmp_path / f"{level}.json"
        code, out, err = cli(["run", str(scenario), "--var", f"level={level}", "--log-out", str(log),
                              "--report", "json", str(report), "--no-color"], capsys)
        assert code == 0, out + err
        connections = read_run_report(report)["scenarios"][0]["connections"]
        names[level] = event_names(connection_events(read_log_lines(log), connections))
    assert "auth.invalid_user" in names["INFO"]["scanner"] and "connection.rexec" not in names["INFO"]["scanner"]
    two = differences({"info": names["INFO"], "debug1": names["DEBUG1"]})
    assert "scanner: connection.rexec only on debug1" in two
    assert not [line for line in two if "auth.invalid_user" in line]  # both log it
    three = differences({"a": names["DEBUG1"], "b": names["DEBUG1"], "c": names["INFO"]})
    assert "scanner: connection.rexec not on c" in three
    assert differences({"a": names["DEBUG1"], "b": names["DEBUG1"]}) == []


@needs_local_sshd
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_matrix_stops_every_target(tmp_path: Path, sig: int) -> None:
    marker = "sleep 47.25"  # a command no other test runs: pgrep finds only this test's sessions
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        "connections:\n"
        "  - id: slow\n"
        "    actions:\n"
        f"      - session: {{exec: '{marker}', close: wait}}\n")
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(private_tmp), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "matrix", str(scenario), "--targets", "local,local"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        found: list[str] = []
        while time.monotonic() < deadline and len(found) < 2:
            found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
            time.sleep(0.05)
        assert len(found) >= 2, "the two targets never started their commands"
        proc.send_signal(sig)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 128 + sig
    err = proc.stderr.read()  # type: ignore[union-attr]
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err and "local#2" in err, err
    time.sleep(0.2)
    assert not subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _mentions(p, str(private_tmp))]
    assert not left, "a target's run outlived the matrix"
    assert not list(private_tmp.iterdir()), "the matrix's and the runs' folders must be removed"


def _mentions(proc: Path, text: str) -> bool:
    try:
        return text.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False
