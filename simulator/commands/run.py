"""`sshsim run`: play scenarios against a target sshd, save its log, verify the expectations."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from simulator.errors import BadInputError, SshsimError
from simulator.io import atomic_write_text, refuse_overwrite


def parse_vars(pairs: tuple[str, ...]) -> dict[str, Any]:
    """--var NAME=VALUE (VALUE read as YAML, so numbers and lists work; nesting and aliases bounded)."""
    import yaml

    from simulator.scenario.loader import check_yaml_shape

    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise BadInputError(f"--var expects NAME=VALUE, got {pair!r}")
        check_yaml_shape(value, f"--var {name}")
        try:
            out[name] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            out[name] = value
    return out


@click.command("run")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--log-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the captured sshd log here (classic syslog format).")
@click.option("--report", "report", nargs=2, type=(click.Choice(["json", "junit", "html", "text"]),
              click.Path(dir_okay=False, path_type=Path)), multiple=True, metavar="FORMAT FILE",
              help="Also write a report: json, junit, html or text; repeatable.")
@click.option("--target", default=None, help="Override the scenarios' target: local or docker[:IMAGE].")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="jinja2 variable; repeatable.")
@click.option("--force", is_flag=True, help="Overwrite --log-out and report files that exist.")
@click.option("--no-verify", is_flag=True, help="Only run and capture; do not check expectations.")
@click.option("--color/--no-color", default=None, help="Colour in the failure report (default: on a terminal).")
def run(scenarios: tuple[Path, ...], log_out: Path | None, report: tuple[tuple[str, Path], ...],
        target: str | None, variables: tuple[str, ...], force: bool, no_verify: bool, color: bool | None) -> int:
    """Run SCENARIO files against a real sshd; exit 0 if every expectation holds, 1 if not, 2 for bad input."""
    from simulator.scenario import load_scenarios

    outputs = ([log_out] if log_out else []) + [path for _, path in report]
    for path in outputs:
        refuse_overwrite(path, force)
    context = parse_vars(variables)
    # Read every file first: a typo in the third must not cost the runs of the first two.
    plans = [scenario for path in scenarios for scenario in load_scenarios(str(path), context)]
    from simulator.verify.outcome import ScenarioOutcome, render_failures
    from simulator.verify.reports import write_report

    outcomes: list[ScenarioOutcome] = []
    all_lines: list[str] = []
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        for scenario in plans:
            outcome = asyncio.run(_run_one(scenario, target, verify=not no_verify))
            outcomes.append(outcome)
            all_lines.extend(outcome.lines)
            _print_outcome(outcome, color)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if log_out and all_lines:
            atomic_write_text(log_out, "".join(line + "\n" for line in all_lines))
    for fmt, path in report:
        write_report(fmt, path, outcomes)
    failed = [o for o in outcomes if not o.ok]
    passed = len(outcomes) - len(failed)
    click.echo(f"{passed} passed, {len(failed)} failed", err=False)
    if failed:
        click.echo(render_failures(failed, color=_use_color(color)), err=True)
        return 1
    return 0


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    return sys.stderr.isatty() and os.environ.get("NO_COLOR") is None


def _print_outcome(outcome: Any, color: bool | None) -> None:
    mark = "PASS" if outcome.ok else "FAIL"
    if _use_color(color):
        mark = click.style(mark, fg="green" if outcome.ok else "red", bold=True)
    click.echo(f"{mark} {outcome.name} ({outcome.duration:.2f} s, {len(outcome.lines)} log lines)")


async def _run_one(scenario: Any, target: str | None, verify: bool) -> Any:
    from simulator.driver.runner import run_scenario
    from simulator.target.factory import make_target
    from simulator.verify.outcome import ScenarioOutcome
    from simulator.verify.verifier import verify_run

    import time

    started = time.monotonic()
    server = make_target(scenario.server, target or scenario.target)
    await asyncio.to_thread(server.start)
    try:
        result = await run_scenario(scenario, server)
        lines = server.log.lines()
    except SshsimError:
        raise
    finally:
        await asyncio.to_thread(server.stop)
    failures = verify_run(scenario, lines, result) if verify else []
    errors = result.errors
    return ScenarioOutcome(name=scenario.name, path=scenario.path, lines=lines, failures=failures,
                           errors=errors, duration=time.monotonic() - started, run=result)
