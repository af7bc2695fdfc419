"""Parser throughput: parse + grouping on a log of at least 1M lines, side by side with Drain3
(message text only) and fail2ban-regex with its sshd filter on the same file.

    python benchmarks/bench_parse.py [--lines 1000000] [--compare-lines N] [--keep FILE] [--rounds 2]

The log is built by repeating the real connections of the reference log with fresh pids and
ports (so grouping has real work to do), written to disk by a child process (``--build-only``),
and read back streaming. The child keeps the parser's process as `sshsim parse` runs it, with
nothing of the writing in its heap (on a shared 2-core machine, a parse right after writing in
the same process measured 10-20% slower than one in a fresh process; noisy). Prints
``name=value`` lines: load_average_start and _end, catalogue_load_ms (loading the event
catalogue in a fresh process, its cache warm), parse_lines_per_s, drain3_lines_per_s,
fail2ban_lines_per_s, ratio_vs_fail2ban, and the resident memory after each quarter of the file
(flat if the parser streams). Rates are lines per CPU second of the process doing the work (the
parser's own, or fail2ban-regex's as a child), so that a busy machine skews them less than wall
clock; the parser and fail2ban-regex are timed alternately, ``--rounds`` times each, and the
best rate of each counts. The parser's wall-clock rate is printed too. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED_CANDIDATES = (
    ROOT.parent / "shared" / "seed" / "sshd-debug1-motty-secureblackbox.log",
    ROOT / "tests" / "data" / "seed" / "sshd-debug1-motty-secureblackbox.log",
)
FAIL2BAN_FILTER = Path("/etc/fail2ban/filter.d/sshd.conf")


def seed_lines() -> list[str]:
    for path in SEED_CANDIDATES:
        if path.exists():
            return path.read_text(encoding="utf-8").splitlines()
    sys.exit("reference log not found")


LOCAL_CAPTURE = ROOT / "tests" / "data" / "local" / "sshd-9.2-debug1.log"
_PID = re.compile(r"(sshd\[|Forked child |User child is on pid |session_by_pid: pid |pid )(\d+)")
_PORT = re.compile(r"(\bport |\]:)(\d+)")


def _templates() -> list[list[str]]:
    """Real connections to repeat: the reference log (two concurrent DEBUG1 connections that
    never end) and the local 9.2 capture (twelve connections that do end, DEBUG1)."""
    out = [seed_lines()]
    if LOCAL_CAPTURE.exists():
        out.append(LOCAL_CAPTURE.read_text(encoding="utf-8").splitlines())
    return out


def build_log(path: Path, n_lines: int, templates: list[list[str]] | None = None) -> int:
    """Repeat real connections (`templates`, default the reference log and the local DEBUG1
    capture) with fresh pids and client ports; stream to `path`."""
    templates = templates or _templates()
    written = 0
    rep = 0
    with path.open("w", encoding="utf-8") as out:
        while written < n_lines:
            lines = templates[rep % len(templates)]
            pid_base = 1000 + (rep * 40) % 4_000_000
            port_base = rep * 13
            pid_map: dict[str, str] = {}
            port_map: dict[str, str] = {}

            def pid(m: re.Match[str]) -> str:
                new = pid_map.setdefault(m.group(2), str(pid_base + len(pid_map)))
                return m.group(1) + new

            def port(m: re.Match[str]) -> str:
                old = m.group(2)
                if old in ("22",) or int(old) < 1024:
                    return m.group(0)
                new = port_map.setdefault(old, str(1024 + (port_base + len(port_map)) % 64000))
                return m.group(1) + new

            chunk = [_PORT.sub(port, _PID.sub(pid, line)) for line in lines]
            out.write("\n".join(chunk) + "\n")
            written += len(chunk)
            rep += 1
    return written


def build_log_in_child(path: Path, n_lines: int) -> int:
    """`build_log` in a child process (see the module doc); its line count."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--lines", str(n_lines),
                          "--build-only", str(path)], check=True, text=True, stdout=subprocess.PIPE)
    return int(out.stdout.split()[-1])


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for row in fh:
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_parser(path: Path, total: int, count: bool = True) -> tuple[float, float, list[float], dict[str, int]]:
    """(lines per CPU second, lines per wall second, RSS by quarter, counts).

    The timed pass only drains the events (deque(maxlen=0)), a quarter at a time to read the
    RSS: what is measured is parse + grouping, not what a caller then does with the events.
    The counts come from a second, untimed pass (only when `count`).
    """
    from collections import deque
    from itertools import islice

    from simulator.logs import default_catalogue, group_events, parse_file

    default_catalogue()  # loading the catalogue is start-up, not throughput
    rss: list[float] = []
    c0, t0 = time.process_time(), time.perf_counter()
    events = group_events(parse_file(path))
    for q in range(4):
        deque(islice(events, total * (q + 1) // 4 - total * q // 4), maxlen=0)
        rss.append(rss_mb())
    deque(events, maxlen=0)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    counts = {"unknown": 0, "conns": 0}
    for ev in [] if not count else group_events(parse_file(path)):
        if ev.event == "unknown":
            counts["unknown"] += 1
        if ev.conn is not None and ev.conn > counts["conns"]:
            counts["conns"] = ev.conn
    return total / cpu, total / wall, rss, counts


_LOAD = (
    "import time; t = time.perf_counter(); "
    "from simulator.logs.catalogue import default_catalogue; default_catalogue(); "
    "print((time.perf_counter() - t) * 1000)"
)


def catalogue_load_ms() -> float:
    """Milliseconds a fresh process takes to import and load the catalogue: the best of three
    (the first run also fills the per-user cache, as the first run after an install does)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = [float(subprocess.run([sys.executable, "-c", _LOAD], env=env, check=True, text=True,
                                 stdout=subprocess.PIPE).stdout) for _ in range(4)]
    return min(runs[1:])


def message_text(line: str) -> str:
    """The message part of a syslog line (what Drain3 is given)."""
    i = line.find("]: ")
    return line[i + 3 :] if i >= 0 else line


def bench_drain3(path: Path, limit: int) -> float | None:
    try:
        from drain3 import TemplateMiner
        from drain3.template_miner_config import TemplateMinerConfig
    except ImportError:
        print("# drain3 not installed (pip install drain3): skipped", file=sys.stderr)
        return None
    import logging

    logging.getLogger("drain3").setLevel(logging.WARNING)
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    miner = TemplateMiner(config=config)
    with path.open(encoding="utf-8") as fh:
        msgs = [message_text(line.rstrip("\n")) for _, line in zip(range(limit), fh)]
    c0 = time.process_time()
    for msg in msgs:
        miner.add_log_message(msg)
    return len(msgs) / (time.process_time() - c0)


def bench_fail2ban(path: Path, limit: int, total: int) -> float | None:
    exe = shutil.which("fail2ban-regex")
    if exe is None or not FAIL2BAN_FILTER.exists():
        print("# fail2ban-regex or its sshd filter missing: skipped", file=sys.stderr)
        return None
    target = path
    n = total
    tmp = None
    if limit < total:
        tmp = Path(tempfile.mkstemp(suffix=".log")[1])
        with path.open(encoding="utf-8") as src, tmp.open("w", encoding="utf-8") as dst:
            for _, line in zip(range(limit), src):
                dst.write(line)
        target, n = tmp, limit
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([exe, str(target), str(FAIL2BAN_FILTER)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if tmp is not None:
        tmp.unlink()
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--compare-lines", type=int, default=None, help="lines given to Drain3 and fail2ban (default: all)")
    ap.add_argument("--keep", type=Path, default=None, help="write the generated log here and keep it")
    ap.add_argument("--rounds", type=int, default=2,
                    help="time the parser and fail2ban-regex alternately this many times and keep the best "
                         "rate of each: on a shared machine the load changes during a run, and alternating "
                         "gives both the same chances (default 2)")
    ap.add_argument("--build-only", type=Path, default=None, metavar="FILE",
                    help="write the log of --lines lines to FILE, print its line count and exit "
                         "(how the benchmark builds its log, in a child process)")
    args = ap.parse_args()
    if args.build_only is not None:
        print(build_log(args.build_only, args.lines))
        return

    path = args.keep or Path(tempfile.mkstemp(suffix=".log")[1])
    try:
        total = build_log_in_child(path, args.lines)
        compare = min(args.compare_lines or total, total)
        print(f"load_average_start={os.getloadavg()[0]:.2f}")
        print(f"catalogue_load_ms={catalogue_load_ms():.0f}")
        print(f"log_lines={total}")
        print(f"log_bytes={path.stat().st_size}")
        parse_rate, parse_wall, rss, counts = bench_parser(path, total)
        f2b = bench_fail2ban(path, compare, total)
        for _ in range(args.rounds - 1):
            again = bench_parser(path, total, count=False)
            parse_rate, parse_wall = max(parse_rate, again[0]), max(parse_wall, again[1])
            if f2b:
                f2b = max(f2b, bench_fail2ban(path, compare, total) or 0.0)
        print(f"parse_lines_per_s={parse_rate:.0f}")
        print(f"parse_lines_per_wall_s={parse_wall:.0f}")
        print(f"parse_unknown_lines={counts['unknown']}")
        print(f"parse_connections={counts['conns']}")
        print("parse_rss_mb_by_quarter=" + ",".join(f"{r:.1f}" for r in rss))
        drain = bench_drain3(path, compare)
        print(f"drain3_lines_per_s={drain:.0f}" if drain else "drain3_lines_per_s=nan")
        print(f"fail2ban_lines_per_s={f2b:.0f}" if f2b else "fail2ban_lines_per_s=nan")
        print(f"compare_lines={compare}")
        print(f"ratio_vs_fail2ban={parse_rate / f2b:.1f}" if f2b else "ratio_vs_fail2ban=nan")
        print(f"ratio_vs_drain3={parse_rate / drain:.1f}" if drain else "ratio_vs_drain3=nan")
        print(f"rounds={args.rounds}")
        print(f"load_average_end={os.getloadavg()[0]:.2f}")
    finally:
        if args.keep is None:
            os.unlink(path)


if __name__ == "__main__":
    main()
