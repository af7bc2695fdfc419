"""`sshsim learn` against the real clients (issue 19): no mocks, the real programs on loopback.

Each real client (Debian's ssh/sftp and plink/psftp, paramiko 3.4.0 and 5.1.0 in the venvs of
tests/realclients/harness.py, asyncssh) runs the real-clients suite's flows against the capturing
endpoint; the profile learned from that recording must carry the client's HASSH (the shipped
profile's, and the one its first KEXINIT shows on the wire), its banner, and in every recorded
session the shipped profile's channel window and max packet. The shipped profiles of these
clients were regenerated from them (`sshsim learn --update`'s code, tools/relearn-profiles.py):
the shipped profile must agree with a fresh recording on every fact (paramiko's racy teardown
aside), and its impersonation, replaying the recorded connections, must too.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.driver.session import channel_size
from simulator.driver.wire import KexinitListener
from simulator.learn.check import compare, impersonate, recorded, replay_plans
from simulator.learn.endpoint import Endpoint
from simulator.learn.merge import Learned, build_profile
from simulator.learn.output import to_yaml, validate
from simulator.learn.record import ConnectionFacts
from simulator.scenario.model import AuthStep, ConnectionPlan, SessionAction
from simulator.profiles import PROFILE_PATH_ENV, ClientProfile, _user_profiles, load_profile
from tests.conftest import needs_local_sshd
from tests.realclients import harness
from tests.realclients.recording import SHIPPED, record_real

ROOT = Path(__file__).resolve().parents[1]
TODAY = datetime.date.today().isoformat()

# The shipped profiles regenerated from their real clients (tools/relearn-profiles.py, the code
# of `sshsim learn --update`), each with the real program and the flows it was learned from.
CASES = sorted(SHIPPED.items())

# paramiko's teardown races with its own threads (test_real_clients.RACY_TEARDOWN): how each
# connection ends, and whether its last packets include EOF, differs from run to run, so the
# recording shows a conflict, not a fact, and the shipped profile says one of the endings.
RACY_TEARDOWN = {"paramiko-3.4", "paramiko-5.1"}
TEARDOWN_FACTS = (": close", "channel_close", "session.eof", "session.eof_on_server_eof")


def _facts(case: str, diffs: list[Any]) -> set[str]:
    """The facts that differ, less a racy client's teardown."""
    racy = case in RACY_TEARDOWN
    return {d.fact for d in diffs if not (racy and d.fact.endswith(TEARDOWN_FACTS))}


async def _run_client(argv: list[str], stdin: str | None, env: dict[str, str]) -> None:
    """One client command run as the harness runs it (typed input from a pipe left open)."""
    await asyncio.to_thread(harness._run_one, argv[0], "extra", harness.Command(argv, stdin, env))


async def check(profile: ClientProfile, reference: ClientProfile) -> tuple[list[str], list[Any]]:
    """`learn --check PROFILE --against REFERENCE` (REFERENCE a learned profile), as the command does."""
    async with Endpoint(password=harness.PASSWORD) as endpoint:
        await impersonate(profile, endpoint, replay_plans(reference.data, profile, harness.PASSWORD))
        conns = recorded(endpoint)
    learned = build_profile(conns, profile.name, TODAY)
    return compare(reference, conns, learned, reference.data.get("unobserved") or ())


def learned_profile(conns: list[ConnectionFacts], name: str, tmp_path: Path) -> tuple[Learned, ClientProfile]:
    learned = build_profile(conns, name, TODAY)
    text = to_yaml(learned)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return learned, validate(text, str(path))


async def wire_hassh(client: str, flow: str, work: Path) -> str:
    """The HASSH of the real client's first KEXINIT, captured by the one-shot wire listener."""
    spec = harness.CLIENTS[client]
    async with KexinitListener() as listener:
        view = _ListenerView(listener.port, work)
        command = harness.real_command(spec, flow, view, work)   # a first flow: no terminal prompt
        proc = await asyncio.create_subprocess_exec(*command.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL,
                                                    env={**os.environ, **(command.env or {})})
        try:
            return (await asyncio.wait_for(listener.got, 60)).hassh
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


class _ListenerView:
    """What harness.real_command reads of a server, for the one-shot KEXINIT listener."""

    host = "127.0.0.1"

    def __init__(self, port: int, work: Path) -> None:
        self.port = port
        self.workdir = work / "listener"
        keys = self.workdir / "hostkeys"
        keys.mkdir(parents=True, exist_ok=True)
        import asyncssh

        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_public_key(str(keys / "ssh_host_ed25519_key.pub"))
        self._identity = self.workdir / "id"
        key.write_private_key(str(self._identity))

    def identity(self, user: str) -> Path:
        return self._identity


