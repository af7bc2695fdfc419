"""A raw connection that closes at once (`raw: {hold: 0}`), against a real sshd: sshd must always
see the end of the stream, also when its version banner has already reached the client unread
(a CI run on a loaded machine once logged a reset for closed-before-banner)."""

from __future__ import annotations

import asyncio
import select
import time

import pytest
from conftest import needs_local_sshd

from simulator.driver.raw import _close_first
from simulator.target.local import LocalSshd

CLOSED = "kex_exchange_identification: Connection closed by remote host"
RESET = "kex_exchange_identification: read: Connection reset by peer"


async def _banner_waiting(server: LocalSshd) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection whose server banner sits unread in the kernel: the event loop is kept from
    reading it by waiting for it with a blocking select."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    sock = writer.get_extra_info("socket")
    assert select.select([sock], [], [], 10)[0], "sshd sent no banner within 10 s"
    return reader, writer


def _exchange_lines(server: LocalSshd) -> list[str]:
    """The log's banner-exchange lines, once the connection's last line ("Connection closed by"
    or "Connection reset by") is in (a safety net of 10 s for a hung sshd, not a measurement)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(" by 127.0.0.1 port " in x for x in server.log.lines()):
        time.sleep(0.02)
    server.wait_idle()
    return [line for line in server.log.lines() if "kex_exchange_identification" in line]


@needs_local_sshd
@pytest.mark.sshd
async def test_close_at_once_is_an_end_of_stream_with_the_banner_unread(sshd_server: LocalSshd) -> None:
    reader, writer = await _banner_waiting(sshd_server)
    await _close_first(writer, reader)
    writer.close()
    await writer.wait_closed()
    lines = _exchange_lines(sshd_server)
    assert len(lines) == 1 and lines[0].endswith(CLOSED), lines


@needs_local_sshd
@pytest.mark.sshd
async def test_closing_outright_with_the_banner_unread_is_a_reset(sshd_server: LocalSshd) -> None:
    """The race the half-close removes is real: closed outright, the same connection is a reset
    (so the test above can fail)."""
    _, writer = await _banner_waiting(sshd_server)
    writer.close()  # (stops reading at once: the banner stays unread)
    await writer.wait_closed()
    lines = _exchange_lines(sshd_server)
    assert len(lines) == 1 and lines[0].endswith(RESET), lines
