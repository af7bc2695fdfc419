"""Reports of scenario runs for machines (JSON, JUnit XML) and people (text, HTML: simulator/verify/timeline.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from simulator.io import atomic_write_text
from simulator.verify.outcome import ScenarioOutcome, render_failures
from simulator.verify.timeline import as_html


def as_json(outcomes: list[ScenarioOutcome]) -> str:
    data: dict[str, Any] = {
        "passed": sum(o.ok for o in outcomes),
        "failed": sum(not o.ok for o in outcomes),
        "scenarios": [
            {
                "name": o.name,
                "path": o.path,
                "ok": o.ok,
                "duration_s": round(o.duration, 3),
                "log_lines": len(o.lines),
                "errors": o.errors,
                "failures": [
                    {"connection": f.connection, "message": f.message, "expected": f.expected,
                     "position": list(f.position) if f.position else None, "context": f.context}
                    for f in o.failures
                ],
                "connections": {
                    cid: {"profile": r.profile, "port": r.port, "auth_ok": r.auth_ok, "error": r.error,
                          "failure": r.failure, "exit_statuses": r.exit_statuses, "refused": r.refused}
                    for cid, r in (o.run.connections.items() if o.run else [])
                },
            }
            for o in outcomes
        ],
    }
    return json.dumps(data, indent=2) + "\n"


def as_junit(outcomes: list[ScenarioOutcome]) -> str:
    suite = ET.Element("testsuite", name="sshsim", tests=str(len(outcomes)),
                       failures=str(sum(not o.ok for o in outcomes)), errors="0",
                       time=f"{sum(o.duration for o in outcomes):.3f}")
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=o.path, name=o.name, time=f"{o.duration:.3f}")
        if not o.ok:
            failure = ET.SubElement(case, "failure", message=o.failures[0].headline())
            failure.text = render_failures([o])
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def render_report(fmt: str, outcomes: list[ScenarioOutcome]) -> str:
    """The text of a report in `fmt` (json, junit, html or text)."""
    return {"json": as_json, "junit": as_junit, "html": as_html,
            "text": lambda o: render_failures([x for x in o if not x.ok]) + "\n"}[fmt](outcomes)


def write_report(fmt: str, path: Path, outcomes: list[ScenarioOutcome], *, force: bool = False) -> None:
    atomic_write_text(path, render_report(fmt, outcomes), force=force)
