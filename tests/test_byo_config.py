"""A user's own sshd_config (--sshd-config, server.sshd_config_file) and `sshsim compat`, against
the real sshd and real asyncssh: the file is used as written, only the lines sshsim owns are
replaced (and said so), sshd's errors name the user's file and line, and compat's table shows the
real differences between Debian's stock config and a hardened one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any
from pathlib import Path

import asyncssh
import pytest

from simulator.errors import BadInputError
from tests.conftest import ROOT, needs_local_sshd

STOCK = ROOT / "scenarios" / "compat" / "debian-12" / "sshd_config"
HARDENED = ROOT / "scenarios" / "compat" / "hardened" / "sshd_config"


def sshsim(*args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=timeout)


# -- reading the user's file (pure: no sshd) -------------------------------------------------------
def test_include_outside_the_folder_is_refused_at_its_line(tmp_path: Path) -> None:
    from simulator.target.userconfig import load_user_config

    config = tmp_path / "sshd_config"
    config.write_text("# mine\nInclude /etc/shadow\n")
    with pytest.raises(BadInputError) as err:
        load_user_config(config)
    assert (err.value.file, err.value.line) == (str(config), 2)
    assert "host file" in err.value.message


def test_include_under_etc_ssh_reads_beside_the_file(tmp_path: Path) -> None:
    from simulator.target.userconfig import load_user_config

    (tmp_path / "sshd_config.d").mkdir()
    (tmp_path / "sshd_config.d" / "10-ciphers.conf").write_text("Ciphers aes128-ctr\n")
    (tmp_path / "sshd_config").write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    config = load_user_config(tmp_path / "sshd_config")
    assert [f.path.name for f in config.files] == ["sshd_config", "10-ciphers.conf"]


def test_a_link_leaving_the_folder_and_dotdot_are_refused(tmp_path: Path) -> None:
    from simulator.target.userconfig import load_user_config

    inner = tmp_path / "scenario"
    inner.mkdir()
    (tmp_path / "outside").write_text("PasswordAuthentication yes\n")
    (inner / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(BadInputError, match="leaves the scenario's folder"):
        load_user_config("link", base=inner)
    with pytest.raises(BadInputError, match="inside the scenario's folder"):
        load_user_config("../outside", base=inner)


def test_oversized_and_binary_files_are_refused(tmp_path: Path) -> None:
    from simulator.limits import MAX_SOURCE_BYTES
    from simulator.target.userconfig import load_user_config

    big = tmp_path / "big"
    big.write_text("#" * (MAX_SOURCE_BYTES + 1))
    with pytest.raises(BadInputError, match="MAX_SOURCE_BYTES"):
        load_user_config(big)
    with pytest.raises(BadInputError, match="not a regular file"):
        load_user_config("/dev/zero")


def test_scenario_key_is_relative_to_the_scenario_and_confined(tmp_path: Path) -> None:
    from simulator.scenario import load_scenario

    (tmp_path / "sshd_config").write_text(HARDENED.read_text())
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nserver:\n  sshd_config_file: sshd_config\nconnections:\n  - id: c\n")
    loaded = load_scenario(str(scenario))
    assert loaded.server.config_file.files[0].path == (tmp_path / "sshd_config").resolve()
    assert loaded.server.own_log_level is False  # no server.log_level: the file's LogLevel stays
    scenario.write_text("name: s\nserver:\n  sshd_config_file: ../../etc/ssh/sshd_config\nconnections:\n  - id: c\n")
    with pytest.raises(BadInputError) as err:
        load_scenario(str(scenario))
    assert (err.value.file, err.value.line, err.value.key) == (str(scenario), 3, "server.sshd_config_file")


# -- the file used as written (real sshd) ------------------------------------------------------------
@needs_local_sshd
async def test_a_match_block_of_the_users_file_applies(tmp_path: Path) -> None:
    from simulator.target.base import ServerSpec, UserSpec
    from simulator.target.local import LocalSshd
    from simulator.target.userconfig import load_user_config

    (tmp_path / "sshd_config").write_text(STOCK.read_text() + "\nMatch User user\n\tForceCommand echo matched-by-the-users-file\n")
    spec = ServerSpec(users=[UserSpec()], config_file=load_user_config(tmp_path / "sshd_config"))
    with LocalSshd(spec) as server:
        async with asyncssh.connect(server.host, server.port, username="user", known_hosts=None,
                                    client_keys=[str(server.identity("user"))]) as conn:
            result = await conn.run("echo not-the-command")
    assert result.stdout.strip() == "matched-by-the-users-file"


@needs_local_sshd
async def test_hardened_file_refuses_an_ssh_rsa_only_client_and_nothing_weakens_it(tmp_path: Path) -> None:
    from simulator.profiles import load_profile
    from simulator.driver.runner import connect_profiled
    from simulator.target.base import ServerSpec, UserSpec
    from simulator.target.local import LocalSshd
    from simulator.target.userconfig import load_user_config

    legacy = load_profile({"base": "openssh-9.2-debian", "host_key": ["ssh-rsa"]})
    spec = ServerSpec(users=[UserSpec()], config_file=load_user_config(HARDENED))
    with LocalSshd(spec) as server:
        # None of the template's defaults is in the config sshd reads.
        for default in ("HostKeyAlgorithms +ssh-rsa", "X11Forwarding yes", "MaxStartups"):
            assert default not in server.config_text
        # sshd closes after "Unable to negotiate"; whether the client then reads that as a lost
        # connection or a reset depends on timing (its own KEXINIT may still be in flight).
        with pytest.raises((asyncssh.KeyExchangeFailed, asyncssh.ConnectionLost, ConnectionResetError)):
            await connect_profiled(server.host, server.port, legacy, username="user",
                                   client_keys=[str(server.identity("user"))])
        server.wait_idle()
        said = [line for line in server.log.lines() if "Unable to negotiate" in line]
    assert said and "no matching host key type found" in said[0]


@needs_local_sshd
def test_notice_on_stderr_lists_the_replaced_lines(tmp_path: Path) -> None:
    scenario = tmp_path / "refused.yaml"
    scenario.write_text(
        "name: refused\nserver:\n  log_level: DEBUG1\nconnections:\n"
        "  - id: legacy\n    profile: {base: openssh-9.2-debian, host_key: [ssh-rsa]}\n    auth: [publickey]\n"
        "expect:\n  legacy:\n    events: [kex.unable_to_negotiate]\n    outcome: {connection: refused}\n")
    done = sshsim("run", "--sshd-config", str(HARDENED), str(scenario))
    assert done.returncode == 0, done.stdout + done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("sshsim: note:")]
    print(notes[0])
    assert len(notes) == 1
    assert "lines 8, 9, 21, 38" in notes[0]  # HostKey x2, PermitRootLogin, LogLevel (asked for)
    assert "PermitRootLogin no" in notes[0] and "LogLevel DEBUG1" in notes[0]


@needs_local_sshd
def test_sshd_t_errors_name_the_users_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "sshd_config.d").mkdir()
    config = tmp_path / "sshd_config"
    config.write_text("Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\nCiphers aes128-ctr,nosuch\n")
    done = sshsim("sshd", "--sshd-config", str(config))
    assert done.returncode == 2
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"sshsim: error: {config}:3: sshd rejected 'Ciphers aes128-ctr,nosuch'"), error
    assert "sshsim-" not in error  # never a temp file the user never wrote
    config.write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    (tmp_path / "sshd_config.d" / "10-macs.conf").write_text("# macs\nMACs hmac-sha2-256,bogus\n")
    done = sshsim("sshd", "--sshd-config", str(config))
    error = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2 and f"{tmp_path}/sshd_config.d/10-macs.conf:2: sshd rejected 'MACs" in error, error


# -- compat ----------------------------------------------------------------------------------------
PROFILES = "openssh-9.2-debian,putty-0.80,paramiko-3.4,secureblackbox"


@pytest.fixture(scope="module")
def stock_vs_hardened(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("compat") / "report.json"
    done = sshsim("compat", "--before", str(STOCK), "--after", str(HARDENED), "--profiles", PROFILES,
                  "--report", "json", str(out))
    return done, json.loads(out.read_text()) if out.exists() else {}


@needs_local_sshd
def test_compat_stock_and_hardened(stock_vs_hardened: tuple[subprocess.CompletedProcess, dict]) -> None:
    done, report = stock_vs_hardened
    print(done.stdout)
    print(done.stderr)
    assert done.returncode == 1, done.stderr  # the hardened config changes things
    stock = {r["profile"]: r for r in report["before"]["rows"]}
    hardened = {r["profile"]: r for r in report["after"]["rows"]}
    # Debian's stock config: every client gets in, with password too; keyboard-interactive is off.
    assert all(r["ok"] for r in stock.values())
    assert stock["openssh-9.2-debian"]["auth"]["methods"] == {
        "publickey": "accepted", "keyboard-interactive": "not offered", "password": "accepted"}
    # Hardened: passwords are not offered (not "failed", not "none").
    assert hardened["openssh-9.2-debian"]["auth"]["offered"] == ["publickey"]
    assert hardened["openssh-9.2-debian"]["auth"]["methods"]["password"] == "not offered"
    assert hardened["paramiko-3.4"]["auth"]["methods"]["password"] == "not offered"
    # SecureBlackbox offers no modern key exchange: locked out, with sshd's own line as evidence.
    blackbox = hardened["secureblackbox"]
    assert blackbox["ok"] is False and blackbox["verdict"] == "locked out"
    assert "Unable to negotiate" in blackbox["evidence"] and "no matching key exchange method found" in blackbox["evidence"]
    assert stock["secureblackbox"]["kex"] == "diffie-hellman-group-exchange-sha256" and blackbox["kex"] is None
    # What the hardened server negotiates with the rest: modern algorithms only.
    assert hardened["putty-0.80"]["mac"] == "hmac-sha2-256-etm@openssh.com"
    assert stock["putty-0.80"]["mac"] == "hmac-sha2-256"
    assert "secureblackbox: connected before, now locked out" in "\n".join(report["changes"])
    assert "evidence" in done.stdout or "Unable to negotiate" in done.stdout
    assert "compat: 8 profile runs on 2 servers in" in done.stderr  # the wall time, printed


@needs_local_sshd
def test_compat_json_shape(stock_vs_hardened: tuple[subprocess.CompletedProcess, dict]) -> None:
    _, report = stock_vs_hardened
    table = report["after"]
    assert set(table) == {"target", "sshd_version", "config", "rows"}
    assert table["target"] == "local" and table["sshd_version"].startswith("OpenSSH_")
    assert table["config"] == str(HARDENED)
    for row in table["rows"]:
        assert {"profile", "ok", "kex", "host_key", "cipher", "mac", "compression", "auth", "session", "sftp",
                "evidence"} <= set(row)
        assert isinstance(row["ok"], bool) and {"offered", "result"} <= set(row["auth"])
        assert (row["evidence"] is None) == row["ok"]


@needs_local_sshd
def test_compat_baseline_regression_exit_1_and_unchanged_exit_0(
        stock_vs_hardened: tuple[subprocess.CompletedProcess, dict], tmp_path: Path) -> None:
    _, report = stock_vs_hardened
    baseline = tmp_path / "stock.json"
    baseline.write_text(json.dumps(report["before"]))
    same = sshsim("compat", "--sshd-config", str(STOCK), "--profiles", "openssh-9.2-debian",
                  "--baseline", str(baseline))
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 changes against" in same.stdout
    worse = sshsim("compat", "--sshd-config", str(HARDENED), "--profiles", "openssh-9.2-debian,secureblackbox",
                   "--baseline", str(baseline))
    assert worse.returncode == 1
    assert "secureblackbox: connected before, now locked out: " in worse.stdout
    assert "openssh-9.2-debian: password accepted -> not offered" in worse.stdout


def test_compat_bad_input_exit_2(tmp_path: Path) -> None:
    notjson = tmp_path / "b.json"
    notjson.write_text("{")
    for args, words in [
        ((), "--sshd-config: name the config to check"),
        (("--before", str(STOCK)), "--before and --after go together"),
        (("--sshd-config", str(STOCK), "--profiles", "nosuch"), "unknown profile 'nosuch'"),
        (("--sshd-config", str(STOCK), "--baseline", str(notjson)), f"{notjson}:1:2: not JSON"),
        (("--sshd-config", str(tmp_path / "missing")), "sshd_config file not found"),
        (("--sshd-config", str(STOCK), "--baseline", "/dev/zero"), "/dev/zero: --baseline: the baseline is larger than"),
        (("--sshd-config", str(STOCK), "--target", "local,"), "--target: an empty target name in 'local,'"),
    ]:
        done = sshsim("compat", *args)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sshsim: error: ") and words in lines[0], lines


@needs_local_sshd
def test_compat_several_targets_one_table_each(tmp_path: Path, built_sshd: Any) -> None:
    """`--target local,local:10.3p1`: the hardened config on the system's 9.2 and on upstream
    10.3p1 at once, one table per target, and a baseline compared target by target."""
    built_sshd("10.3p1")
    built_sshd("9.2p1")
    out = tmp_path / "two.json"
    done = sshsim("compat", "--sshd-config", str(HARDENED), "--target", "local,local:10.3p1",
                  "--profiles", "openssh-9.2-debian,secureblackbox", "--report", "json", str(out))
    assert done.returncode == 1, done.stderr  # SecureBlackbox is locked out on both
    report = json.loads(out.read_text())
    tables = {t["target"]: t for t in report["targets"]}
    assert set(tables) == {"local", "local:10.3p1"}
    assert tables["local:10.3p1"]["sshd_version"].startswith("OpenSSH_10.3")
    assert tables["local"]["sshd_version"].startswith("OpenSSH_9.2p1 Debian")
    for table in tables.values():
        rows = {r["profile"]: r for r in table["rows"]}
        assert rows["openssh-9.2-debian"]["ok"] and not rows["secureblackbox"]["ok"]
    # The terminal names each target and its sshd.
    assert "on local:10.3p1 (OpenSSH_10.3" in done.stdout and "on local (OpenSSH_9.2p1" in done.stdout
    assert "compat: 4 profile runs on 2 servers in" in done.stderr
    # The two-target report is its own baseline: nothing changed, target by target.
    again = sshsim("compat", "--sshd-config", str(HARDENED), "--target", "local", "--target", "local:10.3p1",
                   "--profiles", "openssh-9.2-debian,secureblackbox", "--baseline", str(out))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 changes against" in again.stdout
    # A target the baseline has no table for is named.
    other = sshsim("compat", "--sshd-config", str(HARDENED), "--target", "local:9.2p1",
                   "--profiles", "openssh-9.2-debian", "--baseline", str(out))
    assert other.returncode == 2 and "the baseline has no table for target 'local:9.2p1'" in other.stderr
