"""Synthetic engine throughput: a corpus of at least 1M lines written to a file, next to `cat`
copying a file of the same size in the same run (the write limit).

    python benchmarks/bench_generate.py [--lines 1000000] [--format syslog] [--log-level INFO]
                                        [--recordings DIR] [--keep DIR]

The corpus is the example spec (scenarios/generate/bruteforce-mix.yaml: a day of mixed traffic
with brute-force bursts, LogLevel INFO, about four lines a connection) at a rate scaled until
it has --lines lines. Its templates are recorded once against the local sshd first (root
needed; --recordings reuses a folder of them); the figure is for what comes after: planning
the connections and writing log and labels. Prints ``name=value`` lines: lines_per_s, cat_lines_per_s, ratio_vs_cat (cat's rate divided by
ours), and the details behind them.
Coreutils' cat copies with copy_file_range(2), inside the kernel; cat_pipe_lines_per_s is
`cat | cat`, a copy through user space. Rates are the best of three runs (the machine may be
shared), each writing a new file as a first run does (see `fresh`); cpu_lines_per_s divides by
the process's CPU time instead. Nothing here asserts a speed.

    python benchmarks/bench_generate.py --memory [--recordings DIR]

instead runs `sshsim generate` on the example spec at 1, 10, 100, 1000 and 10000 times its own
rate, each in a process of its own, and prints its peak RSS (``peak_rss_mb_<n>=``, n the
multiple) with ``connections_<n>=`` and ``lines_<n>=``, or ``refused_<n>=`` with the error when
the spec asks for more than simulator/limits.py allows: memory follows the volume up to the cap,
and a spec over it is refused before anything is allocated.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEC = ROOT / "scenarios" / "generate" / "bruteforce-mix.yaml"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fresh(out: Path) -> None:
    """Remove the corpus (and labels) a run before wrote, untimed. Every timed run writes new
    files, as a first run does: replacing a 120 MB file costs ext4 about 0.1 s in rename(2)
    (measured 2026-12-06: it writes the new file back at once and frees the old one's blocks),
    a cost of the file system that only an overwrite (--force) pays."""
    from simulator.generate import labels_path_for

    for path in (out, labels_path_for(out)):
        path.unlink(missing_ok=True)


def timed_shell(command: str, before: Path) -> float:
    """Wall time of a shell command that writes `before`, removed first (untimed)."""
    before.unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run(["sh", "-c", command], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--format", default="syslog")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--recordings", type=Path, default=None, help="folder of recordings to (re)use")
    parser.add_argument("--keep", type=Path, default=None, help="leave the corpus in this folder")
    parser.add_argument("--memory", action="store_true", help="peak RSS at 1x to 10000x the example's volume")
    args = parser.parse_args()

    from simulator.errors import SshsimError
    from simulator.target.local import check_environment

    try:
        check_environment()
        problem = None
    except SshsimError as exc:
        problem = str(exc)
    if problem and args.recordings is None:
        print(f"skipped=local sshd target unavailable: {problem}")
        return

    from simulator.generate import apply_overrides, generate, load_spec

    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-generate-", dir=args.keep or None))
    recordings = args.recordings or work / "recordings"
    if args.memory:
        memory(work, recordings, args.format, args.log_level)
        if args.keep is None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        return
    out = work / "corpus.log"
    # A first run at the example's own rate records the templates and says how many lines a
    # unit of rate gives at this LogLevel; the measured run scales the rate from it.
    rate = 2.0
    record_s = 0.0
    while True:
        spec = apply_overrides(load_spec(SPEC, {"rate": round(rate, 3)}), format=args.format,
                               log_level=args.log_level)
        fresh(out)
        t0, c0 = time.perf_counter(), cpu_seconds()
        result = generate(spec, out, force=True, recordings=recordings, parallel=8)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        record_s += result.seconds.get("record", 0.0)
        if result.lines >= args.lines:
            break
        rate *= 1.03 * args.lines / max(result.lines, 1)  # later runs reuse the recordings
    # The machine may be shared: the best of three writes of the same corpus (it is identical
    # each time: same spec, same seed), like the best of three for cat below.
    engine_s = result.seconds["plan"] + result.seconds["write"]
    for _ in range(2):
        fresh(out)
        t0, c0 = time.perf_counter(), cpu_seconds()
        again = generate(spec, out, force=True, recordings=recordings, parallel=8)
        if again.seconds["plan"] + again.seconds["write"] < engine_s:
            engine_s = again.seconds["plan"] + again.seconds["write"]
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    size = out.stat().st_size

    copy = work / "copy.log"
    cat_s = min(timed_shell(f"cat '{out}' > '{copy}'", before=copy) for _ in range(3))
    cat_pipe_s = min(timed_shell(f"cat '{out}' | cat > '{copy}'", before=copy) for _ in range(3))
    copy.unlink()

    lines_per_s = result.lines / engine_s
    cat_lines_per_s = result.lines / cat_s
    print(f"lines={result.lines}")
    print(f"connections={result.connections}")
    print(f"lines_per_connection={result.lines / result.connections:.2f}")
    print(f"bytes={size}")
    print(f"format={args.format}")
    print(f"log_level={args.log_level}")
    print(f"record_s={record_s:.2f}")
    print(f"engine_s={engine_s:.3f}")
    print(f"lines_per_s={lines_per_s:.0f}")
    print(f"wall_lines_per_s={result.lines / wall:.0f}")
    print(f"cpu_lines_per_s={result.lines / cpu:.0f}")
    print(f"cat_lines_per_s={cat_lines_per_s:.0f}")
    print(f"cat_pipe_lines_per_s={result.lines / cat_pipe_s:.0f}")
    print(f"ratio_vs_cat={cat_lines_per_s / lines_per_s:.2f}")
    print(f"ratio_vs_cat_pipe={(result.lines / cat_pipe_s) / lines_per_s:.2f}")
    if args.keep is None:
        import shutil

        shutil.rmtree(work, ignore_errors=True)  # the corpus, and the recordings unless --recordings
    else:
        print(f"corpus={out}")


# Runs the rest of its command line and prints its peak RSS in KiB last, on stderr: the command
# is this wrapper's only child, so RUSAGE_CHILDREN is its own peak.
_MEASURE = ("import resource, subprocess, sys\n"
            "code = subprocess.call(sys.argv[1:])\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(code)\n")


def memory(work: Path, recordings: Path, fmt: str, log_level: str) -> None:
    """Peak RSS of whole `sshsim generate` runs as the volume grows (the first one records)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = work / "corpus.log"
    for multiple in (1, 10, 100, 1000, 10000):
        done = subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, "-m", "simulator", "generate",
                               str(SPEC), "-o", str(out), "--force", "-q", "--recordings", str(recordings),
                               "--format", fmt, "--log-level", log_level, "--var", f"rate={2 * multiple}"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        *said, peak = done.stderr.strip().splitlines()
        print(f"peak_rss_mb_{multiple}={int(peak) / 1024:.0f}")
        wrote = re.search(r"wrote (\d+) lines, (\d+) connections", done.stdout)
        if done.returncode == 0 and wrote:
            print(f"lines_{multiple}={wrote.group(1)}")
            print(f"connections_{multiple}={wrote.group(2)}")
        else:
            print(f"refused_{multiple}={' '.join(said)}")


if __name__ == "__main__":
    main()
