"""`sshsim matrix`: the same scenarios on several targets, one table, and what each logs differently.

Each target runs as its own `sshsim run` process (the command users know, with its reports
and logs): a local target's sshd lives in namespaces its process owns, a Docker target's
container is stopped by its process, so nothing is shared between targets and their clean-up
on Ctrl-C or SIGTERM is `run`'s own. The processes are in sessions of their own, so a Ctrl-C
reaches this process only, and it passes one SIGINT to every run still going (for a SIGTERM
too: `run` cleans up the same way for both), then waits for each to clean up. At most as many targets run at once as the
machine has cores.

What differs between targets is read from each run's log with the engine's view of a run
(simulator/verify/connection_events.py): per scenario and connection, the events some targets
logged and others did not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree as ET

import click

import simulator
from simulator import progress as display
from simulator.colour import colour_option, paint, use_colour
from simulator.commands.logio import read_log_lines, read_run_report
from simulator.commands.run import parse_vars, scenario_log_paths
from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError, Interrupted, SshsimError
from simulator.io import atomic_write_text, check_output
from simulator.limits import MAX_REPORT_BYTES, quote

STATUSES = ("pass", "fail", "skip", "error")
# How long a run may take to clean up after the signal passed on to it (sshd stops in well
# under a second; a Docker container in a few), before it is killed.
STOP_WAIT_SECONDS = 60.0


@dataclass
class TargetRun:
    """One target's `sshsim run` process and what it left in its folder."""

    label: str
    target: str
    folder: Path
    proc: subprocess.Popen | None = None
    started: float = 0.0
    duration: float = 0.0
    report: dict[str, Any] | None = None
    problem: str = ""
    files: list[IO[bytes]] = field(default_factory=list)

    @property
    def report_path(self) -> Path:
        return self.folder / "report.json"

    @property
    def junit_path(self) -> Path:
        return self.folder / "junit.xml"

    @property
    def log_dir(self) -> Path:
        return self.folder / "logs"

    def output(self, name: str) -> str:
        """What the run wrote on stdout or stderr (its last MAX_REPORT_BYTES at most)."""
        path = self.folder / name
        try:
            with open(path, "rb") as fh:
                fh.seek(max(0, path.stat().st_size - MAX_REPORT_BYTES))
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""


@dataclass
class Cell:
    """One scenario on one target."""

    status: str
    message: str = ""
    events: dict[str, set[str]] = field(default_factory=dict)


@click.command("matrix")
@click.argument("scenarios", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--targets", "targets_text", required=True, metavar="T1,T2,...",
              help="Comma-separated targets, as run's --target takes them (local, docker:debian-13, ...); "
                   "one may be named twice.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the table, the differences and every run's report as JSON.")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write JUnit XML: one test suite per target.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE", help="jinja2 variable; repeatable.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Targets run at once (default: the number of cores).")
@click.option("--force", is_flag=True, help="Overwrite --json and --junit files that exist.")
@colour_option
@display.progress_option
def matrix(scenarios: tuple[Path, ...], targets_text: str, json_out: Path | None, junit_out: Path | None,
           variables: tuple[str, ...], jobs: int | None, force: bool, color: bool | None,
           progress: bool | None) -> int:
    """Run SCENARIO files on every target; exit 0 if all pass everywhere, 1 if not, 2 for bad input."""
    # imported here: start-up cost: `sshsim matrix --help` does not load scenarios (jinja2, jsonschema)
    from simulator.scenario import load_scenarios

    targets = parse_targets(targets_text)
    for path in (json_out, junit_out):
        if path is not None:
            check_output(path, force)
    context = parse_vars(variables)
    # Every file is read (and every template rendered) now: a typo is exit 2 before any sshd starts.
    plans = [scenario for path in scenarios for scenario in load_scenarios(str(path), context)]
    display.configure(progress, color)
    root = Path(tempfile.mkdtemp(prefix="sshsim-matrix-"))
    try:
        runs = [TargetRun(label, target, root / f"target-{i}") for i, (label, target) in enumerate(targets)]
        log_names: dict[int, Path] = {}
        for run in runs:
            run.folder.mkdir()
            log_names = scenario_log_paths(run.log_dir, plans, False)
        extra = [arg for pair in variables for arg in ("--var", pair)]
        _run_all(runs, scenarios, extra, jobs or os.cpu_count() or 1)
        names = [scenario.name for scenario in plans]
        cells = {run.label: _cells(run, names, log_names) for run in runs}
        _show(names, runs, cells, color)
        _write(json_out, junit_out, names, runs, cells, force)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    bad = any(cell.status in ("fail", "error") for column in cells.values() for cell in column)
    return EXIT_FAILED if bad else EXIT_OK


def parse_targets(text: str) -> list[tuple[str, str]]:
    """(label, target) for each name of --targets, each checked by the target factory now (an
    unknown one is exit 2 before anything runs). A target named twice is labelled `T#2`."""
    # imported here: start-up cost: the target factory only once a matrix is asked for
    from simulator.target.base import ServerSpec
    from simulator.target.factory import make_target

    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for name in (part.strip() for part in text.split(",")):
        if not name:
            raise BadInputError(f"an empty target name in {text!r}", key="--targets")
        try:
            make_target(ServerSpec(), name)  # made, not started: only the name is checked
        except BadInputError as exc:
            raise BadInputError(exc.message, key="--targets") from None
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", name))
    return out


