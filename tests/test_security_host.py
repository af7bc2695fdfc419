"""The host stays safe from what sshsim reads and writes (issue 12, host side), against a real sshd.

Outputs: never over an existing file without --force, never through a symlink, the folder checked
before any work, a full disk keeping what was complete. The root-run sshd: loopback only, its
config errors at the user's line. The capture socket: only the namespace's processes reach it.
Signals: one line, the signal's exit code, nothing left behind, partial results kept.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import ROOT, needs_local_sshd, running
from simulator.cli import main
from simulator.errors import BadInputError, OutputError
from simulator.io import LogStream, atomic_write_text, check_output, write_lines
from simulator.target.base import ServerSpec
from simulator.target.chroots import prepare_chroots
from simulator.target.local import LocalSshd

LIBRARY = ROOT / "scenarios" / "library"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")


def sshsim(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env=env)


def run_main(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """The CLI in this process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0), capsys.readouterr().err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _tmpfs(tmp_path: Path, name: str, options: str) -> Iterator[Path]:
    """A tmpfs mounted at tmp_path/name for the test, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / name
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs: a full disk for real (ENOSPC), removed at the end."""
    yield from _tmpfs(tmp_path, "tiny", "size=16k")


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder root cannot write in (a read-only tmpfs: permission bits do not stop root)."""
    yield from _tmpfs(tmp_path, "ro", "ro,size=16k")


def private_tmp(tmp_path: Path) -> tuple[Path, dict]:
    """A TMPDIR of the test's own: whatever a run leaves behind shows up there."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    return folder, dict(os.environ, TMPDIR=str(folder))


# -- every output option: no overwrite without --force, never through a symlink ---------------
# (the arguments around the output; {out} is the output path). Inputs need not exist: the
# outputs are checked first.
OUTPUTS = {
    "sshd --log": ["sshd", "--log", "{out}"],
    "run --log-out": ["run", "missing.yaml", "--log-out", "{out}"],
    "run --report": ["run", "missing.yaml", "--report", "json", "{out}"],
    "generate -o": ["generate", "missing-spec.yaml", "-o", "{out}"],
    "generate labels": ["generate", "missing-spec.yaml", "-o", "{stem}"],
    "infer -o": ["infer", "missing.log", "-o", "{out}"],
    "replay --log-out": ["replay", "missing.log", "--log-out", "{out}"],
    "replay --scenario-out": ["replay", "missing.log", "--scenario-out", "{out}"],
}


def _args(option: str, out: Path, extra: list[str]) -> list[str]:
    stem = out.with_name(out.name.removesuffix(".labels.jsonl"))
    return [a.format(out=out, stem=stem) for a in OUTPUTS[option]] + extra


def _out_name(option: str) -> str:
    return "corpus.log.labels.jsonl" if option == "generate labels" else "out.txt"


# Reports are replaced run after run, as pytest's --junitxml is (issue 17: needing --force for
# them was the defect); a link is still refused (below) and the logs keep the rule.
REPLACED = {"run --report"}


