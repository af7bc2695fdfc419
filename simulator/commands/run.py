"""`sshsim run`: play scenarios against a target sshd, save its log, verify the expectations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from simulator.colour import colour_option, paint, use_colour
from simulator.commands import sshdconfig
from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError, Interrupted, OutputError, SshsimError
from simulator.io import atomic_write_text, check_output, write_lines


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
@sshdconfig.sshd_config_option
@colour_option
def run(scenarios: tuple[Path, ...], log_out: Path | None, report: tuple[tuple[str, Path], ...],
        target: str | None, variables: tuple[str, ...], force: bool, no_verify: bool, sshd_config: Path | None,
        color: bool | None) -> int:
    """Run SCENARIO files against a real sshd; exit 0 if every expectation holds, 1 if not, 2 for bad input."""
    from simulator.scenario import load_scenarios

    # Every output is checked (not there without --force, no link, a writable folder) before
    # anything is read or run: a wrong path costs milliseconds, not the run.
    for path in ([log_out] if log_out else []) + [path for _, path in report]:
        check_output(path, force)
    context = parse_vars(variables)
    # Read every file first: a typo in the third must not cost the runs of the first two.
    plans = [scenario for path in scenarios for scenario in load_scenarios(str(path), context)]
    user_config = sshdconfig.load(sshd_config)
    for scenario in plans:
        # LogLevel is sshsim's only when the scenario names one (server.log_level).
        sshdconfig.use(scenario.server, user_config, log_level_asked=scenario.server.own_log_level)
    from simulator.verify.outcome import ScenarioOutcome, render_failures

    outcomes: list[ScenarioOutcome] = []
    all_lines: list[str] = []
    partial: list[str] = []
    try:
        for scenario in plans:
            outcome = asyncio.run(_run_one(scenario, target, verify=not no_verify, partial=partial))
            partial.clear()
            outcomes.append(outcome)
            all_lines.extend(outcome.lines)
            _print_outcome(outcome, color)
    except KeyboardInterrupt:
        # SIGINT or SIGTERM (simulator/cli.py): keep the log so far and the finished scenarios' reports.
        kept, problems = _write_results(log_out, all_lines + partial, report, outcomes, force)
        raise Interrupted("; ".join(([f"kept {', '.join(kept)}"] if kept else []) + problems)) from None
    kept, problems = _write_results(log_out, all_lines, report, outcomes, force)
    if problems:
        raise OutputError("; ".join(problems))
    failed = [o for o in outcomes if not o.ok]
    passed = len(outcomes) - len(failed)
    click.echo(f"{passed} passed, {len(failed)} failed", err=False)
    if failed:
        colour = use_colour(color, err=True)
        click.echo(render_failures(failed, color=colour), err=True, color=colour)
        return EXIT_FAILED
    return EXIT_OK


def _write_results(log_out: Path | None, lines: list[str], report: tuple[tuple[str, Path], ...],
                   outcomes: list[Any], force: bool) -> tuple[list[str], list[str]]:
    """Write the log and every report, each on its own: one that cannot be written (a full disk)
    does not cost the others. Returns (what was written, one-line problems)."""
    from simulator.verify.reports import render_report

    kept: list[str] = []
    problems: list[str] = []
    jobs: list[tuple[Path, Any]] = []
    if log_out and lines:
        jobs.append((log_out, lambda: write_lines(log_out, lines, force=force)))
    for fmt, path in report:
        jobs.append((path, lambda fmt=fmt, path=path: atomic_write_text(path, render_report(fmt, outcomes),
                                                                       force=force)))
    for path, write in jobs:
        try:
            write()
            kept.append(str(path))
        except SshsimError as exc:
            problems.append(str(exc))
    return kept, problems


def _print_outcome(outcome: Any, color: bool | None) -> None:
    mark = "PASS" if outcome.ok else "FAIL"
    colour = use_colour(color)
    mark = paint(mark, colour, fg="green" if outcome.ok else "red", bold=True)
    click.echo(f"{mark} {outcome.name} ({outcome.duration:.2f} s, {len(outcome.lines)} log lines)", color=colour)


async def _run_one(scenario: Any, target: str | None, verify: bool, partial: list[str] | None = None) -> Any:
    """One scenario on its own target. `partial` receives the log captured so far when the run
    is cancelled (SIGINT, SIGTERM), before the target stops."""
    from simulator.driver.runner import run_scenario
    from simulator.target.factory import make_target
    from simulator.verify.outcome import ScenarioOutcome
    from simulator.verify.verifier import ParsedLog, verify_run

    import time

    started = time.monotonic()
    sshdconfig.say_notice(scenario.server)
    server = make_target(scenario.server, target or scenario.target)
    # Not in a thread: a cancellation (SIGTERM) must find the target either not started or
    # started and then stopped below, never still starting in a thread nobody waits for.
    server.start()
    try:
        result = await run_scenario(scenario, server)
        # One snapshot: the classic lines are the log file the user gets (and what failures
        # quote); the verifier parses the records themselves, not that text again.
        records = server.log.records
        host = server.log.host
        lines = [r.classic(host) for r in records]
    except BaseException:
        if partial is not None:
            try:
                server.log.flush(timeout=1.0)
            except (OSError, TimeoutError):
                pass
            partial[:] = server.log.lines()
        raise
    finally:
        await asyncio.to_thread(server.stop)
    failures = verify_run(scenario, lines, result, ParsedLog.from_records(records, host)) if verify else []
    errors = result.errors
    return ScenarioOutcome(name=scenario.name, path=scenario.path, lines=lines, failures=failures,
                           errors=errors, duration=time.monotonic() - started, run=result)
