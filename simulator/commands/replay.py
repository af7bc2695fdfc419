"""`sshsim replay LOG`: infer a scenario from a real log, run it, and diff the result with the log.

The inferred scenario is never rendered as a template (a log's text is anyone's text): it goes
from data straight to the checked plan (simulator/scenario/infer.py says why), and no temporary
file stands between them, so an error names the LOG, or the --scenario-out file written first.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from simulator.colour import colour_option, use_colour
from simulator.commands import sshdconfig
from simulator.commands.logio import read_log_lines
from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError, Interrupted
from simulator.io import atomic_write_text, check_output, write_lines


@click.command("replay")
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--log-out", type=click.Path(dir_okay=False, path_type=Path), help="Keep the reproduced log here.")
@click.option("--scenario-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Keep the inferred scenario here.")
@click.option("--target", default=None,
              help="local (default: the system's sshd), local:VERSION (an upstream build, e.g. local:10.3p1) "
                   "or docker[:IMAGE].")
@click.option("--force", is_flag=True, help="Overwrite output files that exist.")
@sshdconfig.sshd_config_option
@colour_option
def replay(log: Path, log_out: Path | None, scenario_out: Path | None, target: str | None, force: bool,
           sshd_config: Path | None, color: bool | None) -> int:
    """Reproduce LOG's connections against a real sshd; exit 0 when every sshd line of LOG is matched."""
    # imported here: start-up cost: `sshsim replay --help` does not load the driver (asyncssh), catalogue or scenarios
    from simulator.commands.run import _run_one
    from simulator.scenario.infer import infer_scenario, to_yaml
    from simulator.scenario.loader import scenario_from_data
    from simulator.verify.diff import diff_lines, render, run_names

    for path in (log_out, scenario_out):
        if path is not None:
            check_output(path, force)
    user_config = sshdconfig.load(sshd_config)
    lines = read_log_lines(log)
    data = infer_scenario(lines, log.stem)
    if not data["connections"]:
        raise BadInputError("no client connection found (no 'remote software version' line at DEBUG1, "
                            "nor an authentication line)", file=str(log))
    if scenario_out is not None:
        # Written before the run, so that a problem with it can be named at its line.
        atomic_write_text(scenario_out, to_yaml(data, str(log)), force=force)
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
    partial: list[str] = []
    try:
        outcome = asyncio.run(_run_one(scenario, target, verify=False, partial=partial))
    except KeyboardInterrupt:  # SIGINT or SIGTERM: keep the reproduced log so far
        if log_out is None or not partial:
            raise
        write_lines(log_out, partial, force=force)
        raise Interrupted(f"kept {log_out}") from None
    if log_out is not None:
        write_lines(log_out, outcome.lines, force=force)
    result = diff_lines(lines, outcome.lines)
    colour = use_colour(color)
    names = run_names(outcome.run.connections) if outcome.run is not None else None
    click.echo(render(result, str(log), "replay", color=colour, b_names=names), color=colour)
    return EXIT_OK if result.complete else EXIT_FAILED