@pytest.mark.parametrize("option", sorted(set(OUTPUTS) - REPLACED))
def test_existing_output_is_refused_without_force(option: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / _out_name(option)
    out.write_text("the user's own file\n")
    code, err = run_main(_args(option, out, []), capsys)
    assert code == 2
    assert "exists; not overwriting it (use --force)" in one_line(err)
    assert out.read_text() == "the user's own file\n"


@pytest.mark.parametrize("option", sorted(OUTPUTS))
@pytest.mark.parametrize("force", [False, True])
def test_symlink_output_is_refused_even_with_force(option: str, force: bool, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    victim = tmp_path / "victim"
    victim.write_text("must survive\n")
    out = tmp_path / _out_name(option)
    out.symlink_to(victim)
    code, err = run_main(_args(option, out, ["--force"] if force else []), capsys)
    assert code == 2
    assert "symbolic link" in one_line(err)
    assert victim.read_text() == "must survive\n" and out.is_symlink()


def test_dangling_symlink_is_refused_too(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    out.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(BadInputError, match="symbolic link"):
        check_output(out, force=True)
    assert not (tmp_path / "would-be-created").exists()


def test_output_appearing_during_the_work_is_not_overwritten(tmp_path: Path) -> None:
    """Checked at the start, absent; a file (or link) put there meanwhile is not replaced."""
    out = tmp_path / "report.json"
    check_output(out, force=False)
    out.write_text("appeared\n")
    with pytest.raises(BadInputError, match="appeared while sshsim worked"):
        atomic_write_text(out, "{}\n", force=False)
    assert out.read_text() == "appeared\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"], "no temp file left"


def test_force_replaces_a_link_planted_during_the_work_never_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("must survive\n")
    out = tmp_path / "out.log"
    check_output(out, force=True)
    out.symlink_to(victim)
    write_lines(out, ["a", "b"], force=True)
    assert victim.read_text() == "must survive\n"
    assert not out.is_symlink() and out.read_text() == "a\nb\n"


# -- the folder is checked before any work -----------------------------------------------------
@needs_local_sshd
@pytest.mark.parametrize("args", [
    ["run", str(LIBRARY / "exec-exit-status.yaml"), "--log-out", "{ro}/out.log"],
    ["run", str(LIBRARY / "exec-exit-status.yaml"), "--report", "junit", "{ro}/report.xml"],
    ["sshd", "--log", "{ro}/sshd.log"],
    ["replay", str(ROOT / "tests" / "data" / "seed" / "sshd-debug1-motty-secureblackbox.log"),
     "--log-out", "{ro}/replayed.log"],
])
def test_unwritable_folder_fails_before_any_sshd_starts(args: list[str], read_only_dir: Path,
                                                       tmp_path: Path) -> None:
    tmpdir, env = private_tmp(tmp_path)
    started = time.monotonic()
    out = sshsim(*[a.format(ro=read_only_dir) for a in args], env=env, timeout=60)
    took = time.monotonic() - started
    assert out.returncode == 2
    line = one_line(out.stderr)
    assert "cannot write in" in line and "Read-only file system" in line, line
    assert not list(tmpdir.iterdir()), "no sshd work folder was even made"
    assert took < 10, f"{took:.1f} s: the check must come before the work"


# -- a full disk: what was complete is kept, one line, no temp file -----------------------------
@needs_local_sshd
def test_full_disk_keeps_the_complete_log_lines_and_the_reports(tiny_disk: Path, tmp_path: Path) -> None:
    log = tiny_disk / "run.log"
    report = tmp_path / "report.json"
    tmpdir, env = private_tmp(tmp_path)
    out = sshsim("run", str(LIBRARY / "exec-exit-status.yaml"), "--log-out", str(log),
                 "--report", "json", str(report), "--no-color", env=env)
    assert out.returncode == 2, out.stderr
    line = one_line(out.stderr)
    assert "internal error" not in line
    assert f"{log}: cannot write: disk full; kept the first" in line
    kept = log.read_bytes()
    assert kept and kept.endswith(b"\n"), "cut at a line end"
    assert int(line.split("kept the first ")[1].split()[0]) == kept.count(b"\n")
    assert json.loads(report.read_text())["passed"] == 1, "the report was still written"
    assert [p.name for p in tiny_disk.iterdir()] == ["run.log"], "no temp file left"
    assert not list(tmpdir.iterdir())


@needs_root
def test_full_disk_whole_file_outputs_write_nothing_and_leave_no_temp(tiny_disk: Path) -> None:
    out = tiny_disk / "scenario.yaml"
    with pytest.raises(OutputError, match="disk full; nothing written"):
        atomic_write_text(out, "x" * 64 * 1024)
    assert list(tiny_disk.iterdir()) == []


@needs_root
def test_full_disk_stops_a_log_stream_at_a_line_end(tiny_disk: Path) -> None:
    path = tiny_disk / "sshd.log"
    stream = LogStream(path, force=False)
    line = "Dec  5 10:00:00 localhost sshd[1234]: " + "x" * 90
    for _ in range(1000):
        stream.write(line)  # never raises: it may run in the capture thread
    assert stream.error is not None and "disk full" in str(stream.error)
    with pytest.raises(OutputError, match=rf"kept the first {stream.lines} lines"):
        stream.close()
    text = path.read_text()
    assert text.count("\n") == stream.lines > 0 and text.endswith("\n")
    assert [p.name for p in tiny_disk.iterdir()] == ["sshd.log"]


# -- the root-run sshd listens on loopback only -------------------------------------------------
# Port and ListenAddress lines are sshsim's own: an override's is replaced, with a notice
# (tests/test_local_versions.py shows where sshd then listens).
@needs_local_sshd
@pytest.mark.parametrize("override", [
    "ListenAddress 127.0.0.1\nListenAddress 0.0.0.0",
    "Include /etc/ssh/sshd_config",
    "PermitRootLogin yes",
    "PermitRootLogin prohibit-password",
    "permitrootlogin=forced-commands-only",
    "AuthorizedKeysCommandUser root",
    "AuthorizedPrincipalsCommandUser sshd",
])
def test_unsafe_override_is_refused_before_sshd_starts(override: str, tmp_path: Path) -> None:
    tmpdir, env = private_tmp(tmp_path)
    out = sshsim("sshd", "--override", override, env=env, timeout=60)
    assert out.returncode == 2
    line = one_line(out.stderr)
    assert line.startswith("sshsim: error: --override: "), line
    assert not list(tmpdir.iterdir()), "refused before anything was made"


@needs_local_sshd
@pytest.mark.parametrize("override", [
    "ListenAddress 0.0.0.0",
    "ListenAddress 0.0.0.0:2222",
    "listenaddress=[::]:22",
    "LISTENADDRESS ::",
    'ListenAddress "192.0.2.2"',
    f"ListenAddress {socket.gethostname()}",
    "Port 22",
])
def test_listen_overrides_are_replaced_with_a_notice(override: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "sshd", "--json", "--override", override],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert info["host"] in ("127.0.0.1", "::1") and info["port"] >= 1024
    notes = [row for row in err.splitlines() if row.startswith("sshsim: note:")]
    assert len(notes) == 1 and f"--override '{override}'" in notes[0], err


def _line_of(path: Path, text: str) -> int:
    return next(n for n, row in enumerate(path.read_text().splitlines(), 1) if text in row)


@needs_local_sshd
def test_what_sshd_itself_would_listen_on_is_checked_too() -> None:
    """Defence in depth: sshd's own reading of the final config (sshd -T) is checked by the
    launcher; here a spec that bypasses sshsim's own choice asks for every interface."""
    server = LocalSshd(ServerSpec(listen=("0.0.0.0",)))
    with pytest.raises(BadInputError, match=r"would listen on 0\.0\.0\.0:\d+, beyond loopback"):
        server.start()
    assert server.workdir is None, "stopped and removed"


@needs_local_sshd
async def test_root_never_logs_in_even_with_a_users_key() -> None:
    """An absolute AuthorizedKeysFile (with StrictModes off) makes the scenario user's key good
    for every account, root included: with Debian's default `prohibit-password` that was a root
    shell on the host. sshsim's `PermitRootLogin no` must hold: the key check passes ("Accepted
    key") and the login is refused all the same."""
    import asyncssh

    spec = ServerSpec(overrides=["AuthorizedKeysFile /home/user/.ssh/authorized_keys", "StrictModes no"])
    with LocalSshd(spec) as server:
        key = asyncssh.read_private_key(str(server.identity("user")))
        with pytest.raises(asyncssh.PermissionDenied):
            async with asyncssh.connect(server.host.strip("[]"), server.port, username="root",
                                        client_keys=[key], known_hosts=None, agent_path=None):
                pass
        # The same key and file do let the scenario's own user in: the refusal is root's alone.
        async with asyncssh.connect(server.host.strip("[]"), server.port, username="user",
                                    client_keys=[key], known_hosts=None, agent_path=None) as conn:
            assert (await conn.run("id -u", check=True)).stdout.strip() == "1000"
        server.wait_idle()
        messages = [r.message for r in server.log.records]
    assert any(m.startswith("Accepted key ED25519") for m in messages), "the key check itself passed"
    assert any(m.startswith("ROOT LOGIN REFUSED") for m in messages), messages
    assert not any(m.startswith("Accepted publickey for root") for m in messages)


@needs_local_sshd
def test_invalid_sshd_config_line_names_the_scenario_line(tmp_path: Path) -> None:
    scenario = tmp_path / "badcfg.yaml"
    scenario.write_text((LIBRARY / "exec-exit-status.yaml").read_text().replace(
        "  log_level: DEBUG2\n", "  log_level: DEBUG2\n  sshd_config:\n    - PermitRootLogin no\n"
                                "    - NoSuchKeyword yes\n"))
    at = _line_of(scenario, "NoSuchKeyword")
    out = sshsim("run", str(scenario))
    assert out.returncode == 2
    line = one_line(out.stderr)
    assert f"{scenario}:{at}:" in line and "NoSuchKeyword" in line, line
    assert "/tmp/sshsim" not in line, "never the deleted generated config"


# -- the capture socket is the namespace's alone ------------------------------------------------
def _send_as(uid: int, path: str, data: bytes) -> int:
    """Fork, drop to `uid`, send one datagram to `path`: 0 sent, 13 refused (EACCES), 1 other."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(data, path)
            os._exit(0)
        except PermissionError:
            os._exit(13)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@needs_local_sshd
def test_host_users_cannot_inject_into_the_capture_but_the_user_child_logs(tmp_path: Path) -> None:
    with LocalSshd(ServerSpec(log_level="DEBUG1")) as server:
        path = str(server.log.path)
        assert _send_as(65534, path, b"<38>Jan  1 00:00:00 sshd[1]: injected by nobody") == 13
        assert _send_as(1000, path, b"<38>Jan  1 00:00:00 sshd[1]: injected by uid 1000") == 13
        assert _send_as(0, path, b"<38>Jan  1 00:00:00 sshd[1]: root may") == 0  # the check can fail
        ssh = subprocess.run(
            ["ssh", "-F", "/dev/null", "-i", str(server.identity("user")), "-p", str(server.port),
             "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", f"user@{server.host.strip('[]')}", "id -u"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert ssh.stdout.strip() == "1000", ssh.stderr
        server.wait_idle()
        records = server.log.records
    messages = [r.message for r in records]
    assert "root may" in messages
    assert not any("injected" in m for m in messages)
    child = next(int(m.split()[-1]) for m in messages if m.startswith("User child is on pid "))
    assert any(r.pid == child for r in records), "lines of the uid-1000 user child arrive"


# -- chroot folders stay under the run's own /srv -----------------------------------------------
@needs_root
@pytest.mark.parametrize("path", ["../outside/x", "a/../../outside", "/srv/../outside", "./a", "a/./b"])
def test_chroot_paths_with_dots_are_refused(path: str, tmp_path: Path) -> None:
    srv = tmp_path / "run" / "srv"
    (tmp_path / "run").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o1777)
    os.chmod(outside, 0o1777)
    with pytest.raises(BadInputError, match="without '.' or '..'"):
        prepare_chroots(ServerSpec(chroot_dirs=[path]), srv)
    assert outside.stat().st_mode & 0o7777 == 0o1777 and not (outside / "x").exists()


@needs_root
def test_chroot_paths_never_follow_a_symlink(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    srv.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    os.chmod(outside, 0o700)
    (srv / "jail").symlink_to(outside)
    spec = ServerSpec(chroot_dirs=[{"path": "jail", "owner": "user"}])
    with pytest.raises(BadInputError, match="not a folder sshsim made"):
        prepare_chroots(spec, srv)
    st = outside.stat()
    assert st.st_mode & 0o7777 == 0o700 and st.st_uid == 0, "the folder outside was not touched"


@needs_root
def test_chroot_folders_are_made_under_srv(tmp_path: Path) -> None:
    srv = tmp_path / "srv"
    sockets = prepare_chroots(ServerSpec(chroot_dirs=[{"path": "/sftp/user", "owner": "user", "dev_log": True}]), srv)
    assert sockets == ["/srv/sftp/user/dev/log"]
    assert (srv / "sftp" / "user" / "dev").is_dir() and (srv / "sftp" / "user").stat().st_uid == 1000


# -- signals: one line, the signal's exit code, nothing left, partial results kept --------------
@needs_local_sshd
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_connections_keeps_partial_results_and_leaves_nothing(sig: int, tmp_path: Path) -> None:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        "connections:\n"
        "  - id: first\n"
        "    actions:\n"
        "      - session: {exec: 'sleep 31', close: wait}\n"
        "  - id: second\n"
        "    actions:\n"
        "      - session: {exec: 'sleep 31', close: wait}\n"
    )
    tmpdir, env = private_tmp(tmp_path)
    log, report = tmp_path / "partial.log", tmp_path / "report.xml"
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "run", str(scenario), "--log-out", str(log),
                             "--report", "junit", str(report)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        sleeping: list[str] = []
        while time.monotonic() < deadline and len(sleeping) < 2:
            sleeping = running("sleep 31")
            time.sleep(0.05)
        assert len(sleeping) == 2, "both commands run on the server"
        proc.send_signal(sig)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()  # type: ignore[union-attr]
    assert code == 128 + sig
    line = one_line(err)
    assert line.startswith(f"sshsim: interrupted by {signal.Signals(sig).name}; kept {log}, {report}"), line
    text = log.read_text()
    assert text.count("Accepted publickey for user") == 2, "the log so far"
    assert "<testsuite" in report.read_text()
    time.sleep(0.2)
    assert not running("sleep 31")
    assert not list(tmpdir.iterdir()), "the sshd's work folder is removed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["partial.log", "report.xml", "slow.yaml", "tmpdir"]


@needs_local_sshd
def test_sigterm_stops_sshd_command_cleanly(tmp_path: Path) -> None:
    """`sshsim sshd` is meant to run until stopped: SIGTERM ends it like Ctrl-C, exit 0."""
    tmpdir, env = private_tmp(tmp_path)
    log = tmp_path / "sshd.log"
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "sshd", "--json", "--log", str(log)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0 and "Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    assert "Received signal 15; terminating." in log.read_text()
    assert not list(tmpdir.iterdir())


# -- run-time waits and server limits say what happened -----------------------------------------
@needs_local_sshd
async def test_waits_that_wait_on_each_other_are_reported_as_a_deadlock() -> None:
    """Built directly (a loader may refuse such a cycle earlier): found at run time, it is named
    as a deadlock with what each connection awaited, not as a generic timeout."""
    from simulator.driver.runner import run_scenario
    from simulator.scenario.model import ConnectionPlan, Scenario, SyncPoint

    plans = [ConnectionPlan(id="a", after=SyncPoint("b", "auth.accepted", timeout=1.5)),
             ConnectionPlan(id="b", after=SyncPoint("a", "auth.accepted", timeout=1.5))]
    scenario = Scenario(name="cycle", path="cycle.yaml", server=ServerSpec(), target="local",
                        connections=plans, expectations={})
    with LocalSshd(scenario.server) as server:
        result = await run_scenario(scenario, server)
    for conn in ("a", "b"):
        error = result.connections[conn].error or ""
        assert error.startswith("deadlock: 'a' waits for auth.accepted of 'b', 'b' waits for auth.accepted "
                                "of 'a'"), error
        assert "1.5 s" in error


@needs_local_sshd
async def test_connection_timeout_says_what_it_was_waiting_for() -> None:
    from simulator.driver.runner import run_scenario
    from simulator.scenario.model import ConnectionPlan, Scenario, SyncPoint, WaitForAction

    plan = ConnectionPlan(id="a", timeout=1.0,
                          actions=[WaitForAction(SyncPoint("a", "session.start", timeout=30))])
    scenario = Scenario(name="slow", path="slow.yaml", server=ServerSpec(), target="local",
                        connections=[plan], expectations={})
    with LocalSshd(scenario.server) as server:
        result = await run_scenario(scenario, server)
    assert result.connections["a"].error == ("did not finish within its timeout of 1 s "
                                             "(still waiting for session.start of 'a')")


@needs_local_sshd
def test_connections_dropped_past_maxstartups_are_reported_as_such(tmp_path: Path) -> None:
    import yaml

    scenario = tmp_path / "burst.yaml"
    scenario.write_text(yaml.safe_dump({
        "name": "burst",
        "server": {"sshd_config": ["MaxStartups 1"]},
        "connections": [{"id": f"c{i}"} for i in range(12)],
        "expect": {f"c{i}": {"outcome": {"auth": "accepted"}} for i in range(12)},
    }))
    out = sshsim("run", str(scenario), "--no-color")
    assert out.returncode == 1
    assert "sshd dropped it at accept (past MaxStartups; 'drop connection #" in out.stderr, out.stderr
    assert "no connection of the log belongs to it" not in out.stderr
