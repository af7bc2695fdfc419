"""`sshsim sshd`: a private sshd in the foreground, for people and scripts that bring their own client."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

from simulator.errors import TargetError
from simulator.loglevels import CONFIG_VALUES
from simulator.target.base import ServerSpec, UserSpec
from simulator.target.factory import make_target


@click.command("sshd")
@click.option("--override", "overrides", multiple=True, metavar="'KEYWORD VALUE'",
              help="sshd_config line placed before the defaults (first match wins); repeatable.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the log (classic syslog format) to this file.")
@click.option("--json", "as_json", is_flag=True,
              help="First stdout line: JSON with host, port, user, identity, log; then the log.")
@click.option("--log-level", default="DEBUG1", show_default=True,
              type=click.Choice(CONFIG_VALUES, case_sensitive=False))
@click.option("--user", default="user", show_default=True, help="Login user that exists in the sshd's namespace.")
@click.option("--password", default=None, help="Give the user this password (key login works anyway).")
@click.option("--host-name", default="localhost", show_default=True, help="Host name written into log lines.")
@click.option("--port", type=int, default=None, help="Port to listen on (default: a free one).")
@click.option("--target", default="local", show_default=True, help="local, or docker[:IMAGE].")
def sshd(overrides: tuple[str, ...], log_path: Path | None, as_json: bool, log_level: str, user: str,
         password: str | None, host_name: str, port: int | None, target: str) -> None:
    """Run a private sshd until Ctrl-C, streaming its log to stdout."""
    if log_path is not None and log_path.exists() and not log_path.is_file():
        raise click.BadParameter(f"{log_path} is not a regular file", param_hint="--log")
    spec = ServerSpec(users=[UserSpec(name=user, password=password)], overrides=list(overrides),
                      log_level=log_level.upper(), host_name=host_name, port=port)
    server = make_target(spec, target, log_path=log_path, echo=None)
    stop = threading.Event()
    # SIGTERM stops as cleanly as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        server.start()
        effective_log = log_path or (Path(server.workdir) / "sshd.log" if getattr(server, "workdir", None) else None)
        if as_json:
            info = {"host": server.host.strip("[]"), "port": server.port, "user": user,
                    "identity": str(server.identity(user)), "log": str(effective_log) if effective_log else None,
                    "version": server.version, "target": target}
            print(json.dumps(info), flush=True)
        else:
            click.echo(f"sshd ({server.version}) listening on {server.host}:{server.port}; "
                       f"ssh -i {server.identity(user)} -p {server.port} {user}@{server.host.strip('[]')}; "
                       "Ctrl-C stops it", err=True)
        _stream(server, stop, None if log_path else effective_log)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


def _stream(server: object, stop: threading.Event, copy_to: Path | None) -> None:
    """Print records as they arrive until stopped; also copy them to `copy_to` when given."""
    out = open(copy_to, "w") if copy_to else None
    seen = 0
    try:
        while not stop.wait(0.05):
            records = server.log.records  # type: ignore[attr-defined]
            for record in records[seen:]:
                line = record.classic(server.spec.host_name)  # type: ignore[attr-defined]
                sys.stdout.write(line + "\n")
                if out:
                    out.write(line + "\n")
            if len(records) > seen:
                sys.stdout.flush()
                if out:
                    out.flush()
            seen = len(records)
            if not server.alive():  # type: ignore[attr-defined]
                raise TargetError("sshd stopped unexpectedly; the log above says why")
    finally:
        if out:
            out.close()
