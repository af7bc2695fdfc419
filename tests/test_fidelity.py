"""Each hook of the fidelity layer (simulator/driver/fidelity.py) against a real sshd.

An asyncssh upgrade that breaks a hook must fail here, loudly, with the hook named.
"""

from __future__ import annotations

import asyncio
import re

import asyncssh
import pytest

from conftest import needs_local_sshd
from simulator.driver import fidelity
from simulator.profiles import known_profiles, load_profile
from simulator.driver.runner import ScenarioRunner, connect_profiled
from simulator.driver.wire import capture_kexinit
from simulator.scenario.model import (AuthStep, ConnectionPlan, Scenario, SessionAction, SftpOp)
from simulator.target.base import ServerSpec

# The fingerprints measured from the real clients, as their profile files record them.
MEASURED_HASSH = {name: profile.hassh for name in sorted(known_profiles())
                  if (profile := load_profile(name)).hassh_measured}


def test_asyncssh_is_the_pinned_version() -> None:
    fidelity.check_asyncssh()
    assert asyncssh.__version__ == fidelity.PINNED_ASYNCSSH


@pytest.mark.parametrize("name", sorted(MEASURED_HASSH))
async def test_wire_hassh_equals_measured(name: str) -> None:
    """Hook 1: the KEXINIT the driver sends has the real client's fingerprint."""
    capture = await capture_kexinit(load_profile(name))
    assert capture.hassh == MEASURED_HASSH[name]


@pytest.mark.parametrize("name", sorted(known_profiles()))
async def test_wire_lists_and_banner_equal_profile(name: str) -> None:
    profile = load_profile(name)
    capture = await capture_kexinit(profile)
    assert capture.banner == profile.banner
    assert capture.kex == list(profile.kex)
    assert capture.host_key == list(profile.host_key)
    assert capture.encryption == list(profile.encryption)
    assert capture.mac == list(profile.mac)
    assert capture.compression == list(profile.compression)


def _plan(conn_id: str, profile: str, *actions: object, auth: list[AuthStep] | None = None) -> ConnectionPlan:
    return ConnectionPlan(id=conn_id, profile=profile, actions=list(actions), auth=auth or [AuthStep("publickey")])


async def _run(server: object, *plans: ConnectionPlan) -> tuple[object, list[str]]:
    scenario = Scenario(name="fidelity", path="<test>", server=server.spec, target="local",  # type: ignore[attr-defined]
                        connections=list(plans), expectations={})
    result = await ScenarioRunner(scenario, server).run()
    await asyncio.to_thread(server.wait_idle)  # type: ignore[attr-defined]
    return result, server.log.lines()  # type: ignore[attr-defined]


def _monitor_lines(lines: list[str], port: int) -> list[str]:
    """All lines of the connection from client `port` (monitor and its user child)."""
    monitor = next(re.search(r"sshd\[(\d+)\]", l).group(1) for l in lines if f"port {port} on " in l)
    child = [m.group(1) for l in lines if f"sshd[{monitor}]" in l for m in [re.search(r"User child is on pid (\d+)", l)] if m]
    pids = {monitor, *child}
    return [l for l in lines if any(f"sshd[{p}]" in l for p in pids)]


@needs_local_sshd
async def test_strict_kex_and_ext_info_follow_the_profile(local_sshd_factory) -> None:
    """Hooks 1-2: SecureBlackbox offers neither; sshd must not reset seqnrs nor send EXT_INFO,
    and the session must still work (a wrongly strict client gets "Corrupted MAC on input")."""
    server = local_sshd_factory(ServerSpec())
    sb = _plan("sb", "secureblackbox", SessionAction(kind="exec", command="echo hi"))
    putty = _plan("putty", "putty-0.80", SessionAction(kind="exec", command="echo hi"))
    result, lines = await _run(server, sb, putty)
    assert not result.errors, result.errors
    sb_lines = _monitor_lines(lines, result.connections["sb"].port)
    putty_lines = _monitor_lines(lines, result.connections["putty"].port)
    assert not any("resetting send seqnr" in l or "Sending SSH2_MSG_EXT_INFO" in l for l in sb_lines)
    assert any("resetting send seqnr 3" in l for l in putty_lines)
    assert any("Sending SSH2_MSG_EXT_INFO" in l for l in putty_lines)
    assert not any("Corrupted MAC" in l for l in lines)
    assert result.connections["sb"].exit_statuses == [0]


