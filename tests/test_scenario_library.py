"""Every shipped scenario (scenarios/library and scenarios/seed) holds against the real local sshd.

The scenarios are run through the real CLI entry point (`simulator.cli.main`), so what is tested
is what a user gets from `sshsim run`: the exit code, the PASS line and the failure report. Their
captured logs are kept for the module, so that the `sshsim diff` and `sshsim verify` checks below
reuse real captures instead of running sshd again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ROOT, cli, needs_local_sshd
from simulator.target.local import find_sshd, sshd_version

SCENARIO_DIR = ROOT / "scenarios"
# The shipped, self-contained scenarios. (scenarios/generate holds the building blocks of
# `sshsim generate`, parameterised by its mix; they are tested with the generator.)
SCENARIOS = sorted(p for folder in ("library", "seed") for p in (SCENARIO_DIR / folder).glob("*.yaml"))
LIBRARY = sorted((SCENARIO_DIR / "library").glob("*.yaml"))

# The library: one scenario per behaviour (file stem -> the event that makes its point).
EXPECTED_LIBRARY = {
    "publickey-shell": "auth.accepted",
    "password-success": "auth.accepted",
    "password-three-failures": "auth.failed",
    "invalid-user": "auth.invalid_user",
    "kex-no-common": "kex.unable_to_negotiate",
    "x11-refused": "session.session_setup_x11fwd.x11_forwarding_disabled",
    "sftp-chroot": "pam.session_opened",
    "exec-exit-status": "channel.channel_request_start.channel_request_confirm",
    "forward-refused": "session.server_request_direct_tcpip.refused_local_port",
    "per-source-penalties": "listener.penalty_new",
    "maxstartups-drop": "listener.drop_connection",
    "login-grace-timeout": "listener.login_grace_timeout",
    "publickey-then-password": "auth.partial",
    "keyboard-interactive-pam": "auth.accepted",
    "closed-before-banner": "connection.kex_exchange_identification",
}


def run_scenario(scenario: Path, log: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`sshsim run SCENARIO --log-out LOG`, which must pass; returns its standard output."""
    code, out, err = cli(["run", str(scenario), "--log-out", str(log), "--force", "--no-color"], capsys)
    assert code == 0, f"{scenario.name} failed (exit {code}):\n{out}\n{err}"
    return out


@pytest.fixture(scope="module")
def captures() -> dict[str, list[Path]]:
    """Scenario path -> the logs its passing runs in this module captured (reused, not rerun)."""
    return {}


@pytest.fixture
def capture(captures: dict[str, list[Path]], tmp_path_factory: pytest.TempPathFactory,
            capsys: pytest.CaptureFixture[str]) -> Callable[..., Path]:
    """capture(scenario, fresh=False): the log of a passing run; runs it now unless one is kept."""

    def get(scenario: Path, fresh: bool = False) -> Path:
        kept = captures.setdefault(str(scenario), [])
        if kept and not fresh:
            return kept[0]
        log = tmp_path_factory.mktemp("capture") / f"{scenario.stem}.log"
        run_scenario(scenario, log, capsys)
        kept.append(log)
        return log

    return get


# -- every scenario passes ------------------------------------------------------------------------
@needs_local_sshd
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[str(p.relative_to(SCENARIO_DIR)) for p in SCENARIOS])
def test_scenario_passes(scenario: Path, tmp_path_factory: pytest.TempPathFactory,
                         captures: dict[str, list[Path]], capsys: pytest.CaptureFixture[str]) -> None:
    """`sshsim run SCENARIO` exits 0 and says PASS: the server logged what the scenario expects."""
    from simulator.scenario import load_scenario

    plan = load_scenario(str(scenario))
    name = plan.name
    log = tmp_path_factory.mktemp("capture") / f"{scenario.stem}.log"
    out = run_scenario(scenario, log, capsys)
    why = plan.requires.unmet(sshd_version(find_sshd())) if plan.requires else None
    if why is not None:
        # Not for this sshd (`requires:`): a stated skip, neither a pass nor a failure.
        assert re.search(rf"^SKIP {re.escape(name)}: {re.escape(why)}$", out, re.M), out
        assert "0 passed, 0 failed, 1 skipped" in out
        return
    assert re.search(rf"^PASS {re.escape(name)} \(", out, re.M), out
    assert "1 passed, 0 failed" in out
    assert log.stat().st_size > 0
    captures.setdefault(str(scenario), []).append(log)


