"""The same scenario files on the Docker target: the reference log on Debian 12 (OpenSSH 9.2p1)
and Debian 13 (10.0p1, sshd-session and sshd-auth), and the scenario library on every image
the engine builds without a registry (Debian 11, 12, 13 and unstable).

They need a Docker Engine API (CI starts podman's with docker/podman-engine.sh); without one
they skip, saying so, unless SSHSIM_REQUIRE_DOCKER=1 (then tests/test_docker_target.py fails).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, docker_engine_problem
from simulator.target import images

SEED = ROOT / "scenarios" / "seed" / "motty-secureblackbox.yaml"
LIBRARY = sorted((ROOT / "scenarios" / "library").glob("*.yaml"))
MATRIX = [name for name, info in images.IMAGES.items() if not info.needs_registry]
ENGINE_PROBLEM = docker_engine_problem()
pytestmark = pytest.mark.skipif(ENGINE_PROBLEM is not None, reason=f"no Docker engine reachable: {ENGINE_PROBLEM}")


def sshsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def test_reference_log_on_debian_12_matches_178_of_178(seed_log_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "debian-12.log"
    run = sshsim("run", str(SEED), "--target", "docker:debian-12", "--log-out", str(log), "--no-color")
    assert run.returncode == 0, run.stdout + run.stderr
    # The reference log is a truncated capture (it ends before the teardown): all of it in B.
    diff = sshsim("diff", str(seed_log_path), str(log), "--no-color", "--one-sided")
    assert diff.stdout.strip().splitlines()[-1] == "matched 178/178 lines", diff.stdout[-3000:]


def test_reference_scenario_passes_on_debian_13(tmp_path: Path) -> None:
    """OpenSSH 10.0 logs per-connection lines as sshd-session and pre-auth as sshd-auth; the
    scenario's expectations hold through the parser's normalisation of those differences."""
    log = tmp_path / "debian-13.log"
    run = sshsim("run", str(SEED), "--target", "docker:debian-13", "--log-out", str(log), "--no-color")
    assert run.returncode == 0, run.stdout + run.stderr
    text = log.read_text()
    assert "sshd-session[" in text


@pytest.mark.parametrize("image", MATRIX)
def test_scenario_library_on_image(image: str) -> None:
    """Every library scenario passes on every image, or states why it does not apply (a
    `requires:` the image's OpenSSH does not meet: SKIP with the reason, never FAIL)."""
    if not LIBRARY:
        pytest.fail("the scenario library (scenarios/library) is empty")
    run = sshsim("run", *map(str, LIBRARY), "--target", f"docker:{image}", "--no-color")
    assert run.returncode == 0, run.stdout + run.stderr
    verdicts = {line.split()[1].rstrip(":"): line.split()[0] for line in run.stdout.splitlines()
                if line.split() and line.split()[0] in ("PASS", "FAIL", "ERROR", "SKIP")}
    assert set(verdicts) == {p.stem for p in LIBRARY}, run.stdout
    assert set(verdicts.values()) <= {"PASS", "SKIP"}, run.stdout + run.stderr
    for line in run.stdout.splitlines():
        if line.startswith("SKIP "):
            assert "predates it" in line or "no longer does it" in line, line
