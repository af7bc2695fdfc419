"""`sshsim diff A B`: how much of each log the other reproduces, after normalisation."""

from __future__ import annotations

from pathlib import Path

import click

from simulator.colour import colour_option, use_colour
from simulator.commands.logio import read_log_lines, read_run_report
from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError


@click.command("diff")
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input-format", default=None, help="Force the input format of both logs.")
@colour_option
@click.option("--summary", is_flag=True, help="Only the per-connection counts and the final line.")
@click.option("--one-sided", is_flag=True,
              help="Exit 0 when all of A is in B, whatever B has more (A a truncated capture).")
@click.option("--names-a", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON report of the run that wrote A (sshsim run --report json FILE): "
                   "connections named by id and profile.")
@click.option("--names-b", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The same for B.")
def diff(a: Path, b: Path, input_format: str | None, color: bool | None, summary: bool, one_sided: bool,
         names_a: Path | None, names_b: Path | None) -> int:
    """Normalise both logs, pair their connections, diff each process stream; exit 1 unless each log
    reproduces all of the other (two-sided score 100%; lines of sshd's own races not counted), or
    with --one-sided unless all of A is in B."""
    # imported here: start-up cost: `sshsim diff --help` does not load the event catalogue
    from simulator.logs import parse_lines
    from simulator.logs.formats import resolve_format
    from simulator.verify.diff import diff_events, render

    if input_format is not None:
        try:
            input_format = resolve_format(input_format)
        except ValueError as exc:
            raise BadInputError(str(exc), key="--input-format") from None
    # Each log is held whole (within read_log_lines' bounds): its events share the lines' text.
    a_events = list(parse_lines(read_log_lines(a), input_format=input_format))
    b_events = list(parse_lines(read_log_lines(b), input_format=input_format))
    result = diff_events(a_events, b_events)
    colour = use_colour(color)
    text = render(result, str(a), str(b), color=colour, a_names=_report_names(names_a, "--names-a"),
                  b_names=_report_names(names_b, "--names-b"))
    if summary:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("  "))
    click.echo(text, color=colour)
    return EXIT_OK if (result.complete if one_sided else result.both_ways) else EXIT_FAILED


def _report_names(path: Path | None, option: str) -> dict[int, str] | None:
    """Client port -> "ID (PROFILE)" from a JSON run report (untrusted: bounded, checked)."""
    # imported here: start-up cost: as in `diff` above
    from simulator.verify.diff import run_names

    if path is None:
        return None
    data = read_run_report(path, option)
    scenarios = data["scenarios"]
    names: dict[int, str] = {}
    for scenario in scenarios:
        connections = scenario.get("connections") if isinstance(scenario, dict) else None
        if isinstance(connections, dict):
            names.update(run_names(connections))
    return names
