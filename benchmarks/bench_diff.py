"""`sshsim diff` on two logs of about 276k lines, next to `sshsim parse` of the same two logs.

    python benchmarks/bench_diff.py [--lines 276000] [--levels info|all] [--keep DIR]

Log A repeats real captures of tests/data/local/ with fresh pids and client ports (as
bench_parse.py does): by default the INFO and VERBOSE ones, the levels production servers log
at, about six lines a connection, so A holds tens of thousands of connections (--levels all
adds the DEBUG captures: fewer, longer connections). Log B is A without every 50th line, so
that the diff has lines to report. Both commands run as children of this script, on files:
diff_cpu_s and parse_cpu_s are their CPU times (a shared machine skews them less than wall
clock, also printed; parse: both logs, --format summary, which groups connections like diff
does), ratio_diff_vs_parse divides the first by the second, and diff_rss_mb is the diff's peak
resident memory. Prints ``name=value`` lines; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_parse import build_log  # noqa: E402

LOCAL = ROOT / "tests" / "data" / "local"
DROP_EVERY = 50


def templates(levels: str) -> list[list[str]]:
    names = ["sshd-9.2-info.log", "sshd-9.2-verbose.log"]
    if levels == "all":
        names += ["sshd-9.2-debug1.log", "sshd-9.2-debug3.log", "seed-replay-interleaved-sessions.log"]
    return [(LOCAL / name).read_text(encoding="utf-8").splitlines() for name in names]


def drop_lines(src: Path, dst: Path, every: int) -> int:
    """Copy `src` without every `every`-th line; the number of lines written."""
    kept = 0
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        for n, line in enumerate(fin, 1):
            if n % every:
                fout.write(line)
                kept += 1
    return kept


def timed(args: list[str]) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit status) of one sshsim command, output
    discarded."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "simulator", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
            proc.returncode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=276_000)
    ap.add_argument("--levels", choices=["info", "all"], default="info")
    ap.add_argument("--keep", type=Path, default=None, help="write the two logs into this folder and keep them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sshsim-bench-diff-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        a, b = folder / "a.log", folder / "b.log"
        print(f"log_lines_a={build_log(a, args.lines, templates(args.levels))}", flush=True)
        print(f"log_lines_b={drop_lines(a, b, DROP_EVERY)}", flush=True)
        parse_wall = parse_cpu = 0.0
        for path in (a, b):
            wall, cpu, _, status = timed(["parse", "--format", "summary", str(path)])
            if status != 0:
                sys.exit(f"sshsim parse {path} exited {status}")
            parse_wall += wall
            parse_cpu += cpu
        diff_wall, diff_cpu, rss, status = timed(["diff", "--summary", "--no-color", str(a), str(b)])
        if status not in (0, 1):
            sys.exit(f"sshsim diff exited {status}")
        print(f"parse_cpu_s={parse_cpu:.2f}")
        print(f"parse_wall_s={parse_wall:.2f}")
        print(f"diff_cpu_s={diff_cpu:.2f}")
        print(f"diff_wall_s={diff_wall:.2f}")
        print(f"ratio_diff_vs_parse={diff_cpu / parse_cpu:.2f}")
        print(f"diff_rss_mb={rss:.0f}")


if __name__ == "__main__":
    main()
