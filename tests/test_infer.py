"""`sshsim infer` and `sshsim replay`: from a real log to a scenario that reproduces it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT, needs_local_sshd
from simulator.scenario import load_scenario
from simulator.scenario.infer import choose_profile, infer_scenario


def test_profile_choice_by_banner() -> None:
    assert choose_profile("MoTTY_Release_0.80") == "motty-0.80"
    assert choose_profile("SecureBlackbox") == "secureblackbox"
    assert choose_profile("PuTTY_Release_0.79") == "putty-0.80"
    assert choose_profile("OpenSSH_9.3p1 Ubuntu-1") == "openssh-9.2-debian"
    assert choose_profile("OpenSSH_10.0") == "openssh-9.9"
    assert choose_profile("libssh_0.9.6") == "asyncssh-2.24.1"


def test_infer_the_seed(seed_log_path: Path, tmp_path: Path) -> None:
    data = infer_scenario(seed_log_path.read_text().splitlines(), "seed")
    motty, sb = data["connections"]
    assert motty["profile"] == "motty-0.80" and sb["profile"] == "secureblackbox"
    assert motty["actions"] == [{"session": {"x11": True, "pty": True, "shell": True, "input": "exit\n"}}]
    assert sb["actions"] == [{"session": {"subsystem": "sftp"}}]
    assert sb["after"] == {"connection": motty["id"], "event": "auth.postponed"}
    assert motty["pause"][0]["before"] == "signed-publickey"
    assert data["server"]["host_name"] == "user-sicharge" and data["server"]["log_level"] == "DEBUG1"
    # What infer writes is a valid scenario, and the original log meets its expectations.
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(data))
    scenario = load_scenario(str(path))
    from simulator.verify.verifier import verify_lines

    assert verify_lines(scenario, seed_log_path.read_text().splitlines()) == []


def test_infer_a_log_without_connections_is_an_error(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text("Jan 29 11:23:02 host systemd-logind[707]: New session 606 of user user.\n")
    out = subprocess.run([sys.executable, "-m", "simulator", "infer", str(log)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and f"{log}: no sshd connection found (1 line; formats seen: syslog)" in out.stderr


@needs_local_sshd
def test_replay_the_seed_matches_every_line(seed_log_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "simulator", "replay", str(seed_log_path), "--no-color"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "matched 178/178 lines", out.stdout[-2000:] + out.stderr
    assert out.returncode == 0


def test_connections_logged_in_the_same_second_replay_in_the_logs_order() -> None:
    """Two connections of a real capture, the second's time stamps moved into the first's second
    (syslog has no fractions): the replay starts them apart, in the log's order, so the diff pairs
    each with its own lines."""
    lines = (ROOT / "tests/data/infer/user-and-host-key-types.debug1.syslog.log").read_text().splitlines()
    assert sum("Connection from" in line for line in lines) == 2
    same_second = [line.replace("Dec  5 20:45:27 ", "Dec  5 20:45:26 ", 1) for line in lines]
    starts = [conn.get("start", 0.0) for conn in infer_scenario(same_second)["connections"]]
    assert starts == [0.0, 0.3]
    apart = [conn.get("start", 0.0) for conn in infer_scenario(lines)["connections"]]
    assert apart[1] - apart[0] == 1.0
