"""`sshsim compat --sshd-config FILE`: which client profiles still connect to this sshd_config, and why not."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

from simulator.colour import colour_option, use_colour
from simulator.errors import EXIT_FAILED, EXIT_OK, BadInputError
from simulator.io import atomic_write_text, check_output


@click.command("compat")
@click.option("--sshd-config", "sshd_config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The sshd_config to check, used as written (see `sshsim run --help`).")
@click.option("--before", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --after: check both configs and report what changed from OLD to NEW.")
@click.option("--after", type=click.Path(dir_okay=False, path_type=Path), default=None, help="The new config.")
@click.option("--target", default="local", show_default=True,
              help="Where sshd runs: local, or local:VERSION (an upstream build).")
@click.option("--profiles", "profile_spec", default="all", show_default=True, metavar="all|NAME,...",
              help="Client profiles to check (sshsim profiles lists them).")
@click.option("--report", "report", nargs=2, type=(click.Choice(["json", "junit", "html"]),
              click.Path(dir_okay=False, path_type=Path)), multiple=True, metavar="FORMAT FILE",
              help="Also write the table as json, junit or html; repeatable.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An earlier compat JSON report: exit 1 only when something changed against it.")
@click.option("--force", is_flag=True, help="Overwrite report files that exist.")
@colour_option
def compat(sshd_config: Path | None, before: Path | None, after: Path | None, target: str, profile_spec: str,
           report: tuple[tuple[str, Path], ...], baseline: Path | None, force: bool, color: bool | None) -> int:
    """Connect every client profile to a private sshd running the config; exit 0 all connect (or
    nothing changed against --baseline / --before), 1 a failure or change, 2 bad input."""
    # imported here: start-up cost: `sshsim compat --help` does not load the checker (asyncssh, targets)
    from simulator.commands import sshdconfig
    from simulator.compat.check import check, select_profiles
    from simulator.compat.report import changes, load_baseline, render_terminal, to_html, to_json, to_junit

    if (before is None) != (after is None):
        raise BadInputError("--before and --after go together (OLD and NEW config)",
                            key="--before" if before else "--after")
    if before is not None and (sshd_config is not None or baseline is not None):
        raise BadInputError("--before/--after compare two configs; leave out --sshd-config and --baseline",
                            key="--before")
    if before is None and sshd_config is None:
        raise BadInputError("name the config to check: --sshd-config FILE (or --before OLD --after NEW)",
                            key="--sshd-config")
    for _, path in report:
        check_output(path, force)
    profiles = select_profiles(profile_spec)
    configs = [sshdconfig.load(p) for p in ([before, after] if before is not None else [sshd_config])]
    old_rows = load_baseline(_read(baseline), str(baseline)) if baseline is not None else None

    async def all_configs() -> list:
        return list(await asyncio.gather(*(check(c, profiles, target) for c in configs)))

    started = time.monotonic()
    tables = asyncio.run(all_configs())
    seconds = time.monotonic() - started
    colour = use_colour(color)
    for table in tables:
        click.echo(table.notice, err=True)
        click.echo(render_terminal(table, colour=colour), color=colour)
    found: list[str] | None = None
    if before is not None:
        found = changes(load_baseline(to_json(tables[:1]), str(before)), tables[1])
    elif old_rows is not None:
        found = changes(old_rows, tables[0])
    if found is not None:
        click.echo(f"{len(found)} change{'s' if len(found) != 1 else ''} against "
                   f"{before if before is not None else baseline}" + (":" if found else ""))
        for line in found:
            click.echo(f"  {line}")
    for fmt, path in report:
        text = {"json": lambda: to_json(tables, found if before is not None else None),
                "junit": lambda: to_junit(tables), "html": lambda: to_html(tables, found)}[fmt]()
        atomic_write_text(path, text, force=force)
    total = sum(len(t.rows) for t in tables)
    click.echo(f"compat: {total} profile run{'s' if total != 1 else ''} on {len(tables)} server"
               f"{'s' if len(tables) != 1 else ''} in {seconds:.1f} s", err=True)
    if found is not None:
        return EXIT_FAILED if found else EXIT_OK
    return EXIT_OK if all(t.ok for t in tables) else EXIT_FAILED


def _read(path: Path | None) -> str:
    assert path is not None
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError("baseline file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"cannot read the baseline: {getattr(exc, 'strerror', None) or exc}",
                            file=str(path)) from None
