"""CrowdSec as Debian ships it, replaying a log file: the sshd parsers and ssh brute-force
scenarios of the hub snapshot in Debian's package (/usr/share/crowdsec/hub: no network).

Everything runs in a private folder (config, sqlite database, credentials, dumps), never in the
system's /etc/crowdsec or /var/lib/crowdsec: crowdsec reads the file once (`-dsn file://...`,
time-machine mode) with its local API on a loopback port of its own, and `-dump-data` writes what
each parser made of each line and every bucket overflow, which is what is scored:
- a line counts as matched when the sshd parser gives it `log_type: ssh_failed-auth` (what the
  scenarios pour into their buckets);
- a source counts as alerted when one of the scenarios' buckets overflowed for it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from simulator.errors import EnvironmentProblem, RunFailed

HUB = Path("/usr/share/crowdsec/hub")
PATTERNS = Path("/etc/crowdsec/patterns")
PARSERS = {
    "s00-raw": ("crowdsecurity/syslog-logs.yaml",),
    "s01-parse": ("crowdsecurity/sshd-logs.yaml",),
    # Debian enables the whitelists parser too: a real deployment drops private addresses there
    "s02-enrich": ("crowdsecurity/dateparse-enrich.yaml", "crowdsecurity/whitelists.yaml"),
}
SCENARIOS = ("crowdsecurity/ssh-bf.yaml", "crowdsecurity/ssh-slow-bf.yaml")
SSHD_PARSER = "crowdsecurity/sshd-logs"
FAILED_AUTH = "ssh_failed-auth"
TIMEOUT = 600
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Bucket:
    """A leaky-bucket scenario counting every failed-auth event of a source."""

    name: str
    capacity: int
    leakspeed: float


@dataclass
class CrowdsecResult:
    matched: list[str]  # lines the sshd parser marked as failed authentication, as read
    alerted: set[str]  # sources a scenario raised an alert for
    scenarios: set[str]  # which scenarios did


def binaries() -> tuple[str, str]:
    crowdsec, cscli = shutil.which("crowdsec"), shutil.which("cscli")
    if crowdsec is None or cscli is None or not HUB.is_dir():
        raise EnvironmentProblem("crowdsec not installed: apt-get install crowdsec (sshsim setup --tests)")
    return crowdsec, cscli


def buckets() -> list[Bucket]:
    """The scenarios' plain per-source buckets (the `distinct` user-enumeration ones count
    distinct user names, which labels do not time): what the labels are run through."""
    out = []
    for name in SCENARIOS:
        for doc in yaml.load_all((HUB / "scenarios" / name).read_text(encoding="utf-8"), Loader=_Loader):
            if isinstance(doc, dict) and doc.get("type") == "leaky" and "distinct" not in doc:
                out.append(Bucket(doc["name"], int(doc["capacity"]), _seconds(str(doc["leakspeed"]))))
    return out


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(root: Path, port: int) -> str:
    return f"""common:
  daemonize: false
  log_media: stdout
  log_level: warning
  working_dir: {root}
config_paths:
  config_dir: {root}/
  data_dir: {root}/data/
  simulation_path: {root}/simulation.yaml
  hub_dir: {HUB}/
  index_path: {HUB}/.index.json
crowdsec_service:
  acquisition_path: {root}/acquis.yaml
  parser_routines: 1
db_config:
  type: sqlite
  db_path: {root}/data/crowdsec.db
api:
  client:
    credentials_path: {root}/credentials.yaml
  server:
    listen_uri: 127.0.0.1:{port}
    profiles_path: {root}/profiles.yaml
prometheus:
  enabled: false
"""


_PROFILES = """name: default_ip_remediation
filters:
 - Alert.Remediation == true && Alert.GetScope() == "Ip"
decisions:
 - type: ban
   duration: 4h
on_success: break
"""


def replay(log: Path, source_type: str = "syslog") -> CrowdsecResult:
    """Replay `log` through crowdsec in a private folder, removed afterwards."""
    crowdsec, cscli = binaries()
    root = Path(tempfile.mkdtemp(prefix="sshsim-crowdsec-"))
    try:
        for stage, names in PARSERS.items():
            (root / "parsers" / stage).mkdir(parents=True)
            for name in names:
                shutil.copyfile(HUB / "parsers" / stage / name, root / "parsers" / stage / Path(name).name)
        (root / "scenarios").mkdir()
        for name in SCENARIOS:
            shutil.copyfile(HUB / "scenarios" / name, root / "scenarios" / Path(name).name)
        shutil.copytree(PATTERNS, root / "patterns")
        (root / "data").mkdir()
        (root / "dump").mkdir()
        (root / "acquis.yaml").write_text("")
        (root / "simulation.yaml").write_text("simulation: false\n")
        (root / "profiles.yaml").write_text(_PROFILES)
        config = root / "config.yaml"
        config.write_text(_config(root, _free_port()))
        _run([cscli, "-c", str(config), "--error", "machines", "add", "sshsim", "--password",
              "sshsim-local-replay", "-f", str(root / "credentials.yaml")], "cscli machines add")
        _run([crowdsec, "-c", str(config), "-dsn", f"file://{log.resolve()}", "-type", source_type,
              "-dump-data", str(root / "dump")], "crowdsec")
        return _read_dumps(root / "dump")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _read_dumps(folder: Path) -> CrowdsecResult:
    matched: list[str] = []
    parsed = folder / "parser-dump.yaml"
    stages = yaml.load(parsed.read_text(encoding="utf-8"), Loader=_Loader) if parsed.is_file() else None
    for item in ((stages or {}).get("s01-parse") or {}).get(SSHD_PARSER) or []:
        evt = item.get("evt") or {}
        if item.get("success") and (evt.get("Meta") or {}).get("log_type") == FAILED_AUTH:
            matched.append(str((evt.get("Line") or {}).get("Raw", "")))
    alerted: set[str] = set()
    scenarios: set[str] = set()
    dumped = folder / "bucket-dump.yaml"
    for event in (yaml.load(dumped.read_text(encoding="utf-8"), Loader=_Loader) if dumped.is_file() else None) or []:
        overflow = (event or {}).get("Overflow") or {}
        alert = overflow.get("Alert") or {}
        if alert and overflow.get("Sources"):
            alerted.update(str(k) for k in overflow["Sources"])
            scenarios.add(str(alert.get("scenario", "")))
    return CrowdsecResult(matched, alerted, scenarios)


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd="/")
    except subprocess.TimeoutExpired:
        raise RunFailed(f"{what} took more than {TIMEOUT} s") from None
    if done.returncode != 0:
        lines = (done.stderr + done.stdout).strip().splitlines() or ["(no message)"]
        raise RunFailed(f"{what} failed (exit {done.returncode}): {lines[-1][-300:]}")
