"""`sshsim init DIR`: copy the shipped scenario library out, to read, run and edit.

An installed sshsim keeps its examples inside the package (simulator/shipped.py); a user wants
them in a folder of their own. Every file goes through simulator/io.py like any other output:
none is overwritten without --force, none is written through a symbolic link, and all are
checked before the first is written, so a refusal leaves DIR as it was.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click

from simulator.errors import BadInputError, EnvironmentProblem
from simulator.io import atomic_write_text, check_output
from simulator.shipped import shipped


def _make_folder(path: Path) -> None:
    """Create `path` (and parents); an existing one must be a real folder, not a link to one."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        if path.parent != path:
            _make_folder(path.parent)
        path.mkdir()
        return
    if stat.S_ISLNK(st.st_mode):
        raise BadInputError("is a symbolic link; sshsim never writes through one", file=str(path))
    if not stat.S_ISDIR(st.st_mode):
        raise BadInputError("exists and is not a folder", file=str(path))


@click.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files of the library that are already there.")
def init(folder: Path, force: bool) -> None:
    """Copy the scenario library (library/, seed/, generate/, compat/) into FOLDER."""
    source = shipped("scenarios")
    if source is None:
        raise EnvironmentProblem("the scenario library is not installed with this sshsim (reinstall it)")
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.is_symlink()
                   and "__pycache__" not in p.parts)
    targets = [(p, folder / p.relative_to(source)) for p in files]
    if os.path.islink(folder):
        raise BadInputError("is a symbolic link; sshsim never writes through one", file=str(folder))
    for _, target in targets:
        for parent in reversed(target.relative_to(folder).parents[:-1]):
            if os.path.lexists(folder / parent) and not (folder / parent).is_dir():
                raise BadInputError("exists and is not a folder", file=str(folder / parent))
            if os.path.islink(folder / parent):
                raise BadInputError("is a symbolic link; sshsim never writes through one", file=str(folder / parent))
        if os.path.lexists(target.parent):
            check_output(target, force)
    for src, target in targets:
        _make_folder(target.parent)
        check_output(target, force)
        atomic_write_text(target, src.read_text(encoding="utf-8"), force=force)
    click.echo(f"sshsim init: {len(targets)} files in {folder}; try "
               f"'sshsim run {folder / 'library' / 'publickey-shell.yaml'}'")
