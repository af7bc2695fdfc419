"""Version-true corpora: MaxStartups drops recorded for real (`server.max_startups`, a burst's
`concurrent`; real engine), and what fail2ban and crowdsec make of them.

scenarios/generate/detect-maxstartups.yaml: a four-task brute force against `MaxStartups 2`.
Each burst connection meets the sshd while its burst's earlier connections that got a slot (up
to three) still wait unauthenticated, so the first two always get in and later ones are turned
away by sshd itself: "drop connection #2 from [ADDR]:PORT on [ADDR]:22 past MaxStartups" on
9.2 (with "beginning/exited MaxStartups throttling"), "... Maxstartups" on 10.0. The drops are
labelled `outcome: dropped` with their `penalty_lines`; nothing of the recording shows.

Measured with the real tools (README, "Detection table"): Debian 12's fail2ban 1.0.2 sshd filter
and crowdsec 1.4.6's sshd parser count none of the drop lines as a failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.detect import Cell, parse_tool, run_matrix
from simulator.errors import BadInputError
from simulator.generate import apply_overrides, load_spec
from simulator.limits import MAX_BURST_CONCURRENT

from conftest import needs_local_sshd

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "scenarios" / "generate" / "detect-maxstartups.yaml"
TARGETS = ["local", "local:10.0p1"]
# the drop line's reason per version (simulator/data/openssh/features.yaml, max_startups_logged)
REASON = {"local": "past MaxStartups", "local:10.0p1": "Maxstartups"}
_DROP = re.compile(r"drop connection #(\d+) from \[([\d.]+)\]:(\d+) on \[192\.0\.2\.20\]:22 (.*)$")

tools_installed = pytest.mark.skipif(shutil.which("fail2ban-regex") is None or shutil.which("crowdsec") is None,
                                     reason="fail2ban and crowdsec are not installed (sshsim setup --tests)")


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[tuple[str, str], Cell], Path]:
    if shutil.which("fail2ban-regex") is None or shutil.which("crowdsec") is None:
        pytest.skip("fail2ban and crowdsec are not installed (sshsim setup --tests)")
    folder = tmp_path_factory.mktemp("maxstartups")
    cells = run_matrix(load_spec(SPEC), [parse_tool("fail2ban"), parse_tool("crowdsec")], TARGETS, ["syslog"],
                       folder, recordings=folder / "recordings")
    return {(c.tool, c.target): c for c in cells}, folder


def corpus(folder: Path, target: str) -> tuple[list[str], list[dict[str, Any]]]:
    log = folder / target.replace(":", "-") / "corpus.log"
    labels = [json.loads(line) for line in log.with_name("corpus.log.labels.jsonl").read_text().splitlines()]
    return log.read_text().splitlines(), labels


@needs_local_sshd
@pytest.mark.sshd
@pytest.mark.parametrize("target", TARGETS)
def test_drops_are_recorded_and_labelled(measured: tuple[dict, Path], target: str) -> None:
    _, folder = measured
    lines, labels = corpus(folder, target)
    burst = [label for label in labels if label["burst"]]
    assert len(burst) == 10 and len({label["source"] for label in burst}) == 1
    # the first two meet 0 and 1 waiting connections: MaxStartups 2 lets them in
    assert [label["outcome"] for label in burst[:2]] == ["failed", "failed"]
    assert {label["outcome"] for label in burst} == {"failed", "dropped"}
    dropped = [label for label in burst if label["outcome"] == "dropped"]
    assert len(dropped) >= 2
    for label in dropped:
        assert label["failure_lines"] == [] and label["penalty_lines"] == label["lines"]
        drops = [m for n in label["lines"] if (m := _DROP.search(lines[n - 1]))]
        assert len(drops) == 1
        startups, addr, port, reason = drops[0].groups()
        assert (int(startups), addr, int(port), reason) == (2, label["source"], label["port"], REASON[target])
    # every listener line about MaxStartups is some connection's penalty line, and only those
    assert sorted(n for label in labels for n in label["penalty_lines"]) == [
        i for i, line in enumerate(lines, 1) if "MaxStartups" in line or "drop connection" in line]
    assert not any("127." in line for line in lines)


@needs_local_sshd
@pytest.mark.sshd
@tools_installed
@pytest.mark.parametrize("target", TARGETS)
def test_the_tools_count_no_drop_line(measured: tuple[dict, Path], target: str) -> None:
    cells, folder = measured
    _, labels = corpus(folder, target)
    labelled = sum(len(label["penalty_lines"]) for label in labels)
    for tool in ("fail2ban:sshd", "crowdsec"):
        cell = cells[(tool, target)]
        assert cell.drops.expected == labelled > 0
        assert cell.drops.hit == 0, f"{tool} on {target} now counts drop lines: update the README's table"
        assert cell.to_dict()["drops"]["expected"] == labelled
    # the failed logins around them are scored as before: found on 9.2, not on 10.0 (sshd-session)
    assert cells[("fail2ban:sshd", "local")].lines.recall == 1.0
    assert cells[("fail2ban:sshd", "local:10.0p1")].lines.found == 0


@needs_local_sshd
@pytest.mark.sshd
def test_a_concurrent_burst_is_never_served_from_the_recordings_folder(measured: tuple[dict, Path]) -> None:
    """What sshd did to a burst connection depends on the burst's earlier ones in the same run:
    such recordings are not kept for reuse (the key logins are)."""
    _, folder = measured
    kept = [json.loads(path.read_text()) for path in (folder / "recordings").glob("*.json")]
    entries = {t["entry"] for k in kept for t in k["templates"]}
    assert entries == {"key-exec"}


def write(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    return spec


def spec_text(**replace: str) -> str:
    text = SPEC.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text.replace("scenario: publickey-exec.yaml", f"scenario: {SPEC.parent / 'publickey-exec.yaml'}").replace(
        "scenario: password-attempts.yaml", f"scenario: {SPEC.parent / 'password-attempts.yaml'}")


def test_max_startups_and_concurrent_need_the_real_engine(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        load_spec(write(tmp_path, spec_text(**{"engine: real": "engine: synthetic"})))
    assert caught.value.key == "server.max_startups" and "engine: real" in str(caught.value)
    with pytest.raises(BadInputError) as caught:
        load_spec(write(tmp_path, spec_text(**{"engine: real": "engine: synthetic", ", max_startups: 2": ""})))
    assert caught.value.key == "bursts[0].concurrent"
    # the command line's --engine synthetic is refused the same way: one line, exit 2, no file
    spec = write(tmp_path, spec_text())
    done = subprocess.run([sys.executable, "-m", "simulator", "generate", str(spec), "-o", str(tmp_path / "x.log"),
                           "--engine", "synthetic"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "max_startups needs the real engine" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.log").exists()
    assert apply_overrides(load_spec(spec), engine="real").max_startups == "2"


@pytest.mark.parametrize(("replace", "key", "words"), [
    ({"max_startups: 2": "max_startups: '10:30:5'"}, "server.max_startups", "start must be at most full"),
    ({"max_startups: 2": "max_startups: '10:130:50'"}, "server.max_startups", "rate at most 100"),
    ({"max_startups: 2": "max_startups: ten"}, "server.max_startups", ""),
    ({"concurrent: 4": f"concurrent: {MAX_BURST_CONCURRENT + 1}"}, "bursts[0].concurrent", "at most"),
    ({"concurrent: 4": "concurrent: 0"}, "bursts[0].concurrent", ""),
])
def test_bad_values_are_one_line_errors(tmp_path: Path, replace: dict[str, str], key: str, words: str) -> None:
    with pytest.raises(BadInputError) as caught:
        load_spec(write(tmp_path, spec_text(**replace)))
    assert caught.value.key == key and words in str(caught.value) and caught.value.line is not None
