"""`sshsim learn`: record a real client on a loopback endpoint and write its profile (issue 19).

`sshsim learn [-o FILE]` serves until Ctrl-C, N sessions or S idle seconds, then writes the
profile the recorded connections show; `sshsim learn --check PROFILE` runs sshsim's own
impersonation of PROFILE against the same endpoint and prints, fact by fact, where the profile
and the recording differ (exit 0 equal, 1 not).
"""

from __future__ import annotations

import asyncio
import datetime
import difflib
import re
import signal
from pathlib import Path
from typing import Any

import click

from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError, SshsimError
from simulator.io import atomic_write_text, check_output


@click.command("learn")
@click.option("--name", default=None, help="Profile name (default: made from the client's banner).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the profile here (default: stdout).")
@click.option("--sessions", type=click.IntRange(min=1), default=None,
              help="Stop after N client connections have logged in and ended.")
@click.option("--until-idle", type=click.FloatRange(min=0.1, max=3600), default=None, metavar="S",
              help="Stop S seconds after the last connection ended (at least one recorded).")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free one).")
@click.option("--user", default="user", show_default=True, help="User name to print (any is accepted).")
@click.option("--password", default="sshsim-learn", show_default=True,
              help="The password (and keyboard-interactive answer) accepted; any other is refused.")
@click.option("--check", "check_profile", default=None, metavar="PROFILE",
              help="Impersonate PROFILE (a shipped name or a file) against the endpoint and show where it "
                   "differs from the recording.")
@click.option("--against", default=None, metavar="LEARNED",
              help="With --check: replay the connections recorded in LEARNED (a profile learn wrote) and "
                   "compare with it instead of with PROFILE.")
@click.option("--update", "update_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              metavar="PROFILE.yaml",
              help="Record, then rewrite the facts the recording shows differently in PROFILE.yaml, keeping its "
                   "comments and the facts no session showed; prints the diff (written with --force, or to -o).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists (with --update: PROFILE.yaml).")
def learn(name: str | None, output: Path | None, sessions: int | None, until_idle: float | None, port: int,
          user: str, password: str, check_profile: str | None, against: str | None, update_file: Path | None,
          force: bool) -> int:
    """Record a client on a loopback SSH endpoint and write the profile it shows."""
    if sessions is not None and until_idle is not None:
        raise BadInputError("give --sessions or --until-idle, not both", key="--sessions")
    if against is not None and check_profile is None:
        raise BadInputError("--against goes with --check PROFILE", key="--against")
    if update_file is not None and (check_profile is not None or name is not None):
        raise BadInputError("--update records into an existing profile: no --check or --name with it", key="--update")
    if check_profile is not None:
        return _check(check_profile, against, port, user, password)
    if update_file is not None:
        if output is not None:
            check_output(output, force)
        profile = _load(str(update_file))
        conns = asyncio.run(_record(sessions, until_idle, port, user, password))
        return _update(update_file, profile, conns, output, force)
    if name is not None:
        # imported here: start-up cost: `sshsim learn --help` loads no schema
        from simulator.profiles import profile_schema

        pattern = profile_schema()["properties"]["name"]["pattern"]
        if not re.fullmatch(pattern, name):
            raise BadInputError(f"a profile name is letters, digits and . _ + - only: {name!r}", key="--name")
    if output is not None:
        check_output(output, force)
    return asyncio.run(_learn(name, output, sessions, until_idle, port, user, password, force))


async def _learn(name: str | None, output: Path | None, sessions: int | None, until_idle: float | None, port: int,
                 user: str, password: str, force: bool) -> int:
    # imported here: start-up cost: asyncssh only when the command runs
    from simulator.learn.merge import build_profile
    from simulator.learn.output import default_name, to_yaml, validate

    conns = await _record(sessions, until_idle, port, user, password)
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    banner = next(c.banner for c in conns if c.kexinit is not None)
    learned = build_profile(conns, name or default_name(banner), today)
    text = to_yaml(learned)
    validate(text, str(output or "<learned profile>"))
    _report(learned)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text, force=force)
        click.echo(f"wrote {output} ({len(conns)} connection(s), hassh {learned.data['hassh']})", err=True)
    return EXIT_OK


def _report(learned: Any) -> None:
    for line in learned.conflicts:
        click.echo(f"conflict: {line}", err=True)
    for line in learned.data["learned"]["observations"]:
        click.echo(f"not expressible as a profile key: {line}", err=True)
    if learned.data["unobserved"]:
        click.echo(f"unobserved: {', '.join(learned.data['unobserved'])}", err=True)


def _update(path: Path, profile: Any, conns: list[Any], output: Path | None, force: bool) -> int:
    """The recording written into an existing profile (simulator/learn/update.py), the diff shown."""
    # imported here: start-up cost: asyncssh only when the command runs
    from simulator.learn.merge import build_profile
    from simulator.learn.update import update_profile

    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    learned = build_profile(conns, profile.name, today)
    text = path.read_text(encoding="utf-8")
    result = update_profile(text, str(path), profile, conns, learned)
    _report(learned)
    click.echo("".join(difflib.unified_diff(text.splitlines(True), result.text.splitlines(True),
                                            str(path), str(output or path))), nl=False)
    click.echo(f"learn --update {profile.name}: {result.agreed} facts agree, {len(result.applied)} rewritten, "
               f"{len(result.left)} left for review", err=True)
    for line in result.applied:
        click.echo(f"  rewritten  {line}", err=True)
    for line in result.left:
        click.echo(f"  review     {line}", err=True)
    if output is not None:
        atomic_write_text(output, result.text, force=force)
    elif force:
        atomic_write_text(path, result.text, force=True)
    else:
        click.echo(f"not written: --force rewrites {path}, -o writes elsewhere", err=True)
    return EXIT_OK


