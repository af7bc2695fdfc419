"""Run the real SSH clients and their sshsim impersonations through the same flows.

Each side runs against its own fresh private sshd (simulator.target.local.LocalSshd); the flows
run one after another in it, so the diff pairs them in order. The real clients are Debian's
openssh-client (ssh, sftp) and putty-tools (plink, psftp), paramiko 3.4.0 and 5.1.0 each in its
own venv (made on first use under the cache folder), and asyncssh without sshsim's hooks.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PASSWORD = "Real-clients-1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sshsim-real-clients"
PARAMIKO = {"paramiko-3.4": "3.4.0", "paramiko-5.1": "5.1.0"}
FLOWS = ("exec", "shell", "sftp", "password")
# The shell flow forwards X11 (issue 14: "shell with PTY and X11"). No X server runs: the display
# is a name only. sshd never connects to it (nothing in the session opens an X11 channel), and
# each client, finding no cookie for it in an empty Xauthority, sends a made-up one, as it does
# for any display it has no entry for.
X11_DISPLAY = ":42"


@dataclass(frozen=True)
class Client:
    name: str          # the real client, as the report names it
    profile: str       # its sshsim profile (the profile of its SFTP program for the sftp flow)
    sftp_profile: str
    flows: tuple[str, ...]
    # How the real client logs in for exec/shell/sftp (PuTTY needs its own key format: password).
    login: str = "publickey"


CLIENTS = {
    "openssh": Client("openssh", "openssh-9.2-debian", "openssh-9.2-debian", FLOWS),
    # plink -pw gives one password and -batch never prompts: no wrong-then-right flow.
    "putty": Client("putty", "plink-0.78", "psftp-0.78", ("exec", "shell", "sftp"), login="password"),
    "paramiko-3.4": Client("paramiko-3.4", "paramiko-3.4", "paramiko-3.4", FLOWS),
    "paramiko-5.1": Client("paramiko-5.1", "paramiko-5.1", "paramiko-5.1", FLOWS),
    "asyncssh": Client("asyncssh", "asyncssh-2.24.1", "asyncssh-2.24.1", FLOWS),
}


def venv_python(name: str) -> Path:
    """The venv's python for paramiko `name`, made (pip install paramiko==X) on first use."""
    version = PARAMIKO[name]
    venv = CACHE / f"paramiko-{version}"
    python = venv / "bin" / "python"
    marker = venv / ".sshsim-ready"
    if not marker.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"paramiko=={version}"], check=True)
        marker.write_text(version)
    return python


def _host_key_fingerprint(server: Any) -> str:
    """SHA256 fingerprint of the server's ed25519 host key (plink/psftp -hostkey), read from its
    file: a keyscan would put a connection of its own into the log."""
    public = server.workdir / "hostkeys" / "ssh_host_ed25519_key.pub"
    line = subprocess.run(["ssh-keygen", "-lf", str(public), "-E", "sha256"], capture_output=True,
                          text=True, timeout=20, check=True).stdout
    return line.split()[1]


