"""Version-true corpora: `server.per_source_penalties` (real engine) against real sshds.

On OpenSSH 9.8+ (here upstream 10.0p1) a brute-force source is penalised after its first failed
login, and the listener turns its next connections away: those are in the corpus as sshd wrote
them ("drop connection #0 from [ADDR]:PORT on [SADDR]:22 penalty: failed authentication"),
labelled `outcome: dropped` with their `penalty_lines`. On 9.2, which has no PerSourcePenalties,
the same spec records every connection as a failed login.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulator.errors import BadInputError
from simulator.generate import apply_overrides, generate, load_spec

from conftest import needs_local_sshd

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [needs_local_sshd, pytest.mark.sshd]

SPEC = """
seed: 5
engine: real
host: gen-test
server: {address: 192.0.2.20, per_source_penalties: "authfail:30"}
window: {start: "2024-03-11T08:00:00", duration: 10m, timezone: UTC}
rate: {per_minute: 0.3, curve: flat}
users: [{name: alice, uid: 1001}]
sources:
  internet: {cidrs: [203.0.113.0/24], hosts: 60}
mix:
  - {name: key-exec, scenario: publickey-exec.yaml, sources: internet, session: [0.2, 3]}
bursts:
  - name: bf
    sources: internet
    count: 1
    connections: [6, 6]
    interval: [2, 4]
    mix:
      - {name: bf-root, scenario: password-attempts.yaml, user: root, vars: {attempts: 1}}
"""


def corpus(tmp_path: Path, target: str, recordings: Path | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    log = tmp_path / f"{target.replace(':', '-')}.log"
    generate(apply_overrides(load_spec(spec), target=target), log, recordings=recordings)
    labels = [json.loads(line) for line in log.with_name(log.name + ".labels.jsonl").read_text().splitlines()]
    return log.read_text().splitlines(), labels


def test_penalties_on_a_version_that_has_them(tmp_path: Path) -> None:
    lines, labels = corpus(tmp_path, "local:10.0p1")
    burst = [l for l in labels if l["burst"]]
    assert len(burst) == 6 and len({l["source"] for l in burst}) == 1
    assert burst[0]["outcome"] == "failed" and burst[0]["failure_lines"]
    dropped = [l for l in burst if l["outcome"] == "dropped"]
    assert len(dropped) == 5
    for label in dropped:
        assert label["lines"] == label["penalty_lines"] and len(label["lines"]) == 1
        line = lines[label["lines"][0] - 1]
        assert (f"drop connection #0 from [{label['source']}]:{label['port']} on [192.0.2.20]:22 "
                "penalty: failed authentication") in line
    # nothing of the recording shows: no loopback address, and every penalty line is labelled
    assert not any("127." in line for line in lines)
    assert sorted(n for l in labels for n in l["penalty_lines"]) == [
        i for i, line in enumerate(lines, 1) if "drop connection" in line or "srclimit_penalise" in line]
    assert {l["openssh"] for l in labels} == {"OpenSSH_10.0p2"}


def test_penalties_are_not_shared_through_the_recordings_folder(tmp_path: Path) -> None:
    """Every bf-root connection files under one recording hash; with penalties each is still its
    own recording (the first is penalised, the next turned away), and none is kept for reuse."""
    _, labels = corpus(tmp_path, "local:10.0p1", recordings=tmp_path / "rec")
    burst = [l for l in labels if l["burst"]]
    assert [l["outcome"] for l in burst] == ["failed"] + ["dropped"] * 5
    assert not list((tmp_path / "rec").glob("*.json"))


def test_no_penalties_where_the_version_has_none(tmp_path: Path) -> None:
    lines, labels = corpus(tmp_path, "local")
    burst = [l for l in labels if l["burst"]]
    assert [l["outcome"] for l in burst] == ["failed"] * 6
    assert not any(l["penalty_lines"] for l in labels)
    assert not any("drop connection" in line for line in lines)


def test_penalties_need_the_real_engine(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("engine: real", "engine: synthetic"))
    with pytest.raises(BadInputError) as caught:
        load_spec(spec)
    assert caught.value.line == 5 and "engine: real" in str(caught.value)
    spec.write_text(SPEC)
    done = subprocess.run([sys.executable, "-m", "simulator", "generate", str(spec), "-o", str(tmp_path / "x.log"),
                           "--engine", "synthetic"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "per_source_penalties" in done.stderr
    assert not (tmp_path / "x.log").exists()
