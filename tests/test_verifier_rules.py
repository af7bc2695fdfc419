"""The verifier's rules, one case each, on real log lines, with the failure text a person reads.

Logs: the reference log (tests/data/seed: MoTTY and SecureBlackbox against OpenSSH 8.9p1, DEBUG1)
and a capture of this machine's sshd at INFO (tests/data/local/sshd-9.2-info.log: publickey,
keyboard-interactive, three failed passwords, an invalid user, a failed negotiation, a port scan).
The SecureBlackbox connection's streams: the monitor (pid 10350), its relayed [preauth] lines,
and the user child (pid 10434).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.driver.runner import ConnectionResult, RunResult
from simulator.scenario import load_scenario
from simulator.scenario.model import ExpectedEvent as E
from simulator.scenario.model import Expectation
from simulator.verify.verifier import (Failure, ParsedLog, auth_outcome, check_expectation, client_side_failures,
                                       connection_outcome, verify_lines, verify_run)

DATA = Path(__file__).resolve().parent / "data"
SEED = (DATA / "seed" / "sshd-debug1-motty-secureblackbox.log").read_text().splitlines()
INFO = (DATA / "local" / "sshd-9.2-info.log").read_text().splitlines()
SEED_LOG = ParsedLog.from_lines(SEED)
INFO_LOG = ParsedLog.from_lines(INFO)


def _events(log: ParsedLog, **match: Any) -> list[Any]:
    conn = next(c for c in log.connections if all(getattr(c, k, None) == v for k, v in match.items()))
    return log.events_of(conn)


SBB = _events(SEED_LOG, client_version="SecureBlackbox")
MOTTY = _events(SEED_LOG, client_version="MoTTY_Release_0.80")
PASSWORDS = _events(INFO_LOG, port=59356)      # three failed passwords, then too many failures
INVALID = _events(INFO_LOG, port=59372)        # invalid user, keyboard-interactive/pam fails
NEGOTIATION = _events(INFO_LOG, port=41412)    # client offers only diffie-hellman-group1-sha1
KBDINT = _events(INFO_LOG, port=59338)         # keyboard-interactive/pam accepted


def messages(expectation: Expectation, events: list[Any] = SBB, lines: list[str] = SEED) -> list[str]:
    return [f.message for f in check_expectation(expectation, events, lines)]


def expect(*events: E, **kw: Any) -> Expectation:
    return Expectation("c", list(events), **kw)


# -- the log lines the cases rely on are what the tests say they are ---------------------------
def test_the_lines_used_below() -> None:
    assert SEED[63].endswith("sshd[10350]: debug1: SSH2_MSG_KEXINIT sent [preauth]")
    assert SEED[151].endswith("Accepted publickey for user from 10.199.34.74 port 53691 ssh2: "
                              "ED25519 SHA256:v0S66Yu0IAQ5eEdhpAGAzhZR02FgdYSk8+XfeZK2co0")
    assert SEED[175].endswith("sshd[10434]: debug1: server_input_channel_req: channel 0 request subsystem reply 1")
    assert INFO[36].endswith("error: maximum authentication attempts exceeded for user from 127.0.0.1 "
                             "port 59356 ssh2 [preauth]")


# -- order, per process stream ------------------------------------------------------------------
def test_in_order_within_a_stream() -> None:
    assert messages(expect(E("kex.init_sent"), E("kex.init_received"), E("kex.algorithm"), E("kex.done"))) == []


def test_reversed_within_a_stream_fails_and_says_it_was_earlier() -> None:
    assert messages(expect(E("kex.done"), E("kex.init_sent"))) == [
        "expected kex.init_sent after kex.done (line 89), not logged; "
        "the log has it only earlier in its process stream (line 64)"]


def test_order_across_streams_is_not_checked() -> None:
    # The user child's session.start (line 180) before the monitor's accepted (152), the
    # monitor before the [preauth] relay's KEXINIT (64): each stream keeps its own order.
    assert messages(expect(E("session.start"), E("auth.accepted"), E("kex.init_sent"))) == []


def test_the_relayed_preauth_lines_are_a_stream_apart_from_the_monitor() -> None:
    # Same pid 10350: pam.init (monitor, 110) after auth.pubkey_test ([preauth], 132) is fine.
    assert messages(expect(E("auth.pubkey_test"), E("pam.init"))) == []


def test_order_still_holds_inside_the_user_child() -> None:
    assert messages(expect(E("session.start"), E("channel.open"))) == [
        "expected channel.open after session.start (line 180), not logged; "
        "the log has it only earlier in its process stream (line 169)"]


def test_role_filter_matches() -> None:
    assert messages(expect(E("auth.request", role="preauth"), E("auth.accepted", role="monitor"))) == []


def test_role_filter_mismatch_names_the_process() -> None:
    assert messages(expect(E("auth.request", role="monitor"))) == [
        "expected auth.request, not logged; the log has it from the preauth process (line 108)"]


def test_a_repeated_event_is_matched_once_each() -> None:
    two = expect(E("kex.cipher", {"direction": "client->server"}), E("kex.cipher", {"direction": "server->client"}))
    assert messages(two) == []
    three = expect(E("auth.request", {"method": "publickey"}), E("auth.request", {"method": "publickey"}),
                   E("auth.request", {"method": "publickey"}))
    assert messages(three) == [
        "expected auth.request {method=publickey} after auth.request (line 141), not logged; "
        "the log has it only earlier in its process stream (line 130)"]


# -- field values -------------------------------------------------------------------------------
def test_literal_field_mismatch_shows_the_logged_value() -> None:
    assert messages(expect(E("channel.request", {"request": "exec"}))) == [
        "expected channel.request {request=exec}, not logged; the log has channel.request with "
        "request=subsystem (line 176)"]


def test_numbers_match_as_numbers_or_text() -> None:
    assert messages(expect(E("channel.open", {"rchan": 1, "window": "32768", "max_packet": 262144}))) == []
    assert messages(expect(E("channel.open", {"window": 16384}))) == [
        "expected channel.open {window=16384}, not logged; the log has channel.open with window=32768 (line 169)"]


def test_booleans_match_sshds_0_and_1() -> None:
    assert messages(expect(E("channel.request", {"want_reply": True}))) == []
    assert messages(expect(E("channel.request", {"want_reply": False}))) == [
        "expected channel.request {want_reply=False}, not logged; the log has channel.request with "
        "want_reply=1 (line 176)"]


def test_star_means_present() -> None:
    assert messages(expect(E("auth.accepted", {"info": "*"}))) == []
    assert messages(expect(E("session.start", {"tty": "*"}))) == [
        "expected session.start {tty=*}, not logged; the log has session.start with tty=None (line 180)"]


def test_null_means_absent_field() -> None:
    assert messages(expect(E("session.start", {"tty": None}))) == []
    assert messages(expect(E("auth.accepted", {"submethod": None, "method": "publickey"}))) == []


# -- regular expressions (~) ------------------------------------------------------------------
def test_regex_matches_the_whole_value() -> None:
    assert messages(expect(E("auth.accepted", {"info": "~ED25519 SHA256:.*", "addr": r"~10\.199\.34\.\d+"}))) == []
    assert messages(expect(E("auth.accepted", {"addr": r"~10\.199"}))) == [
        r"expected auth.accepted {addr=~10\.199}, not logged; the log has auth.accepted with addr=10.199.34.74 "
        "(line 152)"]


def test_regex_on_a_number_field() -> None:
    assert messages(expect(E("channel.open", {"window": r"~3\d{4}"}))) == []


def test_regex_never_matches_a_missing_field() -> None:
    assert messages(expect(E("session.start", {"tty": "~.*"}))) == [
        "expected session.start {tty=~.*}, not logged; the log has session.start with tty=None (line 180)"]


def test_regex_alternatives_on_the_info_log() -> None:
    either = expect(E("auth.accepted", {"method": "~publickey|keyboard-interactive", "submethod": "pam"}))
    assert messages(either, KBDINT, INFO) == []


# -- captures ($name) ---------------------------------------------------------------------------
def test_capture_binds_then_must_agree() -> None:
    same_key = expect(E("auth.pubkey_test", {"fingerprint": "$fp"}), E("auth.key_match", {"fingerprint": "$fp"}),
                      E("auth.accepted", {"info": "~ED25519 .*"}))
    assert messages(same_key) == []


def test_capture_disagreement_is_reported_with_the_logged_value() -> None:
    port_is_not_a_channel = expect(E("connection.from", {"port": "$p"}), E("channel.open", {"rchan": "$p"}))
    assert messages(port_is_not_a_channel) == [
        "expected channel.open {rchan=$p} after connection.from (line 57), not logged; the log has channel.open "
        "with rchan=1 (line 169)"]


def test_capture_across_streams_and_events() -> None:
    user = expect(E("auth.request", {"user": "$u"}), E("auth.accepted", {"user": "$u", "port": "$port"}),
                  E("session.start", {"user": "$u", "port": "$port"}))
    assert messages(user) == []


def test_capture_named_twice_in_one_event_must_agree() -> None:
    assert messages(expect(E("connection.rexec", {"in": "$fd", "out": "$fd", "newsock": "$fd"}))) == []
    assert messages(expect(E("kex.cipher", {"cipher": "$c", "mac": "$c"}))) == [
        "expected kex.cipher {cipher=$c, mac=$c}, not logged; the log has kex.cipher with cipher=aes256-ctr, "
        "mac=hmac-sha1 (line 76)"]


def test_capture_of_a_missing_field_does_not_match() -> None:
    assert messages(expect(E("session.start", {"tty": "$tty"}))) == [
        "expected session.start {tty=$tty}, not logged; the log has session.start with tty=None (line 180)"]


def test_capture_is_per_connection() -> None:
    # Both connections of the reference log used the same key: captured in one, checked in the other.
    fp = expect(E("auth.pubkey_test", {"fingerprint": "$fp"}), E("auth.accepted", {"port": "$fp"}))
    assert messages(fp, MOTTY) == [
        "expected auth.accepted {port=$fp} after auth.pubkey_test (line 35), not logged; the log has "
        "auth.accepted with port=53688 (line 66)"]


# -- optional -----------------------------------------------------------------------------------
def test_optional_not_logged_is_fine() -> None:
    assert messages(expect(E("auth.failed", optional=True), E("auth.accepted"))) == []


def test_optional_logged_binds_its_captures() -> None:
    bound = expect(E("auth.pubkey_test", {"fingerprint": "$fp"}, optional=True),
                   E("auth.accepted", {"info": "$fp"}))
    assert messages(bound) == [
        "expected auth.accepted {info=$fp} after auth.pubkey_test (line 132), not logged; the log has "
        "auth.accepted with info=ED25519 SHA256:v0S66Yu0IAQ5eEdhpAGAzhZR02FgdYSk8+XfeZK2co0 (line 152)"]


def test_optional_logged_out_of_order_never_fails_a_required_one() -> None:
    # auth.accepted (152) is logged after pam.init (110) in the monitor's stream: leaving the
    # optional one out satisfies the expectation, so it holds.
    assert messages(expect(E("auth.accepted", optional=True), E("pam.init"))) == []
    assert messages(expect(E("auth.accepted", optional=True), E("pam.init"), E("auth.accepted"))) == []


def test_optional_does_not_hide_a_missing_required_one() -> None:
    assert messages(expect(E("auth.accepted", optional=True), E("channel.request", {"request": "shell"}))) == [
        "expected channel.request {request=shell} after auth.accepted (line 152), not logged; the log has "
        "channel.request with request=subsystem (line 176)"]


# -- anywhere -----------------------------------------------------------------------------------
def test_anywhere_ignores_order() -> None:
    assert messages(expect(E("session.start"), E("connection.from", anywhere=True), E("kex.init_sent"))) == []


def test_anywhere_missing() -> None:
    assert messages(expect(E("channel.request", {"request": "exec"}, anywhere=True))) == [
        "expected channel.request {request=exec} (anywhere), not logged"]


def test_anywhere_and_optional_missing_is_fine() -> None:
    assert messages(expect(E("auth.failed", anywhere=True, optional=True))) == []


def test_anywhere_capture_is_used_by_later_events() -> None:
    assert messages(expect(E("connection.from", {"port": "$p"}, anywhere=True), E("session.start", {"port": "$p"}))) == []


# -- absent -------------------------------------------------------------------------------------
def test_absent_not_logged() -> None:
    assert messages(expect(absent=[E("auth.failed"), E("channel.request", {"request": "exec"})])) == []


def test_absent_logged_names_the_line() -> None:
    assert messages(expect(absent=[E("auth.postponed")])) == ["auth.postponed must not be logged, but line 140 is"]


def test_absent_with_fields() -> None:
    assert messages(expect(absent=[E("channel.request", {"request": "subsystem"})])) == [
        "channel.request {request=subsystem} must not be logged, but line 176 is"]


def test_absent_uses_captures_of_the_expected_events() -> None:
    other_port = expect(E("connection.from", {"port": "$p"}), absent=[E("auth.accepted", {"port": "$p"})])
    assert messages(other_port) == ["auth.accepted {port=$p} must not be logged, but line 152 is"]


def test_absent_on_the_failed_password_connection() -> None:
    assert messages(expect(absent=[E("auth.accepted")]), PASSWORDS, INFO) == []
    assert messages(expect(absent=[E("auth.max_attempts")]), PASSWORDS, INFO) == [
        "auth.max_attempts must not be logged, but line 37 is"]


# -- outcomes -----------------------------------------------------------------------------------
@pytest.mark.parametrize("events, auth, connection", [
    (SBB, "accepted", "established"),
    (KBDINT, "accepted", "established"),
    (PASSWORDS, "failed", "closed"),
    (INVALID, "failed", "closed"),
    (NEGOTIATION, "none", "refused"),
])
def test_outcomes_of_real_connections(events: list[Any], auth: str, connection: str) -> None:
    assert (auth_outcome(events), connection_outcome(events)) == (auth, connection)


def test_outcome_expectation_holds() -> None:
    assert messages(expect(auth="failed", outcome="closed"), PASSWORDS, INFO) == []
    assert messages(expect(auth="none", outcome="refused"), NEGOTIATION, INFO) == []


def test_outcome_expectation_fails_with_both_values() -> None:
    assert messages(expect(auth="accepted", outcome="established"), PASSWORDS, INFO) == [
        "expected auth outcome accepted, got failed", "expected connection outcome established, got closed"]
    assert messages(expect(outcome="established"), NEGOTIATION, INFO) == [
        "expected connection outcome established, got refused"]


# -- strict -------------------------------------------------------------------------------------
def test_strict_consecutive_events_hold() -> None:
    assert messages(expect(E("kex.init_received"), E("kex.algorithm"), E("kex.host_key_algorithm"),
                           E("kex.cipher"), E("kex.cipher"), strict=True)) == []


def test_strict_gap_is_reported_with_the_first_unexpected_event() -> None:
    assert messages(expect(E("kex.init_sent"), E("kex.algorithm"), strict=True)) == [
        "strict: 1 unexpected event(s) before kex.algorithm, first kex.init_received"]
    assert messages(expect(E("auth.request"), E("auth.postponed"), strict=True)) == [
        "strict: 4 unexpected event(s) before auth.postponed, first auth.attempt"]


def test_strict_only_looks_inside_each_stream() -> None:
    # Between auth.attempt (109) and the next auth.request (130) only the monitor logged (110-112).
    assert messages(expect(E("auth.attempt"), E("auth.request"), strict=True)) == []


def test_strict_counts_anywhere_events_as_expected() -> None:
    assert messages(expect(E("kex.init_sent"), E("kex.init_received", anywhere=True), E("kex.algorithm"),
                           strict=True)) == []


def test_strict_off_allows_gaps() -> None:
    assert messages(expect(E("kex.init_sent"), E("kex.done"))) == []


# -- what a failure carries ---------------------------------------------------------------------
def test_failure_headline_names_the_scenario_line_and_context_marks_the_log_line() -> None:
    absent = E("auth.postponed", position=("s.yaml", 12, 9))
    (failure,) = check_expectation(Expectation("sbb", absent=[absent]), SBB, SEED)
    assert failure.headline() == "s.yaml:12: connection 'sbb': auth.postponed must not be logged, but line 140 is"
    assert failure.expected == "auth.postponed"
    assert f"  140> {SEED[139]}" in failure.context and len(failure.context) == 7


# -- whole scenarios ----------------------------------------------------------------------------
def _scenario(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return load_scenario(str(path))


SEED_SCENARIO = """\
connections:
  - id: sbb
    profile: secureblackbox
  - id: motty
    profile: motty-0.80
  - id: third
