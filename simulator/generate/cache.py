"""A folder of recordings (templates as JSON), so later runs replay them instead of re-recording.

At INFO a recording reads the same from run to run once its run-specific values are slots. At
DEBUG levels it does not quite: sshd's processes race to the log (the monitor's "User child is
on pid N" against the child's first lines), so the order of a few lines varies. Pinning the
recordings in a folder (`--recordings DIR`) makes the output identical for a spec and seed at
any LogLevel, and saves the sshd time on the next run. A recording is filed under a hash of
everything that shapes it: the scenario file's text, the variant, the kind of user, the
LogLevel, the target, the sshd_config lines, the engine, and the data files that turn a
recording into a template (timing, fail2ban rules, run-dependent numbers).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from simulator.generate.recorder import Job
from simulator.generate.spec import data
from simulator.generate.template import Template

FORMAT_VERSION = 5  # the template format (5: labels carry failure_index, penalty_index
# and openssh), the canonicalisation
# rules (template.py), the probes


def job_hash(job: Job, log_level: str, target: str, synthetic: bool) -> str:
    """What a recording depends on, hashed (file names of the cache)."""
    entry = job.entry
    scenario_text = entry.scenario.read_bytes() if entry.scenario is not None else b""
    material = {
        "version": FORMAT_VERSION,
        # timing, labels and run-dependent numbers are decided when a recording is made
        "data": [hashlib.sha256(json.dumps(data(name), sort_keys=True).encode()).hexdigest()
                 for name in ("timing.yaml", "fail2ban.yaml", "volatile.yaml")],
        "scenario": hashlib.sha256(scenario_text).hexdigest(),
        "probe": entry.probe,
        "variant": job.variant.key,
        "user": job.user_class if synthetic else job.user,
        "log_level": log_level,
        "target": target,
        "group": [list(job.group[0]), list(job.group[1])],
        "synthetic": synthetic,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]


class RecordingCache:
    """Templates filed by job hash in a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def load(self, key: str) -> list[Template] | None:
        path = self.folder / f"{key}.json"
        try:
            data: Any = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable or half-written: record again
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            return None
        try:
            return [Template.from_dict(t) for t in data["templates"]]
        except (KeyError, TypeError, ValueError):
            return None  # not a recording as this version writes them (edited?): record again

    def save(self, key: str, templates: list[Template]) -> None:
        text = json.dumps({"version": FORMAT_VERSION, "templates": [t.to_dict() for t in templates]})
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=self.folder)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, self.folder / f"{key}.json")
