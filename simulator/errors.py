"""The product's error types.

Every error a user can cause (bad scenario, unknown profile, missing sshd, garbled log) is an
`SshsimError`: the CLI prints it as one line naming where the problem is and exits non-zero,
never with a traceback. Every command exits with a code of the table below, one per kind of
outcome, so a script can tell "fix your input or machine" from "the run showed a difference".
"""

from __future__ import annotations

import signal

# The exit codes of every sshsim command (the CLI maps errors to them; nothing else picks one).
EXIT_OK = 0
# A run, a verification or a diff completed and showed a failed expectation or a difference.
EXIT_FAILED = 1
# The input (a file, an option, a scenario, a log) is wrong: fix it and run again.
EXIT_BAD_INPUT = 2
# The machine cannot do what was asked (no sshd, not root, no namespaces, an output folder that
# cannot be written, a full disk). Like bad input, nothing was judged: the same "not run" code.
EXIT_ENVIRONMENT = 2
# A bug in sshsim (an exception no error type describes).
EXIT_INTERNAL = 3


def exit_for_signal(signum: int) -> int:
    """128 + the signal number, as shells report a command a signal ended: SIGINT 130, SIGTERM 143."""
    return 128 + int(signum)


EXIT_SIGINT = exit_for_signal(signal.SIGINT)
EXIT_SIGTERM = exit_for_signal(signal.SIGTERM)


class SshsimError(Exception):
    """A problem the user can act on, reported as one line."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.key = key

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class BadInputError(SshsimError):
    """Malformed input: a scenario, profile, log or option the user gave."""


class EnvironmentProblem(SshsimError):
    """The machine cannot do what was asked: no sshd, not root, no namespaces, no engine."""

    exit_code = EXIT_ENVIRONMENT


class OutputError(EnvironmentProblem):
    """An output file could not be written (read-only folder, full disk); what was complete is kept."""


class TargetError(SshsimError):
    """The target sshd failed: did not become ready, died early."""

    exit_code = EXIT_FAILED


class RunFailed(SshsimError):
    """A scenario ran but an expectation did not hold."""

    exit_code = EXIT_FAILED


class Interrupted(KeyboardInterrupt):
    """A command stopped by SIGINT or SIGTERM after keeping what was complete; the message says
    what was kept. A KeyboardInterrupt, so that no `except Exception` swallows it on the way."""
