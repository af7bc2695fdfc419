"""`sshsim sshd`: a private sshd in the foreground, for people and scripts that bring their own client."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from simulator.commands import sshdconfig
from simulator.errors import TargetError
from simulator.io import LogStream, check_output
from simulator.loglevels import CONFIG_VALUES
from simulator.target.base import Origin, ServerSpec, UserSpec
from simulator.target.factory import make_target


@click.command("sshd")
@click.option("--override", "overrides", multiple=True, metavar="'KEYWORD VALUE'",
              help="sshd_config line placed before the defaults (first match wins); repeatable.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the log (classic syslog format) to this file.")
@click.option("--json", "as_json", is_flag=True,
              help="First stdout line: JSON with host, port, user, identity, log; then the log.")
@click.option("--log-level", default=None, type=click.Choice(CONFIG_VALUES, case_sensitive=False),
              help="sshd LogLevel [default: DEBUG1; with --sshd-config: the file's own].")
@click.option("--user", default="user", show_default=True, help="Login user that exists in the sshd's namespace.")
@click.option("--password", default=None, help="Give the user this password (key login works anyway).")
@click.option("--host-name", default="localhost", show_default=True, help="Host name written into log lines.")
@click.option("--port", type=int, default=None, help="Port to listen on, 1024-65535 on loopback (default: a free one).")
@click.option("--target", default="local", show_default=True,
              help="local (the system's sshd), local:VERSION (an upstream build, e.g. local:10.3p1) "
                   "or docker[:IMAGE].")
@click.option("--force", is_flag=True, help="Replace the --log file if it exists.")
@sshdconfig.sshd_config_option
def sshd(overrides: tuple[str, ...], log_path: Path | None, as_json: bool, log_level: str | None, user: str,
         password: str | None, host_name: str, port: int | None, target: str, force: bool,
         sshd_config: Path | None) -> None:
    """Run a private sshd until Ctrl-C (or SIGTERM), streaming its log to stdout."""
    if log_path is not None:
        check_output(log_path, force)
    spec = ServerSpec(users=[UserSpec(name=user, password=password)], overrides=list(overrides),
                      override_origins=[Origin(key="--override") for _ in overrides],
                      log_level=(log_level or "DEBUG1").upper(), host_name=host_name, port=port)
    sshdconfig.use(spec, sshdconfig.load(sshd_config), log_level_asked=log_level is not None)
    server = make_target(spec, target, echo=None)
    log: LogStream | None = None
    try:
        server.start()
        # The log file is written here, from the records, not by the target: it is a file this
        # command created (simulator/io.py LogStream), readable while sshd runs.
        effective_log = log_path or (Path(server.workdir) / "sshd.log" if getattr(server, "workdir", None) else None)
        log = LogStream(effective_log, force) if effective_log else None
        if as_json:
            info = {"host": server.host.strip("[]"), "port": server.port, "user": user,
                    "identity": str(server.identity(user)), "log": str(effective_log) if effective_log else None,
                    "version": server.version, "target": target}
            print(json.dumps(info), flush=True)
        else:
            click.echo(f"sshd ({server.version}) listening on {server.host}:{server.port}; "
                       f"ssh -i {server.identity(user)} -p {server.port} {user}@{server.host.strip('[]')}; "
                       "Ctrl-C stops it", err=True)
        _stream(server, log)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (simulator/cli.py): the way this command is meant to end.
        pass
    finally:
        server.stop()
        if log is not None:
            _drain(server, log)
            log.close(raise_error=False)
    if log is not None and log.error is not None:
        raise log.error


def _stream(server: object, log: LogStream | None) -> None:
    """Print records as they arrive until stopped; also append them to `log`."""
    seen = 0
    while True:
        time.sleep(0.05)
        seen = _copy(server, log, seen)
        if log is not None and log.error is not None:
            raise log.error
        if not server.alive():  # type: ignore[attr-defined]
            raise TargetError("sshd stopped unexpectedly; the log above says why")


def _copy(server: object, log: LogStream | None, seen: int) -> int:
    records = server.log.records  # type: ignore[attr-defined]
    for record in records[seen:]:
        line = record.classic(server.spec.host_name)  # type: ignore[attr-defined]
        sys.stdout.write(line + "\n")
        if log is not None:
            log.write(line)
    if len(records) > seen:
        sys.stdout.flush()
    return len(records)


def _drain(server: object, log: LogStream) -> None:
    """After stop: the lines sshd logged while stopping ("Received signal 15") go to the file too."""
    for record in server.log.records[log.lines:]:  # type: ignore[attr-defined]
        log.write(record.classic(server.spec.host_name))  # type: ignore[attr-defined]
