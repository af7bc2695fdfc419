"""`sshsim diff` two-sided: a scenario diffed with itself scores 100% every time (issue 14).

Two runs of one scenario differ on sshd's own races (whether `Close session` and `channel 0:
free` come before the disconnect or not at all) and on run-to-run values (compression counts);
normalise.yaml's `races` and tokens cover them, so a CI gate on the score is not flaky.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import needs_local_sshd
from simulator.verify.diff import diff_lines

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "seed" / "motty-secureblackbox.yaml"
REPEATS = 20


def _sshsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_score_counts_lines_only_b_has() -> None:
    """Lines only B has lower the score (the one-sided count never saw them)."""
    line = "Dec  5 14:00:00 host sshd[10]: Server listening on 0.0.0.0 port 22."
    extra = "Dec  5 14:00:01 host sshd[10]: Received signal 15; terminating."
    diff = diff_lines([line], [line, extra])
    assert (diff.matched, diff.total_a, diff.total_b) == (1, 1, 2)
    assert diff.complete and not diff.both_ways and diff.score == 0.5


def test_a_line_only_one_log_has_is_shown_with_its_control_characters_escaped(tmp_path: Path) -> None:
    """A log is untrusted: a line `diff` reports as only one side's must not reach the terminal
    with an ESC in it (it would clear the screen here), coloured or not."""
    line = "Dec  5 14:00:00 host sshd[10]: Server listening on 0.0.0.0 port 22."
    evil = ("Dec  5 14:00:01 host sshd[10]: error: kex_exchange_identification: "
            "banner line contains invalid characters \x1b[2J\rok")
    (tmp_path / "a.log").write_text(line + "\n", encoding="utf-8")
    (tmp_path / "b.log").write_text(line + "\n" + evil + "\n", encoding="utf-8")
    for colour in ("--no-color", "--color"):
        out = _sshsim("diff", str(tmp_path / "a.log"), str(tmp_path / "b.log"), colour).stdout
        assert "invalid characters \\x1b[2J\\x0dok" in out
        assert "\x1b[2J" not in out and "\r" not in out


@needs_local_sshd
def test_reference_scenario_diffed_with_itself_scores_100_every_time(tmp_path: Path) -> None:
    logs = []
    for index in range(REPEATS):
        log = tmp_path / f"run-{index}.log"
        run = _sshsim("run", str(SCENARIO), "--log-out", str(log), "--no-color",
                      *(("--report", "json", str(tmp_path / "run-0.json")) if index == 0 else ()))
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr
        logs.append(log)
    for log in logs[1:]:
        out = _sshsim("diff", str(logs[0]), str(log), "--no-color")
        assert out.returncode == 0, out.stdout[-3000:]
        two_sided = next(l for l in out.stdout.splitlines() if l.startswith("two-sided:"))
        assert "score 100%" in two_sided, out.stdout[-3000:]
    # Headers name the connections as the scenario does, from the run's JSON report.
    named = _sshsim("diff", str(logs[0]), str(logs[1]), "--no-color", "--names-a", str(tmp_path / "run-0.json"))
    heads = [l for l in named.stdout.splitlines() if "<->" in l and "listener" not in l]
    assert [h.split(": #", 1)[0].lstrip("=~ ") for h in heads] == ["motty (motty-0.80)", "secureblackbox (secureblackbox)"]


def test_names_from_a_bad_report_is_a_one_line_error(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("Dec  5 14:00:00 host sshd[10]: Server listening on 0.0.0.0 port 22.\n")
    report = tmp_path / "report.json"
    report.write_text('{"scenarios": 3}')
    out = _sshsim("diff", str(log), str(log), "--names-b", str(report))
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert out.stderr.startswith(f"sshsim: error: {report}: --names-b: not a JSON report of sshsim run")
