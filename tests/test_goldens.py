"""Golden files: what every shipped scenario logs on every sshd version, kept and reviewed as diffs.

For each target of GOLDEN_TARGETS and each scenario of scenarios/library and scenarios/seed,
tests/golden/<label>/<scenario>.log is a captured log and <scenario>.events.jsonl the events of
each connection as the engine sees them (simulator/verify/connection_events.py: normalised, no
pid, port, address, time or fingerprint; sshd's own races left out). Each test runs the scenario
fresh through `sshsim run` and requires that

- its expectations hold (exit 0),
- the two-sided diff of the fresh log against the golden one is 100% (simulator/verify/diff.py;
  normalise.yaml `races` are sshd's own timing),
- the fresh events equal the golden events, row for row.

`pytest tests/test_goldens.py --accept-goldens` writes the goldens of the selected tests (-k
narrows them) from fresh passing runs; files whose content a fresh run matches are left as they
are, so a review sees only what changed (docs/goldens.md).
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import pytest
from conftest import ROOT, cli, needs_local_sshd

from simulator.builds.features import parse_version
from simulator.commands.logio import read_log_lines, read_run_report
from simulator.io import atomic_write_text, write_lines
from simulator.verify.connection_events import connection_events
from simulator.verify.diff import diff_lines, is_racy, render

GOLDEN = ROOT / "tests" / "golden"
SCENARIOS = sorted(p for folder in ("library", "seed") for p in (ROOT / "scenarios" / folder).glob("*.yaml"))

# label -> target (as `--target` takes it). The label names the OpenSSH version the goldens were
# captured from, as its version string says it ("9.2p1-debian": Debian's 9.2p1 package); a
# version to keep goldens for is one line here, then --accept-goldens.
GOLDEN_TARGETS = {
    "9.2p1-debian": "local",
    # upstream builds (`sshsim build-sshd`, versions.yaml `ci: true`)
    "8.4p1": "local:8.4p1",
    "9.2p1": "local:9.2p1",
    "10.0p1": "local:10.0p1",
    "10.3p1": "local:10.3p1",
}

CASES = [pytest.param(label, target, scenario, id=f"{label}-{scenario.stem}")
         for label, target in GOLDEN_TARGETS.items() for scenario in SCENARIOS]


def version_label(lines: list[str]) -> str | None:
    """The label of the sshd that wrote `lines`, from its "Local version string" (DEBUG1 and
    above): "OpenSSH_9.2p1 Debian-2+deb12u10" -> "9.2p1-debian", "OpenSSH_10.3" -> "10.3"."""
    for line in lines:
        found = re.search(r"Local version string SSH-2\.0-OpenSSH_(\S+)(?: (\w+))?", line)
        if found:
            return found[1] + (f"-{found[2].lower()}" if found[2] else "")
    return None


def fresh_run(target: str, scenario: Path, folder: Path,
              capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[str]] | None:
    """`sshsim run SCENARIO --target TARGET`, which must pass: (its log, its events as JSON lines);
    None when the scenario states that it does not apply to the target's version (SKIP)."""
    log, report = folder / "fresh.log", folder / "report.json"
    code, out, err = cli(["run", str(scenario), "--target", target, "--log-out", str(log), "--report", "json",
                          str(report), "--no-color", "--no-progress"], capsys)
    assert code == 0, f"{scenario.name} on {target}: expectations failed:\n{out}\n{err}"
    entries = read_run_report(report)["scenarios"]
    if [e.get("status") for e in entries] == ["skip"]:
        assert out.startswith(f"SKIP {scenario.stem}: "), out
        return None
    lines = read_log_lines(log)
    connections: dict[str, object] = {}
    for entry in entries:
        connections.update(entry["connections"])
    rows = connection_events(lines, connections)
    return lines, [json.dumps(row.to_dict(), sort_keys=True) for conn in rows.values() for row in conn]


def settled(events: list[str]) -> list[str]:
    """The events without the lines sshd logs or not, or in another place, by its own timing
    (normalise.yaml's `races`, the rule the log diff applies): two runs agree on the rest."""
    return [e for e in events if not is_racy(json.loads(e)["line"])]