def _command(run: TargetRun, scenarios: tuple[Path, ...], extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "simulator", "run", *map(str, scenarios), "--target", run.target,
            "--log-dir", str(run.log_dir), "--report", "json", str(run.report_path),
            "--report", "junit", str(run.junit_path), "--no-progress", "--no-color", *extra]


def _environment() -> dict[str, str]:
    """This process's environment, with this very `simulator` package first on the path."""
    env = dict(os.environ)
    here = str(Path(simulator.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([here, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    return env


def _progress(text: str) -> None:
    if display.enabled():
        click.echo(f"matrix: {text}", err=True)


def _start(run: TargetRun, scenarios: tuple[Path, ...], extra: list[str], env: dict[str, str]) -> None:
    run.files = [open(run.folder / "stdout", "wb"), open(run.folder / "stderr", "wb")]
    run.started = time.monotonic()
    # A session of its own: the terminal's Ctrl-C reaches this process, which passes it on once.
    run.proc = subprocess.Popen(_command(run, scenarios, extra), stdin=subprocess.DEVNULL, stdout=run.files[0],
                                stderr=run.files[1], env=env, start_new_session=True)
    _progress(f"{run.label}: started")


def _finished(run: TargetRun) -> None:
    run.duration = time.monotonic() - run.started
    for fh in run.files:
        fh.close()
    run.files = []
    last = run.output("stdout").strip().splitlines()
    _progress(f"{run.label}: {last[-1] if last else 'no result'} ({run.duration:.1f} s)")


def _run_all(runs: list[TargetRun], scenarios: tuple[Path, ...], extra: list[str], jobs: int) -> None:
    """Every target's run, at most `jobs` at once; on Ctrl-C or SIGTERM each run still going
    gets the signal once and is waited for, so that every sshd and container is gone."""
    env = _environment()
    waiting = list(runs)
    going: list[TargetRun] = []
    try:
        while waiting or going:
            while waiting and len(going) < jobs:
                run = waiting.pop(0)
                _start(run, scenarios, extra, env)
                going.append(run)
            for run in list(going):
                assert run.proc is not None
                if run.proc.poll() is not None:
                    going.remove(run)
                    _finished(run)
            if going:
                try:
                    going[0].proc.wait(timeout=0.1)  # type: ignore[union-attr]
                except subprocess.TimeoutExpired:
                    pass
    except KeyboardInterrupt:
        # SIGINT or SIGTERM (simulator/cli.py): `run` cleans up the same way for either.
        _stop(going, signal.SIGINT)
        raise Interrupted(f"stopped the runs on {', '.join(r.label for r in going)}" if going else "") from None
    except BaseException:
        _stop(going, signal.SIGTERM)
        raise


def _stop(going: list[TargetRun], signum: signal.Signals) -> None:
    """Pass `signum` to each run once, then wait for each (killed after STOP_WAIT_SECONDS)."""
    for run in going:
        if run.proc is not None and run.proc.poll() is None:
            run.proc.send_signal(signum)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    for run in going:
        if run.proc is None:
            continue
        while True:
            try:
                run.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                run.proc.kill()
            except KeyboardInterrupt:
                continue  # a second Ctrl-C: the runs are already stopping; keep waiting
        for fh in run.files:
            fh.close()
        run.files = []


def _cells(run: TargetRun, names: list[str], log_names: dict[int, Path]) -> list[Cell]:
    """Each scenario's cell on `run`'s target, from its JSON report and logs."""
    if run.report_path.exists():
        try:
            run.report = read_run_report(run.report_path)
        except SshsimError as exc:
            run.problem = str(exc)
    if run.report is None and not run.problem:
        err = run.output("stderr").strip().splitlines()
        code = run.proc.returncode if run.proc else "?"
        run.problem = quote(err[-1]) if err else f"the run ended with exit code {code}"
    reported = run.report["scenarios"] if run.report is not None else []
    cells: list[Cell] = []
    for i, name in enumerate(names):
        entry = reported[i] if i < len(reported) and isinstance(reported[i], dict) else None
        if entry is None or entry.get("name") != name:
            cells.append(Cell("error", run.problem or "did not run"))
            continue
        status = entry.get("status") if entry.get("status") in STATUSES else "error"
        errors = entry.get("errors") or []
        failures = entry.get("failures") or []
        message = (str(errors[0]) if errors else str(failures[0].get("message", "")) if failures
                   and isinstance(failures[0], dict) else "")
        cell = Cell(str(status), quote(message))
        log = run.log_dir / log_names[i].name
        connections = entry.get("connections")
        if log.exists() and isinstance(connections, dict):
            # imported here: start-up cost: the parser only once the runs are done
            from simulator.verify.connection_events import connection_events, event_names

            cell.events = event_names(connection_events(read_log_lines(log), connections))
        cells.append(cell)
    return cells


def differences(names: list[str], cells: dict[str, list[Cell]]) -> dict[str, list[str]]:
    """Scenario -> what its connections logged on some targets and not on others."""
    # imported here: start-up cost: as in _cells
    from simulator.verify.connection_events import differences as compare

    out: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        logged = {label: column[i].events for label, column in cells.items() if column[i].events}
        found = compare(logged)
        if found:
            out[name] = found
    return out


def _show(names: list[str], runs: list[TargetRun], cells: dict[str, list[Cell]], color: bool | None) -> None:
    colour = use_colour(color)
    labels = [run.label for run in runs]
    width = max(len("scenario"), *(len(n) for n in names))
    widths = [max(len(label), 5) for label in labels]
    header = ["scenario".ljust(width), *(label.ljust(w) for label, w in zip(labels, widths, strict=True))]
    click.echo("  ".join(header).rstrip())
    shades = {"pass": "green", "fail": "red", "error": "red", "skip": "yellow"}
    for i, name in enumerate(names):
        row = [name.ljust(width)]
        for label, w in zip(labels, widths, strict=True):
            status = cells[label][i].status
            row.append(paint(status.upper(), colour, fg=shades[status], bold=True) + " " * (w - len(status)))
        click.echo("  ".join(row).rstrip(), color=colour)
    found = differences(names, cells)
    if found:
        click.echo("\nevents that differ between targets:")
        for name, lines in found.items():
            click.echo(f"  {name}:")
            for line in lines:
                click.echo(f"    {line}")
    counts = {s: sum(c.status == s for column in cells.values() for c in column) for s in STATUSES}
    words = {"pass": "passed", "fail": "failed", "skip": "skipped",
             "error": "error" if counts["error"] == 1 else "errors"}
    click.echo("\n" + ", ".join(f"{counts[s]} {words[s]}" for s in STATUSES if counts[s] or s in ("pass", "fail")))
    err_colour = use_colour(color, err=True)
    for run in runs:
        if any(c.status in ("fail", "error") for c in cells[run.label]):
            said = run.output("stderr").strip()
            click.echo(paint(f"--- {run.label} ---", err_colour, bold=True), err=True, color=err_colour)
            click.echo(said or run.problem or "(nothing said)", err=True)


def as_json(names: list[str], runs: list[TargetRun], cells: dict[str, list[Cell]]) -> str:
    found = differences(names, cells)
    data = {
        "targets": [{"label": run.label, "target": run.target, "duration_s": round(run.duration, 3),
                     "problem": run.problem or None} for run in runs],
        "passed": sum(c.status == "pass" for column in cells.values() for c in column),
        "failed": sum(c.status == "fail" for column in cells.values() for c in column),
        "skipped": sum(c.status == "skip" for column in cells.values() for c in column),
        "errored": sum(c.status == "error" for column in cells.values() for c in column),
        "scenarios": [
            {"name": name,
             "results": {label: {"status": column[i].status, "message": column[i].message or None,
                                 "events": {conn: sorted(ev) for conn, ev in column[i].events.items()}}
                         for label, column in cells.items()},
             "differences": found.get(name, [])}
            for i, name in enumerate(names)
        ],
        "runs": {run.label: run.report for run in runs},
    }
    return json.dumps(data, indent=2) + "\n"


def as_junit(names: list[str], runs: list[TargetRun], cells: dict[str, list[Cell]]) -> str:
    """JUnit XML: each target's run's own suite (run --report junit), named by the target, its
    cases named `SCENARIO [TARGET]`; a target whose run left none gets one <error> a scenario."""
    root = ET.Element("testsuites", name="sshsim matrix")
    for run in runs:
        suite = _read_suite(run)
        if suite is None:
            suite = ET.Element("testsuite", tests=str(len(names)), failures="0", errors=str(len(names)), time="0")
            for name, cell in zip(names, cells[run.label], strict=True):
                case = ET.SubElement(suite, "testcase", classname=name, name=name, time="0")
                ET.SubElement(case, "error", message=cell.message or run.problem or "did not run")
        suite.set("name", run.label)
        for case in suite.iter("testcase"):
            case.set("name", f"{case.get('name', '')} [{run.label}]")
        root.append(suite)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _read_suite(run: TargetRun) -> ET.Element | None:
    """The run's JUnit suite (written by sshsim itself; still read bounded)."""
    try:
        if run.report is None or run.junit_path.stat().st_size > MAX_REPORT_BYTES:
            return None
        suite = ET.fromstring(run.junit_path.read_bytes())
    except (OSError, ET.ParseError):
        return None
    return suite if suite.tag == "testsuite" else None


def _write(json_out: Path | None, junit_out: Path | None, names: list[str], runs: list[TargetRun],
           cells: dict[str, list[Cell]], force: bool) -> None:
    if json_out is not None:
        atomic_write_text(json_out, as_json(names, runs, cells), force=force)
    if junit_out is not None:
        atomic_write_text(junit_out, as_junit(names, runs, cells), force=force)
