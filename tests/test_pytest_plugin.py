"""The pytest plugin as a user meets it (issue 17): `pytest scenarios/` in a real pytest process
on a copy of library scenarios, real sshd; -k, -x, --junitxml, pytest-xdist's -n; the fixtures
`sshd` and `sshsim_client` from a test file written in Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from conftest import ROOT, needs_local_sshd

LIBRARY = ROOT / "scenarios" / "library"
# An installed sshsim loads the plugin through its pytest11 entry point; this tree's copy is
# named with -p (both at once would register it twice).
PLUGIN = [] if entry_points(group="pytest11", name="sshsim") else ["-p", "simulator.pytest_plugin"]
MATRIX = """\
name: codes
matrix:
  code: [0, 3]
connections:
  - id: c
    actions:
      - session: {exec: "exit {{ code }}", exit_status: 0}
expect:
  c:
    outcome: {auth: accepted}
"""


def project(tmp_path: Path) -> Path:
    """A user's project: a few library scenarios, a matrix, a generate spec with its building
    block, a compat sshd_config, and YAML test data that is not a scenario."""
    scenarios = tmp_path / "scenarios"
    (scenarios / "library").mkdir(parents=True)
    for name in ("exec-exit-status", "invalid-user", "password-success"):
        shutil.copy(LIBRARY / f"{name}.yaml", scenarios / "library")
    (scenarios / "library" / "codes.yaml").write_text(MATRIX)
    (scenarios / "generate").mkdir()
    for name in ("bruteforce-mix", "password-login", "publickey-shell"):
        shutil.copy(ROOT / "scenarios" / "generate" / f"{name}.yaml", scenarios / "generate")
    shutil.copytree(ROOT / "scenarios" / "compat", scenarios / "compat")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fixture.yaml").write_text("connections: [not, a, scenario]\n")
    return tmp_path


def pytest_run(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    tmpdir = cwd / "tmpdir"
    tmpdir.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmpdir))
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-m", "pytest", *PLUGIN, "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def test_collects_scenarios_and_cells_and_nothing_else(tmp_path: Path) -> None:
    root = project(tmp_path)
    out = pytest_run(root, "--collect-only", "-q", ".")
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [row for row in out.stdout.splitlines() if "::" in row]
    assert ids == [
        "scenarios/library/codes.yaml::codes[code=0]",
        "scenarios/library/codes.yaml::codes[code=3]",
        "scenarios/library/exec-exit-status.yaml::exec-exit-status",
        "scenarios/library/invalid-user.yaml::invalid-user",
        "scenarios/library/password-success.yaml::password-success",
    ], out.stdout
    # A file named on the command line is collected wherever it is; a bad one is a collection
    # error in sshsim's one line.
    named = pytest_run(root, "--collect-only", "-q", "data/fixture.yaml")
    assert named.returncode == 2, named.stdout
    assert "fixture.yaml:1:15: connections[0]: expected object" in named.stdout
    assert "Traceback" not in named.stdout


@needs_local_sshd
def test_k_junitxml_and_a_failure_that_reads_as_the_verifier_report(tmp_path: Path) -> None:
    root = project(tmp_path)
    out = pytest_run(root, "scenarios", "-k", "codes or exec", "--junitxml", "junit.xml", "-rf")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 failed, 2 passed, 2 deselected" in out.stdout, out.stdout
    assert "=== codes[code=3] (" in out.stdout
    assert "codes.yaml:5: connection 'c': exec 'exit 3' ended with exit status 3, expected 0" in out.stdout
    assert "Captured sshd log call" in out.stdout and "Traceback" not in out.stdout
    suite = ET.parse(root / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["codes[code=3]"]
    assert "exit status 3, expected 0" in failed[0].find("failure").get("message")
    assert not list((root / "tmpdir").iterdir()), "every sshd's work folder is removed"


@needs_local_sshd
def test_x_stops_at_the_first_failure_and_a_broken_server_is_an_error(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "scenarios" / "library" / "aa-broken.yaml").write_text(
        "name: broken-server\nserver:\n  sshd_config: ['MaxAuthTries notanumber']\n"
        "connections:\n  - id: c\nexpect:\n  c: {outcome: {auth: accepted}}\n")
    out = pytest_run(root, "scenarios", "-x")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 error in" in out.stdout and "passed" not in out.stdout.splitlines()[-1], out.stdout
    assert "ERROR at setup of scenario: broken-server" in out.stdout
    assert "sshsim: error: " in out.stdout and "MaxAuthTries integer value invalid" in out.stdout
    assert "Traceback" not in out.stdout


@needs_local_sshd
def test_xdist_runs_items_side_by_side(tmp_path: Path) -> None:
    root = project(tmp_path)
    out = pytest_run(root, "scenarios", "-n", "2", "-k", "not codes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout and "2 workers" in out.stdout, out.stdout
    # pytest's own basetemp aside (xdist makes one), every sshd's work folder is removed.
    assert not [p.name for p in (root / "tmpdir").iterdir() if not p.name.startswith("pytest-of-")]


@needs_local_sshd
def test_fixtures_sshd_and_sshsim_client(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text('''
import asyncio


def test_putty_against_a_strict_server(sshd, sshsim_client):
    server = sshd(overrides=["MaxAuthTries 2"], log_level="DEBUG1")

    async def talk():
        async with sshsim_client("putty-0.80", server) as conn:
            done = await conn.run("id -un", check=True)
            return done.stdout.strip()

    assert asyncio.run(talk()) == "user"
    server.wait_idle()
    text = "\\n".join(server.log.lines())
    assert "Accepted publickey for user" in text
    assert "remote software version PuTTY_Release_0.80" in text
''')
    out = pytest_run(tmp_path, "test_mine.py", "-q")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    assert not list((tmp_path / "tmpdir").iterdir())