@needs_local_sshd
@pytest.mark.parametrize(("label", "target", "scenario"), CASES)
def test_golden(label: str, target: str, scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                request: pytest.FixtureRequest) -> None:
    fresh = fresh_run(target, scenario, tmp_path, capsys)
    golden_log = GOLDEN / label / f"{scenario.stem}.log"
    golden_events = GOLDEN / label / f"{scenario.stem}.events.jsonl"
    if fresh is None:
        # Not for this version (the scenario's `requires:`, reported SKIP with the reason): no golden.
        assert not golden_log.exists() and not golden_events.exists(), f"{label} has goldens of a skipped scenario"
        return
    lines, events = fresh
    running = version_label(lines)
    assert running is None or same_release(running, label), (
        f"target {target} runs OpenSSH {running}: its goldens are not {label}'s")
    accept = request.config.getoption("--accept-goldens")
    if not accept:
        assert golden_log.exists() and golden_events.exists(), (
            f"no golden for {scenario.stem} on {label}: run pytest {__file__} --accept-goldens "
            f"-k '{label}-{scenario.stem}' and review the files")
    same_log = golden_log.exists() and diff_lines(read_log_lines(golden_log), lines).both_ways
    same_events = golden_events.exists() and settled(read_log_lines(golden_events)) == settled(events)
    if accept:
        golden_log.parent.mkdir(parents=True, exist_ok=True)
        # A golden the fresh run matches stays as it is: only changes reach the review.
        if not (same_log and same_events):
            write_lines(golden_log, lines, force=True)
            atomic_write_text(golden_events, "".join(e + "\n" for e in events), force=True)
        return
    if not same_log:
        diff = diff_lines(read_log_lines(golden_log), lines)
        pytest.fail(f"{scenario.stem} on {label}: the fresh log does not reproduce the golden "
                    f"(score {diff.score:.4f}):\n{render(diff, 'golden', 'fresh')}")
    if not same_events:
        told = "\n".join(difflib.unified_diff(settled(read_log_lines(golden_events)), settled(events), "golden",
                                               "fresh", lineterm=""))
        pytest.fail(f"{scenario.stem} on {label}: the events differ from the golden:\n{told}")


def test_no_stale_goldens() -> None:
    """Every golden belongs to a target of GOLDEN_TARGETS and a shipped scenario, and has both files."""
    stems = {p.stem for p in SCENARIOS}
    found = sorted(p.relative_to(GOLDEN) for p in GOLDEN.rglob("*") if p.is_file())
    assert found, "tests/golden holds no goldens"
    for path in found:
        label = path.parts[0]
        stem = path.name.removesuffix(".events.jsonl").removesuffix(".log")
        assert label in GOLDEN_TARGETS, f"tests/golden/{path}: no target {label!r} in GOLDEN_TARGETS"
        assert stem in stems and len(path.parts) == 2, f"tests/golden/{path}: no shipped scenario {stem!r}"
        assert (GOLDEN / label / f"{stem}.log").is_file() and (GOLDEN / label / f"{stem}.events.jsonl").is_file()


def same_release(running: str, label: str) -> bool:
    """The same upstream release and packaging: an upstream 9.2p1 says "OpenSSH_9.2" and Debian's
    10.0p1 orig tarball builds "OpenSSH_10.0p2", so releases compare by major.minor."""
    return (parse_version(running) == parse_version(label)
            and running.endswith("-debian") == label.endswith("-debian"))


def test_version_label_reads_real_version_lines() -> None:
    """The label check reads sshd's own version line (a real line of the system sshd's log)."""
    real = (ROOT / "tests" / "data" / "local" / "sshd-9.2-debug1.log").read_text().splitlines()
    assert version_label(real) == "9.2p1-debian"
    assert version_label(["sshd[1]: debug1: Local version string SSH-2.0-OpenSSH_10.3"]) == "10.3"
    assert version_label([line for line in real if "Local version string" not in line]) is None
    assert same_release("9.2", "9.2p1") and same_release("10.0p2", "10.0p1")
    assert not same_release("9.2p1-debian", "9.2p1") and not same_release("10.3", "10.0p1")