@pytest.mark.parametrize("shipped,run", CASES, ids=[c[0] for c in CASES])
def test_shipped_profile_agrees_with_its_real_client(shipped: str, run: tuple[str, tuple[str, ...]],
                                                     tmp_path: Path) -> None:
    """Drift guard for the regenerated profiles: the real client, recorded now through the flows
    its profile was learned from, shows no fact the shipped profile states differently (but
    paramiko's racy teardown), the shipped profile says where its facts were learned, and its
    impersonation, replaying the recorded connections, agrees with the recording fact by fact
    (every key the regeneration wrote is performed). A failure names the fact: rerun
    tools/relearn-profiles.py and review the diff."""
    client, flows = run
    for program in ("ssh", "sftp", "plink", "psftp"):
        assert shutil.which(program), f"{program} is not installed (.ci/run installs it)"
    conns = asyncio.run(record_real(client, flows, tmp_path / "work"))
    assert len(conns) == len(flows)
    learned, profile = learned_profile(conns, f"learned-{shipped}", tmp_path)
    reference = load_profile(shipped)
    wire = asyncio.run(wire_hassh(client, flows[0], tmp_path))
    assert profile.hassh == reference.hassh == wire
    assert profile.banner == reference.banner
    racy = shipped in RACY_TEARDOWN
    conflicts = [c for c in learned.conflicts if not (racy and c.startswith(("close ", "channel_close ")))]
    assert not conflicts, conflicts
    # Every recorded fact, the shipped profile as it applies to each recorded session.
    same, diffs = compare(reference, conns, learned)
    assert not _facts(shipped, diffs), [str(d) for d in diffs]
    assert len(same) > 15 and any(f.endswith(": window") for f in same)
    block = reference.data["learned"]
    assert block["source"].startswith("learned ") and block["source"].endswith(f"from {reference.banner}")
    assert {"banner", "kex", "hassh", "channel.first_id"} <= set(block["facts"])
    assert {"channel.window", "sftp.window"} & set(block["facts"])
    # The shipped profile's impersonation replaying what the real client just did: it performs
    # its profile on every fact, so (with the comparison above) it agrees with the real client.
    same, diffs = asyncio.run(performs(reference, replay_plans(profile.data, reference, harness.PASSWORD)))
    for d in diffs:
        print(f"NOT PERFORMED {shipped}: {d}")
    assert not _facts(shipped, diffs), [str(d) for d in diffs]
    assert len(same) > 15


async def performs(profile: ClientProfile, plans: list[Any]) -> tuple[list[str], list[Any]]:
    """The impersonation of `plans` with `profile`, recorded and held to `profile`."""
    async with Endpoint(password=harness.PASSWORD) as endpoint:
        await impersonate(profile, endpoint, plans)
        conns = recorded(endpoint)
    return compare(profile, conns, build_profile(conns, profile.name, TODAY))


def test_sessions_that_differ_become_a_condition(tmp_path: Path) -> None:
    """plink without forwarding (simple mode) and with X11 forwarding open different windows:
    the learned profile says so as a `when:` on forwarding, and it agrees with the shipped one.
    A megabyte of output (`sshsim-learn-data`) shows how plink reopens its window."""
    plink_x11 = (["plink", "-batch", "-X", "-hostkey", "{fingerprint}", "-P", "{port}", "-pw", harness.PASSWORD,
                  "user@127.0.0.1", "sshsim-learn-data 1048576"], None, {"DISPLAY": ":0"})
    conns = asyncio.run(_record_with_fingerprint("putty", ("exec", "shell"), tmp_path, [plink_x11]))
    learned, profile = learned_profile(conns, "learned-plink-x11", tmp_path)
    assert not learned.conflicts, learned.conflicts
    assert [list(entry["if"]) for entry in learned.data["when"]] == [["forwarding"]]
    simple = profile.for_session(kind="exec", pty=False, forwarding=False)
    forwarding = profile.for_session(kind="exec", pty=False, forwarding=True)
    assert (channel_size(simple, pty=False, sftp=False)[0],
            channel_size(forwarding, pty=False, sftp=False)[0]) == (2147483647, 16384)
    assert "x11-req" in forwarding.session_requests
    shipped = load_profile("plink-0.78")
    assert learned.data["channel"]["window_adjust_request"] == shipped.data["channel"]["window_adjust_request"]
    adjusts = [o for o in learned.data["learned"]["observations"] if "window adjust(s) of 16384, 32768" in o]
    assert adjusts and adjusts[0].startswith("connection 3 exec (x11): "), learned.data["learned"]["observations"]
    same, diffs = compare(shipped, conns, learned)
    assert not [d for d in diffs if "window" in d.fact or "max_packet" in d.fact or "winadj" in d.fact], \
        [str(d) for d in diffs]
    assert "connection 3 exec (x11): window_adjust_request" in same, same
    # The impersonation sends winadj@ with its adjusts too (hook 22), and the check compares it.
    plan = ConnectionPlan(id="x11-data", profile="plink-0.78", auth=[AuthStep("password", harness.PASSWORD)],
                          actions=[SessionAction(kind="exec", command="sshsim-learn-data 1048576", x11=True)])
    same, diffs = asyncio.run(performs(shipped, [plan]))
    assert not [d for d in diffs if "window" in d.fact or "winadj" in d.fact], [str(d) for d in diffs]
    assert "connection 1 exec (x11): window_adjust_request" in same, same
    assert "connection 1 exec (x11): winadj@putty.projects.tartarus.org want_reply" in same, same


