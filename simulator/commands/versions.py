"""`sshsim versions`: the OpenSSH releases sshsim knows and the ones built in this cache."""

from __future__ import annotations

import json
import re

import click

from simulator.builds.cache import cache_root, installed_sshd
from simulator.builds.versions import known_versions


def _built_versions() -> list[str]:
    """Versions with a finished build in the cache, known or not (a --tarball build of another one)."""
    root = cache_root() / "openssh"
    try:
        names = [p.name for p in root.iterdir() if re.fullmatch(r"[0-9]+\.[0-9]+p[0-9]+", p.name)]
    except OSError:
        return []
    return [name for name in names if installed_sshd(name) is not None]


def _order(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"[0-9]+", version))


@click.command("versions")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def versions(as_json: bool) -> None:
    """List the known OpenSSH versions (and any others built here): built or not, where, and the
    Debian source that carries each one's release tarball."""
    known = known_versions()
    rows = []
    for version in sorted(set(known) | set(_built_versions()), key=_order):
        sshd = installed_sshd(version)
        entry = known.get(version)
        rows.append({"version": version, "built": sshd is not None, "sshd": str(sshd) if sshd else None,
                     "known": entry is not None, "ci": bool(entry and entry.ci),
                     "debian_source": f"openssh {entry.debian_source} ({entry.debian_suite})" if entry else None})
    if as_json:
        click.echo(json.dumps({"cache": str(cache_root()), "versions": rows}, indent=2))
        return
    click.echo(f"cache: {cache_root()}")
    for row in rows:
        state = "built" if row["built"] else "not built"
        where = row["sshd"] or f"sshsim build-sshd {row['version']}"
        source = row["debian_source"] or "not known: built from a given tarball"
        ci = ", CI" if row["ci"] else ""
        click.echo(f"{row['version']:<9} {state:<10} {where}  [{source}{ci}]")
