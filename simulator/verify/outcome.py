"""The result of one scenario run, and the failure text a person reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.colour import paint, printable
from simulator.verify.verifier import Failure


@dataclass
class ScenarioOutcome:
    """One scenario (one matrix cell) as reports show it.

    `failures` are expectations that did not hold: the sshd did something else. `errors` are
    runs that could not be judged (the target did not start, a client connection broke, the run
    was interrupted): CI must tell "the server changed" from "the test could not run", so JUnit
    writes them as <error>, not <failure>, and either makes the scenario not ok.
    """

    name: str
    path: str
    lines: list[str]
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration: float = 0.0
    run: Any = None
    # The scenario's own name (without the matrix cell) and the cell ("" outside a matrix).
    scenario: str = ""
    cell: str = ""
    # The scenario run itself: the HTML timeline marks its expected events (simulator/verify/timeline.py).
    plan: Any = None
    # Expectations that do not apply to the target's sshd version (simulator/verify/applies.py
    # Skip); one with no connection is the whole scenario's: it was not played.
    skipped: list[Any] = field(default_factory=list)
    version: str = ""  # the target's sshd version, as `requires:` was decided

    @property
    def ok(self) -> bool:
        """Nothing failed: a skipped scenario is not a failure (nor a pass: `status` says skip)."""
        return not self.failures and not self.errors

    @property
    def status(self) -> str:
        """pass, fail, error (an error wins: the run could not be judged) or skip (the whole
        scenario does not apply to the target's version)."""
        if self.errors:
            return "error"
        if self.failures:
            return "fail"
        return "skip" if any(s.connection is None for s in self.skipped) else "pass"


def render_failures(outcomes: list[ScenarioOutcome], color: bool = False) -> str:
    """Failures like a good test failure: where, what was expected, the log lines around it."""

    def style(text: str, **kw: Any) -> str:
        # a log is untrusted: its control characters are shown escaped, never sent to the terminal
        return paint(printable(text), color, **kw)

    out: list[str] = []
    for outcome in outcomes:
        out.append(style(f"=== {outcome.name} ({outcome.path})", bold=True))
        # A client connection's error ("id: what") is already a failure line of the verifier's
        # ("the client failed: what"); the others (the target, an interruption) are said here.
        said = {f.message for f in outcome.failures}
        for error in outcome.errors:
            if f"the client failed: {error.partition(': ')[2]}" not in said:
                out.append(style("  error: " + error, fg="red"))
        for failure in outcome.failures:
            out.append(style("  " + failure.headline(), fg="red"))
            for line in failure.context:
                out.append(("    " + style(line, bold=True)) if ">" in line[:7] else "    " + printable(line))
    return "\n".join(out)


def render_skips(outcomes: list[ScenarioOutcome]) -> str:
    """One line per expectation (or scenario) that does not apply to the sshd's version, and why."""
    return "\n".join(f"  skipped: {printable(s.headline())}" for o in outcomes for s in o.skipped)
