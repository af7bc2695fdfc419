"""The result of one scenario run, and the failure text a person reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.colour import paint
from simulator.verify.verifier import Failure


@dataclass
class ScenarioOutcome:
    name: str
    path: str
    lines: list[str]
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    duration: float = 0.0
    run: Any = None
    # The scenario itself: the HTML timeline marks its expected events (simulator/verify/timeline.py).
    scenario: Any = None

    @property
    def ok(self) -> bool:
        return not self.failures


def render_failures(outcomes: list[ScenarioOutcome], color: bool = False) -> str:
    """Failures like a good test failure: where, what was expected, the log lines around it."""

    def style(text: str, **kw: Any) -> str:
        return paint(text, color, **kw)

    out: list[str] = []
    for outcome in outcomes:
        out.append(style(f"=== {outcome.name} ({outcome.path})", bold=True))
        for failure in outcome.failures:
            out.append(style("  " + failure.headline(), fg="red"))
            for line in failure.context:
                out.append(("    " + style(line, bold=True)) if ">" in line[:7] else "    " + line)
    return "\n".join(out)
