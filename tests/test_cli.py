"""The `sshsim` command as a user meets it: real processes, real sshd, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, needs_local_sshd, running
from simulator.cli import main


def sshsim(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)


def _one_line_error(out: subprocess.CompletedProcess) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


@needs_local_sshd
def test_sshd_json_then_real_ssh_login_then_ctrl_c(tmp_path: Path) -> None:
    log = tmp_path / "sshd.log"
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "sshd", "--json", "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        info = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert {"host", "port", "user", "identity", "log"} <= set(info)
        assert info["log"] == str(log)
        ssh = subprocess.run(
            ["ssh", "-F", "/dev/null", "-i", info["identity"], "-p", str(info["port"]), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             f"{info['user']}@{info['host']}", "echo logged-in-as-$(id -un)"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert ssh.stdout.strip() == "logged-in-as-user", ssh.stderr
        deadline = time.monotonic() + 10
        while "session closed for user user" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "Accepted publickey for user from 127.0.0.1" in text
    assert "session closed for user user" in text
    streamed = proc.stdout.read()  # type: ignore[union-attr]
    assert "Accepted publickey for user" in streamed
    assert not Path(info["identity"]).exists(), "the run's keys and folder are removed at stop"


@needs_local_sshd
def test_sshd_rejected_override_is_one_line_with_sshds_words() -> None:
    out = sshsim("sshd", "--override", "NoSuchKeyword yes")
    assert out.returncode == 2  # bad input, named by its option, not by the deleted temp config
    line = _one_line_error(out)
    assert "rejected the configuration" in line and "NoSuchKeyword" in line


def test_missing_sshd_names_the_package() -> None:
    env = dict(os.environ, SSHSIM_SSHD="/nonexistent/sshd")
    out = sshsim("sshd", env=env)
    assert out.returncode == 2
    assert "openssh-server" in _one_line_error(out)


def test_not_root_says_so_and_names_docker(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    if not Path("/usr/sbin/sshd").exists():
        pytest.skip("sshd not installed: the sshd check comes first")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(SystemExit) as info:
        main(["sshd"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs root" in err and "docker" in err


def test_missing_scenario_is_one_line() -> None:
    out = sshsim("run", "no/such/scenario.yaml")
    assert out.returncode == 2
    assert "no/such/scenario.yaml" in _one_line_error(out)


def test_unknown_command_and_help() -> None:
    assert sshsim("--help").returncode == 0
    out = sshsim("no-such-command")
    assert out.returncode != 0 and "Traceback" not in out.stderr


@needs_local_sshd
def test_failed_expectation_exits_1_with_a_useful_report(tmp_path: Path) -> None:
    scenario = tmp_path / "wrong.yaml"
    scenario.write_text(
        "connections:\n"
        "  - id: c1\n"
        "    profile: openssh-9.2-debian\n"
        "    actions:\n"
        "      - session: {exec: 'true'}\n"
        "expect:\n"
        "  c1:\n"
        "    events:\n"
        "      - {event: auth.accepted, fields: {method: password}}\n"
    )
    out = sshsim("run", str(scenario), "--no-color")
    assert out.returncode == 1
    assert "0 passed, 1 failed" in out.stdout
    assert "connection 'c1'" in out.stderr
    assert "expected auth.accepted {method=password}" in out.stderr
    assert "the log has auth.accepted with method=publickey" in out.stderr
    assert f"{scenario}:9:" in out.stderr
    assert "Accepted publickey for user" in out.stderr  # the log lines around it


def test_profiles_lists_every_profile() -> None:
    out = sshsim("profiles")
    assert out.returncode == 0
    for name in ("motty-0.80", "putty-0.80", "secureblackbox", "openssh-9.2-debian", "paramiko-3.4"):
        assert name in out.stdout


def test_schema_is_valid_json() -> None:
    out = sshsim("schema")
    assert json.loads(out.stdout)["title"] == "sshsim scenario"


@needs_local_sshd
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_nothing(tmp_path: Path, sig: int) -> None:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        "connections:\n"
        "  - id: slow\n"
        "    actions:\n"
        "      - session: {exec: 'sleep 30', close: wait}\n"
    )
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(private_tmp))
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "run", str(scenario)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until the command is running on the server (its session child exists).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = running("sleep 30")
            if out and list(private_tmp.iterdir()):
                break
            time.sleep(0.05)
        assert out, "the scenario never started its command"
        proc.send_signal(sig)
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 128 + sig  # SIGINT 130, SIGTERM 143 (simulator/errors.py)
    err = proc.stderr.read()  # type: ignore[union-attr]
    assert "interrupted" in err and len(err.strip().splitlines()) == 1, err
    time.sleep(0.2)
    assert not running("sleep 30")
    assert not list(private_tmp.iterdir()), "the run's working folder must be removed"