def test_library_is_complete_and_explained() -> None:
    """Each library scenario says in a header comment what it shows, and expects what makes the point.

    No sshd needed: this reads the files. Every connection has expected events, at least one
    `absent` event and an outcome, and the scenario's key event is among the expected ones.
    """
    from simulator.scenario import load_scenario

    assert {p.stem for p in LIBRARY} >= set(EXPECTED_LIBRARY), sorted(p.stem for p in LIBRARY)
    for path in LIBRARY:
        text = path.read_text()
        header = [line for line in text.splitlines()[:3] if line.startswith("# ")]
        assert len(header) >= 2, f"{path.name}: needs a header comment saying what it shows"
        scenario = load_scenario(str(path))
        assert set(scenario.expectations) == {c.id for c in scenario.connections}, path.name
        for expectation in scenario.expectations.values():
            assert expectation.events, f"{path.name}: no expected events"
            assert expectation.absent, f"{path.name}: no absent events"
            assert expectation.auth or expectation.outcome, f"{path.name}: no outcome"
        key = EXPECTED_LIBRARY.get(path.stem)
        if key:
            names = {e.event for x in scenario.expectations.values() for e in x.events}
            assert key in names, f"{path.name}: does not expect {key}"


# -- a wrong expectation fails, and says why ----------------------------------------------------
@needs_local_sshd
def test_wrong_field_value_fails_with_context(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run whose expectation is wrong exits 1 and names the connection, the event, the line."""
    source = (SCENARIO_DIR / "library" / "kex-no-common.yaml").read_text()
    wrong = source.replace('offer: "diffie-hellman-group14-sha1,ext-info-c"', 'offer: "diffie-hellman-group1-sha1"')
    assert wrong != source
    bad = tmp_path / "kex-wrong-offer.yaml"
    bad.write_text(wrong)
    line = next(i for i, text in enumerate(wrong.splitlines(), 1) if "event: kex.unable_to_negotiate" in text)

    code, out, err = cli(["run", str(bad), "--no-color"], capsys)

    assert code == 1, (out, err)
    assert "FAIL kex-no-common" in out and "0 passed, 1 failed" in out
    headline = next(text for text in err.splitlines() if "connection 'legacy'" in text)
    assert headline.strip().startswith(f"{bad}:{line}: connection 'legacy': expected kex.unable_to_negotiate {{")
    assert "offer=diffie-hellman-group1-sha1" in headline
    assert "not logged" in headline
    # What the log has instead, and where.
    assert re.search(r"the log has kex.unable_to_negotiate with .*offer=diffie-hellman-group14-sha1,ext-info-c"
                     r" \(line \d+\)", headline), headline
    # The log lines around the divergence, the anchor marked with '>'.
    context = [text for text in err.splitlines() if re.match(r"\s+\d+[> ] ", text)]
    assert context, err
    assert any(re.match(r"\s+\d+> .*sshd\[\d+\]: ", text) for text in context), context
    assert any("Unable to negotiate with 127.0.0.1" in text or "kex: algorithm: (no match)" in text
               for text in context), context


@needs_local_sshd
def test_verify_reports_wrong_value_and_absent(tmp_path: Path, capture: Callable[..., Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`sshsim verify` of a real capture against a wrong copy: each failure is a headline plus context."""
    scenario = SCENARIO_DIR / "library" / "publickey-shell.yaml"
    log = capture(scenario)
    source = scenario.read_text()
    wrong = (source.replace("{event: auth.accepted, fields: {method: publickey, user: user, addr: 127.0.0.1}}",
                            "{event: auth.accepted, fields: {method: password, user: user, addr: 127.0.0.1}}")
                   .replace("      - auth.failed\n", "      - auth.failed\n      - session.pty_allocated\n"))
    assert wrong.count("method: password") == 2 and "- session.pty_allocated" in wrong
    bad = tmp_path / "publickey-shell-wrong.yaml"
    bad.write_text(wrong)

    code, out, err = cli(["verify", str(log), str(bad), "--no-color"], capsys)

    assert code == 1, (out, err)
    assert "FAIL publickey-shell: 2 expectation(s) not met" in out
    lines = err.splitlines()
    missing = next(text for text in lines if "expected auth.accepted" in text)
    assert "connection 'debian-ssh': expected auth.accepted {method=password, user=user, addr=127.0.0.1}" in missing
    assert "not logged; the log has auth.accepted with method=publickey" in missing
    present = next(text for text in lines if "session.pty_allocated must not be logged" in text)
    number = int(re.search(r"but line (\d+) is", present).group(1))
    assert re.search(rf"^\s+{number}> .*session_pty_req: session 0 alloc /dev/pts/\d+", err, re.M), err


@needs_local_sshd
@pytest.mark.parametrize("stem, change, message", [
    ("exec-exit-status", ("exit_status: 3}", "exit_status: 4}"),
     "connection 'batch': exec 'exit 3' ended with exit status 3, expected 4"),
    ("x11-refused", ('sshd_config: ["X11Forwarding no"]', 'sshd_config: ["X11Forwarding yes"]'),
     "connection 'putty': expected the server to refuse x11-req, but it accepted it"),
    ("forward-refused", ("expect_refused: true", "expect_refused: false"),
     "connection 'tunnel': the server refused direct-tcpip 127.0.0.1:9, which the scenario does not expect"),
], ids=["exit-status", "x11-not-refused", "forward-refused-unexpectedly"])
def test_client_side_promises_are_checked(stem: str, change: tuple[str, str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`exit_status` and `expect_refused` are not in sshd's log: the run checks them on the client's side."""
    source = (SCENARIO_DIR / "library" / f"{stem}.yaml").read_text()
    assert source.count(change[0]) == 1
    bad = tmp_path / f"{stem}.yaml"
    bad.write_text(source.replace(*change))
    code, out, err = cli(["run", str(bad), "--no-color"], capsys)
    assert code == 1, (out, err)
    assert re.search(rf"^  {re.escape(str(bad))}:\d+: {re.escape(message)}", err, re.M), err


# -- diff ---------------------------------------------------------------------------------------
def _matched(out: str) -> tuple[int, int]:
    found = re.search(r"^matched (\d+)/(\d+) lines$", out, re.M)
    assert found, out
    return int(found.group(1)), int(found.group(2))


@needs_local_sshd
def test_diff_of_a_capture_with_itself_matches_every_line(capture: Callable[..., Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    log = capture(SCENARIO_DIR / "seed" / "motty-secureblackbox.yaml")
    code, out, err = cli(["diff", str(log), str(log), "--no-color"], capsys)
    matched, total = _matched(out)
    assert code == 0, (out, err)
    assert matched == total == len(log.read_text().splitlines())


@needs_local_sshd
@pytest.mark.parametrize("stem", ["forward-refused", "invalid-user", "kex-no-common"])
def test_diff_of_two_captures_matches_every_line_after_normalisation(
        stem: str, capture: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs differ in pids, ports, times and fingerprints; normalised, they are the same log.

    These flows have no race between the client's last packets and sshd's channel clean-up (a
    shell's "Close session" line may or may not precede the disconnect), so two captures must
    agree line for line; invalid-user and kex-no-common also carry a privsep child's pid and
    DEBUG key blobs that normalisation must hide.
    """
    scenario = SCENARIO_DIR / "library" / f"{stem}.yaml"
    first = capture(scenario)
    second = capture(scenario, fresh=True)
    assert first.read_text() != second.read_text()  # different pids and ports at least
    code, out, err = cli(["diff", str(first), str(second), "--no-color"], capsys)
    matched, total = _matched(out)
    assert code == 0, (out, err)
    assert matched == total == len(first.read_text().splitlines())


# -- the same scenarios on another OpenSSH version --------------------------------------------------
# Run on the upstream 10.3p1 build (`--target local:10.3p1`, built into the cache on first use).
VERSIONED = ["per-source-penalties", "closed-before-banner", "login-grace-timeout"]


def _json_report(scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                 *extra: str) -> tuple[str, dict, str]:
    """`sshsim run SCENARIO --report json --report junit`: (stdout, the JSON report's scenario, the JUnit text)."""
    report, junit = tmp_path / f"{scenario.stem}.json", tmp_path / f"{scenario.stem}.xml"
    code, out, err = cli(["run", str(scenario), *extra, "--no-color", "--report", "json", str(report),
                          "--report", "junit", str(junit)], capsys)
    assert code == 0, (out, err)
    (entry,) = json.loads(report.read_text())["scenarios"]
    return out, entry, junit.read_text()


@needs_local_sshd
@pytest.mark.parametrize("stem", VERSIONED)
def test_newer_behaviour_holds_on_10_3(stem: str, tmp_path: Path, built_sshd: Any,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """On 10.3p1 every expectation of these scenarios applies and holds: none is skipped."""
    built_sshd("10.3p1")  # built before the run, so the build's progress is not in the run's output
    scenario = SCENARIO_DIR / "library" / f"{stem}.yaml"
    out, entry, junit = _json_report(scenario, tmp_path, capsys, "--target", "local:10.3p1")
    assert re.search(rf"^PASS {re.escape(stem)} \(", out, re.M), out
    assert entry["status"] == "pass" and entry["sshd_version"].startswith("OpenSSH_10.3")
    # The 9.8+ expectations are checked here, the pre-9.8 one (the child's own timeout line) not.
    skipped = [s["what"] for s in entry["skipped"]]
    assert skipped == (["expected disconnect.login_grace_timeout"] if stem == "login-grace-timeout" else []), skipped
    assert "<skipped" not in junit


@needs_local_sshd
@pytest.mark.parametrize("stem, skipped", [
    ("per-source-penalties", ["the scenario"]),
    ("closed-before-banner", ["expected listener.child_exit"]),
    ("login-grace-timeout", ["expected disconnect.login_grace_timeout", "expected listener.login_grace_timeout"]),
])
def test_newer_behaviour_is_a_stated_skip_on_the_system_sshd(stem: str, skipped: list[str], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """On Debian 12's 9.2p1 the 9.8+ expectations are SKIPPED with the reason, in every report."""
    version = sshd_version(find_sshd())
    if not version.startswith("OpenSSH_9.2p1 Debian-2+deb12u"):
        pytest.skip(f"written for Debian 12's sshd, this is {version}")
    scenario = SCENARIO_DIR / "library" / f"{stem}.yaml"
    out, entry, junit = _json_report(scenario, tmp_path, capsys)
    assert [s["what"] for s in entry["skipped"]] == skipped
    assert all("OpenSSH_9.2p1 Debian-2+deb12u" in s["reason"] for s in entry["skipped"])
    if skipped == ["the scenario"]:
        assert entry["status"] == "skip" and "0 passed, 0 failed, 1 skipped" in out
        assert re.search(r'<skipped message="PerSourcePenalties arrived in OpenSSH 9.8 \(OpenSSH_9.2p1', junit), junit
        assert entry["log_lines"] == 0  # not played
    else:
        assert entry["status"] == "pass" and "1 passed, 0 failed" in out
        assert out.count("  skipped: ") == len(skipped)
        assert "<system-out>" in junit and "skipped: " in junit


def test_verify_decides_requires_by_the_log_s_own_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`sshsim verify` of real captures (tests/data/versions): the version is the log's banner
    line unless --sshd-version says otherwise; the same log and scenario pass or skip by it."""
    data = ROOT / "tests" / "data" / "versions"
    penalties = str(SCENARIO_DIR / "library" / "per-source-penalties.yaml")
    code, out, _ = cli(["verify", str(data / "10.3p1" / "per-source-penalties.log"), penalties, "--no-color"], capsys)
    assert code == 0 and out.startswith("PASS per-source-penalties: every expectation holds"), out
    code, out, _ = cli(["verify", str(data / "10.3p1" / "per-source-penalties.log"), penalties,
                        "--sshd-version", "9.2p1", "--no-color"], capsys)
    assert code == 0 and out == ("SKIP per-source-penalties: PerSourcePenalties arrived in OpenSSH 9.8 "
                                 "(9.2p1 predates it: per_source_penalties needs OpenSSH >= 9.8)\n"), out
    grace = str(SCENARIO_DIR / "library" / "login-grace-timeout.yaml")
    code, out, _ = cli(["verify", str(data / "9.2p1-debian12" / "login-grace-timeout.log"), grace, "--no-color"],
                       capsys)
    assert code == 0 and "PASS login-grace-timeout" in out, out
    assert "Debian 12's fix for CVE-2024-6387" in out and out.count("skipped: ") == 2
    # The upstream 9.2p1 log has the child's line, which Debian's must not: told apart by version.
    code, out, err = cli(["verify", str(data / "9.2p1" / "login-grace-timeout.log"), grace,
                          "--sshd-version", "OpenSSH_9.2p1 Debian-2+deb12u10", "--no-color"], capsys)
    assert code == 1 and "disconnect.login_grace_timeout must not be logged" in err, (out, err)


def test_a_failure_shows_a_logs_control_characters_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A log is untrusted: a line quoted around a failure, and a value named in it, reach the
    terminal with their control characters escaped (an ESC could clear or rewrite the screen)."""
    lines = (ROOT / "tests" / "golden" / "9.2p1" / "publickey-shell.log").read_text().splitlines()
    at = next(k for k, line in enumerate(lines) if "Accepted publickey for user" in line)
    pid = re.search(r"sshd\[(\d+)\]", lines[at]).group(1)
    lines.insert(at + 1, f"{lines[at][:15]} localhost sshd[{pid}]: debug1: \x1b[2J\x1b]0;owned\x07 note")
    log = tmp_path / "escaped.log"
    log.write_text("\n".join(lines) + "\n")
    wrong = tmp_path / "publickey-shell-wrong.yaml"
    wrong.write_text((SCENARIO_DIR / "library" / "publickey-shell.yaml").read_text().replace(
        "{event: auth.accepted, fields: {method: publickey, user: user, addr: 127.0.0.1}}",
        "{event: auth.accepted, fields: {method: password, user: user, addr: 127.0.0.1}}"))

    code, out, err = cli(["verify", str(log), str(wrong), "--no-color"], capsys)

    assert code == 1, (out, err)
    assert "expected auth.accepted {method=password" in err
    assert "\\x1b[2J\\x1b]0;owned\\x07 note" in err, err
    assert "\x1b" not in err + out and "\x07" not in err + out