expect:
  sbb:
    events:
      - {event: channel.request, fields: {request: subsystem}}
  motty:
    events:
      - {event: channel.request, fields: {request: shell}}
  third:
    events: [auth.accepted]
"""


def test_connections_are_paired_by_banner_and_a_missing_one_is_reported(tmp_path: Path) -> None:
    failures = verify_lines(_scenario(tmp_path, SEED_SCENARIO), SEED)
    assert [f.headline() for f in failures] == [
        f"{tmp_path / 's.yaml'}:15: connection 'third': no connection of the log belongs to it"]


def test_connections_are_paired_by_client_port_after_a_run(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, "connections:\n  - id: a\nexpect:\n  a:\n    outcome: {auth: accepted}\n")
    assert [f.message for f in verify_lines(scenario, INFO, {"a": 59356})] == [
        "expected auth outcome accepted, got failed"]
    assert verify_lines(scenario, INFO, {"a": 59338}) == []
    assert [f.message for f in verify_lines(scenario, INFO, {"a": 1})] == [
        "no connection of the log belongs to it (client port 1)"]


# -- client-side checks -------------------------------------------------------------------------
CLIENT_SCENARIO = """\
connections:
  - id: a
    actions:
      - session: {exec: 'exit 3', exit_status: 3}
      - session: {shell: true, x11: true, expect_refused: [x11-req]}
      - forward: {host: 127.0.0.1, port: 9, expect_refused: true}