@needs_local_sshd
async def test_unimplemented_names_are_offered_but_not_negotiated(local_sshd_factory) -> None:
    """Hook 1: PuTTY offers rijndael-cbc, 3des-ctr, blowfish-ctr, arcfour...; sshd picks aes256-ctr."""
    server = local_sshd_factory(ServerSpec())
    result, lines = await _run(server, _plan("putty", "putty-0.80", SessionAction(kind="exec", command="true")))
    assert not result.errors
    assert any("kex: client->server cipher: aes256-ctr MAC: hmac-sha2-256 compression: none" in l for l in lines)
    assert any("kex: algorithm: sntrup761x25519-sha512@openssh.com" in l for l in lines)


@needs_local_sshd
async def test_negotiation_check_names_what_asyncssh_cannot_do(local_sshd_factory, monkeypatch) -> None:
    """Hook 3: when sshd would pick a name asyncssh lacks, the error says so instead of a protocol error."""
    server = local_sshd_factory(ServerSpec())
    real = fidelity.implemented_algorithms()
    limited = dict(real, encryption=real["encryption"] - {b"aes256-ctr"})
    monkeypatch.setattr(fidelity, "implemented_algorithms", lambda: limited)
    with pytest.raises(asyncssh.KeyExchangeFailed) as info:
        await connect_profiled(server.host, server.port, load_profile("putty-0.80"), username="user",
                               client_keys=[str(server.identity("user"))])
    assert "encryption aes256-ctr" in str(info.value.reason)
    assert "asyncssh" in str(info.value.reason)


@needs_local_sshd
async def test_channel_numbers_windows_and_request_order(local_sshd_factory) -> None:
    """Hooks 4-5: first channel id, window, packet size; PuTTY's pipelined x11-req, pty-req, shell."""
    server = local_sshd_factory(ServerSpec())
    putty = _plan("putty", "putty-0.80", SessionAction(x11=True, pty=True, kind="shell", input="exit\n"))
    openssh = _plan("openssh", "openssh-9.2-debian", SessionAction(x11=True, pty=True, kind="shell", input="exit\n"))
    result, lines = await _run(server, putty, openssh)
    assert not result.errors, result.errors
    putty_lines = _monitor_lines(lines, result.connections["putty"].port)
    openssh_lines = _monitor_lines(lines, result.connections["openssh"].port)
    assert any("ctype session rchan 256 win 16384 max 16384" in l for l in putty_lines)
    assert any("ctype session rchan 0 win 1048576 max 16384" in l for l in openssh_lines)
    putty_requests = [re.search(r"request (\S+) reply (\d)", l).groups() for l in putty_lines
                      if "server_input_channel_req: channel 0 request" in l]
    assert putty_requests == [("x11-req", "1"), ("pty-req", "1"), ("shell", "1")]
    openssh_requests = [re.search(r"request (\S+) reply (\d)", l).group(1) for l in openssh_lines
                        if "server_input_channel_req: channel 0 request" in l]
    profile_order = [r for r in load_profile("openssh-9.2-debian").session_requests if r in ("pty-req", "x11-req", "shell")]
    assert [r for r in openssh_requests if r in ("pty-req", "x11-req", "shell")] == profile_order
    # The X11 request carried a random MIT-MAGIC-COOKIE-1 and no X server was needed.
    assert any("[X11 inet listener]" in l for l in putty_lines)


@needs_local_sshd
async def test_sftp_over_the_scripted_channel(local_sshd_factory) -> None:
    server = local_sshd_factory(ServerSpec())
    sftp = SessionAction(kind="subsystem", subsystem="sftp", sftp=[
        SftpOp("put", "up.bin", size=100_000), SftpOp("get", "up.bin"), SftpOp("ls", "."),
        SftpOp("mkdir", "d"), SftpOp("rename", "up.bin", target="d/moved.bin"), SftpOp("stat", "d/moved.bin"),
    ])
    result, lines = await _run(server, _plan("sb", "secureblackbox", sftp))
    assert not result.errors, result.errors
    assert any("ctype session rchan 1 win 32768 max 262144" in l for l in lines)
    assert any("Starting session: subsystem 'sftp' for user" in l for l in lines)


