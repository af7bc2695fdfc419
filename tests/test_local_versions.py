"""Every upstream OpenSSH version CI builds runs on the local target (`--target local:VERSION`,
`server.openssh`), host keys are kept between starts, and no scenario line makes the private
sshd listen where sshsim did not choose (issue 20, items 2 and 9).

All against real sshds: the upstream builds come from sshsim's cache, built on first use.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest
from conftest import ROOT, needs_local_sshd

from simulator.builds.features import parse_version
from simulator.builds.versions import ci_versions
from simulator.target.base import Origin, ServerSpec
from simulator.target.hostkeys import forget_kept
from simulator.target.local import LocalSshd

# The versions CI builds and tests (issue 20, item 3).
CI_VERSIONS = tuple(ci_versions())  # versions.yaml `ci: true`
LIBRARY = ROOT / "scenarios" / "library"


def sshsim(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def banner_version(log: str) -> tuple[int, int] | None:
    """(major, minor) of the version string sshd sent, from its DEBUG1 line."""
    m = re.search(r"Local version string SSH-2\.0-(OpenSSH_\S+)", log)
    return parse_version(m.group(1)) if m else None


def with_server_lines(scenario: Path, extra: str, tmp_path: Path, name: str) -> tuple[Path, int]:
    """A copy of a library scenario with `extra` lines under `server:`; the first extra line's number."""
    text = scenario.read_text()
    assert "\nserver:\n" in text
    path = tmp_path / name
    path.write_text(text.replace("\nserver:\n", "\nserver:\n" + extra, 1))
    at = path.read_text().split("\n").index(extra.split("\n")[0]) + 1
    return path, at


# -- every CI version through the CLI --------------------------------------------------------------
@needs_local_sshd
@pytest.mark.parametrize("version", CI_VERSIONS)
def test_library_scenario_runs_on_every_ci_version(version: str, built_sshd: object, tmp_path: Path) -> None:
    built_sshd(version)  # type: ignore[operator]
    log = tmp_path / "run.log"
    out = sshsim("run", str(LIBRARY / "exec-exit-status.yaml"), "--target", f"local:{version}",
                 "--log-out", str(log))
    assert out.returncode == 0, out.stdout + out.stderr
    assert banner_version(log.read_text()) == parse_version(version), "the log is that version's"


@needs_local_sshd
@pytest.mark.parametrize("version", ["8.4p1", "10.3p1"])
def test_sshd_reports_the_builds_own_version(version: str, built_sshd: object) -> None:
    """8.4p1 has no `sshd -V` (its usage text names the version); an upstream build never gets
    the system client's Debian suffix."""
    sshd = built_sshd(version)  # type: ignore[operator]
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "sshd", "--json", "--target", f"local:{version}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert info["target"] == f"local:{version}"
    assert parse_version(info["version"]) == parse_version(version)
    assert "Debian" not in info["version"], info
    assert info["version"] in subprocess.run([str(sshd), "-V"], capture_output=True, text=True).stderr


@needs_local_sshd
def test_scenario_server_openssh_picks_the_version(built_sshd: object, tmp_path: Path) -> None:
    built_sshd("8.4p1")  # type: ignore[operator]
    scenario, _ = with_server_lines(LIBRARY / "exec-exit-status.yaml", "  openssh: 8.4p1\n", tmp_path, "s.yaml")
    log = tmp_path / "run.log"
    out = sshsim("run", str(scenario), "--log-out", str(log))
    assert out.returncode == 0, out.stdout + out.stderr
    assert banner_version(log.read_text()) == (8, 4)
    assert "sshsim: note" not in out.stderr
    # Plain `--target local` leaves the scenario's version in force.
    out = sshsim("run", str(scenario), "--target", "local", "--log-out", str(log), "--force")
    assert out.returncode == 0, out.stdout + out.stderr
    assert banner_version(log.read_text()) == (8, 4)


