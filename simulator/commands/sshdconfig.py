"""`--sshd-config FILE`, shared by run, sshd, replay, generate and compat: a user's own
sshd_config used as written (simulator/target/userconfig.py), and the one-line notice of the
lines sshsim replaced in it, printed once per command on stderr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from simulator.target.base import Origin, ServerSpec


def sshd_config_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--sshd-config", "sshd_config", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Your own sshd_config, used as written (Match blocks, Include beside it) except the lines "
             "sshsim must own (listen address, port, pid file, host keys, PermitRootLogin, sftp-server path, "
             "LogLevel when asked); a notice lists them. No sshsim defaults are added.")(function)


def load(path: Path | None) -> Any:
    """The user's config (UserConfig) read now, so a bad file fails before anything runs."""
    if path is None:
        return None
    # imported here: start-up cost: `run`, `sshd`, ... import this module; their --help loads no config checker
    from simulator.target.userconfig import load_user_config

    return load_user_config(path, origin=Origin(key="--sshd-config"))


_said: set[tuple[str, str | None]] = set()


def use(spec: ServerSpec, config: Any, *, log_level_asked: bool) -> ServerSpec:
    """`spec` running the user's config (None: unchanged); prints the notice once per config."""
    if config is None:
        return spec
    # imported here: start-up cost: as in `load` above
    from simulator.target.userconfig import check_user_config

    spec.config_file = config
    spec.own_log_level = log_level_asked
    check_user_config(config, spec)
    say_notice(spec)
    return spec


def say_notice(spec: ServerSpec) -> None:
    """The notice of `spec`'s user config on stderr, once per (file, level) in this process."""
    # imported here: start-up cost: as in `load` above
    from simulator.target.userconfig import notice

    if spec.config_file is None:
        return
    level = spec.log_level if spec.own_log_level else None
    key = (spec.config_file.shown, level)
    if key not in _said:
        _said.add(key)
        click.echo(notice(spec.config_file, level), err=True)
