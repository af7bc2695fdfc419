"""The verifier's matching rules, on the real reference log."""

from __future__ import annotations

from pathlib import Path

from simulator.scenario.model import ExpectedEvent, Expectation
from simulator.verify.verifier import ParsedLog, check_expectation, value_matches


def _motty(seed_log_path: Path) -> tuple[list, list[str]]:
    lines = seed_log_path.read_text().splitlines()
    log = ParsedLog.from_lines(lines)
    conn = next(c for c in log.connections if c.client_version == "MoTTY_Release_0.80")
    return log.events_of(conn), lines


def test_order_is_checked_within_a_stream(seed_log_path: Path) -> None:
    events, lines = _motty(seed_log_path)
    in_order = Expectation("motty", [ExpectedEvent("channel.request", {"request": "x11-req"}),
                                     ExpectedEvent("channel.request", {"request": "shell"})])
    reversed_ = Expectation("motty", [ExpectedEvent("channel.request", {"request": "shell"}),
                                      ExpectedEvent("channel.request", {"request": "x11-req"})])
    assert check_expectation(in_order, events, lines) == []
    failures = check_expectation(reversed_, events, lines)
    assert len(failures) == 1 and "x11-req" in failures[0].message and "not logged" in failures[0].message


def test_anywhere_events_ignore_order(seed_log_path: Path) -> None:
    events, lines = _motty(seed_log_path)
    expectation = Expectation("motty", [ExpectedEvent("channel.request", {"request": "shell"}),
                                        ExpectedEvent("channel.request", {"request": "x11-req"}, anywhere=True)])
    assert check_expectation(expectation, events, lines) == []
    missing = Expectation("motty", [ExpectedEvent("channel.request", {"request": "exec"}, anywhere=True)])
    assert "(anywhere), not logged" in check_expectation(missing, events, lines)[0].message


def test_captures_bind_once_then_must_agree(seed_log_path: Path) -> None:
    events, lines = _motty(seed_log_path)
    same_key = Expectation("motty", [ExpectedEvent("auth.pubkey_test", {"fingerprint": "$fp"}),
                                     ExpectedEvent("auth.accepted", {"info": "~ED25519 .*"}),
                                     ExpectedEvent("auth.key_match", {"fingerprint": "$fp"}, optional=True)])
    assert check_expectation(same_key, events, lines) == []
    captures: dict = {}
    assert value_matches("$fp", "SHA256:abc", captures) and value_matches("*", "x", captures)
    captures["fp"] = "SHA256:abc"
    assert not value_matches("$fp", "SHA256:other", captures)
    assert value_matches("~aes\\d+-ctr", "aes256-ctr", captures) and not value_matches("~aes", "aes256-ctr", captures)


def test_absent_and_outcome(seed_log_path: Path) -> None:
    events, lines = _motty(seed_log_path)
    ok = Expectation("motty", absent=[ExpectedEvent("auth.failed")], auth="accepted", outcome="established")
    assert check_expectation(ok, events, lines) == []
    bad = Expectation("motty", absent=[ExpectedEvent("auth.postponed")], auth="failed")
    messages = [f.message for f in check_expectation(bad, events, lines)]
    assert any("must not be logged" in m for m in messages)
    assert any("expected auth outcome failed, got accepted" in m for m in messages)