@needs_local_sshd
def test_target_version_wins_over_the_scenarios_with_a_notice(built_sshd: object, tmp_path: Path) -> None:
    built_sshd("10.3p1")  # type: ignore[operator]
    scenario, at = with_server_lines(LIBRARY / "exec-exit-status.yaml", "  openssh: 8.4p1\n", tmp_path, "s.yaml")
    log = tmp_path / "run.log"
    out = sshsim("run", str(scenario), "--target", "local:10.3p1", "--log-out", str(log))
    assert out.returncode == 0, out.stdout + out.stderr
    assert banner_version(log.read_text()) == (10, 3)
    notes = [row for row in out.stderr.splitlines() if row.startswith("sshsim: note:")]
    assert len(notes) == 1 and f"{scenario}:{at}" in notes[0] and "10.3p1" in notes[0], out.stderr


@pytest.mark.parametrize("target, words", [("local:1.0p1", "1.0p1"), ("local:../../etc", "not an OpenSSH release"),
                                           ("local:", "empty version")])
def test_unknown_or_malformed_version_is_one_line_exit_2(target: str, words: str) -> None:
    out = sshsim("run", str(LIBRARY / "exec-exit-status.yaml"), "--target", target)
    assert out.returncode == 2, out.stdout + out.stderr
    assert words in one_line(out.stderr)


def test_scenario_version_on_a_docker_image_of_another_version_names_the_line(tmp_path: Path) -> None:
    """Decided before any engine is asked: debian-12 runs 9.2p1, not the 10.3p1 the scenario wants."""
    scenario, at = with_server_lines(LIBRARY / "exec-exit-status.yaml", "  openssh: 10.3p1\n", tmp_path, "s.yaml")
    out = sshsim("run", str(scenario), "--target", "docker:debian-12")
    assert out.returncode == 2, out.stdout + out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert f"{scenario}:{at}" in line and "9.2p1" in line and "10.3p1" in line, out.stderr


# -- host keys kept ---------------------------------------------------------------------------------
async def _host_key_fingerprint(server: LocalSshd) -> str:
    """The ed25519 host key the running sshd really presents to a client."""
    async with asyncssh.connect(server.host.strip("[]"), server.port, username="user",
                                client_keys=[str(server.identity("user"))], known_hosts=None, agent_path=None,
                                server_host_key_algs=["ssh-ed25519"]) as conn:
        key = conn.get_server_host_key()
        assert key is not None
        return key.get_fingerprint("sha256")


def _start_and_fingerprint() -> str:
    forget_kept()  # as a new process would: read the cache folder again
    with LocalSshd(ServerSpec()) as server:
        return asyncio.run(_host_key_fingerprint(server))


