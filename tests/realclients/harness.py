"""Run the real SSH clients and their sshsim impersonations through the same flows.

Each side runs against its own fresh private sshd (simulator.target.local.LocalSshd); the flows
run one after another in it, so the diff pairs them in order. The real clients are Debian's
openssh-client (ssh, sftp) and putty-tools (plink, psftp), paramiko 3.4.0 and 5.1.0 each in its
own venv (made on first use under the cache folder), and asyncssh without sshsim's hooks.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import time
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
# The output flow: the server sends enough to make the client open its window again and again
# (PuTTY's winadj@putty.projects.tartarus.org with each WINDOW_ADJUST). plink forwards X11 so as
# to leave simple mode (whose 0x7fffffff window never needs adjusting).
OUTPUT_COMMAND = "head -c 300000 /dev/zero"


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
    # The password flow types a wrong then the right password at plink's terminal prompt.
    "putty": Client("putty", "plink-0.78", "psftp-0.78", (*FLOWS, "output"), login="password"),
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


@dataclass(frozen=True)
class Command:
    """One flow of a real client: its argv, what it reads on stdin (None: /dev/null), extra
    environment, and the passwords typed at its terminal prompts (a pty is its terminal)."""

    argv: list[str]
    stdin: str | None = None
    env: dict[str, str] | None = None
    typed: tuple[str, ...] = ()


def real_command(client: Client, flow: str, server: Any, work: Path) -> Command:
    """How the real client runs one flow."""
    host, port, key = server.host, str(server.port), str(server.identity("user"))
    if client.name == "openssh":
        base = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        if flow == "password":
            askpass = work / "askpass"
            state = work / "askpass.n"
            askpass.write_text("#!/bin/sh\nif [ -e %s ]; then echo '%s'; else : > %s; echo wrong; fi\n"
                               % (state, PASSWORD, state))
            askpass.chmod(0o700)
            # Each run starts at the wrong password (the runs share the folder).
            state.unlink(missing_ok=True)
            env = {"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"}
            return Command(["ssh", *base, "-o", "PreferredAuthentications=password", "-o",
                            "NumberOfPasswordPrompts=2", "-p", port, f"user@{host}", "true"], env=env)
        base += ["-o", "BatchMode=yes", "-i", key]
        if flow == "exec":
            return Command(["ssh", *base, "-p", port, f"user@{host}", "true"])
        if flow == "shell":
            # Debian's ForwardX11Trusted yes: no cookie for the display, so ssh makes one up
            # ("Warning: No xauth data; using fake authentication data for X11 forwarding").
            return Command(["ssh", *base, "-X", "-tt", "-p", port, f"user@{host}"], "exit\n", _x11_env(work))
        batch = work / "sftp.batch"
        batch.write_text("ls\n")
        return Command(["sftp", *base, "-b", str(batch), "-P", port, f"user@{host}"])
    if client.name == "putty":
        hostkey = ["-hostkey", _host_key_fingerprint(server), "-P", port]
        if flow == "password":
            # -pw gives one password and -batch refuses prompts: plink asks at its terminal
            # ("user@host's password: ", again after "Access denied"); the command's stdin
            # stays /dev/null, as in the exec flow.
            return Command([sys.executable, str(HERE / "on_tty.py"), "{tty}", "plink", *hostkey,
                            f"user@{host}", "true"], typed=("wrong-" + PASSWORD, PASSWORD))
        common = ["-batch", *hostkey, "-pw", PASSWORD]
        if flow == "exec":
            return Command(["plink", *common, f"user@{host}", "true"])
        if flow == "output":
            return Command(["plink", *common, "-X", f"user@{host}", OUTPUT_COMMAND], env=_x11_env(work))
        if flow == "shell":
            # -X leaves simple mode (a forwarding): window 16384, no simple@putty request.
            return Command(["plink", *common, "-X", "-t", f"user@{host}"], "exit\n", _x11_env(work))
        batch = work / "psftp.batch"
        batch.write_text("ls\n")
        return Command(["psftp", *common, "-b", str(batch), f"user@{host}"])
    env = _x11_env(work) if flow == "shell" else {}
    if client.name in PARAMIKO:
        return Command([str(venv_python(client.name)), str(HERE / "paramiko_flow.py"), flow, host, port, "user",
                        key, PASSWORD], env=env)
    return Command([sys.executable, str(HERE / "asyncssh_flow.py"), flow, host, port, "user", key, PASSWORD],
                   env=env)


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
    elif flow == "output":
        action = SessionAction(kind="exec", command=OUTPUT_COMMAND, x11=True, env=env)
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
            _run_one(client.name, flow, real_command(client, flow, server, work))
            server.wait_idle()
        return server.log.lines()


def _run_one(name: str, flow: str, command: Command) -> None:
    """Run one real client's flow to its end; fail unless it exits 0."""
    master, slave = pty.openpty() if command.typed else (-1, -1)
    argv = [os.ttyname(slave) if arg == "{tty}" else arg for arg in command.argv]
    try:
        # Typed input (the shell's "exit") comes from a pipe left open until the client
        # ends, as a terminal would be: closing it would make the client send CHANNEL_EOF.
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if command.stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **(command.env or {})})
        if command.stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(command.stdin)
            proc.stdin.flush()
        try:
            if command.typed:
                _answer_prompts(proc, master, list(command.typed))
            proc.wait(timeout=60)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.returncode == 0, f"{name} {flow}: {argv[0]} exited {proc.returncode}: {err[-500:]}"
    finally:
        if command.typed:
            os.close(master)
            os.close(slave)


def _answer_prompts(proc: subprocess.Popen, master: int, typed: list[str]) -> None:
    """Type each password at the client's terminal when it prompts for one, until it exits.

    The parent keeps the pty's slave open, so reading the master never fails before the client
    has opened its terminal."""
    seen = b""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if not ready:
            continue
        seen = (seen + os.read(master, 4096))[-256:]
        # "password:" at sshd's prompts; "Password:" at a keyboard-interactive prompt
        # (`sshsim learn`'s endpoint asks so).
        if typed and seen.rstrip().lower().endswith(b"password:"):
            os.write(master, (typed.pop(0) + "\r").encode())
            seen = b""
    assert not typed, f"the client did not ask for {len(typed)} more password(s): {seen!r}"


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
        sent = out[order[e.conn]]
        got = re.search(r"receive packet: type (\d+)$", text)
        if got:
            sent.append(got.group(1))
        elif "Received SSH2_MSG_IGNORE" in text:
            sent.append("IGNORE")
        elif re.search(r"request winadj@\S+ reply 1$", text) and sent and sent[-1] == "98":
            # PuTTY's window requests (sshd logs no WINDOW_ADJUST packet): how many come is
            # the race between the server's output and the client's reads (real plink: 9 to 35
            # for 300000 bytes), so a run of them counts as one.
            sent.pop()
            if sent[-1:] != ["winadj"]:
                sent.append("winadj")
    return out
