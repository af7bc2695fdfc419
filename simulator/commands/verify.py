"""`sshsim verify LOG SCENARIO`: check an existing log against a scenario's expectations."""

from __future__ import annotations

from pathlib import Path

import click

from simulator.colour import colour_option, use_colour
from simulator.commands.logio import read_log_lines
from simulator.errors import EXIT_FAILED, EXIT_OK


@click.command("verify")
@click.argument("log", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="jinja2 variable; repeatable.")
@click.option("--sshd-version", "sshd_version", default=None, metavar="VERSION",
              help="The sshd version that wrote LOG (e.g. 10.3p1), for the scenario's `requires:` "
                   "[default: the version a DEBUG log states].")
@colour_option
def verify(log: Path, scenario: Path, variables: tuple[str, ...], sshd_version: str | None,
           color: bool | None) -> int:
    """Exit 0 when LOG meets every expectation of SCENARIO, 1 when one fails, 2 for bad input.

    The log's connections are paired with the scenario's by client banner and order.
    """
    # imported here: start-up cost: `sshsim verify --help` does not load scenarios or the catalogue
    from simulator.commands.run import parse_vars
    from simulator.scenario import load_scenario
    from simulator.verify.applies import for_version, scenario_skip, version_in_log
    from simulator.verify.outcome import ScenarioOutcome, render_failures, render_skips
    from simulator.verify.verifier import verify_lines

    plan = load_scenario(str(scenario), parse_vars(variables))
    lines = read_log_lines(log)
    version = sshd_version or version_in_log(lines)
    whole = scenario_skip(plan, version)
    if whole is not None:
        click.echo(f"SKIP {plan.name}: {whole.reason}")
        return EXIT_OK
    applicable, skipped = for_version(plan, version)
    failures = verify_lines(applicable, lines)
    outcome = ScenarioOutcome(plan.name, str(scenario), lines, failures, plan=plan, skipped=skipped)
    # The verdict first, then what did not apply (as `run` prints them).
    if failures:
        colour = use_colour(color, err=True)
        click.echo(render_failures([outcome], color=colour), err=True, color=colour)
        click.echo(f"FAIL {plan.name}: {len(failures)} expectation(s) not met")
    else:
        click.echo(f"PASS {plan.name}: every expectation holds ({len(lines)} lines)")
    if skipped:
        click.echo(render_skips([outcome]))
    return EXIT_FAILED if failures else EXIT_OK