@needs_local_sshd
def test_host_keys_are_kept_across_starts_and_made_again_when_untrusted(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSHSIM_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "hostkeys"
    first = _start_and_fingerprint()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == ["ssh_host_ecdsa_key", "ssh_host_ed25519_key", "ssh_host_rsa3072_key"], kept
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert _start_and_fingerprint() == first, "the kept key is reused"

    key = folder / "ssh_host_ed25519_key"
    key.unlink()
    fresh = _start_and_fingerprint()
    assert fresh != first, "a removed key is made again"
    assert _start_and_fingerprint() == fresh

    os.chmod(key, 0o644)  # readable by others: its secret may be known
    after_mode = _start_and_fingerprint()
    assert after_mode != fresh and stat.S_IMODE(key.stat().st_mode) == 0o600

    key.write_text("not a key\n")
    os.chmod(key, 0o600)
    after_corrupt = _start_and_fingerprint()
    assert after_corrupt != after_mode and key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")

    # A link is never followed: replaced by a file of our own, its target left as it was.
    elsewhere = tmp_path / "elsewhere_key"
    elsewhere.write_bytes(key.read_bytes())
    os.chmod(elsewhere, 0o600)
    before = elsewhere.read_bytes()
    key.unlink()
    key.symlink_to(elsewhere)
    after_link = _start_and_fingerprint()
    assert after_link != after_corrupt
    assert not key.is_symlink() and elsewhere.read_bytes() == before


@needs_local_sshd
def test_a_folder_with_a_wrong_mode_is_put_right_and_its_keys_made_again(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSHSIM_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "hostkeys"
    first = _start_and_fingerprint()
    os.chmod(folder, 0o777)
    assert _start_and_fingerprint() != first
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@needs_local_sshd
def test_users_host_key_types_still_decide_which_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSHSIM_CACHE", str(tmp_path / "cache"))
    forget_kept()
    with LocalSshd(ServerSpec(host_key_types=("ed25519",))) as server:
        assert server.workdir is not None
        names = sorted(p.name for p in (server.workdir / "hostkeys").iterdir())
    assert names == ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]


# -- isolation: sshsim owns Port and ListenAddress ---------------------------------------------------
def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets process `pid` listens on, from its fds and /proc/net/tcp{,6}."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                continue
            hex_addr, hex_port = cols[1].split(":")
            raw = bytes.fromhex(hex_addr)
            # The kernel prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


@needs_local_sshd
def test_port_and_listen_address_overrides_never_bind_there() -> None:
    spec = ServerSpec(overrides=["Port 22", "ListenAddress 0.0.0.0", "listenaddress=[::]:2222", "Port=2022"],
                      override_origins=[Origin(file="s.yaml", line=n, key="server.sshd_config") for n in (4, 5, 6, 7)])
    with LocalSshd(spec) as server:
        pid = server.listener_pid
        assert pid is not None
        listening = _listening(pid)
        assert listening == {("127.0.0.1", server.port), ("::1", server.port)} or \
            listening == {("127.0.0.1", server.port)}, listening
        assert server.port >= 1024
        assert "# sshsim owns: Port 22" in server.config_text


@needs_local_sshd
def test_a_scenarios_port_22_is_replaced_with_a_notice_and_the_run_works(tmp_path: Path) -> None:
    extra = "  sshd_config:\n    - 'Port 22'\n    - 'ListenAddress 0.0.0.0'\n"
    scenario, at = with_server_lines(LIBRARY / "exec-exit-status.yaml", extra, tmp_path, "port22.yaml")
    log = tmp_path / "run.log"
    out = sshsim("run", str(scenario), "--log-out", str(log))
    assert out.returncode == 0, out.stdout + out.stderr
    notes = [row for row in out.stderr.splitlines() if row.startswith("sshsim: note:")]
    assert len(notes) == 1, out.stderr
    assert f"{scenario} line {at + 1} 'Port 22'" in notes[0] and f"{scenario} line {at + 2} 'ListenAddress 0.0.0.0'" \
        in notes[0], notes
    listening = [row for row in log.read_text().splitlines() if "Server listening on" in row]
    assert listening and all(re.search(r"on (127\.0\.0\.1|::1) port \d+\.$", row) for row in listening), listening
    assert not any(row.endswith(" port 22.") or "0.0.0.0" in row for row in listening), listening


@needs_local_sshd
def test_users_own_config_port_22_is_replaced_too(tmp_path: Path) -> None:
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\nListenAddress 0.0.0.0\nUsePAM yes\nSubsystem sftp internal-sftp\n")
    log = tmp_path / "run.log"
    out = sshsim("run", str(LIBRARY / "exec-exit-status.yaml"), "--sshd-config", str(config), "--log-out", str(log))
    notes = [row for row in out.stderr.splitlines() if row.startswith("sshsim: note:")]
    assert any(f"{config} lines 1, 2" in n for n in notes), out.stderr
    listening = [row for row in log.read_text().splitlines() if "Server listening on" in row]
    assert listening and not any(row.endswith(" port 22.") or "0.0.0.0" in row for row in listening), listening


@pytest.mark.parametrize("port", ["22", "0", "70000"])
def test_a_chosen_port_must_be_a_free_high_one(port: str) -> None:
    out = sshsim("sshd", "--port", port)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--port" in one_line(out.stderr)
