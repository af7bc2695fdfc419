"""Progress and colour as a pipe sees them: nothing but plain results by default, a drawn display
with --progress, colour with --color even into a pipe, NO_COLOR obeyed unless --color says
otherwise. Real runs against the real local sshd (the spinner and bars are about real waits).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, needs_local_sshd

SCENARIO = ROOT / "scenarios" / "library" / "publickey-shell.yaml"
SEED_LOG = ROOT / "tests" / "data" / "seed" / "sshd-debug1-motty-secureblackbox.log"
ESC = "\x1b["
SPEC = """\
name: progress
engine: synthetic
seed: 3
window: {start: "2024-03-11T00:00:00", duration: 10m, timezone: UTC}
rate: {per_minute: 2, curve: flat}
users:
  - {name: alice, uid: 1001}
mix:
  - {name: key-exec, scenario: publickey-exec.yaml, profiles: [openssh-9.6]}
"""


def sshsim(*args: str, no_color: bool = False, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env["PYTHONPATH"] = str(ROOT)
    if no_color:
        env["NO_COLOR"] = "1"
    return subprocess.run([sys.executable, "-m", "simulator", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def test_colour_into_a_pipe_follows_the_flag_then_no_color() -> None:
    # A failing verify: the failure report goes to stderr, coloured only when asked.
    args = ("verify", str(SEED_LOG), str(SCENARIO))
    plain = sshsim(*args)
    assert plain.returncode == 1 and "expected" in plain.stderr and ESC not in plain.stderr + plain.stdout
    forced = sshsim(*args, "--color", no_color=True)
    assert forced.returncode == 1 and f"{ESC}31m" in forced.stderr  # --color beats NO_COLOR
    assert ESC not in sshsim(*args, no_color=True).stderr


@needs_local_sshd
def test_run_is_plain_in_a_pipe_and_draws_a_spinner_when_forced() -> None:
    plain = sshsim("run", str(SCENARIO))
    assert plain.returncode == 0, plain.stderr
    assert ESC not in plain.stdout + plain.stderr and "running publickey-shell" not in plain.stderr
    drawn = sshsim("run", str(SCENARIO), "--progress", "--color", no_color=True)
    assert drawn.returncode == 0, drawn.stderr
    assert "running publickey-shell (1/1)" in drawn.stderr
    assert f"{ESC}32m{ESC}1mPASS" in drawn.stdout  # green, bold: into a pipe, with NO_COLOR set
    assert drawn.stdout.strip().splitlines()[-1] == "1 passed, 0 failed"


@needs_local_sshd
def test_generate_bars_on_stderr_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    lines = sshsim("generate", "spec.yaml", "-o", "a.log", cwd=tmp_path)
    assert lines.returncode == 0, lines.stderr
    assert ESC not in lines.stderr and "sshsim generate: writing: 100% of the window" in lines.stderr
    bars = sshsim("generate", "spec.yaml", "-o", "b.log", "--progress", "--no-color", cwd=tmp_path)
    assert bars.returncode == 0, bars.stderr
    assert "recording against the real sshd" in bars.stderr and "100/100" in bars.stderr
    assert "sshsim generate: writing:" not in bars.stderr  # the bar replaces the messages
    assert bars.stdout.startswith("wrote ") and ESC not in bars.stdout
    assert (tmp_path / "a.log").read_text() == (tmp_path / "b.log").read_text()
    quiet = sshsim("generate", "spec.yaml", "-o", "c.log", "--progress", "-q", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == ""