def real_command(client: Client, flow: str, server: Any, work: Path) -> tuple[list[str], str | None, dict[str, str]]:
    """(argv, stdin text, extra environment) for one flow of the real client."""
    host, port, key = server.host, str(server.port), str(server.identity("user"))
    if client.name == "openssh":
        base = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        if flow == "password":
            askpass = work / "askpass"
            state = work / "askpass.n"
            askpass.write_text("#!/bin/sh\nif [ -e %s ]; then echo '%s'; else : > %s; echo wrong; fi\n"
                               % (state, PASSWORD, state))
            askpass.chmod(0o700)
            env = {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
            return (["ssh", *base, "-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=2",
                     "-p", port, f"user@{host}", "true"], None, env)
        base += ["-o", "BatchMode=yes", "-i", key]
        if flow == "exec":
            return ["ssh", *base, "-p", port, f"user@{host}", "true"], None, {}
        if flow == "shell":
            # Debian's ForwardX11Trusted yes: no cookie for the display, so ssh makes one up
            # ("Warning: No xauth data; using fake authentication data for X11 forwarding").
            return ["ssh", *base, "-X", "-tt", "-p", port, f"user@{host}"], "exit\n", _x11_env(work)
        batch = work / "sftp.batch"
        batch.write_text("ls\n")
        return ["sftp", *base, "-b", str(batch), "-P", port, f"user@{host}"], None, {}
    if client.name == "putty":
        common = ["-batch", "-hostkey", _host_key_fingerprint(server), "-P", port, "-pw", PASSWORD]
        if flow == "exec":
            return ["plink", *common, f"user@{host}", "true"], None, {}
        if flow == "shell":
            # -X leaves simple mode (a forwarding): window 16384, no simple@putty request.
            return ["plink", *common, "-X", "-t", f"user@{host}"], "exit\n", _x11_env(work)
        batch = work / "psftp.batch"
        batch.write_text("ls\n")
        return ["psftp", *common, "-b", str(batch), f"user@{host}"], None, {}
    env = _x11_env(work) if flow == "shell" else {}
    if client.name in PARAMIKO:
        return [str(venv_python(client.name)), str(HERE / "paramiko_flow.py"), flow, host, port, "user", key,
                PASSWORD], None, env
    return [sys.executable, str(HERE / "asyncssh_flow.py"), flow, host, port, "user", key, PASSWORD], None, env


def _x11_env(work: Path) -> dict[str, str]:
    """The shell flow's X11 display, with an Xauthority that has no entry for it."""
    return {"DISPLAY": X11_DISPLAY, "XAUTHORITY": str(work / "Xauthority")}


def impersonation_plan(client: Client, flow: str, index: int) -> Any:
    """The same flow as a scenario connection of the client's profile."""
    from simulator.scenario.model import AuthStep, ConnectionPlan, SessionAction, SftpOp

    if flow == "password":
        auth = [AuthStep("password", "wrong"), AuthStep("password", PASSWORD)]
    elif client.login == "password":
        auth = [AuthStep("password", PASSWORD)]
    else:
        auth = [AuthStep("publickey")]
    # Debian's ssh_config sends LANG and LC_* (SendEnv) when they are set: the same here.
    env = ({k: v for k, v in os.environ.items() if k == "LANG" or k.startswith("LC_")}
           if client.name == "openssh" else {})
    if flow in ("exec", "password"):
        action = SessionAction(kind="exec", command="true", env=env)
    elif flow == "shell":
        action = SessionAction(kind="shell", pty=True, x11=True, input="exit\n", env=env)
    else:
        action = SessionAction(kind="subsystem", subsystem="sftp", sftp=[SftpOp("ls", ".")], env=env)
    profile = client.sftp_profile if flow == "sftp" else client.profile
    return ConnectionPlan(id=f"{client.name}-{flow}-{index}", profile=profile, auth=auth, actions=[action])


def _spec(level: str) -> Any:
    from simulator.target.base import ServerSpec, UserSpec

    return ServerSpec(users=[UserSpec(password=PASSWORD)], log_level=level)


def run_real(client: Client, flows: tuple[str, ...], level: str, work: Path) -> list[str]:
    """sshd's log of the real client doing `flows`, one after another, on a fresh sshd."""
    from simulator.target.local import LocalSshd

    with LocalSshd(_spec(level)) as server:
        for flow in flows:
            argv, stdin, env = real_command(client, flow, server, work)
            # Typed input (the shell's "exit") comes from a pipe left open until the client
            # ends, as a terminal would be: closing it would make the client send CHANNEL_EOF.
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    env={**os.environ, **env})
            if stdin is not None:
                assert proc.stdin is not None
                proc.stdin.write(stdin)
                proc.stdin.flush()
            try:
                proc.wait(timeout=60)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    proc.wait()
                if proc.stdin is not None:
                    proc.stdin.close()
            err = proc.stderr.read() if proc.stderr else ""
            assert proc.returncode == 0, f"{client.name} {flow}: {argv[0]} exited {proc.returncode}: {err[-500:]}"
            server.wait_idle()
        return server.log.lines()


def run_impersonation(client: Client, flows: tuple[str, ...], level: str) -> list[str]:
    """sshd's log of sshsim's profile(s) of the client doing `flows` on a fresh sshd."""
    from simulator.driver.runner import ScenarioRunner
    from simulator.scenario.model import Scenario
    from simulator.target.local import LocalSshd

    with LocalSshd(_spec(level)) as server:
        for index, flow in enumerate(flows):
            plan = impersonation_plan(client, flow, index)
            scenario = Scenario(name="real-clients", path="<test>", server=server.spec, target="local",
                                connections=[plan], expectations={})
            result = asyncio.run(ScenarioRunner(scenario, server).run())
            assert not result.errors, result.errors
            server.wait_idle()
        return server.log.lines()


def flow_scores(a_lines: list[str], b_lines: list[str], flows: tuple[str, ...]) -> dict[str, float]:
    """Two-sided score per flow (ConnectionDiff.score), connections paired in order."""
    from simulator.verify.diff import diff_lines

    diff = diff_lines(a_lines, b_lines)
    conns = [cd for cd in diff.connections if (cd.a_conn or cd.b_conn) is not None
             and getattr(cd.a_conn or cd.b_conn, "kind", None) == "connection"]
    return {flow: cd.score for flow, cd in zip(flows, conns)}


def client_packets(lines: list[str]) -> list[list[str]]:
    """Per connection (in order), the packets sshd says it received from the client at DEBUG3:
    `receive packet: type N` after authentication, `Received SSH2_MSG_IGNORE` before it. This is
    what the client sent, in its order, whatever sshd's own timing."""
    import re

    from simulator.logs import group_connections, parse_lines

    events = list(parse_lines(lines))
    conns = [c for c in group_connections(events) if getattr(c, "kind", None) == "connection"]
    order = {c.id: i for i, c in enumerate(sorted(conns, key=lambda c: c.first_line))}
    out: list[list[str]] = [[] for _ in order]
    for e in events:
        if e.conn not in order:
            continue
        text = e.message or ""
        got = re.search(r"receive packet: type (\d+)$", text)
        if got:
            out[order[e.conn]].append(got.group(1))
        elif "Received SSH2_MSG_IGNORE" in text:
            out[order[e.conn]].append("IGNORE")
    return out