async def _record_with_fingerprint(client: str, flows: tuple[str, ...], work: Path,
                                   extra: list[tuple[list[str], str | None, dict[str, str]]]) -> list[ConnectionFacts]:
    spec = harness.CLIENTS[client]
    async with Endpoint(password=harness.PASSWORD) as endpoint:
        for flow in flows:
            await asyncio.to_thread(harness._run_one, client, flow, harness.real_command(spec, flow, endpoint, work))
            await endpoint.wait_idle()
        for argv, stdin, env in extra:
            argv = [a.replace("{port}", str(endpoint.port)).replace("{fingerprint}", endpoint.fingerprint)
                    for a in argv]
            await _run_client(argv, stdin, env)
            await endpoint.wait_idle()
        return recorded(endpoint)


def test_two_clients_in_one_recording_are_a_conflict_not_a_guess(tmp_path: Path) -> None:
    """Connections of two different clients cannot be one profile: each differing fact is
    reported with the session that showed it, and the first session's value is kept."""
    asyncssh_client = ([sys.executable, str(harness.HERE / "asyncssh_flow.py"), "exec", "127.0.0.1", "{port}",
                        "user", "{key}", harness.PASSWORD], None, {})
    paramiko_client = ([str(harness.venv_python("paramiko-3.4")), str(harness.HERE / "paramiko_flow.py"), "exec",
                        "127.0.0.1", "{port}", "user", "{key}", harness.PASSWORD], None, {})

    async def both() -> list[ConnectionFacts]:
        async with Endpoint(password=harness.PASSWORD) as endpoint:
            key = str(endpoint.identity("user"))
            for argv, stdin, env in (asyncssh_client, paramiko_client):
                await _run_client([a.replace("{port}", str(endpoint.port)).replace("{key}", key) for a in argv],
                                  stdin, env)
                await endpoint.wait_idle()
            return recorded(endpoint)

    learned = build_profile(asyncio.run(both()), "two-clients", TODAY)
    assert "banner differs: connection 1 AsyncSSH_2.24.1, connection 2 paramiko_3.4.0" in learned.conflicts
    assert any(c.startswith("kex differs: connection 1 [mlkem768x25519-sha256") for c in learned.conflicts)
    assert any(c.startswith("auth.none_first differs: connection 1 True, connection 2 False")
               for c in learned.conflicts)
    assert learned.data["banner"] == "AsyncSSH_2.24.1"
    assert "# CONFLICT (first session's value kept): banner differs" in to_yaml(learned)


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _sshsim(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, **kw)


