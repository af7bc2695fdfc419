"""Input formats: detection, prefixes, and robustness (bytes, long lines, CRLF, gzip, mixing).

Message texts are real sshd lines (the reference log, the fail2ban corpus); only the prefix
around them is rewritten into each format, as the system writing the log would.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from simulator.limits import MAX_LINE_CHARS
from simulator.logs import LogReader, parse_file, parse_lines
from simulator.logs.formats import detect_format, iso_timestamp, parse_time, resolve_format

REAL = "Connection from 10.199.34.74 port 53688 on 10.199.35.15 port 22 rdomain \"\""
REAL_DEBUG = "debug1: server_input_channel_open: ctype session rchan 256 win 16384 max 16384"
REAL_PREAUTH = "debug1: kex: algorithm: sntrup761x25519-sha512@openssh.com [preauth]"


def one(line: str, fmt: str | None = None):
    events = list(parse_lines([line], input_format=fmt))
    assert len(events) == 1
    return events[0]


def test_classic_syslog_single_digit_day() -> None:
    ev = one(f"Jan  5 11:23:02 user-sicharge sshd[10348]: {REAL}")
    assert (ev.format, ev.host, ev.program, ev.pid, ev.event) == ("syslog", "user-sicharge", "sshd", 10348, "connection.from")
    assert ev.ts == "Jan  5 11:23:02"
    assert iso_timestamp(ev.ts, ev.format) == "--01-05T11:23:02"


@pytest.mark.parametrize(
    "month, number",
    [("janv.", 1), ("févr.", 2), ("août", 8), ("déc.", 12), ("Mär", 3), ("Okt", 10), ("Dez", 12),
     ("янв", 1), ("мая", 5), ("май", 5), ("окт", 10)],
)
def test_localised_month_names(month: str, number: int) -> None:
    ev = one(f"{month} 29 11:23:02 host sshd[10348]: {REAL_DEBUG}")
    assert ev.format == "syslog" and ev.event == "channel.open" and ev.pid == 10348
    assert iso_timestamp(ev.ts, ev.format) == f"--{number:02d}-29T11:23:02"


def test_not_a_month_is_not_syslog() -> None:
    ev = one(f"Foo 29 11:23:02 host sshd[10348]: {REAL_DEBUG}", "syslog")
    assert ev.format != "syslog"


def test_rfc3339_and_journalctl_short_iso() -> None:
    for stamp in ("2024-01-29T11:23:02.123456+01:00", "2024-01-29T11:23:02+0100", "2024-01-29T11:23:02Z"):
        ev = one(f"{stamp} host sshd[10348]: {REAL_PREAUTH}")
        assert ev.format == "iso" and ev.event == "kex.algorithm" and ev.relay == "preauth"
        assert ev.level == "DEBUG1" and ev.fields == {"kex": "sntrup761x25519-sha512@openssh.com"}
        assert parse_time(iso_timestamp(ev.ts, ev.format)).year == 2024


def test_journalctl_short_full() -> None:
    ev = one(f"Mon 2024-01-29 11:23:02 CET host sshd[10348]: {REAL}")
    assert ev.format == "iso" and ev.event == "connection.from"


def test_rfc5424_with_structured_data_from_the_corpus() -> None:
    line = ('<38>1 2019-07-08T17:40:17.954167-04:00 hostname.example.com sshd 55555 - [timeQuality tzKnown="1" '
            'isSynced="0"][xxx@123 test="[brackets]"] Failed unknown for invalid user redmond from 192.0.2.2 port 55555 ssh2')
    ev = one(line)
    assert ev.format == "rfc5424" and ev.program == "sshd" and ev.pid == 55555
    assert ev.event == "auth.failed" and ev.fields["user"] == "redmond"
    assert ev.extra["severity"] == "info"


def test_journal_json_including_byte_array_message() -> None:
    obj = {"__REALTIME_TIMESTAMP": "1706523782000000", "_HOSTNAME": "h", "SYSLOG_IDENTIFIER": "sshd",
           "_PID": "10348", "PRIORITY": "6", "MESSAGE": REAL}
    ev = one(json.dumps(obj))
    assert ev.format == "journal-json" and ev.event == "connection.from" and ev.pid == 10348
    assert ev.ts.startswith("2024-01-29T")
    obj["MESSAGE"] = list(b"Invalid user \xff\xfe from 192.0.2.1 port 37220")
    ev = one(json.dumps(obj))
    assert ev.event == "auth.invalid_user" and ev.fields["port"] == 37220


def test_windows_openssh_file_log_forms() -> None:
    for prefix in ("2220 2020-06-01 13:18:05.371", "3488 11:30:03:638", "5936 13:19:12 620"):
        ev = one(f"{prefix} Accepted password for sftp from 127.0.0.1 port 49920 ssh2", "windows")
        assert ev.format == "windows" and ev.event == "auth.accepted" and ev.pid == int(prefix.split()[0])


def test_sshd_debug_output_crlf_no_prefix(tmp_path: Path) -> None:
    path = tmp_path / "sshd-d.log"
    path.write_bytes(b"debug1: Forked child 10348.\r\n" + REAL.encode() + b"\r\n" + REAL_PREAUTH.encode() + b"\r\n")
    events = list(parse_file(path))
    assert [e.format for e in events] == ["sshd-debug"] * 3
    assert [e.event for e in events] == ["listener.forked_child", "connection.from", "kex.algorithm"]
    assert all(e.pid is None and e.program == "sshd" for e in events)


def test_comment_lines_in_sshd_debug_output_are_nobodys() -> None:
    """sshd -d never starts a line with '#': a comment added to a saved capture is no sshd line
    (lines and comment from tests/data/corpus/build-9.2p1-sshd-d.log)."""
    lines = [
        "# source: captured here: the upstream 9.2p1 build (sshsim build-sshd), `sshd -d -e` on a loopback port\r",
        "debug1: sshd version OpenSSH_9.2, OpenSSL 3.0.19 27 Jan 2026\r",
        "# sshsim: {\"event\": \"connection.main.host_key\", \"connection\": null}\r",
        "debug1: private host key #0: ssh-ed25519 SHA256:ao9ahQA8sEI014nMMgAnJkg32TuDLy1EQoqcwg8Llyc\r",
    ]
    events = list(parse_lines(lines))
    assert [e.format for e in events] == ["sshd-debug"] * 4
    assert [e.event for e in events] == ["other", "connection.main.sshd_version", "other", "connection.main.host_key"]
    assert [e.program for e in events] == [None, "sshd", None, "sshd"]
    assert not events[0].is_sshd and events[1].is_sshd


def test_solaris_facility_priority_field() -> None:
    ev = one("Mar 29 05:59:23 dusky sshd[20878]: [ID 800047 auth.info] Failed keyboard-interactive for "
             "<invalid username> from 205.186.180.55 port 42742 ssh2")
    assert ev.extra == {"msgid": "800047", "facility": "auth", "severity": "info"}
    assert ev.event == "auth.failed"


# BusyBox syslogd on Alpine (OpenSSH 8.4; tests/data/corpus/public-busybox-facility.log)
BUSYBOX = [
    "Jun 25 00:49:14 lockedout auth.info sshd[3029]: Invalid user X3N1c3AxYzEwdXN9 from 192.168.1.23 port 53522",
    "Jun 25 00:49:16 lockedout auth.err sshd[3029]: error: Could not get shadow information for NOUSER",
    "Jun 25 00:49:16 lockedout auth.info sshd[3029]: Failed password for invalid user X3N1c3AxYzEwdXN9 "
    "from 192.168.1.23 port 53522 ssh2",
    "Jun 25 00:49:15 lockedout daemon.info init: process '/sbin/getty -L 0 ttyS0 vt100' (pid 3028) exited. "
    "Scheduling for restart.",
]


def test_busybox_facility_priority_before_the_program() -> None:
    assert detect_format(BUSYBOX) == "syslog"
    events = list(parse_lines(BUSYBOX))
    assert [e.format for e in events] == ["syslog"] * 4
    assert [(e.host, e.program, e.pid) for e in events] == [
        ("lockedout", "sshd", 3029)] * 3 + [("lockedout", "init", None)]
    assert [e.event for e in events[:3]] == [
        "auth.invalid_user", "auth.auth_shadow_pwexpired.could_not_get", "auth.failed"]
    assert events[1].extra == {"facility": "auth", "severity": "err"}
    assert events[2].fields["user"] == "X3N1c3AxYzEwdXN9" and events[2].fields["port"] == 53522
    assert events[3].extra == {"facility": "daemon", "severity": "info"}


def test_a_word_with_a_dot_is_not_taken_for_a_facility() -> None:
    """Only syslog's own facility and priority names are read as BusyBox's field."""
    ev = one("Jun 25 00:49:14 lockedout web.info sshd[3029]: " + REAL)
    assert ev.format != "syslog"


def test_detection_prefers_the_majority() -> None:
    lines = [f"2024-01-29T11:23:02+01:00 host sshd[1]: {REAL}"] * 3 + [f"Jan 29 11:23:02 host sshd[1]: {REAL}"]
    assert detect_format(lines) == "iso"
    assert detect_format(["debug1: Forked child 10348.\r", "garbage"]) == "sshd-debug"


def test_resolve_format_aliases() -> None:
    assert resolve_format("short-iso") == "iso"
    assert resolve_format("JSON") == "journal-json"
    with pytest.raises(ValueError, match="unknown input format"):
        resolve_format("xml")


def test_mixed_formats_in_one_file(seed_log_path: Path, tmp_path: Path) -> None:
    seed = seed_log_path.read_text().splitlines()
    iso = [f"2024-01-29T11:23:02+01:00 host sshd[10348]: {REAL}"]
    path = tmp_path / "mixed.log"
    path.write_text("\n".join(seed[:10] + iso + ["", "# a comment"] + seed[10:20]) + "\n")
    events = list(parse_file(path))
    assert len(events) == 23
    assert events[10].format == "iso" and events[10].event == "connection.from"
    assert events[11].event == "unparsed" and events[12].event == "unparsed"
    assert all(e.known for e in events if e.program == "sshd")


def test_non_utf8_long_and_truncated_lines(seed_log_path: Path, tmp_path: Path) -> None:
    seed = seed_log_path.read_bytes().splitlines()
    bad = b"Jan 29 11:23:02 h sshd[1]: Invalid user \xc3\x28\xff from 192.0.2.1 port 37220"
    huge = b"Jan 29 11:23:02 h sshd[1]: Invalid user " + b"A" * (1 << 20) + b" from 192.0.2.1 port 1"
    path = tmp_path / "rough.log"
    path.write_bytes(b"\n".join(seed[:5] + [bad, huge, b"\x00\x01\x02", seed[5][:37]]))  # no final newline
    events = list(parse_file(path))
    assert len(events) == 9
    assert events[5].event == "auth.invalid_user" and "\\xff" in events[5].fields["user"]
    # sshd never writes a message over 1,023 bytes (log.c): a longer one is reported, not matched,
    # and a line longer than the reader keeps is cut (simulator/limits.py)
    assert events[6].event == "unknown" and events[6].program == "sshd" and len(events[6].raw) == MAX_LINE_CHARS
    assert events[6].raw == huge[:MAX_LINE_CHARS].decode()
    assert events[7].event == "unparsed"
    assert events[8].raw == seed[5][:37].decode()


def test_longest_message_sshd_writes_still_parses() -> None:
    user = "A" * (1023 - len("Invalid user  from 192.0.2.1 port 1"))
    [ev] = parse_lines([f"Jan 29 11:23:02 h sshd[1]: Invalid user {user} from 192.0.2.1 port 1"])
    assert ev.event == "auth.invalid_user" and ev.fields["user"] == user


def test_hostile_messages_are_not_matched_for_ever() -> None:
    """Messages built to make lazy fields backtrack (a cubic case among the extracted entries,
    and a quadratic one in every keyed entry) are over sshd's length limit: reported at once."""
    lines = [f"Jan 29 11:23:02 h sshd[1]: {body}" for body in
             ("A" * (1 << 20), "for " * 100_000, "Invalid user " + "from " * 200_000 + "port 1")]
    assert [e.event for e in parse_lines(lines)] == ["unknown"] * 3


def test_gzip_is_read_directly(seed_log_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "auth.log.1"  # no .gz suffix: detected by content
    path.write_bytes(gzip.compress(seed_log_path.read_bytes()))
    assert sum(1 for _ in parse_file(path)) == 180


def test_damaged_gzip_ends_with_a_warning(seed_log_path: Path, tmp_path: Path) -> None:
    data = gzip.compress(seed_log_path.read_bytes())
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    reader = LogReader(path)
    lines = list(reader.lines())
    assert 0 < len(lines) < 180
    assert reader.warnings and "ends early" in reader.warnings[0]
