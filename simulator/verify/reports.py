"""Reports of scenario runs for machines (JSON, JUnit XML) and people (text, HTML: simulator/verify/timeline.py)."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from simulator.verify.applies import skip_dicts
from simulator.verify.outcome import ScenarioOutcome, render_failures, render_skips
from simulator.verify.timeline import as_html


def as_json(outcomes: list[ScenarioOutcome]) -> str:
    data: dict[str, Any] = {
        "passed": sum(o.status == "pass" for o in outcomes),
        "failed": sum(o.status == "fail" for o in outcomes),
        "errored": sum(o.status == "error" for o in outcomes),
        "skipped": sum(o.status == "skip" for o in outcomes),
        "scenarios": [
            {
                "name": o.name,
                "path": o.path,
                "ok": o.ok,
                "status": o.status,
                "cell": o.cell,
                "duration_s": round(o.duration, 3),
                "log_lines": len(o.lines),
                "sshd_version": o.version,
                # expectations that do not apply to this sshd version, with the reason
                "skipped": skip_dicts(o.skipped),
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
    """JUnit XML as CI servers read it: classname the scenario, name the scenario and its matrix
    cell, an <error> for a run that could not be judged (target, driver, interruption) and a
    <failure> for an expectation that did not hold; `errors` and `failures` count them apart."""
    suite = ET.Element("testsuite", name="sshsim", tests=str(len(outcomes)),
                       failures=str(sum(o.status == "fail" for o in outcomes)),
                       errors=str(sum(o.status == "error" for o in outcomes)),
                       skipped=str(sum(o.status == "skip" for o in outcomes)),
                       time=f"{sum(o.duration for o in outcomes):.3f}")
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=o.scenario or o.name, name=o.name,
                             file=o.path, time=f"{o.duration:.3f}")
        if o.status == "error":
            error = ET.SubElement(case, "error", message=o.errors[0])
            error.text = render_failures([o])
        elif o.status == "fail":
            failure = ET.SubElement(case, "failure", message=o.failures[0].headline())
            failure.text = render_failures([o])
        elif o.status == "skip":
            ET.SubElement(case, "skipped", message=o.skipped[0].reason)
        if o.skipped and o.status != "skip":
            # Some expectations did not apply to this version: said beside the result, not as it.
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"skipped: {s.headline()}" for s in o.skipped) + "\n"
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def render_report(fmt: str, outcomes: list[ScenarioOutcome]) -> str:
    """The text of a report in `fmt` (json, junit, html or text)."""
    return {"json": as_json, "junit": as_junit, "html": as_html,
            "text": _text}[fmt](outcomes)


def _text(outcomes: list[ScenarioOutcome]) -> str:
    """The failures, then what was skipped for the sshd's version (with the reasons)."""
    parts = [render_failures([x for x in outcomes if not x.ok]), render_skips(outcomes)]
    return "\n".join(p for p in parts if p) + "\n"

