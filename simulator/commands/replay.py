"""`sshsim replay LOG`: infer a scenario from a real log, run it, and diff the result with the log.

The inferred scenario is never rendered as a template (a log's text is anyone's text): it goes
from data straight to the checked plan (simulator/scenario/infer.py says why), and no temporary
file stands between them, so an error names the LOG, or the --scenario-out file written first.

A log written by `sshd -d`/`-e`/`-E` is one merged stream without pids, where the reproduction's
syslog has one stream a process: the two would not compare line for line. So such a log is
replayed by an sshd logging the same way on the local target: `-d` (repeated for DEBUG2/3, one
connection, no fork) when the log shows debug mode and one connection, else `-e` at the log's
level, and the two merged streams are compared. Lines only debug mode writes about itself (its
re-exec arguments, "will not fork", and with -ddd its configuration file read line by line,
whose paths and line numbers are the machine's) are counted on neither side.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from simulator.colour import colour_option, use_colour
from simulator.commands import sshdconfig
from simulator.commands.logio import read_log_lines
from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError, Interrupted
from simulator.io import atomic_write_text, check_output, write_lines
from simulator.logs.tags import RUN_MODE

DEBUG_LEVELS = {"DEBUG1": 1, "DEBUG": 1, "DEBUG2": 2, "DEBUG3": 3}


@click.command("replay")
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--log-out", type=click.Path(dir_okay=False, path_type=Path), help="Keep the reproduced log here.")
@click.option("--scenario-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the inferred scenario here.")
@click.option("--target", default=None,
              help="local (default: the log's OpenSSH version when built, else the system's sshd), "
                   "local:VERSION (an upstream build, e.g. local:10.3p1) or docker[:IMAGE].")
@click.option("--force", is_flag=True, help="Overwrite output files that exist.")
@sshdconfig.sshd_config_option
@colour_option
def replay(log: Path, log_out: Path | None, scenario_out: Path | None, target: str | None, force: bool,
           sshd_config: Path | None, color: bool | None) -> int:
    """Reproduce LOG's connections against a real sshd; print the two-sided score; exit 0 when
    every sshd line of LOG is matched."""
    # imported here: start-up cost: `sshsim replay --help` does not load the driver (asyncssh), catalogue or scenarios
    from simulator.logs import parse_lines
    from simulator.scenario.infer import NoConnectionFound, infer, to_yaml
    from simulator.scenario.loader import scenario_from_data
    from simulator.verify.diff import diff_events, render, run_names

    for path in (log_out, scenario_out):
        if path is not None:
            check_output(path, force)
    user_config = sshdconfig.load(sshd_config)
    lines = read_log_lines(log)
    try:
        inferred = infer(lines, log.stem)
    except NoConnectionFound as exc:
        exc.file = str(log)
        raise
    data = inferred.scenario
    if scenario_out is not None:
        # Written before the run, so that a problem with it can be named at its line.
        atomic_write_text(scenario_out, to_yaml(data, str(log), notes=inferred.notes), force=force)
        scenario = scenario_from_data(data, str(scenario_out), to_yaml(data, str(log), escape=False))
    else:
        try:
            scenario = scenario_from_data(data, str(log))
        except BadInputError as exc:
            key = f"{exc.key}: " if exc.key else ""
            exc.message = f"the scenario inferred from it is not valid: {key}{exc.message}"
            exc.key = None
            raise
    scenario.path = str(log)
    # The log's own level is the one to reproduce: sshsim sets LogLevel in the user's file.
    sshdconfig.use(scenario.server, user_config, log_level_asked=True)
    a_events = list(parse_lines(lines))
    stream_args = stderr_args(a_events, len(data["connections"]), data["server"]["log_level"], target)
    partial: list[str] = []
    try:
        outcome, replayed = asyncio.run(_replay(scenario, target, stream_args, partial))
    except KeyboardInterrupt:  # SIGINT or SIGTERM: keep the reproduced log so far
        if log_out is None or not partial:
            raise
        write_lines(log_out, partial, force=force)
        raise Interrupted(f"kept {log_out}") from None
    if log_out is not None:
        write_lines(log_out, replayed, force=force)
    b_events = list(parse_lines(replayed))
    if stream_args:
        a_events = [e for e in a_events if not debug_mode_line(e)]
        b_events = [e for e in b_events if not debug_mode_line(e)]
    result = diff_events(a_events, b_events)
    colour = use_colour(color)
    names = run_names(outcome.run.connections) if outcome.run is not None else None
    click.echo(render(result, str(log), "replay", color=colour, b_names=names), color=colour)
    return EXIT_OK if result.complete else EXIT_FAILED


def debug_mode_line(event: Any) -> bool:
    """A line about how sshd runs itself (catalogue tag run-mode: its re-exec, debug mode) or
    about reading its configuration, not about a connection (not compared)."""
    return (event.spec is not None and bool(event.spec.flags & RUN_MODE)) or event.event.startswith("config.")


def stderr_args(events: list[Any], connections: int, level: str, target: str | None) -> tuple[str, ...]:
    """How the replaying sshd logs: () through syslog, as a target always can; for a log that
    sshd wrote to its stderr (most lines without a prefix), ("-d", ..., "-e") when the log shows
    debug mode and one connection, else ("-e",). Only the local target runs sshd so."""
    if target is not None and not target.startswith("local"):
        return ()
    debug = sum(1 for e in events if e.format == "sshd-debug")
    if debug * 2 <= len(events):
        return ()
    if connections == 1 and any(e.event == "connection.server_accept_loop.server_will_not" for e in events):
        return ("-d",) * DEBUG_LEVELS.get(level, 1) + ("-e",)
    return ("-e",)


async def _replay(scenario: Any, target: str | None, stream_args: tuple[str, ...],
                  partial: list[str]) -> tuple[Any, list[str]]:
    """Run the scenario (as `sshsim run` does, without verifying); the reproduced log: the
    syslog lines, or with `stream_args` what sshd wrote to its stderr."""
    # imported here: start-up cost: the driver (asyncssh) only when a scenario plays
    from simulator.commands.run import _run_one, play
    from simulator.target.factory import make_target

    if not stream_args:
        outcome = await _run_one(scenario, target, verify=False, partial=partial)
        return outcome, outcome.lines
    sshdconfig.say_notice(scenario.server)
    server = make_target(scenario.server, target or scenario.target)
    server.stderr_args = stream_args  # a LocalSshd: stderr_args only says "local"
    server.start()
    try:
        outcome = await play(scenario, server, False, partial)
        return outcome, await asyncio.to_thread(server.stderr_lines)
    finally:
        await asyncio.to_thread(server.stop)
