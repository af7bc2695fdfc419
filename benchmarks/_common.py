"""Helpers shared by the benchmarks: medians, CPU time of this process and its children, output."""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from pathlib import Path

# Benchmarks run from a source tree without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUICK = os.environ.get("SSHSIM_BENCH_QUICK") == "1"


def median(values: list[float]) -> float:
    return statistics.median(values)


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class Clock:
    """Wall and CPU time of a block (CPU of this process, and of waited-for children)."""

    def __enter__(self) -> "Clock":
        self.wall0 = time.perf_counter()
        self.cpu0 = cpu_seconds()
        self.child0 = cpu_seconds(resource.RUSAGE_CHILDREN)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = cpu_seconds() - self.cpu0
        self.child_cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - self.child0


def emit(name: str, value: float, digits: int = 2) -> None:
    """One figure as the `name=value` line every benchmark prints."""
    print(f"{name}={value:.{digits}f}", flush=True)
