"""`sshsim infer LOG`: write a scenario that replays the connections of a real log."""

from __future__ import annotations

from pathlib import Path

import click

from simulator.commands.logio import read_log_lines
from simulator.errors import EXIT_OK
from simulator.io import atomic_write_text, check_output


@click.command("infer")
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the scenario here (default: stdout).")
@click.option("--name", default=None, help="Scenario name (default: the log's file name).")
@click.option("--force", is_flag=True, help="Overwrite the output file if it exists.")
def infer(log: Path, output: Path | None, name: str | None, force: bool) -> int:
    """Infer a scenario (profiles, auth, channel requests, expectations) from LOG."""
    # imported here: start-up cost: `sshsim infer --help` does not load the catalogue
    from simulator.scenario.infer import NoConnectionFound, infer, to_yaml

    if output is not None:
        check_output(output, force)
    try:
        inferred = infer(read_log_lines(log), name or log.stem)
    except NoConnectionFound as exc:
        exc.file = str(log)
        raise
    scenario = inferred.scenario
    text = to_yaml(scenario, str(log), notes=inferred.notes)
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text, force=force)
        click.echo(f"wrote {output} ({len(scenario['connections'])} connections)", err=True)
    return EXIT_OK
