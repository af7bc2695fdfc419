"""The product's error types.

Every error a user can cause (bad scenario, unknown profile, missing sshd, garbled log) is an
`SshsimError`: the CLI prints it as one line naming where the problem is and exits non-zero,
never with a traceback. Exit code 2 is bad input, 1 a failed run or expectation.
"""

from __future__ import annotations


class SshsimError(Exception):
    """A problem the user can act on, reported as one line."""

    exit_code = 2

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


class TargetError(SshsimError):
    """The target sshd failed: config rejected, did not become ready, died early."""

    exit_code = 1


class RunFailed(SshsimError):
    """A scenario ran but an expectation did not hold."""

    exit_code = 1
