"""`sshsim run`: play scenarios against a target sshd, save its log, verify the expectations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from simulator import progress as display
from simulator.colour import colour_option, paint, use_colour
from simulator.commands import sshdconfig
from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError, Interrupted, OutputError, SshsimError, TargetError
from simulator.io import atomic_write_text, check_output, safe_file_name, write_lines
from simulator.verify.outcome import ScenarioOutcome, render_failures


def parse_vars(pairs: tuple[str, ...]) -> dict[str, Any]:
    """--var NAME=VALUE (VALUE read as YAML, so numbers and lists work; nesting and aliases bounded)."""
    # imported here: start-up cost: PyYAML only for --var (`verify` and the pytest plugin load this module)
    import yaml

    from simulator.yamlread import check_yaml_shape

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
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write one captured log per scenario and matrix cell into this folder.")
@click.option("--report", "report", nargs=2, type=(click.Choice(["json", "junit", "html", "text"]),
              click.Path(dir_okay=False, path_type=Path)), multiple=True, metavar="FORMAT FILE",
              help="Also write a report: json, junit, html or text; repeatable. Replaces the file, "
                   "as pytest's --junitxml does.")
@click.option("--target", default=None,
              help="Override the scenarios' target: local, local:VERSION (an upstream OpenSSH build, e.g. "
                   "local:10.3p1, built on first use) or docker[:IMAGE].")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="jinja2 variable; repeatable.")
@click.option("--force", is_flag=True, help="Overwrite --log-out and --log-dir logs that exist.")
@click.option("--no-verify", is_flag=True, help="Only run and capture; do not check expectations.")
@sshdconfig.sshd_config_option
@colour_option
@display.progress_option
def run(scenarios: tuple[Path, ...], log_out: Path | None, log_dir: Path | None,
        report: tuple[tuple[str, Path], ...], target: str | None, variables: tuple[str, ...], force: bool,
        no_verify: bool, sshd_config: Path | None, color: bool | None, progress: bool | None) -> int:
    """Run SCENARIO files against a real sshd; exit 0 if every expectation holds, 1 if not, 2 for bad input."""
    # imported here: start-up cost: `sshsim run --help` does not load scenarios (jinja2, jsonschema)
    from simulator.scenario import load_scenarios

    # Every output is checked (no link, a writable folder; a log not there without --force)
    # before anything is read or run: a wrong path costs milliseconds, not the run. Reports are
    # replaced run after run, as pytest's --junitxml is; a captured log never is without --force.
    if log_out:
        check_output(log_out, force)
    for _, path in report:
        check_output(path, True)
    context = parse_vars(variables)
    # Read every file first: a typo in the third must not cost the runs of the first two.
    plans = [scenario for path in scenarios for scenario in load_scenarios(str(path), context)]
    user_config = sshdconfig.load(sshd_config)
    for scenario in plans:
        # LogLevel is sshsim's only when the scenario names one (server.log_level).
        sshdconfig.use(scenario.server, user_config, log_level_asked=scenario.server.own_log_level)
    display.configure(progress, color)
    log_paths = scenario_log_paths(log_dir, plans, force) if log_dir else {}
    results = _Results(log_out, report, log_paths, force)
    environment: SshsimError | None = None
    said_last: ScenarioOutcome | None = None  # its error is the command's last line
    partial: list[str] = []
    current: Any = None
    started = time.monotonic()
    try:
        for current in plans:
            started = time.monotonic()
            partial.clear()
            try:
                with display.status(f"running {current.name} ({len(results.outcomes) + 1}/{len(plans)})"):
                    outcome = asyncio.run(_run_one(current, target, verify=not no_verify, partial=partial))
            except SshsimError as exc:
                # The target did not start (sshd refused the config, no engine, no port): nothing
                # to judge, but the next scenario may run. An <error>, and on we go; a problem of
                # the input or the machine still decides the exit code (2) once all have run.
                outcome = error_outcome(current, str(exc), partial, started)
                if not isinstance(exc, TargetError) and environment is None:
                    environment, said_last = exc, outcome
            results.add(outcome)
            _print_outcome(outcome, color)
        current = None
    except KeyboardInterrupt:
        # SIGINT or SIGTERM (simulator/cli.py): the scenario cut short is an error with the log so
        # far; the summary, the logs and every report are still written.
        if current is not None:
            results.add(error_outcome(current, "interrupted before its run ended", partial, started))
        kept, problems = results.finish()
        raise Interrupted("; ".join(([f"kept {', '.join(kept)}"] if kept else []) + problems)) from None
    except BaseException:
        # Bad input met only at start (a user name), a bug: what finished is still reported.
        results.finish()
        raise
    kept, problems = results.finish()
    if problems:
        raise OutputError("; ".join(problems))
    failed = [o for o in results.outcomes if not o.ok]
    told = [o for o in failed if o is not said_last]
    if told:
        colour = use_colour(color, err=True)
        click.echo(render_failures(told, color=colour), err=True, color=colour)
    if environment is not None:
        raise environment
    if failed:
        return EXIT_FAILED
    return EXIT_OK


def error_outcome(scenario: Any, error: str, lines: list[str], started: float) -> ScenarioOutcome:
    """The outcome of a scenario whose run could not be judged (a JUnit <error>)."""
    return ScenarioOutcome(name=scenario.name, path=scenario.path, lines=list(lines), errors=[error],
                           duration=time.monotonic() - started, scenario=base_name(scenario),
                           cell=scenario.cell, plan=scenario)


def base_name(scenario: Any) -> str:
    """The scenario's name without its matrix cell."""
    return scenario.name.removesuffix(f"[{scenario.cell}]") if scenario.cell else scenario.name


