"""The annotated corpus of real sshd log lines: annotate a file, or measure parse coverage (dev tool).

    python tests/data/corpus/annotate.py FILE...          # (re)write each line's annotation
    python tests/data/corpus/annotate.py --coverage [FILE...]   # known-event share per file/source

A corpus file holds real log lines, as they were written, in the fail2ban style: before each line
a comment ``# sshsim: {"event": ..., "connection": ...}`` says which catalogue event the line is
and which connection it belongs to (a label, the same for every line of one connection; null for
a line of no connection). ``# source: ...`` comments say where the following lines come from
(a URL, a package, or how they were captured here); an annotation may carry its own "source".

Annotating writes what the parser says now; the annotations are then read by a person and kept
as the expected answer: tests/test_corpus.py checks every one. An event the parser gets wrong is
fixed in the catalogue; where the fix is elsewhere (a prefix format, grouping), the annotation
keeps the truth in "event"/"connection" and today's answer in "parser_event"/"parser". Without
--force, an existing annotation is kept and only missing ones are added.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from simulator.logs import group_connections, parse_lines  # noqa: E402

HERE = Path(__file__).resolve().parent
MARK = "# sshsim: "


def read(path: Path) -> list[tuple[dict | None, str, str]]:
    """(annotation or None, source in effect, line) for every log line of a corpus file."""
    out = []
    note = None
    source = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith(MARK):
            note = json.loads(raw[len(MARK):])
        elif raw.startswith("# source: "):
            source = raw[len("# source: "):]
        elif raw.startswith("#") or not raw.strip():
            continue
        else:
            out.append((note, (note or {}).get("source", source), raw))
            note = None
    return out


def parsed(path: Path) -> list:
    """The events of a corpus file's log lines (comments left out), grouped into connections."""
    lines = [line for _, _, line in read(path)]
    events = list(parse_lines(lines))
    group_connections(events)
    return events


def labels(events: list) -> list[str | None]:
    """A connection label per event: c1, c2... in order of first appearance."""
    names: dict[int, str] = {}
    out = []
    for ev in events:
        if ev.conn is None:
            out.append(None)
        else:
            out.append(names.setdefault(ev.conn, f"c{len(names) + 1}"))
    return out


def annotate(path: Path, force: bool) -> None:
    entries = read(path)
    events = parsed(path)
    conn = labels(events)
    it = iter(zip(entries, events, conn, strict=True))
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith(MARK):
            continue
        if raw.startswith("#") or not raw.strip():
            out.append(raw)
            continue
        (note, _, line), ev, label = next(it)
        if note is None or force:
            note = {**(note or {}), "event": ev.event, "connection": label}
        out.append(MARK + json.dumps(note))
        out.append(line)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


def coverage(paths: list[Path]) -> None:
    """Per file and per source: sshd lines, known ones, share."""
    for path in paths:
        entries = read(path)
        events = parsed(path)
        by_source: dict[str, list[int]] = {}
        for (_, source, _), ev in zip(entries, events, strict=True):
            if not ev.is_sshd or ev.event == "unparsed":
                continue
            if ev.event == "other":
                continue
            tally = by_source.setdefault(source.split(" (")[0], [0, 0])
            tally[0] += 1
            tally[1] += ev.known
        total = [sum(t[0] for t in by_source.values()), sum(t[1] for t in by_source.values())]
        share = 100 * total[1] / total[0] if total[0] else 0.0
        print(f"{path.name}: {total[1]}/{total[0]} known ({share:.1f}%)")
        if len(by_source) > 1:
            for source, (n, k) in sorted(by_source.items()):
                print(f"    {k}/{n} ({100 * k / n:.1f}%)  {source}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--coverage", action="store_true", help="print the known-event share per file and source")
    ap.add_argument("--force", action="store_true", help="rewrite existing annotations too")
    args = ap.parse_args()
    files = args.files or sorted(HERE.glob("*.log"))
    if args.coverage:
        coverage(files)
    else:
        for path in files:
            annotate(path, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
