"""`sshsim learn` against the real clients (issue 19): no mocks, the real programs on loopback.

Each real client (Debian's ssh/sftp and plink/psftp, paramiko 3.4.0 and 5.1.0 in the venvs of
tests/realclients/harness.py, asyncssh) runs the real-clients suite's flows against the capturing
endpoint; the profile learned from that recording must carry the client's HASSH (the shipped
profile's, and the one its first KEXINIT shows on the wire), its banner, and in every recorded
session the shipped profile's channel window and max packet. `learn --check` then replays the
recorded connections with the shipped profile's impersonation: it agrees with the recording on
every fact except the ones listed in KNOWN (what the shipped profile says differently from the
real client, or what the driver cannot do; each a finding of issue 19, see docs/learn.md), and
the learned profile's own impersonation reproduces the recording on every fact.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from simulator.driver.wire import KexinitListener
from simulator.learn.check import compare, impersonate, recorded, replay_plans
from simulator.learn.endpoint import Endpoint
from simulator.learn.merge import Learned, build_profile
from simulator.learn.output import to_yaml, validate
from simulator.learn.record import ConnectionFacts
from simulator.profiles import ClientProfile, load_profile
from tests.realclients import harness

ROOT = Path(__file__).resolve().parents[1]
TODAY = datetime.date.today().isoformat()

# (test id, harness client, flows, the shipped profile the recording is held to). PuTTY's two
# programs are two clients (plink has no SFTP, psftp no exec).
CASES = [
    ("openssh-ssh", "openssh", ("exec", "shell", "password"), "openssh-9.2-debian"),
    ("openssh-sftp", "openssh", ("sftp",), "openssh-9.2-debian"),
    ("plink", "putty", ("exec", "shell"), "plink-0.78"),
    ("psftp", "putty", ("sftp",), "psftp-0.78"),
    ("paramiko-3.4", "paramiko-3.4", harness.FLOWS, "paramiko-3.4"),
    ("paramiko-5.1", "paramiko-5.1", harness.FLOWS, "paramiko-5.1"),
    ("asyncssh", "asyncssh", harness.FLOWS, "asyncssh-2.24.1"),
]

# Facts where `learn --check SHIPPED --against LEARNED` differs, measured: the findings (what
# the shipped profile says differently from the real client, docs/learn.md), per case.
KNOWN: dict[str, set[str]] = {
    # PuTTY: IGNORE before the keyboard-interactive answer too, not only before a password.
    "plink": {"ignore elsewhere"},
    "psftp": {"ignore elsewhere"},
    # asyncssh: IGNORE before every packet after NEWKEYS (so before the password too), and
    # CHANNEL_EOF after a shell's input (`run(input=...)`), which the profile does not say.
    "asyncssh": {"auth.ignore_before_password", "ignore elsewhere", "session.eof"},
}
# Facts the impersonation of the learned profile itself cannot reproduce (no profile key for them).
NOT_REPRODUCIBLE: dict[str, set[str]] = {
    # PuTTY sends SSH_MSG_IGNORE before its keyboard-interactive answer (the endpoint offers
    # keyboard-interactive, so plink -pw answers there); `auth.ignore_before_password` covers
    # password requests only.
    "plink": {"ignore elsewhere"},
    "psftp": {"ignore elsewhere"},
    # asyncssh puts an IGNORE before every packet after NEWKEYS when nothing else is queued
    # (connection.py send_packet); the driver is asyncssh with that habit switched off.
    "asyncssh": {"ignore elsewhere"},
}
# paramiko's teardown races with its own threads (test_real_clients.RACY_TEARDOWN): how each
# connection ends differs from run to run, so the recording shows a conflict, not a fact.
RACY_TEARDOWN = {"paramiko-3.4", "paramiko-5.1"}


def _facts(case: str, diffs: list[Any]) -> set[str]:
    """The facts that differ, less a racy client's teardown."""
    racy = case in RACY_TEARDOWN
    return {d.fact for d in diffs if not (racy and d.fact.endswith((": close", "channel_close")))}


async def _run_client(argv: list[str], stdin: str | None, env: dict[str, str]) -> None:
    """One real client run as the harness runs it: typed input from a pipe left open until the
    client ends (a terminal's), so closing it sends no EOF the user did not type."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **env})
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin.encode())
        await proc.stdin.drain()
    try:
        await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
    err = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
    assert proc.returncode == 0, f"{argv[0]} exited {proc.returncode}: {err[-500:]}"


async def record_real(client: str, flows: tuple[str, ...], work: Path,
                      extra: list[tuple[list[str], str | None, dict[str, str]]] = ()) -> list[ConnectionFacts]:
    """The real client doing `flows` (then any `extra` commands) against a fresh endpoint."""
    spec = harness.CLIENTS[client]
    async with Endpoint(password=harness.PASSWORD) as endpoint:
        for flow in flows:
            argv, stdin, env = harness.real_command(spec, flow, endpoint, work)
            await _run_client(argv, stdin, env)
            await endpoint.wait_idle()
        for argv, stdin, env in extra:
            await _run_client([a.replace("{port}", str(endpoint.port)) for a in argv], stdin, env)
            await endpoint.wait_idle()
        return recorded(endpoint)


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
        argv, _, env = harness.real_command(spec, flow, view, work)
        proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.DEVNULL, env={**os.environ, **env})
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


@pytest.mark.parametrize("case,client,flows,shipped", CASES, ids=[c[0] for c in CASES])
def test_learned_profile_has_the_real_clients_fingerprint_and_channels(case: str, client: str,
                                                                      flows: tuple[str, ...], shipped: str,
                                                                      tmp_path: Path) -> None:
    for program in ("ssh", "sftp", "plink", "psftp"):
        assert shutil.which(program), f"{program} is not installed (.ci/run installs it)"
    conns = asyncio.run(record_real(client, flows, tmp_path))
    assert len(conns) == len(flows)
    learned, profile = learned_profile(conns, f"learned-{case}", tmp_path)
    reference = load_profile(shipped)
    wire = asyncio.run(wire_hassh(client, flows[0], tmp_path))
    assert profile.hassh == reference.hassh == wire
    assert profile.banner == reference.banner
    conflicts = [c for c in learned.conflicts
                 if not (case in RACY_TEARDOWN and c.startswith(("close ", "channel_close ")))]
    assert not conflicts, conflicts
    # Window and max packet of every recorded session: the shipped profile, as it applies to it.
    same, diffs = compare(reference, conns, learned)
    sizes = [d for d in diffs if d.fact.endswith((": window", ": max_packet"))]
    assert not sizes, [str(d) for d in sizes]
    assert any(f.endswith(": window") for f in same)
    # The learned profile's own impersonation reproduces the recording, fact by fact, but for
    # what no profile key can make the driver do.
    same, diffs = asyncio.run(check(profile, profile))
    for d in diffs:
        print(f"NOT REPRODUCED {case}: {d}")
    assert _facts(case, diffs) == NOT_REPRODUCIBLE.get(case, set()), [str(d) for d in diffs]
    assert len(same) > 10
    # The shipped profile's impersonation against the recording: equal but for the findings.
    same, diffs = asyncio.run(check(reference, profile))
    for d in diffs:
        print(f"FINDING {case}: {d}")
    assert _facts(case, diffs) == KNOWN.get(case, set()), [str(d) for d in diffs]
