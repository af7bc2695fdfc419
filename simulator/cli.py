"""The `sshsim` command: one click group, one module per subcommand under simulator/commands/.

Errors the user can act on (`SshsimError`) become one line on stderr and a non-zero exit; a
traceback is only ever shown for a bug, and then with SSHSIM_DEBUG=1.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from simulator import __version__
from simulator.errors import SshsimError

# name -> module under simulator.commands holding a click command of that name. Loaded lazily so
# `sshsim parse` does not pay for importing asyncssh.
COMMANDS: dict[str, tuple[str, str]] = {
    "sshd": ("sshd", "Run a private sshd in the foreground and stream its log."),
    "run": ("run", "Run scenarios against a target sshd and verify its log."),
    "verify": ("verify", "Check an existing log against a scenario's expectations."),
    "diff": ("diff", "Compare two sshd logs connection by connection, after normalisation."),
    "parse": ("parse", "Parse an sshd log into events grouped into connections."),
    "profiles": ("profiles", "List the client profiles (with --hassh, the fingerprint sent on the wire)."),
    "infer": ("infer", "Write a scenario that reproduces the connections of a real log."),
    "replay": ("replay", "Infer a scenario from a log, run it and diff the result with the log."),
    "generate": ("generate", "Generate a realistic, labelled sshd log corpus."),
    "schema": ("schema", "Print the JSON Schema of scenario files (--profile: of client profile files)."),
    "setup": ("setup", "Install the system packages the local sshd target needs (as root)."),
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
        command = getattr(module, name.replace("-", "_"), None) or getattr(module, "command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sshsim")
def cli() -> None:
    """sshsim: replay SSH client behaviour against a real OpenSSH sshd and verify what it logs."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one line and an exit code."""
    import warnings

    # Profiles that negotiate finite-field DH (SecureBlackbox) do so on purpose.
    warnings.filterwarnings("ignore", message=".*Diffie-Hellman over finite fields.*")
    try:
        result = cli.main(args=argv, prog_name="sshsim", standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except SshsimError as exc:
        click.echo(f"sshsim: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("sshsim: interrupted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("sshsim: interrupted", err=True)
        sys.exit(130)
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
        sys.exit(0)
    except Exception as exc:  # a bug: one line unless asked for the traceback
        if os.environ.get("SSHSIM_DEBUG"):
            raise
        click.echo(f"sshsim: internal error: {type(exc).__name__}: {exc} (set SSHSIM_DEBUG=1 for a traceback)",
                   err=True)
        sys.exit(3)
    sys.exit(0)
