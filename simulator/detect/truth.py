"""What a corpus's labels say a failure detector must find.

Each label names the connection's source and its `failure_lines` (the lines fail2ban's sshd
filter in normal mode must match: simulator/data/generate/fail2ban.yaml), and its
`penalty_lines` (the listener's MaxStartups drops and PerSourcePenalties lines). Tools report lines as
text; `numbers_of` turns text back into line numbers, so tools and labels are compared line by
line, and a tool's ban windows are timed with the stamps of the lines themselves.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path

from simulator.errors import BadInputError
from simulator.generate.outputs import line_seconds


@dataclass
class Truth:
    """A corpus and its labels, read once."""

    format: str
    openssh: str
    lines: list[str]  # the corpus, line 1 at index 0 (trailing blanks stripped)
    failure_lines: set[int] = field(default_factory=set)
    source_of: dict[int, str] = field(default_factory=dict)  # line number -> its connection's source
    times: dict[int, float] = field(default_factory=dict)  # failure line number -> its stamp
    # the listener's lines turning connections away (MaxStartups drops, PerSourcePenalties):
    # not failed authentication, but what a deployment may choose to act on
    penalty_lines: set[int] = field(default_factory=set)

    def failures_by_source(self) -> dict[str, list[float]]:
        """Per source, the sorted times of its labelled failure lines."""
        out: dict[str, list[float]] = collections.defaultdict(list)
        for n in self.failure_lines:
            out[self.source_of[n]].append(self.times[n])
        return {k: sorted(v) for k, v in out.items()}

    def numbers_of(self, texts: list[str]) -> list[int]:
        """The line numbers of lines a tool printed (each text used once per line holding it;
        a text the corpus does not hold is left out)."""
        where: dict[str, list[int]] = collections.defaultdict(list)
        for i, line in enumerate(self.lines, 1):
            where[line].append(i)
        for stack in where.values():
            stack.reverse()
        out = []
        for text in texts:
            found = where.get(text.rstrip())
            if found:
                out.append(found.pop())
        return sorted(out)


def load_truth(log: Path, labels: Path, fmt: str, year: int) -> Truth:
    """Read a corpus and its labels (`year`: the window's, for syslog stamps)."""
    lines = [line.rstrip() for line in log.read_text(encoding="utf-8").splitlines()]
    truth = Truth(fmt, "", lines)
    for number, text in enumerate(labels.read_text(encoding="utf-8").splitlines(), 1):
        try:
            label = json.loads(text)
            source, failures = label["source"], label["failure_lines"]
            truth.openssh = truth.openssh or (label.get("openssh") or "")
        except (ValueError, KeyError, TypeError):
            raise BadInputError("not a labels record of sshsim generate", file=str(labels), line=number) from None
        for n in label.get("lines", []):
            truth.source_of[n] = source
        truth.penalty_lines.update(n for n in label.get("penalty_lines", []) if isinstance(n, int))
        for n in failures:
            stamp = line_seconds(fmt, lines[n - 1], year) if 0 < n <= len(lines) else None
            if stamp is None:
                raise BadInputError(f"failure line {n} is not a {fmt} line of {log}", file=str(labels), line=number)
            truth.failure_lines.add(n)
            truth.times[n] = stamp
    return truth