@needs_local_sshd
async def test_paramiko_skips_none_and_the_key_query(local_sshd_factory) -> None:
    """Hook 6: no "none" request, no unsigned publickey query: the key is accepted straight away."""
    server = local_sshd_factory(ServerSpec())
    result, lines = await _run(server, _plan("pm", "paramiko-3.4", SessionAction(kind="exec", command="true")))
    assert not result.errors, result.errors
    assert not any("method none" in l for l in lines)
    assert not any("publickey test pkalg" in l or "Postponed publickey" in l for l in lines)
    assert any("Accepted publickey for user from 127.0.0.1" in l for l in lines)


@needs_local_sshd
async def test_how_clients_end(local_sshd_factory) -> None:
    """PuTTY drops TCP (no disconnect message); OpenSSH sends 11 "disconnected by user"."""
    server = local_sshd_factory(ServerSpec())
    putty = _plan("putty", "putty-0.80", SessionAction(kind="exec", command="true"))
    openssh = _plan("openssh", "openssh-9.2-debian", SessionAction(kind="exec", command="true"))
    result, lines = await _run(server, putty, openssh)
    putty_lines = _monitor_lines(lines, result.connections["putty"].port)
    openssh_lines = _monitor_lines(lines, result.connections["openssh"].port)
    assert not any("Received disconnect" in l for l in putty_lines)
    assert any(":11: disconnected by user" in l for l in openssh_lines)


@needs_local_sshd
async def test_pause_before_signed_request_lets_another_connection_start(local_sshd_factory) -> None:
    """Hook 6: the seed log's interleaving (second client accepted while the first authenticates)."""
    from simulator.scenario.model import SyncPoint

    server = local_sshd_factory(ServerSpec())
    first = _plan("first", "putty-0.80", SessionAction(kind="exec", command="true"))
    first.pauses = {"signed-publickey": SyncPoint("second", "connection.from")}
    second = _plan("second", "secureblackbox", SessionAction(kind="exec", command="true"))
    second.after = SyncPoint("first", "auth.postponed")
    result, lines = await _run(server, first, second)
    assert not result.errors, result.errors
    first_lines = _monitor_lines(lines, result.connections["first"].port)
    second_lines = _monitor_lines(lines, result.connections["second"].port)
    postponed = lines.index(next(l for l in first_lines if "Postponed publickey" in l))
    accepted = lines.index(next(l for l in first_lines if "Accepted publickey" in l))
    connected = lines.index(next(l for l in second_lines if "Connection from" in l))
    assert postponed < connected < accepted


@needs_local_sshd
async def test_hostbound_signature_global_request_and_no_ignore(local_sshd_factory) -> None:
    """Hooks 12-14: OpenSSH's signed request is publickey-hostbound-v00 (sshd verifies the
    signature over the bound host key and accepts it), no-more-sessions follows the first session
    with want_reply 0, and no IGNORE is sent that the client does not send."""
    server = local_sshd_factory(ServerSpec(log_level="DEBUG3"))
    openssh = _plan("openssh", "openssh-9.2-debian", SessionAction(kind="exec", command="true"))
    result, lines = await _run(server, openssh)
    assert not result.errors, result.errors
    mine = _monitor_lines(lines, result.connections["openssh"].port)
    methods = [m.group(1) for l in mine for m in [re.search(r"userauth-request for user user service "
                                                          r"ssh-connection method (\S+)", l)] if m]
    assert methods == ["none", "publickey", "publickey-hostbound-v00@openssh.com"]
    assert any("Accepted publickey for user" in l for l in mine)
    globals_ = [l for l in mine if "server_input_global_request: rtype" in l]
    assert [g.split("rtype ", 1)[1] for g in globals_] == ["no-more-sessions@openssh.com want_reply 0"]
    assert not any("Received SSH2_MSG_IGNORE" in l for l in mine)


