"""Snapshot what the parser makes of a set of logs, and compare a later tree against it.

    python3 tools/parse_snapshot.py save DIR [LOG ...]
    python3 tools/parse_snapshot.py compare DIR [NAME ...]

For every log (by default: the reference log, the local captures, fail2ban's sshd corpora;
extra LOG arguments are copied into DIR so that a later compare reads the very same input):

- ``NAME.jsonl``: `sshsim parse --format jsonl` (the streaming path: a window of lines, the
  grouping that only grouping needs), run as a subprocess of the tree on PYTHONPATH;
- ``NAME.summary.txt``: `sshsim parse --format summary` (streaming, with summaries);
- ``NAME.batch.jsonl``: the batch path (`group_connections`): each line's event, conn and role,
  then every connection's summary (`Connection.to_dict`).

`compare` runs the same against the current tree (only the logs whose name starts with one of
the NAMEs, when given) and reports, per file, identical or the first
lines that differ (exit 1 when any differs). A refactor of parse or grouping must leave all of
them identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fail2ban_logs() -> list[Path]:
    for base in sorted(Path("/usr/lib").glob("python3*/dist-packages/fail2ban/tests/files/logs")) + sorted(
        Path("/usr/local/lib").glob("python3*/dist-packages/fail2ban/tests/files/logs")
    ):
        found = sorted(base.glob("sshd*"))
        if found:
            return found
    return []


def default_logs() -> list[Path]:
    return (
        sorted((ROOT / "tests" / "data" / "seed").glob("*.log"))
        + sorted((ROOT / "tests" / "data" / "local").glob("*.log"))
        + _fail2ban_logs()
    )


_BATCH = r"""
import json, sys
from simulator.logs import group_connections, parse_file
events = list(parse_file(sys.argv[1]))
conns = group_connections(events)
out = sys.stdout
for ev in events:
    out.write(json.dumps([ev.line, ev.event, ev.conn, ev.role, ev.fields], ensure_ascii=False) + "\n")
for c in conns:
    out.write(json.dumps(c.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
"""


def outputs(log: Path) -> dict[str, bytes]:
    """File suffix -> what the current tree writes for `log`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", NO_COLOR="1")

    def run(*args: str) -> bytes:
        return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True,
                              stdout=subprocess.PIPE).stdout

    return {
        ".jsonl": run("-m", "simulator", "parse", "--format", "jsonl", str(log)),
        ".summary.txt": run("-m", "simulator", "parse", "--format", "summary", str(log)),
        ".batch.jsonl": run("-c", _BATCH, str(log)),
    }


def _name(log: Path) -> str:
    return log.name if log.parent.name != "local" else "local-" + log.name


def save(snap: Path, extra: list[Path]) -> None:
    snap.mkdir(parents=True, exist_ok=True)
    inputs = snap / "inputs"
    inputs.mkdir(exist_ok=True)
    logs = default_logs()
    for log in extra:
        copy = inputs / log.name
        if copy.resolve() != log.resolve():
            shutil.copyfile(log, copy)
        logs.append(copy)
    manifest = []
    for log in logs:
        name = _name(log)
        for suffix, data in outputs(log).items():
            (snap / (name + suffix)).write_bytes(data)
        manifest.append({"name": name, "path": str(log)})
        print(f"saved {name}")
    (snap / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def compare(snap: Path, only: list[str]) -> int:
    manifest = json.loads((snap / "manifest.json").read_text())
    bad = 0
    for item in manifest:
        if only and not any(item["name"].startswith(n) for n in only):
            continue
        log = Path(item["path"])
        for suffix, data in outputs(log).items():
            want = (snap / (item["name"] + suffix)).read_bytes()
            if data == want:
                print(f"same  {item['name']}{suffix} ({len(want.splitlines())} lines)")
                continue
            bad += 1
            a, b = want.splitlines(), data.splitlines()
            print(f"DIFF  {item['name']}{suffix}: {len(a)} lines before, {len(b)} now")
            shown = 0
            for i, (x, y) in enumerate(zip(a, b)):
                if x != y:
                    print(f"  line {i + 1}\n    before: {x[:400]!r}\n    now:    {y[:400]!r}")
                    shown += 1
                    if shown >= 3:
                        break
    return 1 if bad else 0


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("save", "compare"):
        print(__doc__, file=sys.stderr)
        return 2
    snap = Path(sys.argv[2])
    if sys.argv[1] == "save":
        save(snap, [Path(p) for p in sys.argv[3:]])
        return 0
    return compare(snap, sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
