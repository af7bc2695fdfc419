"""The first acceptance test: the reference log, reproduced line for line against a real sshd.

`sshsim run scenarios/seed/motty-secureblackbox.yaml --log-out OUT` then
`sshsim diff SEED OUT` must end with `matched 178/178 lines` (the log's two systemd-logind
lines are not sshd's). With the project's own sntrup761 in place there is no allowed miss.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT, needs_local_sshd

SCENARIO = ROOT / "scenarios" / "seed" / "motty-secureblackbox.yaml"


def sshsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_seed_log_diffs_with_itself(seed_log_path: Path) -> None:
    out = sshsim("diff", str(seed_log_path), str(seed_log_path), "--no-color")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "matched 178/178 lines"


def test_seed_log_meets_the_seed_scenario(seed_log_path: Path) -> None:
    """The scenario's expectations describe the real log too (so they are not tuned to the driver)."""
    out = sshsim("verify", str(seed_log_path), str(SCENARIO), "--no-color")
    assert out.returncode == 0, out.stdout + out.stderr


@needs_local_sshd
def test_reference_log_reproduced_178_of_178(seed_log_path: Path, tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    run = sshsim("run", str(SCENARIO), "--log-out", str(log), "--no-color")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 0 failed" in run.stdout
    text = log.read_text()
    assert "user-sicharge sshd[6682]: debug1: Forked child" in text
    assert "rexec start in 5 out 5 newsock 5 pipe 8 sock 9" in text, "second client must start while the first authenticates"
    # The reference log is a truncated capture (it ends before the teardown): all of it in B.
    diff = sshsim("diff", str(seed_log_path), str(log), "--no-color", "--one-sided")
    assert diff.stdout.strip().splitlines()[-1] == "matched 178/178 lines", diff.stdout[-3000:]
    assert diff.returncode == 0


@needs_local_sshd
def test_log_out_is_never_overwritten_without_force(tmp_path: Path) -> None:
    log = tmp_path / "keep.log"
    log.write_text("precious\n")
    run = sshsim("run", str(SCENARIO), "--log-out", str(log))
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "--force" in run.stderr and str(log) in run.stderr
    assert log.read_text() == "precious\n"