"""


def _result(**kw: Any) -> RunResult:
    conn = ConnectionResult(id="a", profile="asyncssh-2.24.1", source="127.0.0.1", port=59338, auth_ok=True)
    for key, value in kw.items():
        setattr(conn, key, value)
    return RunResult("client", {"a": conn})


def test_client_side_promises_kept(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, CLIENT_SCENARIO)
    kept = _result(exit_statuses=[3, None], refused=["x11-req", "direct-tcpip 127.0.0.1:9"])
    assert client_side_failures(scenario, kept) == []


@pytest.mark.parametrize("statuses, refused, expected", [
    ([0, None], ["x11-req", "direct-tcpip 127.0.0.1:9"], ["exec 'exit 3' ended with exit status 0, expected 3"]),
    ([3, None], ["direct-tcpip 127.0.0.1:9"], ["expected the server to refuse x11-req, but it accepted it"]),
    ([3, None], ["x11-req"], ["expected the server to refuse direct-tcpip 127.0.0.1:9, but it accepted it"]),
    ([3, None], ["x11-req", "direct-tcpip 127.0.0.1:9", "pty-req"],
     ["the server refused pty-req, which the scenario does not expect (put pty-req in the session's "
      "expect_refused)"]),
])
def test_client_side_promises_broken(tmp_path: Path, statuses: list, refused: list, expected: list[str]) -> None:
    scenario = _scenario(tmp_path, CLIENT_SCENARIO)
    failures = client_side_failures(scenario, _result(exit_statuses=statuses, refused=refused))
    assert [f.message for f in failures] == expected
    assert all(f.position == (str(tmp_path / "s.yaml"), 2, 5) for f in failures)


def test_unexpected_refused_forward_says_how_to_expect_it(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, "connections:\n  - id: a\n    actions:\n      - forward: {port: 9}\n")
    failures = client_side_failures(scenario, _result(refused=["direct-tcpip 127.0.0.1:9"]))
    assert [f.message for f in failures] == [
        "the server refused direct-tcpip 127.0.0.1:9, which the scenario does not expect "
        "(put expect_refused: true on the forward)"]


def test_client_side_is_not_judged_when_the_connection_did_not_authenticate(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, CLIENT_SCENARIO)
    assert client_side_failures(scenario, _result(auth_ok=False, exit_statuses=[0])) == []


def test_verify_run_puts_client_errors_first(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, CLIENT_SCENARIO + "expect:\n  a:\n    outcome: {auth: failed}\n")
    failures = verify_run(scenario, INFO, _result(error="connection lost", exit_statuses=[3, None],
                                                   refused=["x11-req", "direct-tcpip 127.0.0.1:9"]))
    assert [f.message for f in failures] == ["the client failed: connection lost",
                                             "expected auth outcome failed, got accepted"]
    assert isinstance(failures[0], Failure) and failures[0].connection == "a"
