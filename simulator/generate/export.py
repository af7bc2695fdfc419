"""`generate --export fail2ban|crowdsec DIR`: a corpus as test fixtures in a tool's own layout.

fail2ban (DIR/logs/sshd, as fail2ban/tests/files/logs/sshd): its sample-log format, every log
line preceded by a `# failJSON: {...}` line. `"match": true` with `host` (the connection's
source) and `time` (the stamp as local wall time) where the labels say the sshd filter in its
normal mode must count a failure (`failure_lines`); `"match": false` on every other line.
fail2ban's sample tests read exactly that; `fail2ban-regex` on the file matches exactly the
lines marked true (the comments match nothing).

crowdsec (DIR/.tests/sshsim-NAME/, as a hub checkout's .tests/TEST/ for `cscli hubtest run`):
the log, its config.yaml (syslog-logs, sshd-logs and dateparse-enrich parsers; ssh-bf and
ssh-slow-bf scenarios), parser.assert (each labelled failure line is `ssh_failed-auth` from its
labelled source) and scenario.assert (at least as many alerts as sources the labels' failures
overflow a bucket for: hubtest's assertions name results by index, which the labels cannot know,
and it does not evaluate closures such as any()).
"""

from __future__ import annotations

import json
from pathlib import Path

from simulator.errors import BadInputError
from simulator.io import atomic_write_text, check_output, safe_file_name

EXPORTS = ("fail2ban", "crowdsec")
FILE_FORMATS = ("syslog", "rfc3339")  # what both read from a file as it is
SSHD_PARSER = 'results["s01-parse"]["crowdsecurity/sshd-logs"]'
CROWDSEC_CONFIG = """parsers:
- crowdsecurity/syslog-logs
- crowdsecurity/sshd-logs
- crowdsecurity/dateparse-enrich
scenarios:
- crowdsecurity/ssh-bf
- crowdsecurity/ssh-slow-bf
postoverflows:
- ""
log_file: {log}
log_type: syslog
labels: {{}}
ignore_parsers: false
override_statics: []
"""


def _wall_time(fmt: str, line: str, year: int) -> str:
    """The stamp of a line as local wall time, YYYY-MM-DDTHH:MM:SS (as failJSON writes it)."""
    if fmt == "rfc3339":
        return line[:19]
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return f"{year:04d}-{months.index(line[:3]) + 1:02d}-{int(line[4:6]):02d}T{line[7:15]}"


def export_paths(kind: str, folder: Path, name: str) -> list[Path]:
    """The files an export writes."""
    folder = Path(folder)
    if kind == "fail2ban":
        return [folder / "logs" / "sshd"]
    name = safe_file_name(f"sshsim-{name}", "", set())  # the spec's name is text: one plain name
    test = folder / ".tests" / name
    return [test / f"{name}.log", test / "config.yaml", test / "parser.assert", test / "scenario.assert"]


def check_export(kind: str, folder: Path, fmt: str, force: bool, name: str = "sshd") -> list[Path]:
    """Refuse, before any work, an export that cannot be written; the files it will write."""
    if kind not in EXPORTS:
        raise BadInputError(f"unknown export {kind!r} (one of {', '.join(EXPORTS)})", key="--export")
    if fmt not in FILE_FORMATS:
        raise BadInputError(f"{kind} reads syslog lines from a file: export a {' or '.join(FILE_FORMATS)} "
                            f"corpus, not {fmt}", key="--export")
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError("folder does not exist", file=str(folder))
    paths = export_paths(kind, folder, name)
    for path in paths:
        for parent in reversed(path.relative_to(folder).parents[:-1]):
            where = folder / parent
            if where.is_symlink() or (where.exists() and not where.is_dir()):
                raise BadInputError("is not a folder (sshsim never writes through a link)", file=str(where))
        if path.parent.is_dir():
            check_output(path, force)
    return paths


def _failures(labels: Path) -> dict[int, str]:
    """Line number -> source, for every labelled failure line."""
    source: dict[int, str] = {}
    for text in labels.read_text(encoding="utf-8").splitlines():
        label = json.loads(text)
        for n in label["failure_lines"]:
            source[n] = label["source"]
    return source


def export_fail2ban(log: Path, labels: Path, fmt: str, year: int, folder: Path, *, force: bool = False) -> Path:
    """Write DIR/logs/sshd from a written corpus and its labels; the path written."""
    path = check_export("fail2ban", folder, fmt, force)[0]
    lines = log.read_text(encoding="utf-8").splitlines()
    source = _failures(labels)
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


def export_crowdsec(log: Path, labels: Path, fmt: str, name: str, folder: Path, alerts: int, *,
                    force: bool = False) -> Path:
    """Write DIR/.tests/sshsim-NAME/ (`alerts`: how many sources the labels' failures overflow a
    scenario's bucket for); the test's folder."""
    log_path, config, parser, scenario = check_export("crowdsec", folder, fmt, force, name)
    source = _failures(labels)
    asserts = []
    for n in sorted(source):
        asserts.append(f'{SSHD_PARSER}[{n - 1}].Evt.Meta["log_type"] == "ssh_failed-auth"')
        asserts.append(f'{SSHD_PARSER}[{n - 1}].Evt.Meta["source_ip"] == {json.dumps(source[n])}')
    log_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(log_path, log.read_text(encoding="utf-8"), force=force)
    atomic_write_text(config, CROWDSEC_CONFIG.format(log=log_path.name), force=force)
    atomic_write_text(parser, "\n".join(asserts) + "\n", force=force)
    atomic_write_text(scenario, f"len(results) >= {alerts}\n", force=force)
    return log_path.parent