async def _record(sessions: int | None, until_idle: float | None, port: int, user: str,
                  password: str) -> list[Any]:
    """Serve the endpoint until the stop condition; the recorded connections (at least one)."""
    # imported here: start-up cost: asyncssh only when the command runs
    from simulator.learn.endpoint import KBDINT_PROMPT, Endpoint, Recording
    from simulator.learn.record import read_connection

    stop = asyncio.Event()
    ended: list[Recording] = []
    loop = asyncio.get_running_loop()
    idle_timer: list[asyncio.TimerHandle] = []

    def on_close(recording: Recording) -> None:
        if any(p.direction == "out" and p.msg == 52 for p in recording.recorder.packets):
            ended.append(recording)
        facts = read_connection(recording.recorder)
        kinds = ", ".join(ch.describe() for ch in facts.sessions) or "no session"
        click.echo(f"recorded connection {recording.number} from {recording.peer}: {facts.banner or '?'}; "
                   f"{kinds}; ended by {facts.ended or '?'}", err=True)
        if sessions is not None and len(ended) >= sessions:
            stop.set()
        if until_idle is not None:
            for handle in idle_timer:
                handle.cancel()
            idle_timer[:] = [loop.call_later(until_idle, lambda: stop.set() if endpoint.open == 0 else None)]

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread (the CLI test runner)
            pass
    try:
        try:
            endpoint = Endpoint(port=port, user=user, password=password, on_close=on_close)
            async with endpoint:
                _instructions(endpoint, KBDINT_PROMPT, sessions, until_idle)
                await stop.wait()
                await endpoint.wait_idle(2.0)
                conns = [read_connection(r.recorder) for r in endpoint.recordings]
        except OSError as exc:
            raise BadInputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", key="--port") from None
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        for handle in idle_timer:
            handle.cancel()
    if not any(c.kexinit is not None for c in conns):
        raise SshsimError("no client connected (no KEXINIT recorded); nothing written")
    return conns


def _instructions(endpoint: Any, prompt: str, sessions: int | None, until_idle: float | None) -> None:
    until = (f"after {sessions} session(s)" if sessions else f"{until_idle:g} s after the last connection"
             if until_idle else "on Ctrl-C")
    click.echo(
        f"sshsim learn: recording SSH clients on {endpoint.host} port {endpoint.port}\n"
        f"  connect:     ssh -p {endpoint.port} {endpoint.user}@{endpoint.host}   (any user name works)\n"
        f"  host key:    ssh-ed25519 {endpoint.fingerprint} (new each run: accept it)\n"
        f"  password:    {endpoint.password} (a wrong one is refused, so a retry is recorded)\n"
        f"  public key:  any key is accepted, host-bound signatures too\n"
        f"  keyboard-interactive: one prompt {prompt.strip()!r}, answered by the password\n"
        f"  sessions:    exec answers a line and exit 0 ('sshsim-learn-data N': N bytes, to record window "
        f"adjusts); a shell echoes until 'exit'; SFTP sees an empty folder; forwarding is refused\n"
        f"  writes the profile {until}", err=True)


def _load(spec: str) -> Any:
    # imported here: start-up cost: no profiles loaded for --help
    from simulator.profiles import load_profile, load_profile_file

    if spec.endswith((".yaml", ".yml")) or "/" in spec:
        return load_profile_file(Path(spec))
    return load_profile(spec)


def _check(spec: str, against: str | None, port: int, user: str, password: str) -> int:
    profile = _load(spec)
    reference = _load(against) if against is not None else profile
    same, diffs, what = asyncio.run(_run_check(profile, reference, port, user, password))
    versus = f" against {reference.name}" if against is not None else ""
    click.echo(f"learn --check {profile.name}{versus}: {what}; {len(same)} facts agree, {len(diffs)} differ")
    for diff in diffs:
        click.echo(f"  differs  {diff}")
    return EXIT_OK if not diffs else EXIT_FAILED


async def _run_check(profile: Any, reference: Any, port: int, user: str,
                     password: str) -> tuple[list[str], list[Any], str]:
    # imported here: start-up cost: asyncssh only when the command runs
    from simulator.learn.check import compare, flow_plan, flows_of, impersonate, recorded, replay_plans
    from simulator.learn.endpoint import Endpoint
    from simulator.learn.merge import build_profile

    plans = replay_plans(reference.data, profile, password)
    if plans:
        what = f"the {len(plans)} recorded connection(s) of {reference.name} replayed"
    else:
        flows = flows_of(profile)
        plans = [flow_plan(profile, flow, password) for flow in flows]
        what = f"flows {', '.join(flows)}"
    try:
        async with Endpoint(port=port, user=user, password=password) as endpoint:
            await impersonate(profile, endpoint, plans)
            await endpoint.wait_idle()
            conns = recorded(endpoint)
    except OSError as exc:
        raise BadInputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}", key="--port") from None
    learned = build_profile(conns, profile.name, datetime.date.today().isoformat())
    labels = ("profile", "impersonation") if reference is profile else ("recorded client", "impersonation")
    same, diffs = compare(reference, conns, learned, reference.data.get("unobserved") or (), labels)
    return same, diffs, what