def scenario_log_paths(log_dir: Path, plans: list[Any], force: bool) -> dict[int, Path]:
    """Where `--log-dir` puts each scenario's log (by position in `plans`), all checked now.

    The folder is made when missing (never through a link); each name is made safe from the
    scenario's name and cell (simulator/io.py safe_file_name), so no name leaves the folder."""
    if log_dir.is_symlink():
        raise BadInputError("is a symbolic link; sshsim never writes through one", file=str(log_dir))
    try:
        log_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot make the folder: {exc.strerror}", file=str(log_dir)) from None
    taken: set[str] = set()
    paths = {i: log_dir / safe_file_name(scenario.name, ".log", taken) for i, scenario in enumerate(plans)}
    for path in paths.values():
        check_output(path, force)
    return paths


class _Results:
    """What a run has finished, and the one way it is written out: the summary line, the logs
    and every report, on every exit path (the end, an error, Ctrl-C, SIGTERM)."""

    def __init__(self, log_out: Path | None, report: tuple[tuple[str, Path], ...], log_paths: dict[int, Path],
                 force: bool) -> None:
        self.force = force
        self.log_out = log_out
        self.report = report
        self.log_paths = log_paths
        self.outcomes: list[ScenarioOutcome] = []
        self.lines: list[str] = []
        self.kept: list[str] = []
        self.problems: list[str] = []

    def add(self, outcome: ScenarioOutcome) -> None:
        """One scenario done: its log goes to --log-dir at once (an interruption keeps it)."""
        path = self.log_paths.get(len(self.outcomes))
        self.outcomes.append(outcome)
        self.lines.extend(outcome.lines)
        if path is not None and outcome.lines:
            try:
                write_lines(path, outcome.lines, force=self.force)
            except SshsimError as exc:
                self.problems.append(str(exc))

    def finish(self) -> tuple[list[str], list[str]]:
        """The summary line, then the log and every report; returns (written, problems)."""
        outcomes = self.outcomes
        counts = {k: sum(o.status == k for o in outcomes) for k in ("pass", "fail", "error", "skip")}
        summary = f"{counts['pass']} passed, {counts['fail']} failed"
        if counts["skip"]:
            summary += f", {counts['skip']} skipped"
        if counts["error"]:
            summary += f", {counts['error']} {'error' if counts['error'] == 1 else 'errors'}"
        click.echo(summary)
        kept, problems = _write_results(self.log_out, self.lines, self.report, outcomes, self.force)
        if self.log_paths and any(o.lines for o in outcomes):
            # Said after --log-out and before the reports, in the order of the options' help.
            at = 1 if self.log_out is not None and str(self.log_out) in kept else 0
            kept.insert(at, str(next(iter(self.log_paths.values())).parent))
        return kept, self.problems + problems


