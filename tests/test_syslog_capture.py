"""The syslog receiver: datagram parsing with real glibc-shaped lines, delivery, waiting, flushing."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from simulator.capture.syslog import SyslogReceiver, parse_datagram

# Real lines of the reference log, as glibc would have sent them.
SEED_DATAGRAMS = [
    b"<39>Jan 29 11:23:02 sshd[6682]: debug1: Forked child 10348.",
    b"<38>Jan 29 11:23:02 sshd[10348]: Accepted publickey for user from 10.199.34.74 port 53688 ssh2: "
    b"ED25519 SHA256:v0S66Yu0IAQ5eEdhpAGAzhZR02FgdYSk8+XfeZK2co0",
    b"<86>Jan  9 01:02:03 sshd[10388]: pam_unix(sshd:session): session opened for user user(uid=1000) by (uid=0)",
]


def test_parse_datagram_keeps_pid_program_priority() -> None:
    record = parse_datagram(SEED_DATAGRAMS[1], seq=7, arrival=1.0)
    assert record.pid == 10348 and record.program == "sshd" and record.seq == 7
    assert record.severity == "info" and record.facility == 4
    assert record.message.startswith("Accepted publickey for user from 10.199.34.74 port 53688")
    assert record.classic("user-sicharge") == (
        "Jan 29 11:23:02 user-sicharge sshd[10348]: Accepted publickey for user from 10.199.34.74 port 53688 ssh2: "
        "ED25519 SHA256:v0S66Yu0IAQ5eEdhpAGAzhZR02FgdYSk8+XfeZK2co0"
    )
    assert parse_datagram(SEED_DATAGRAMS[0]).severity == "debug"
    padded = parse_datagram(SEED_DATAGRAMS[2])
    assert padded.timestamp == "Jan  9 01:02:03" and padded.facility == 10


def test_parse_datagram_never_drops_odd_input() -> None:
    for data in (b"", b"garbage \xff\xfe", b"<13>no header at all", b"<999>x"):
        record = parse_datagram(data)
        assert record.program == "unknown"
    assert parse_datagram(b"<13>no header at all").message == "no header at all"


def test_receiver_writes_classic_lines_and_cleans_up(tmp_path: Path) -> None:
    """glibc-shaped datagrams in, the reference log's line format out, socket removed at close."""
    sock = tmp_path / "log.sock"
    out = tmp_path / "out.log"
    with open(out, "w") as log_file, SyslogReceiver(sock, host="box", log_file=log_file) as receiver:
        for data in SEED_DATAGRAMS:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(data, str(sock))
        receiver.flush()
        assert [r.pid for r in receiver.records] == [6682, 10348, 10388]
        assert oct(sock.stat().st_mode & 0o777) == "0o666"
    lines = out.read_text().splitlines()
    assert lines[0] == "Jan 29 11:23:02 box sshd[6682]: debug1: Forked child 10348."
    assert not sock.exists()


async def test_wait_for_past_and_future_records(tmp_path: Path) -> None:
    with SyslogReceiver(tmp_path / "log.sock") as receiver:
        send = lambda data: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(data, str(tmp_path / "log.sock"))  # noqa: E731
        send(SEED_DATAGRAMS[0])
        receiver.flush()
        past = await receiver.wait_for(lambda r: "Forked child" in r.message, timeout=2)
        assert past.pid == 6682
        future = asyncio.ensure_future(receiver.wait_for(lambda r: r.pid == 10388, timeout=5))
        await asyncio.sleep(0.05)
        assert not future.done()
        send(SEED_DATAGRAMS[2])
        assert (await future).message.startswith("pam_unix")
        with pytest.raises(asyncio.TimeoutError):
            await receiver.wait_for(lambda r: False, timeout=0.1)


def test_many_datagrams_none_lost(tmp_path: Path) -> None:
    with SyslogReceiver(tmp_path / "log.sock") as receiver:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(str(tmp_path / "log.sock"))
            s.setblocking(True)
            for i in range(20000):
                s.send(b"<39>Jan 29 11:23:02 sshd[%d]: debug1: line %d" % (1000 + i % 7, i))
        receiver.flush()
        records = receiver.records
    assert len(records) == 20000
    assert [int(r.message.rsplit(" ", 1)[1]) for r in records] == list(range(20000))
