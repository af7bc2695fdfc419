"""Recall and precision, and when a real deployment bans or alerts.

Two ways a source gets banned, each the tool's own rule applied to failure times:
- fail2ban's jail: `maxretry` failures within `findtime` seconds;
- crowdsec's leaky bucket: each event adds one, the bucket leaks one every `leakspeed` seconds,
  and it overflows (an alert) when it holds more than `capacity`.
The labels' failure times through the same rule give the sources that should be banned; the
tool's own matches give the ones it bans.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Score:
    """Found against expected: recall = hit / expected, precision = hit / found (None: 0 / 0)."""

    expected: int
    found: int
    hit: int
    missed: tuple[str, ...] = ()  # sources only: expected, not found
    extra: tuple[str, ...] = ()  # sources only: found, not expected

    @property
    def recall(self) -> float | None:
        return self.hit / self.expected if self.expected else None

    @property
    def precision(self) -> float | None:
        return self.hit / self.found if self.found else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"expected": self.expected, "found": self.found, "hit": self.hit,
                               "recall": _rounded(self.recall), "precision": _rounded(self.precision)}
        if self.missed or self.extra:
            out.update(missed=list(self.missed), extra=list(self.extra))
        return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def score(expected: set[Any], found: set[Any]) -> Score:
    return Score(len(expected), len(found), len(expected & found))


def score_sources(expected: set[str], found: set[str]) -> Score:
    """As `score`, naming the sources missed and the ones found beyond the labels."""
    return Score(len(expected), len(found), len(expected & found), tuple(sorted(expected - found)),
                 tuple(sorted(found - expected)))


def jail_bans(times: dict[str, list[float]], maxretry: int, findtime: float) -> set[str]:
    """Sources with `maxretry` failures within `findtime` seconds (times sorted per source)."""
    banned = set()
    for source, stamps in times.items():
        for i in range(maxretry - 1, len(stamps)):
            if stamps[i] - stamps[i - maxretry + 1] <= findtime:
                banned.add(source)
                break
    return banned


def bucket_alerts(times: dict[str, list[float]], capacity: int, leakspeed: float) -> set[str]:
    """Sources whose leaky bucket (one per source) overflows (times sorted per source)."""
    alerted = set()
    for source, stamps in times.items():
        level, last = 0.0, None
        for t in stamps:
            if last is not None:
                level = max(0.0, level - (t - last) / leakspeed)
            last = t
            level += 1
            if level > capacity:
                alerted.add(source)
                break
    return alerted