def test_learn_command_writes_checks_and_runs_a_learned_profile(tmp_path: Path) -> None:
    """The three commands of the README: learn from the real ssh, check the learned profile's
    impersonation, and load it by name for a scenario; paths refused as any output is."""
    out = tmp_path / "profiles" / "my-ssh.yaml"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "learn", "--name", "my-ssh", "-o", str(out),
                             "--sessions", "1", "--password", harness.PASSWORD], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stderr is not None
        shown = []
        for line in proc.stderr:
            shown.append(line)
            if "host key:" in line:
                break
        text = "".join(shown)
        port = re.search(r"port (\d+)", text)
        assert port, text
        key = tmp_path / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                        "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-i", str(key), "-p", port.group(1),
                        "user@127.0.0.1", "true"], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       timeout=60)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert f"wrote {out}" in rest
    written = out.read_text()
    profile = validate(written, str(out))
    assert profile.hassh == load_profile("openssh-9.2-debian").hassh
    assert "learned " in profile.sources[0] and "from OpenSSH_9.2p1" in profile.sources[0]
    assert "sftp" in profile.data["unobserved"]
    # Check: the learned profile's impersonation reproduces the recording (exit 0) ...
    checked = _sshsim("learn", "--check", str(out))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 differ" in checked.stdout
    # ... another client's does not (exit 1, the differing facts listed).
    other = _sshsim("learn", "--check", "paramiko-3.4", "--against", str(out))
    assert other.returncode == 1, other.stdout + other.stderr
    assert "differs  banner: recorded client 'OpenSSH_9.2p1 Debian-2+deb12u10', impersonation 'paramiko_3.4.0'" \
        in other.stdout
    # The learned profile is a name scenarios can use, from the folders of $SSHSIM_PROFILE_PATH.
    loaded = subprocess.run([sys.executable, "-c", "from simulator.profiles import load_profile; "
                             "print(load_profile('my-ssh').hassh)"], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "SSHSIM_PROFILE_PATH": str(out.parent)})
    assert loaded.stdout.strip() == profile.hassh, loaded.stderr
    # Never over an existing file without --force; a path that cannot be written: one line, exit 2.
    again = _sshsim("learn", "-o", str(out), "--sessions", "1")
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert "exists; not overwriting it (use --force)" in again.stderr
    assert out.read_text() == written
    missing = _sshsim("learn", "-o", str(tmp_path / "no" / "such.yaml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and missing.stderr.count("\n") == 1
    bad = _sshsim("learn", "--check", str(tmp_path / "absent.yaml"))
    assert bad.returncode == 2 and "profile file not found" in bad.stderr


def test_openssh_shell_with_pty_and_x11_merges_with_exec(tmp_path: Path) -> None:
    """ssh -X -tt beside a plain exec: one profile, X11 in the request order where the real ssh
    puts it (the shipped profile's order), the payload shapes kept, nothing in conflict."""
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ssh_x11 = (["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-i", str(key), "-X", "-tt", "-p", "{port}", "user@127.0.0.1"], "exit\n",
               {"DISPLAY": ":0"})
    conns = asyncio.run(_record_with_fingerprint("openssh", ("exec",), tmp_path, [ssh_x11]))
    learned, profile = learned_profile(conns, "learned-ssh-x11", tmp_path)
    assert not learned.conflicts, learned.conflicts
    order = learned.data["session"]["request_order"]
    assert order.index("x11-req") < order.index("pty-req") < order.index("shell")
    observations = learned.data["learned"]["observations"]
    assert any(o.startswith("x11-req payload: single_connection False, protocol MIT-MAGIC-COOKIE-1, "
                            "cookie_hex_chars 32") for o in observations), observations
    assert any(o.startswith("pty-req payload: term ") for o in observations), observations
    same, diffs = compare(load_profile("openssh-9.2-debian"), conns, learned)
    assert "connection 2 shell (pty, x11): requests" in same, [str(d) for d in diffs]
    assert not diffs, [str(d) for d in diffs]


@needs_local_sshd
def test_learned_openssh_profile_scores_like_the_real_client(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The learned profile in use: against a private sshd at DEBUG1, its impersonation of the ssh
    flows scores against the real ssh at least what two real runs score against each other."""
    flows = ("exec", "shell", "password")
    conns = asyncio.run(record_real("openssh", flows, _folder(tmp_path / "learn")))
    folder = tmp_path / "profiles"
    folder.mkdir()
    learned = build_profile(conns, "learned-openssh", TODAY)
    (folder / "learned-openssh.yaml").write_text(to_yaml(learned))
    monkeypatch.setenv(PROFILE_PATH_ENV, str(folder))
    _user_profiles.cache_clear()
    try:
        spec = harness.CLIENTS["openssh"]
        learned_client = harness.Client("openssh", "learned-openssh", "learned-openssh", flows)
        # A folder each: the askpass of the password flow keeps its state (wrong, then right) there.
        reals = [harness.run_real(spec, flows, "DEBUG1", _folder(tmp_path / f"real-{i}")) for i in range(2)]
        fake = harness.run_impersonation(learned_client, flows, "DEBUG1")
    finally:
        monkeypatch.delenv(PROFILE_PATH_ENV)
        _user_profiles.cache_clear()
    real_vs_real = harness.flow_scores(reals[0], reals[1], flows)
    against = [harness.flow_scores(real, fake, flows) for real in reals]
    for flow in flows:
        best = max(scores[flow] for scores in against)
        print(f"SCORE learned-openssh {flow} DEBUG1 real-vs-impersonation {best:.3f} "
              f"real-vs-real {real_vs_real[flow]:.3f}")
        assert best >= real_vs_real[flow], (flow, best, real_vs_real[flow])


def test_endpoint_sftp_stays_in_its_folder(tmp_path: Path) -> None:
    """The endpoint runs as root and takes any key: its SFTP sees only the run's empty folder,
    refuses links (which could point anywhere), and the folder is gone when it stops."""
    import asyncssh

    async def probe() -> tuple[list[str], str, str, Path]:
        async with Endpoint(password=harness.PASSWORD) as endpoint:
            async with asyncssh.connect(endpoint.host, endpoint.port, username="user", known_hosts=None,
                                        client_keys=[asyncssh.generate_private_key("ssh-ed25519")],
                                        agent_path=None) as conn:
                async with conn.start_sftp_client() as sftp:
                    names = sorted(await sftp.listdir("/../../.."))
                    try:
                        await sftp.symlink("/etc/passwd", "passwd")
                        linked = "made"
                    except asyncssh.SFTPError as exc:
                        linked = type(exc).__name__
                    try:
                        await sftp.stat("../../../etc/passwd")
                        outside = "found"
                    except asyncssh.SFTPError as exc:
                        outside = type(exc).__name__
            return names, linked, outside, endpoint.workdir

    names, linked, outside, workdir = asyncio.run(probe())
    assert names == [".", ".."]
    assert linked == "SFTPPermissionDenied"
    assert outside == "SFTPNoSuchFile"
    assert not workdir.exists()


def _learn_update(path: Path, key: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`sshsim learn --update PATH --sessions 1 ...` with the real ssh running one exec."""
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "learn", "--update", str(path), "--sessions", "1",
                             "--password", harness.PASSWORD, *extra], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stderr is not None
        shown = []
        for line in proc.stderr:
            shown.append(line)
            if "host key:" in line:
                break
        port = re.search(r"port (\d+)", "".join(shown))
        assert port, shown
        subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                        "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-i", str(key), "-p", port.group(1),
                        "user@127.0.0.1", "true"], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(shown) + err)


