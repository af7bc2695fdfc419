"""The `sshsim` command: one click group, one module per subcommand under simulator/commands/.

Errors the user can act on (`SshsimError`) become one line on stderr and the exit code of their
kind (the table in simulator/errors.py); a traceback is only ever shown for a bug, and then with
SSHSIM_DEBUG=1.

SIGTERM is handled as Ctrl-C is: whatever runs then (an asyncio run cancels its main task, so
connections end and targets stop in order; plain code gets KeyboardInterrupt) cleans up the same
way, writes what was complete, and the command ends with one line and 128 + the signal number.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import sys
import threading
import warnings
from types import FrameType
from typing import NoReturn

import click

from simulator import __version__
from simulator.errors import EXIT_INTERNAL, EXIT_OK, Interrupted, SshsimError, exit_for_signal

# name -> module under simulator.commands holding a click command of that name. Loaded lazily so
# `sshsim parse` does not pay for importing asyncssh.
COMMANDS: dict[str, tuple[str, str]] = {
    "sshd": ("sshd", "Run a private sshd in the foreground and stream its log."),
    "run": ("run", "Run scenarios against a target sshd and verify its log."),
    "matrix": ("matrix", "Run scenarios on several targets at once: a table, and what each logs differently."),
    "verify": ("verify", "Check an existing log against a scenario's expectations."),
    "diff": ("diff", "Compare two sshd logs connection by connection, after normalisation."),
    "parse": ("parse", "Parse an sshd log into events grouped into connections."),
    "profiles": ("profiles", "List the client profiles (with --hassh, the fingerprint sent on the wire)."),
    "learn": ("learn", "Record a real client on a loopback SSH endpoint and write its profile (--check: test one)."),
    "infer": ("infer", "Write a scenario that reproduces the connections of a real log."),
    "replay": ("replay", "Infer a scenario from a log, run it and diff the result with the log."),
    "generate": ("generate", "Generate a realistic, labelled sshd log corpus."),
    "detect": ("detect", "Score fail2ban and crowdsec on generated corpora: per tool, OpenSSH version and format."),
    "compat": ("compat", "Check which client profiles still connect to an sshd_config, and why not."),
    "schema": ("schema", "Print the JSON Schema of scenario files (--profile: of client profile files)."),
    "setup": ("setup", "Install the system packages the local sshd target needs (as root)."),
    "init": ("init", "Copy the shipped scenario library into a folder of your own."),
    "build-sshd": ("build_sshd", "Build upstream OpenSSH versions into the per-version cache."),
    "versions": ("versions", "List the known and the built OpenSSH versions."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._module(name) is not None]

    def _module(self, name: str) -> object | None:
        module_name, _ = COMMANDS[name]
        try:
            spec = importlib.util.find_spec(f"simulator.commands.{module_name}")
        except ModuleNotFoundError:
            return None
        return spec

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or self._module(name) is None:
            return None
        module = importlib.import_module(f"simulator.commands.{COMMANDS[name][0]}")
        command = getattr(module, name.replace("-", "_"), None) or module.command
        return command

    def invoke(self, ctx: click.Context) -> object:
        # click turns KeyboardInterrupt into Abort after printing an empty line; carry it past
        # click instead, so that the command's note (what it kept) reaches the one line.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Stopped(exc) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sshsim")
def cli() -> None:
    """sshsim: replay SSH client behaviour against a real OpenSSH sshd and verify what it logs."""


class _Stopped(Exception):
    """A KeyboardInterrupt (SIGINT, SIGTERM) on its way out of click."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__(str(interrupt))
        self.interrupt = interrupt


class _Signals:
    """The last stop signal received (SIGINT unless a SIGTERM came)."""

    received = signal.SIGINT


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Do what Ctrl-C does at this moment: asyncio.run puts its own SIGINT handler in place
    (cancel the main task) and the default one raises KeyboardInterrupt."""
    _Signals.received = signal.Signals(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def interrupted(exc: BaseException) -> NoReturn:
    """One line (with what was kept, when the command says), and the signal's exit code."""
    name = signal.Signals(_Signals.received).name
    note = str(exc) if isinstance(exc, Interrupted) else ""
    click.echo(f"sshsim: interrupted by {name}" + (f"; {note}" if note else ""), err=True)
    sys.exit(exit_for_signal(_Signals.received))


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one line and an exit code."""
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    _Signals.received = signal.SIGINT
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> None:
    # Profiles that negotiate finite-field DH (SecureBlackbox) do so on purpose.
    warnings.filterwarnings("ignore", message=".*Diffie-Hellman over finite fields.*")
    try:
        result = cli.main(args=argv, prog_name="sshsim", standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except SshsimError as exc:
        click.echo(f"sshsim: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except _Stopped as exc:
        interrupted(exc.interrupt)
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        interrupted(exc)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        # `sshsim parse big.log | head`: the reader went away; that is not an error.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        sys.exit(EXIT_OK)
    except Exception as exc:  # a bug: one line unless asked for the traceback
        if os.environ.get("SSHSIM_DEBUG"):
            raise
        click.echo(f"sshsim: internal error: {type(exc).__name__}: {exc} (set SSHSIM_DEBUG=1 for a traceback)",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)
