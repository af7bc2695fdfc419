"""The local target against a real sshd and real asyncssh connections."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh
import pytest

from conftest import ROOT, client_connect_args, needs_local_sshd
from simulator.errors import BadInputError, TargetError
from simulator.target.base import ServerSpec, UserSpec
from simulator.target.local import LocalSshd
from simulator.target.procs import descendants_of

CLASSIC = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (?P<host>\S+) (?P<prog>sshd)\[(?P<pid>\d+)\]: (?P<msg>.*)$")

pytestmark = needs_local_sshd


def _host_mounts() -> list[str]:
    return sorted(line.split(" - ")[0].split(" ", 4)[4] for line in Path("/proc/self/mountinfo").read_text().splitlines())


def _sshd_pids() -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() in ("sshd", "sshd-session"):
                    pids.add(int(entry))
            except OSError:
                pass
    return pids


def _snapshot() -> dict[str, object]:
    return {
        "passwd": hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest(),
        "shadow": hashlib.sha256(Path("/etc/shadow").read_bytes()).hexdigest(),
        "home": sorted(os.listdir("/home")),
        "dev_log": os.path.lexists("/dev/log"),
        "run_sshd": os.path.exists("/run/sshd"),
        "mounts": _host_mounts(),
    }


def test_start_stop_leaves_nothing_behind() -> None:
    before = _snapshot()
    sshd_before = _sshd_pids()
    server = LocalSshd(ServerSpec()).start()
    workdir = server.workdir
    init_pid = server._init_pid
    listener = server.listener_pid
    assert workdir is not None and workdir.exists()
    assert listener is not None and listener in _sshd_pids()
    server.stop()
    assert not workdir.exists()
    assert not Path(f"/proc/{listener}").exists()
    assert init_pid is not None and not Path(f"/proc/{init_pid}").exists()
    assert _sshd_pids() <= sshd_before
    assert _snapshot() == before


def test_sigkill_of_parent_leaves_no_sshd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A temp folder of the test's own: another sshsim run on the machine sweeps orphaned work
    # folders in the shared one, and could take the holder's before this test looks for it.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    script = tmp_path / "holder.py"
    script.write_text(
        "import json, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from simulator.target.local import LocalSshd\n"
        "s = LocalSshd().start()\n"
        "print(json.dumps({'init': s._init_pid, 'listener': s.listener_pid, 'workdir': str(s.workdir)}), flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(holder.stdout.readline())  # type: ignore[union-attr]
        assert Path(f"/proc/{info['listener']}").exists()
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (
                Path(f"/proc/{info['listener']}").exists() or Path(f"/proc/{info['init']}").exists()):
            time.sleep(0.02)
        assert not Path(f"/proc/{info['listener']}").exists(), "sshd outlived its parent"
        assert not Path(f"/proc/{info['init']}").exists(), "namespace init outlived its parent"
        # SIGKILL gave the holder no chance to remove its work folder: the next target does
        assert Path(info["workdir"]).exists()
        with LocalSshd() as again:
            assert not Path(info["workdir"]).exists(), "an orphaned work folder was left"
            assert again.workdir is not None and again.workdir.exists()
    finally:
        if holder.poll() is None:
            holder.kill()


async def test_publickey_login_lines_have_pids_and_roles(sshd_server: LocalSshd) -> None:
    async with asyncssh.connect(**client_connect_args(sshd_server)) as conn:
        result = await conn.run("true", check=True)
        assert result.exit_status == 0
        local_port = conn.get_extra_info("sockname")[1]
    sshd_server.wait_idle()
    lines = sshd_server.log.lines()
    parsed = [CLASSIC.match(line) for line in lines]
    assert all(parsed), [line for line, m in zip(lines, parsed) if not m][:3]
    by_msg = [(int(m["pid"]), m["msg"]) for m in parsed if m]

    listener = by_msg[0][0]
    forked = [int(re.search(r"Forked child (\d+)", msg).group(1)) for pid, msg in by_msg
              if pid == listener and "Forked child" in msg]
    assert len(forked) == 1
    monitor = forked[0]
    monitor_msgs = [msg for pid, msg in by_msg if pid == monitor]
    assert any(msg.startswith(f"Connection from 127.0.0.1 port {local_port} ") for msg in monitor_msgs)
    assert any(msg.endswith(" [preauth]") for msg in monitor_msgs), "relayed pre-auth lines carry the monitor pid"
    assert any(msg.startswith("Accepted publickey for user from 127.0.0.1") for msg in monitor_msgs)
    assert "pam_unix(sshd:session): session opened for user user(uid=1000) by (uid=0)" in monitor_msgs
    child = [int(re.search(r"User child is on pid (\d+)", msg).group(1)) for msg in monitor_msgs
             if msg.startswith("User child is on pid")]
    assert len(child) == 1
    user_msgs = [msg for pid, msg in by_msg if pid == child[0]]
    assert any("Starting session: command for user from 127.0.0.1" in msg for msg in user_msgs)
    assert not any(msg.endswith("[preauth]") for msg in user_msgs)
    assert all(m["host"] == "localhost" for m in parsed if m)


def test_rejected_config_reports_sshds_message() -> None:
    # Bad input (exit 2) at the override, not a target failure naming the deleted temp config.
    with pytest.raises(BadInputError) as info:
        LocalSshd(ServerSpec(overrides=["NoSuchKeyword yes"])).start()
    text = str(info.value)
    assert "rejected the configuration" in text
    assert "NoSuchKeyword" in text
    assert "\n" not in text
    assert "/tmp/" not in text and text.startswith("server.sshd_config: ")


async def test_password_user_and_host_files_untouched(local_sshd_factory) -> None:
    before = _snapshot()
    server = local_sshd_factory(ServerSpec(users=[UserSpec(name="alice", uid=1001, password="s3cret", generate_key=False)]))
    async with asyncssh.connect(server.host, server.port, username="alice", password="s3cret",
                                known_hosts=None, client_keys=None) as conn:
        result = await conn.run("id -un; echo $HOME", check=True)
        assert result.stdout.split() == ["alice", "/home/alice"]
    server.wait_idle()
    assert any("Accepted password for alice from 127.0.0.1" in line for line in server.log.lines())
    # Inside the namespace alice existed; on the host she never does.
    assert "alice" not in Path("/etc/passwd").read_text()
    server.stop()
    assert _snapshot() == before


async def test_fifty_connections_at_concurrency_ten(local_sshd_factory) -> None:
    server = local_sshd_factory(ServerSpec(log_level="INFO"))
    ports: list[int] = []
    limit = asyncio.Semaphore(10)

    async def one() -> None:
        async with limit:
            async with asyncssh.connect(**client_connect_args(server)) as conn:
                ports.append(conn.get_extra_info("sockname")[1])
                await conn.run("true", check=True)

    await asyncio.gather(*(one() for _ in range(50)))
    server.wait_idle(timeout=30)
    text = "\n".join(server.log.lines())
    assert len(ports) == 50
    for port in ports:
        assert f"Accepted publickey for user from 127.0.0.1 port {port} ssh2" in text
        assert re.search(rf"(Received disconnect|Disconnected) from (user user )?127\.0\.0\.1 port {port}\b", text), port
    assert "past MaxStartups" not in text


async def test_wait_for_sees_a_server_event(sshd_server: LocalSshd) -> None:
    waiter = asyncio.ensure_future(sshd_server.log.wait_for(lambda r: r.message.startswith("Accepted publickey"), 10))
    async with asyncssh.connect(**client_connect_args(sshd_server)):
        record = await waiter
    assert record.pid is not None and record.program == "sshd"
    assert record.severity == "info"


def test_no_sshd_left_and_listener_gone_after_context(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    with LocalSshd(ServerSpec(log_level="INFO"), log_path=log) as server:
        listener = server.listener_pid
        assert listener and not descendants_of(listener)
    assert listener and not Path(f"/proc/{listener}").exists()
    text = log.read_text()
    assert "Server listening on 127.0.0.1 port" in text
    assert "Received signal 15; terminating." in text
