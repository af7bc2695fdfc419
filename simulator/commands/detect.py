"""`sshsim detect SPEC --tool fail2ban[:FILTER] --tool crowdsec --target T,... --format F,...`:
the spec's corpus generated per target (one recording, every format), each real tool run on
each output, and the tool scored against the labels: recall and precision of the failed-auth
lines, and of the sources a real deployment would ban or alert on.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from simulator.commands.run import parse_vars
from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError
from simulator.io import atomic_write_text, check_output


def _split(values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            if part.strip() and part.strip() not in out:
                out.append(part.strip())
    return out


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(cells: list[Any]) -> str:
    """The cells as a text table: tool x OpenSSH version x format."""
    head: tuple[str, ...] = ("tool", "target", "OpenSSH", "format", "lines recall", "precision", "hit/labelled/found",
            "sources recall", "precision", "hit/labelled/found")
    drops = any(c.drops.expected for c in cells)  # a column only where the corpora have drop lines
    if drops:
        head += ("drop lines counted",)
    rows: list[tuple[str, ...]] = [head]
    for c in cells:
        row = (c.tool, c.target, c.version, c.format, _ratio(c.lines.recall), _ratio(c.lines.precision),
               f"{c.lines.hit}/{c.lines.expected}/{c.lines.found}", _ratio(c.sources.recall),
               _ratio(c.sources.precision), f"{c.sources.hit}/{c.sources.expected}/{c.sources.found}")
        rows.append(row + ((f"{c.drops.hit}/{c.drops.expected}",) if drops else ()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows)


@click.command("detect")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tool", "tools", multiple=True, metavar="TOOL",
              help="fail2ban[:FILTER] (fail2ban-regex with /etc/fail2ban/filter.d/FILTER.conf, default sshd; "
                   "options as fail2ban writes them, sshd[mode=aggressive]) or crowdsec (file replay with the "
                   "sshd parsers and ssh-bf scenarios of Debian's hub snapshot); repeatable "
                   "(default: fail2ban:sshd and crowdsec).")
@click.option("--target", "targets", multiple=True, metavar="T[,T...]",
              help="sshd(s) to record against: local, local:VERSION, docker[:IMAGE]; comma-separated or "
                   "repeated (default: the spec's).")
@click.option("--format", "formats", multiple=True, metavar="F[,F...]",
              help="Output format(s) to score: syslog, rfc3339, rfc5424, journal-json, jsonl (default: the spec's).")
@click.option("--report", "report", nargs=2, type=(click.Choice(["json"]), click.Path(dir_okay=False, path_type=Path)),
              default=None, metavar="json FILE", help="Also write the cells as JSON.")
@click.option("--min-recall", type=click.FloatRange(0, 1), default=None,
              help="Exit 1 when a cell's line recall is below this (default: a table is a measurement; exit 0).")
@click.option("--seed", type=int, default=None, help="Random seed (default: the spec's).")
@click.option("--recordings", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep recordings in this folder and reuse them (as generate --recordings).")
@click.option("--jobs", "parallel", type=click.IntRange(1, 64), default=8, show_default=True,
              help="sshd servers recording in parallel.")
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="jinja2 variable of the spec; repeatable.")
@click.option("--force", is_flag=True, help="Overwrite the report file if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def detect(spec: Path, tools: tuple[str, ...], targets: tuple[str, ...], formats: tuple[str, ...],
           report: tuple[str, Path] | None, min_recall: float | None, seed: int | None, recordings: Path | None,
           parallel: int, variables: tuple[str, ...], force: bool, quiet: bool) -> int:
    """Score real detectors (fail2ban, crowdsec) on corpora generated from SPEC, per tool x OpenSSH
    version x format (exit 0 measured, 1 a cell below --min-recall or a tool failed, 2 bad input)."""
    # imported here: start-up cost: `sshsim detect --help` loads no generator (jinja2, catalogue, targets)
    from simulator.detect import parse_tool, run_matrix
    from simulator.generate import apply_overrides, load_spec, parse_formats

    if report is not None:
        check_output(report[1], force)
    chosen = [parse_tool(t) for t in (_split(tools) or ["fail2ban:sshd", "crowdsec"])]
    loaded = apply_overrides(load_spec(str(spec), parse_vars(variables)), seed=seed)
    wanted_formats = parse_formats(",".join(_split(formats))) if _split(formats) else [loaded.format]
    wanted_targets = _split(targets) or [loaded.target]
    for target in wanted_targets:
        apply_overrides(loaded, target=target)  # an unknown kind of target is bad input before anything runs
    if not chosen:
        raise BadInputError("no tool given", key="--tool")

    def say(message: str) -> None:
        if not quiet:
            click.echo(f"sshsim detect: {message}", err=True)

    folder = Path(tempfile.mkdtemp(prefix="sshsim-detect-"))
    try:
        cells = run_matrix(loaded, chosen, wanted_targets, wanted_formats, folder, parallel=parallel,
                           recordings=recordings, progress=say)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    click.echo(table(cells))
    if report is not None:
        atomic_write_text(report[1], json.dumps({"spec": str(spec), "seed": loaded.seed,
                                                 "cells": [c.to_dict() for c in cells]}, indent=2) + "\n",
                          force=force)
    if min_recall is not None and any(c.lines.recall is not None and c.lines.recall < min_recall for c in cells):
        return EXIT_FAILED
    return EXIT_OK
