"""`sshsim build-sshd VERSION...`: build upstream OpenSSH releases into the per-version cache."""

from __future__ import annotations

from pathlib import Path

import click

from simulator.builds.build import check_version, ensure_sshd
from simulator.builds.cache import installed_sshd
from simulator.errors import BadInputError


@click.command("build-sshd")
@click.argument("versions", nargs=-1, required=True, metavar="VERSION...")
@click.option("--tarball", type=click.Path(path_type=Path, dir_okay=False),
              help="Build from this release tarball (checked against the known sha256; required for a "
                   "version sshsim does not know, whose tarball must unpack to openssh-VERSION/).")
@click.option("--force", is_flag=True, help="Build again even when the version is already built.")
def build_sshd(versions: tuple[str, ...], tarball: Path | None, force: bool) -> None:
    """Build OpenSSH VERSION (e.g. 10.3p1) with PAM, OpenSSL and zlib into the cache; see `sshsim versions`."""
    if tarball is not None and len(versions) > 1:
        raise BadInputError("--tarball holds one release: build one VERSION at a time with it")
    for version in versions:
        check_version(version)
        already = installed_sshd(version) if not force else None
        sshd = ensure_sshd(version, tarball=tarball, force=force)
        click.echo(f"{version}: {'already built' if already else 'built'}: {sshd}")
