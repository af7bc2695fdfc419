"""`generate --export fail2ban|crowdsec DIR`: a corpus as test fixtures in a tool's own layout.

fail2ban (DIR/logs/sshd, as fail2ban/tests/files/logs/sshd): its sample-log format, every log
line preceded by a `# failJSON: {...}` line. `"match": true` with `host` (the connection's
source) and `time` (the stamp as local wall time) where the labels say the sshd filter in its
normal mode must count a failure (`failure_lines`); `"match": false` on every other line.
fail2ban's sample tests read exactly that; `fail2ban-regex` on the file matches exactly the
lines marked true (the comments match nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

from simulator.errors import BadInputError
from simulator.io import atomic_write_text, check_output

EXPORTS = ("fail2ban",)
FAIL2BAN_FORMATS = ("syslog", "rfc3339")  # what fail2ban reads from a file as it is


def _wall_time(fmt: str, line: str, year: int) -> str:
    """The stamp of a line as local wall time, YYYY-MM-DDTHH:MM:SS (as failJSON writes it)."""
    if fmt == "rfc3339":
        return line[:19]
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{year:04d}-{months.index(line[:3]) + 1:02d}-{int(line[4:6]):02d}T{line[7:15]}"


def fail2ban_path(folder: Path, jail_filter: str = "sshd") -> Path:
    return Path(folder) / "logs" / jail_filter


def check_export(kind: str, folder: Path, fmt: str, force: bool) -> Path:
    """Refuse, before any work, an export that cannot be written; the file it will write."""
    if kind not in EXPORTS:
        raise BadInputError(f"unknown export {kind!r} (one of {', '.join(EXPORTS)})", key="--export")
    if fmt not in FAIL2BAN_FORMATS:
        raise BadInputError(f"fail2ban's sample logs are syslog lines: export a {' or '.join(FAIL2BAN_FORMATS)} "
                            f"corpus, not {fmt}", key="--export")
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError("folder does not exist", file=str(folder))
    path = fail2ban_path(folder)
    if path.parent.exists() and not path.parent.is_dir():
        raise BadInputError("is not a folder", file=str(path.parent))
    if path.parent.is_dir():
        check_output(path, force)
    return path


def export_fail2ban(log: Path, labels: Path, fmt: str, year: int, folder: Path, *, force: bool = False) -> Path:
    """Write DIR/logs/sshd from a written corpus and its labels; the path written."""
    path = check_export("fail2ban", folder, fmt, force)
    lines = log.read_text(encoding="utf-8").splitlines()
    source: dict[int, str] = {}
    for text in labels.read_text(encoding="utf-8").splitlines():
        label = json.loads(text)
        for n in label["failure_lines"]:
            source[n] = label["source"]
    out = [f"# sshsim generate: {log.name}, {len(source)} lines fail2ban's sshd filter (mode normal) must match"]
    for n, line in enumerate(lines, 1):
        if n in source:
            note = {"time": _wall_time(fmt, line, year), "match": True, "host": source[n]}
        else:
            note = {"match": False}
        out.append("# failJSON: " + json.dumps(note))
        out.append(line)
    path.parent.mkdir(exist_ok=True)
    atomic_write_text(path, "\n".join(out) + "\n", force=force)
    return path