@needs_local_sshd
async def test_putty_ignore_before_password_and_paramiko_service_per_attempt(local_sshd_factory) -> None:
    """Hooks 14-15: PuTTY's one IGNORE before its password; paramiko's second SERVICE_REQUEST
    before a retried password (its SERVICE_ACCEPT swallowed, the login goes on)."""
    from simulator.target.base import UserSpec

    server = local_sshd_factory(ServerSpec(log_level="DEBUG3", users=[UserSpec(password="pw-1")]))
    auth = [AuthStep("password", "wrong"), AuthStep("password", "pw-1")]
    putty = _plan("putty", "plink-0.78", SessionAction(kind="exec", command="true"), auth=auth)
    paramiko = _plan("pm", "paramiko-3.4", SessionAction(kind="exec", command="true"), auth=auth)
    result, lines = await _run(server, putty, paramiko)
    assert not result.errors, result.errors
    assert result.connections["putty"].auth_ok and result.connections["pm"].auth_ok
    putty_lines = _monitor_lines(lines, result.connections["putty"].port)
    assert sum("Received SSH2_MSG_IGNORE" in l for l in putty_lines) == 2  # one a password request
    pm_lines = _monitor_lines(lines, result.connections["pm"].port)
    packets = [m.group(1) for l in pm_lines
               for m in [re.search(r"receive packet: type (\d+)(?: \[preauth\])?$", l)] if m]
    start = packets.index("5")  # SERVICE_REQUEST, after the key exchange
    assert packets[start:start + 5] == ["5", "50", "5", "50", "90"]


@needs_local_sshd
async def test_putty_window_adjusts_each_with_winadj(local_sshd_factory) -> None:
    """Hook 22: outside simple mode (X11 forwarded: window 16384) PuTTY sends winadj@ (want_reply)
    right before each WINDOW_ADJUST, its window growing while the replies lag; sshd refuses each
    (CHANNEL_FAILURE), and those replies are not taken for asyncssh's own. OpenSSH adjusts with
    no request."""
    server = local_sshd_factory(ServerSpec(log_level="DEBUG3"))
    size = 300_000
    output = f"head -c {size} /dev/zero"
    plink = _plan("plink", "plink-0.78", SessionAction(kind="exec", command=output, x11=True))
    openssh = _plan("openssh", "openssh-9.2-debian", SessionAction(kind="exec", command=output))
    result, lines = await _run(server, plink, openssh)
    assert not result.errors, result.errors
    plink_lines = _monitor_lines(lines, result.connections["plink"].port)
    assert any("ctype session rchan 256 win 16384 max 16384" in l for l in plink_lines)
    steps = []
    for line in plink_lines:
        if "server_input_channel_req: channel 0 request winadj@putty.projects.tartarus.org reply 1" in line:
            steps.append("winadj")
        elif "send packet: type 100" in line and steps and steps[-1] == "winadj":
            steps.append("failure")
        elif (adjust := re.search(r"channel 0: rcvd adjust (\d+)$", line)):
            steps.append(int(adjust.group(1)))
    # Each adjust right after its request, which sshd refused. The last request may meet a
    # channel the server is closing (its output done): sshd then logs neither.
    pairs = [step for step in steps if step != "failure"]
    if pairs and pairs[-1] == "winadj":
        pairs.pop()
    assert len(pairs) >= 6 and pairs[0::2] == ["winadj"] * (len(pairs) // 2), steps
    assert all(isinstance(a, int) for a in pairs[1::2]), steps
    assert steps.count("failure") >= steps.count("winadj") - 1, steps
    adjusts = pairs[1::2]
    assert all(a >= 8192 for a in adjusts), adjusts
    # The window grew: later adjusts are larger than half the initial window.
    assert max(adjusts) >= 32768, adjusts
    assert 16384 + sum(adjusts) >= size, adjusts
    openssh_lines = _monitor_lines(lines, result.connections["openssh"].port)
    assert not any("winadj" in l for l in openssh_lines)
