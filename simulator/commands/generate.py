"""`sshsim generate SPEC -o OUT`: a realistic sshd log corpus and its ground-truth labels.

The spec (YAML, jinja2) says what traffic to make; every line comes from a real sshd run, and
OUT.labels.jsonl says, per connection, what it was and which lines of OUT are its own.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from simulator import progress as display
from simulator.colour import colour_option
from simulator.commands import sshdconfig
from simulator.commands.run import parse_vars
from simulator.errors import EXIT_OK
from simulator.io import check_output


def write_export(kind: str, folder: Path, log: Path, labels: Path, spec: Any, force: bool) -> Path:
    """The corpus as fixtures in a tool's own test layout (simulator/generate/export.py)."""
    # imported here: start-up cost: only with --export
    from simulator.generate.export import export_crowdsec, export_fail2ban

    if kind == "fail2ban":
        return export_fail2ban(log, labels, spec.format, spec.start.year, folder, force=force)
    # imported here: start-up cost: the detection tools' knowledge only for a crowdsec export
    from simulator.detect.matrix import crowdsec_expected
    from simulator.detect.truth import load_truth

    alerts, _ = crowdsec_expected(load_truth(log, labels, spec.format, spec.start.year))
    return export_crowdsec(log, labels, spec.format, spec.name, folder, len(alerts), force=force)


@click.command("generate")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The log to write; labels go to OUTPUT.labels.jsonl.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the spec's `seed`, else 0).")
@click.option("--engine", type=click.Choice(["synthetic", "real"]), default=None,
              help="synthetic: record each kind of connection once and replay it (fast); "
                   "real: run every connection against the sshd.")
@click.option("--target", default=None,
              help="sshd to record against: local (default), local:VERSION (an upstream build) or docker[:IMAGE].")
@click.option("--format", "fmt", default=None, metavar="FORMAT[,FORMAT...]",
              help="Output format: syslog, rfc3339, rfc5424, journal-json or jsonl (default: the spec's, else "
                   "syslog). Several, comma-separated, come from one recording, each to OUTPUT.FORMAT "
                   "(day.log.syslog, day.log.rfc5424, ...) with its own labels file.")
@click.option("--log-level", default=None,
              type=click.Choice(["QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3"],
                                case_sensitive=False),
              help="sshd LogLevel (default: the spec's, else INFO).")
@click.option("--jobs", "parallel", type=click.IntRange(1, 64), default=8, show_default=True,
              help="sshd servers recording in parallel.")
@click.option("--recordings", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep recordings in this folder and reuse them (identical output at DEBUG levels too).")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="jinja2 variable of the spec; repeatable.")
@click.option("--export", "export", nargs=2, type=(str, click.Path(file_okay=False, path_type=Path)), default=None,
              metavar="fail2ban|crowdsec DIR",
              help="Also write the corpus as test fixtures in a tool's layout: fail2ban's sample log DIR/logs/sshd "
                   "(a `# failJSON` line before each line: match true, host and time where the sshd filter must "
                   "count a failure, match false elsewhere), or crowdsec's hubtest DIR/.tests/sshsim-NAME/ (log, "
                   "config.yaml, parser.assert, scenario.assert); from a syslog or rfc3339 output.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT and its labels file if they exist.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@sshdconfig.sshd_config_option
@display.progress_option
@colour_option
def generate(spec: Path, output: Path, seed: int | None, engine: str | None, target: str | None,
             fmt: str | None, log_level: str | None, parallel: int, recordings: Path | None,
             variables: tuple[str, ...], export: tuple[str, Path] | None, force: bool, quiet: bool,
             sshd_config: Path | None,
             progress: bool | None, color: bool | None) -> int:
    """Generate a labelled sshd log corpus from SPEC (exit 0 done, 1 the sshd failed, 2 bad input).

    `--format syslog,rfc5424` writes one output per format, from one recording."""
    # imported here: start-up cost: `sshsim generate --help` loads no generator (jinja2, catalogue, targets)
    from simulator.generate import apply_overrides, load_spec, output_paths, parse_formats
    from simulator.generate import generate as run_generate

    formats = parse_formats(fmt) if fmt is not None else None
    for _, log_path, labels_path in output_paths(output, formats or ["syslog"]):
        check_output(log_path, force)
        check_output(labels_path, force)
    loaded = apply_overrides(load_spec(str(spec), parse_vars(variables)), seed=seed, engine=engine, target=target,
                             format=formats[0] if formats else None, log_level=log_level)
    if export is not None:
        # imported here: start-up cost: as above
        from simulator.generate.export import check_export

        check_export(export[0], export[1], loaded.format, force, loaded.name)
    # The corpus is at the spec's level, so sshsim sets LogLevel in the user's file.
    loaded.sshd_config_file = sshdconfig.load(sshd_config)
    if loaded.sshd_config_file is not None and not quiet:
        # imported here: start-up cost: as above
        from simulator.target.base import ServerSpec

        sshdconfig.say_notice(ServerSpec(config_file=loaded.sshd_config_file, log_level=loaded.log_level))
    started = time.monotonic()

    def say(message: str) -> None:
        if not quiet:
            click.echo(f"sshsim generate: {message}", err=True)

    # SIGTERM ends it as Ctrl-C does (simulator/cli.py): recordings stop, and a corpus being
    # written is kept up to its last whole line (errors.Interrupted says so, on one line).
    # On a terminal (or with --progress) the counted steps are bars; messages still print above.
    display.configure(False if quiet else progress, color)
    with display.Steps() as bars:
        result = run_generate(loaded, output, force=force, parallel=parallel, progress=say, formats=formats,
                              recordings=recordings, steps=bars.update if bars.active else None)
    if export is not None:
        # imported here: start-up cost: as above
        fixture = write_export(export[0], export[1], result.log, result.labels, loaded, force)
        say(f"{export[0]} fixture: {fixture}")
    logs = ", ".join(str(log_path) for _, log_path, _ in result.outputs)
    labels = ", ".join(str(labels_path) for _, _, labels_path in result.outputs)
    click.echo(f"wrote {result.lines} lines, {result.connections} connections ({result.recordings} "
               f"{'recordings' if result.engine == 'synthetic' else 'sshd runs'}, {result.engine} engine, "
               f"seed {loaded.seed}) to {logs} in {time.monotonic() - started:.1f} s; labels: {labels}")
    return EXIT_OK

