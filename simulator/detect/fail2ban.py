"""fail2ban as Debian ships it: `fail2ban-regex` with a filter of /etc/fail2ban/filter.d, and
the sshd jail's `maxretry` and `findtime` (jail.conf, then jail.d/*.conf, then jail.local).

One run prints the lines the filter counts as failures (`--print-all-matched`: lines it reads as
"nofail", like PAM's, are not among them); a second prints each failure's address and time
(`-o row`), as fail2ban's jail would receive them.
"""

from __future__ import annotations

import ast
import configparser
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import BadInputError, EnvironmentProblem, RunFailed

CONFIG = Path("/etc/fail2ban")
_FILTER_NAME = re.compile(r"[A-Za-z0-9_.-]+(\[[A-Za-z0-9_=,. -]*\])?")
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")
_UNITS = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400,
          "w": 604800, "week": 604800}
TIMEOUT = 600


@dataclass
class Fail2banResult:
    matched: list[str]  # the lines counted as failures, as the filter read them
    rows: list[tuple[str, float]]  # (address, time) per failure


def regex_binary() -> str:
    found = shutil.which("fail2ban-regex")
    if found is None:
        raise EnvironmentProblem("fail2ban-regex not found: install fail2ban (sshsim setup --tests)")
    return found


def check_filter(name: str) -> str:
    """A filter of /etc/fail2ban/filter.d by name, with options as fail2ban writes them
    (`sshd`, `sshd[mode=aggressive]`)."""
    if not _FILTER_NAME.fullmatch(name):
        raise BadInputError(f"not a fail2ban filter name: {name!r} (e.g. sshd or sshd[mode=aggressive])",
                            key="--tool")
    base = name.split("[", 1)[0]
    if not (CONFIG / "filter.d" / f"{base}.conf").is_file():
        raise BadInputError(f"no fail2ban filter {base!r} in {CONFIG / 'filter.d'}", key="--tool")
    return name


def _seconds(text: str) -> float:
    m = _TIME.match(text.lower())
    if not m or m.group(2) not in _UNITS:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def jail_settings(jail: str = "sshd") -> tuple[int, float]:
    """(maxretry, findtime in seconds) of the jail, as fail2ban reads its configuration."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, inline_comment_prefixes=("#", ";"))
    files = [CONFIG / "jail.conf", *sorted((CONFIG / "jail.d").glob("*.conf")), CONFIG / "jail.local"]
    parser.read([str(f) for f in files if f.is_file()], encoding="utf-8")
    section = jail if parser.has_section(jail) else "DEFAULT"
    try:
        return int(parser.get(section, "maxretry", fallback="5")), _seconds(parser.get(section, "findtime",
                                                                                       fallback="10m"))
    except ValueError as exc:
        raise EnvironmentProblem(f"{CONFIG}: cannot read the {jail} jail's maxretry/findtime: {exc}") from None


def run_filter(log: Path, name: str) -> Fail2banResult:
    """Both runs of fail2ban-regex over `log` with filter `name`."""
    binary = regex_binary()
    log = log.resolve()  # fail2ban-regex reads a path it cannot open as a log line
    matched_run = _run([binary, "--print-all-matched", "--print-no-missed", "--print-no-ignored", str(log), name])
    matched: list[str] = []
    inside = False
    for line in matched_run.splitlines():
        if line.startswith("|- Matched line(s):"):
            inside = True
        elif inside and line.startswith("|  "):
            matched.append(line[3:])
        elif inside and line.startswith("`-"):
            inside = False
    rows = []
    for line in _run([binary, "-o", "row", str(log), name]).splitlines():
        line = line.strip().rstrip(",")
        if not line.startswith("["):
            continue
        try:
            address, when = ast.literal_eval(line.replace("\t", " ").split("{", 1)[0].rstrip(", ") + "]")[:2]
        except (ValueError, SyntaxError):
            continue
        rows.append((str(address), float(when)))
    return Fail2banResult(matched, rows)


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd="/")
    except subprocess.TimeoutExpired:
        raise RunFailed(f"fail2ban-regex took more than {TIMEOUT} s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise RunFailed(f"fail2ban-regex failed (exit {done.returncode}): {tail}")
    return done.stdout