def _write_results(log_out: Path | None, lines: list[str], report: tuple[tuple[str, Path], ...],
                   outcomes: list[Any], force: bool = False) -> tuple[list[str], list[str]]:
    """Write the log and every report, each on its own: one that cannot be written (a full disk)
    does not cost the others. Returns (what was written, one-line problems)."""
    # imported here: start-up cost: the reports only when writing them
    from simulator.verify.reports import render_report

    kept: list[str] = []
    problems: list[str] = []
    jobs: list[tuple[Path, Any]] = []
    if log_out and lines:
        jobs.append((log_out, lambda: write_lines(log_out, lines, force=force)))
    for fmt, path in report:
        jobs.append((path, lambda fmt=fmt, path=path: atomic_write_text(path, render_report(fmt, outcomes),
                                                                       force=True)))
    for path, write in jobs:
        try:
            write()
            kept.append(str(path))
        except SshsimError as exc:
            problems.append(str(exc))
    return kept, problems


def _print_outcome(outcome: Any, color: bool | None) -> None:
    mark = outcome.status.upper()
    colour = use_colour(color)
    mark = paint(mark, colour, fg="yellow" if outcome.status == "skip" else "green" if outcome.ok else "red", bold=True)
    if outcome.status == "skip":
        click.echo(f"{mark} {outcome.name}: {outcome.skipped[0].reason}", color=colour)
        return
    click.echo(f"{mark} {outcome.name} ({outcome.duration:.2f} s, {len(outcome.lines)} log lines)", color=colour)
    for skip in outcome.skipped:
        click.echo(f"  skipped: {skip.headline()}", color=colour)


async def _run_one(scenario: Any, target: str | None, verify: bool, partial: list[str] | None = None) -> Any:
    """One scenario on its own target. `partial` receives the log captured so far when the run
    is cancelled (SIGINT, SIGTERM), before the target stops."""
    sshdconfig.say_notice(scenario.server)
    started = time.monotonic()
    server = start_target(scenario, target)
    try:
        return await play(scenario, server, verify, partial, started)
    finally:
        await asyncio.to_thread(server.stop)


def start_target(scenario: Any, target: str | None) -> Any:
    """The scenario's target, started (a TargetError or EnvironmentProblem when it cannot be).

    Not in a thread: a cancellation (SIGTERM) must find the target either not started or
    started and then stopped by the caller, never still starting in a thread nobody waits for."""
    # imported here: start-up cost: the targets (asyncssh) only when a server starts
    from simulator.target.factory import make_target

    server = make_target(scenario.server, target or scenario.target)
    server.start()
    return server


async def play(scenario: Any, server: Any, verify: bool, partial: list[str] | None = None,
               started: float | None = None) -> ScenarioOutcome:
    """Play `scenario` against a started `server` and judge what it logged; the caller stops the
    server. Shared by `sshsim run` and the pytest plugin (simulator/pytest_plugin.py)."""
    # imported here: start-up cost: the driver (asyncssh) and verifier only when a scenario plays
    from simulator.driver.runner import run_scenario
    from simulator.verify.applies import for_version, scenario_skip
    from simulator.verify.verifier import ParsedLog, verify_run

    started = time.monotonic() if started is None else started
    version = getattr(server, "version", "") or ""
    whole = scenario_skip(scenario, version)
    if whole is not None:
        # Not for this sshd: nothing is played, and the report says why (not a pass, not a failure).
        return ScenarioOutcome(name=scenario.name, path=scenario.path, lines=[], duration=time.monotonic() - started,
                               scenario=base_name(scenario), cell=scenario.cell, plan=scenario, skipped=[whole],
                               version=version)
    applicable, skipped = for_version(scenario, version)
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
    failures = verify_run(applicable, lines, result, ParsedLog.from_records(records, host)) if verify else []
    return ScenarioOutcome(name=scenario.name, path=scenario.path, lines=lines, failures=failures,
                           errors=result.errors, duration=time.monotonic() - started, run=result,
                           scenario=base_name(scenario), cell=scenario.cell, plan=scenario,
                           skipped=skipped if verify else [], version=version)
