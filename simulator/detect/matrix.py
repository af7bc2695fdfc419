"""Target x format x tool: generate each corpus once per target (one recording, every format),
run each tool on it, and score the tool against the labels.

A cell scores two things, each as recall and precision:
- lines: the lines the tool counts as failed authentication, against the labels' failure_lines;
- sources: the sources the tool bans or alerts on (its own rule over its own matches), against
  the sources that rule gives over the labelled failures.
and, apart, `drops`: how many of the labels' penalty_lines (sshd turning a connection away past
MaxStartups or for a PerSourcePenalties penalty) the tool counts as failures. They are not failed
logins, so they stay out of the line score; whether a deployment acts on them is the tool's
choice, and this says what it does.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.detect import crowdsec, fail2ban
from simulator.detect.score import Score, bucket_alerts, jail_bans, score, score_sources
from simulator.detect.truth import Truth, load_truth
from simulator.errors import BadInputError
from simulator.generate import GenerateSpec, apply_overrides, generate
from simulator.generate.spec import volume_error
from simulator.io import safe_file_name
from simulator.limits import MAX_DETECT_LINES

TOOLS = ("fail2ban", "crowdsec")


@dataclass(frozen=True)
class Tool:
    kind: str  # fail2ban | crowdsec
    filter: str = ""  # fail2ban's filter (sshd)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.filter}" if self.filter else self.kind


def parse_tool(text: str) -> Tool:
    """`fail2ban`, `fail2ban:FILTER` (default sshd) or `crowdsec`."""
    kind, _, rest = text.partition(":")
    if kind == "fail2ban":
        return Tool("fail2ban", fail2ban.check_filter(rest or "sshd"))
    if kind == "crowdsec" and not rest:
        return Tool("crowdsec")
    raise BadInputError(f"unknown tool {text!r}: use fail2ban[:FILTER] or crowdsec", key="--tool")


@dataclass
class Cell:
    tool: str
    target: str
    openssh: str
    format: str
    lines: Score
    sources: Score
    rule: str  # the ban/alert rule the sources were scored with
    drops: Score = Score(0, 0, 0)  # labelled penalty/drop lines the tool counted as failures

    @property
    def version(self) -> str:
        """'9.2p1' from 'OpenSSH_9.2p1 Debian-2+deb12u10'."""
        return self.openssh.removeprefix("OpenSSH_").split(" ")[0] or "?"

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "target": self.target, "openssh": self.openssh, "version": self.version,
                "format": self.format, "lines": self.lines.to_dict(), "sources": self.sources.to_dict(),
                "rule": self.rule, "drops": self.drops.to_dict()}


def score_drops(truth: Truth, matched: set[int]) -> Score:
    """The labelled penalty and drop lines against the lines the tool counted as failures."""
    return score(truth.penalty_lines, matched & truth.penalty_lines)


def score_lines(truth: Truth, matched: set[int]) -> Score:
    """Failure lines found, with the penalty/drop lines left out of what the tool found (they
    are scored apart, by score_drops)."""
    return score(truth.failure_lines, matched - (truth.penalty_lines - truth.failure_lines))


def score_fail2ban(truth: Truth, log: Path, tool: Tool) -> tuple[Score, Score, str, Score]:
    maxretry, findtime = fail2ban.jail_settings()
    result = fail2ban.run_filter(log, tool.filter)
    matched = set(truth.numbers_of(result.matched))
    lines = score_lines(truth, matched)
    found: dict[str, list[float]] = collections.defaultdict(list)
    for address, when in result.rows:
        found[address].append(when)
    banned = jail_bans({k: sorted(v) for k, v in found.items()}, maxretry, findtime)
    expected = jail_bans(truth.failures_by_source(), maxretry, findtime)
    return lines, score_sources(expected, banned), f"maxretry {maxretry} in findtime {findtime:g} s", \
        score_drops(truth, matched)


def crowdsec_expected(truth: Truth) -> tuple[set[str], str]:
    """The sources the labels' failures overflow one of the scenarios' buckets for, and the rule."""
    by_source = truth.failures_by_source()
    expected: set[str] = set()
    rules = []
    for bucket in crowdsec.buckets():
        expected |= bucket_alerts(by_source, bucket.capacity, bucket.leakspeed)
        rules.append(f"{bucket.name.split('/')[-1]} capacity {bucket.capacity} leak {bucket.leakspeed:g} s")
    return expected, "; ".join(rules)


def score_crowdsec(truth: Truth, log: Path) -> tuple[Score, Score, str, Score]:
    result = crowdsec.replay(log)
    matched = set(truth.numbers_of(result.matched))
    expected, rule = crowdsec_expected(truth)
    return score_lines(truth, matched), score_sources(expected, result.alerted), rule, score_drops(truth, matched)


def run_matrix(spec: GenerateSpec, tools: list[Tool], targets: list[str], formats: list[str], folder: Path, *,
               parallel: int = 8, recordings: Path | None = None,
               progress: Callable[[str], None] | None = None) -> list[Cell]:
    """Every cell, in target, format, tool order. Corpora are written under `folder`."""
    say = progress or (lambda message: None)
    cells = []
    taken: set[str] = set()
    for target in targets:
        spec_t = apply_overrides(spec, target=target)
        where = folder / safe_file_name(target.replace(":", "-"), "", taken)
        where.mkdir(parents=True, exist_ok=True)
        say(f"{target}: generating {', '.join(formats)}")
        result = generate(spec_t, where / "corpus.log", formats=formats, parallel=parallel, recordings=recordings,
                          force=True)
        if result.lines > MAX_DETECT_LINES:
            raise volume_error(spec, f"the corpus has {result.lines:,} lines; sshsim detect scores at most "
                                     f"{MAX_DETECT_LINES:,} (lower the rate or the window)")
        for fmt, log, labels in result.outputs:
            truth = load_truth(log, labels, fmt, spec.start.year)
            for tool in tools:
                say(f"{target} {fmt}: {tool.name}")
                if tool.kind == "fail2ban":
                    lines, sources, rule, drops = score_fail2ban(truth, log, tool)
                else:
                    lines, sources, rule, drops = score_crowdsec(truth, log)
                cells.append(Cell(tool.name, target, truth.openssh, fmt, lines, sources, rule, drops))
    return cells