def test_learn_update_rewrites_what_the_client_showed_and_keeps_the_rest(tmp_path: Path) -> None:
    """`learn --update`: a fact the real ssh shows differently is rewritten in place (its old
    comment goes with it), a fact it shows and the file does not say is added, every other line
    and comment stays; the diff is printed and nothing written without --force; a second update
    from the same client rewrites nothing."""
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    shipped = (ROOT / "simulator" / "data" / "profiles" / "openssh-9.2-debian.yaml").read_text()
    hand = shipped[:shipped.index("# Written by `sshsim learn --update`")]
    hand = hand.replace("  first_id: 0\n", "  first_id: 5                              # a wrong guess\n")
    hand = hand.replace("  eof_on_server_eof: false\n", "")
    path = tmp_path / "my-ssh.yaml"
    path.write_text(hand)
    shown = _learn_update(path, key)
    assert shown.returncode == 0, shown.stderr
    assert path.read_text() == hand, "written without --force"
    assert "-  first_id: 5                              # a wrong guess\n+  first_id: 0\n" in shown.stdout
    assert "rewritten  channel.first_id: 0" in shown.stderr
    assert "not written: --force rewrites" in shown.stderr
    written = _learn_update(path, key, "--force")
    assert written.returncode == 0, written.stderr
    text = path.read_text()
    profile = validate(text, str(path))
    assert (profile.first_channel, profile.eof_on_server_eof) == (0, False)
    assert profile.data["learned"]["source"] == f"learned {TODAY} from {profile.banner}"
    assert "channel.first_id" in profile.data["learned"]["facts"]
    # Observed with one exec: no SFTP, no password: those keep the hand-written values and sources.
    assert profile.data["sftp"]["requests"] == ["env", "subsystem"]
    assert "sftp" in profile.data["learned"]["unobserved"]
    assert "auth.ignore_before_password" not in profile.data["learned"]["facts"]
    kept = [line for line in hand.splitlines() if line.lstrip().startswith("#") or "# " in line and "guess" not in line]
    assert kept and all(line in text.splitlines() for line in kept)
    again = _learn_update(path, key, "--force")
    assert again.returncode == 0, again.stderr
    assert "0 rewritten, 0 left for review" in again.stderr
    assert path.read_text() == text
