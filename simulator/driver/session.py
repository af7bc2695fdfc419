"""Session and forwarding channels as a profiled client opens them.

The order of channel requests, their want_reply and whether they are pipelined come from the
client profile; the scenario says which requests the session makes (x11, agent, pty, env) and
whether it ends in a shell, a command or a subsystem (SFTP runs over that scripted channel, so
the profile's window and packet size apply to it too).
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

import asyncssh
from asyncssh.sftp import MIN_SFTP_VERSION, start_sftp_client

from simulator.driver.fidelity import ScriptedChannel, request_payload, send_global_request
from simulator.profiles import ClientProfile
from simulator.scenario.model import ForwardAction, SessionAction, SftpOp

FINAL_REQUESTS = ("shell", "exec", "subsystem")
# Seconds a client that ends the connection right after its last channel packets leaves them to
# reach the socket (asyncssh queues a CLOSE behind the EOF); a reset would discard them.
TEARDOWN_FLUSH = 0.02
# Seconds between CHANNEL_EOF and CHANNEL_CLOSE when a client sends both as it ends (`send`:
# paramiko's Channel.close, two messages each written by its transport thread): sshd reads and
# acts on the EOF before the CLOSE comes (measured at DEBUG3 against the real paramiko 3.4's
# SFTP: the sftp-server's exit and sshd's own EOF are logged between "rcvd eof" and "rcvd
# close"); sent together, sshd reads both at once and tears the channel down another way.
EOF_CLOSE_GAP = 0.005
# Seconds a client that waits for the server's EOF before dropping TCP waits at most.
TEARDOWN_WAIT = 2.0


def request_order(profile: ClientProfile, action: SessionAction) -> list[tuple[str, Any]]:
    """(request, argument) pairs in the order this client sends them for this session."""
    sftp = action.kind == "subsystem" and (action.subsystem or "sftp") == "sftp"
    order = list(action.requests or (profile.sftp_requests if sftp and profile.sftp_requests else None)
                 or profile.session_requests)
    final = {"shell": "shell", "exec": "exec", "subsystem": "subsystem"}[action.kind]
    wanted: dict[str, bool] = {
        "x11-req": action.x11,
        "auth-agent-req@openssh.com": action.agent,
        "pty-req": action.pty,
        "env": bool(action.env),
    }
    plan: list[tuple[str, Any]] = []
    placed_final = False
    for name in order:
        if name in FINAL_REQUESTS:
            if not placed_final:
                plan.append((final, None))
                placed_final = True
        elif name == "env":
            plan.extend(("env", item) for item in action.env.items())
        elif wanted.get(name):
            plan.append((name, None))
        elif name not in wanted:
            # A request this client always makes (e.g. psftp's simple@putty hint).
            plan.append((name, None))
    # Requests the scenario wants but the profile's order does not mention go before the final one.
    for name, want in wanted.items():
        if want and name not in order:
            if name == "env":
                items: list[tuple[str, Any]] = [("env", item) for item in action.env.items()]
            else:
                items = [(name, None)]
            index = next((i for i, (n, _) in enumerate(plan) if n in FINAL_REQUESTS), len(plan))
            plan[index:index] = items
    if not placed_final:
        plan.append((final, None))
    return plan


def channel_size(profile: ClientProfile, *, pty: bool, sftp: bool) -> tuple[int, int]:
    """(window, max packet) of the session CHANNEL_OPEN, for a profile as it applies to the
    session (for_session): the pty values, the no-pty ones without a pty, SFTP's for SFTP."""
    window, max_packet = profile.window, profile.max_packet
    if not pty:
        window = profile.no_pty_window or window
        max_packet = profile.no_pty_max_packet or max_packet
    if sftp:
        window = profile.sftp_window or window
        max_packet = profile.sftp_max_packet or max_packet
    return window, max_packet


async def run_session(conn: asyncssh.SSHClientConnection, profile: ClientProfile,
                      action: SessionAction, *, forwards: bool = False,
                      only_session: bool = False) -> tuple[int | None, list[str]]:
    """Open a session, send its requests, run it; returns (exit status, refused requests).

    `forwards`: the connection also opens forwarding channels (a profile's `when: forwarding`).
    `only_session`: the connection opens no other session, so the profile's global requests
    (OpenSSH's no-more-sessions) may go out; a caller that opens more (sshsim compat's probe, a
    scenario with two sessions) must not have sshd refuse them."""
    profile = profile.for_session(kind=action.kind, pty=action.pty,
                                  forwarding=forwards or action.x11 or action.agent)
    sftp = action.kind == "subsystem" and (action.subsystem or "sftp") == "sftp"
    window, max_packet = channel_size(profile, pty=action.pty, sftp=sftp)
    channel = ScriptedChannel(conn, window, max_packet)
    await channel.open()
    if profile.window_adjust_request:
        channel.acked_window(profile.window_adjust_request)
    if only_session and profile.global_requests and not getattr(conn, "_sshsim_globals_sent", False):
        # Once per connection, after the first session is open (OpenSSH's ssh_session2).
        conn._sshsim_globals_sent = True  # type: ignore[attr-defined]  # a mark on asyncssh's connection
        for name in profile.global_requests:
            send_global_request(conn, name)
    refused: list[str] = []
    pending: list[tuple[str, asyncio.Future]] = []
    final_ok = True
    eof_sent = action.close == "eof" or (action.close == "wait" and action.kind in profile.eof_kinds)
    # With no input to send first, the EOF goes out as the session starts.
    eof_at_start = eof_sent and not action.input and not sftp
    for name, arg in request_order(profile, action):
        payload = request_payload(name, term=action.term, cols=action.cols, rows=action.rows,
                                  command=action.command, subsystem=action.subsystem,
                                  env=arg if name == "env" else None)
        waiter = channel.send(name, payload, profile.reply_wanted(name))
        if waiter is None:
            continue
        if name in FINAL_REQUESTS and eof_at_start:
            channel.eof_when_started()
        if profile.pipelined:
            pending.append((name, waiter))
        elif not await waiter:
            refused.append(name)
            if name in FINAL_REQUESTS:
                final_ok = False
    for name, waiter in pending:
        if not await waiter:
            refused.append(name)
            if name in FINAL_REQUESTS:
                final_ok = False
    if not final_ok:
        channel.chan.close()
        await channel.chan.wait_closed()
        return None, refused
    channel.started()
    writer, reader, stderr = channel.streams()
    if sftp:
        await _run_sftp(conn, reader, writer, action.sftp, close=profile.channel_close == "before")
        if profile.channel_close == "before":
            channel.chan.close()
            await channel.chan.wait_closed()
        elif profile.channel_close in ("send", "eof"):
            # EOF (and CLOSE) go out; the connection ends before the server's CLOSE is read.
            if profile.channel_close == "eof":
                channel.drop_on_close()
            channel.chan.write_eof()
            if profile.channel_close == "send":
                await asyncio.sleep(EOF_CLOSE_GAP)
                channel.chan.close()
                await asyncio.sleep(TEARDOWN_FLUSH)
            else:
                # psftp: the server's EOF is read (nothing left in flight to reset the socket),
                # then TCP is dropped with no CLOSE from this side.
                await channel.server_eof(TEARDOWN_WAIT)
        return None, refused

    if (profile.eof_on_server_eof or profile.channel_close in ("send", "eof")) and not eof_sent:
        # PuTTY answers the server's EOF before the CLOSE; a client that ends with EOF (and
        # CLOSE) without waiting has sent it by the time the server's CLOSE is read.
        channel.answer_eof()
    if profile.channel_close == "none" and action.close == "wait":
        # The connection ends under the server's CLOSE, unanswered (paramiko's close() after a
        # shell, before its transport thread has read that CLOSE), the way the profile ends.
        channel.drop_on_close(reset=profile.close == "reset")
    drain = asyncio.gather(_drain(reader), _drain(stderr))
    try:
        if action.input:
            writer.write(action.input.encode())
        if eof_sent and channel.chan._send_state == "open":
            writer.write_eof()
    except BrokenPipeError:
        pass  # the server ended the session first (a command that exits at once); not an error
    if action.close == "none":
        drain.cancel()
        return None, refused
    if profile.channel_close != "before":
        # The client ends the connection once the output has ended, without waiting for the
        # server's CLOSE: with the channel left open (`none`), or after its EOF (`eof`) or EOF
        # and CLOSE (`send`: paramiko's channel files closed, then SSHClient.close).
        try:
            await asyncio.wait_for(drain, 10)
        except (TimeoutError, asyncio.CancelledError):
            pass
        if profile.channel_close in ("send", "eof"):
            if not eof_sent:
                channel.chan.write_eof()
                if profile.channel_close == "send":
                    await asyncio.sleep(EOF_CLOSE_GAP)
            if profile.channel_close == "send":
                channel.chan.close()
                await asyncio.sleep(TEARDOWN_FLUSH)
        return channel.chan.get_exit_status(), refused
    await channel.chan.wait_closed()
    try:
        await asyncio.wait_for(drain, 5)
    except (TimeoutError, asyncio.CancelledError):
        pass
    return channel.chan.get_exit_status(), refused


async def _drain(reader: asyncssh.SSHReader) -> None:
    """Read and discard output so the server's window never fills."""
    while await reader.read(65536):
        pass


async def _run_sftp(conn: asyncssh.SSHClientConnection, reader: Any, writer: Any, ops: list[SftpOp],
                    *, close: bool = True) -> None:
    """The SFTP operations; `close` False leaves the channel open (the connection ends under it)."""
    client = await start_sftp_client(conn, conn._loop, "strict", reader, writer, "utf-8", "strict",
                                     MIN_SFTP_VERSION)
    for op in ops:
        await _sftp_op(client, op)
    if close:
        client.exit()
        await client.wait_closed()


async def _sftp_op(client: asyncssh.SFTPClient, op: SftpOp) -> None:
    if op.op == "put":
        data = op.content.encode() if op.content is not None else os.urandom(op.size or 0)
        async with client.open(op.path, "wb") as f:
            await f.write(data)
    elif op.op == "get":
        async with client.open(op.path, "rb") as f:
            await f.read()
    elif op.op == "ls":
        await client.readdir(op.path)
    elif op.op == "mkdir":
        await client.mkdir(op.path)
    elif op.op == "rm":
        await client.remove(op.path)
    elif op.op == "stat":
        await client.stat(op.path)
    elif op.op == "realpath":
        await client.realpath(op.path)
    elif op.op == "rename":
        assert op.target is not None
        await client.rename(op.path, op.target)


async def run_forward(conn: asyncssh.SSHClientConnection, action: ForwardAction) -> bool:
    """A direct-tcpip channel to a loopback address; returns True when the server refused it."""
    if action.host not in ("127.0.0.1", "localhost", "::1") and not action.host.startswith("127."):
        raise ValueError(f"forwarding target {action.host} is not loopback")
    # Real clients name the originator (ssh -L: the local peer that connected to the listener).
    orig_port = random.randint(40000, 60999)
    try:
        reader, writer = await conn.open_connection(action.host, action.port, orig_host="127.0.0.1",
                                                    orig_port=orig_port)
    except asyncssh.ChannelOpenError:
        return True
    if action.data:
        writer.write(action.data.encode())
    writer.write_eof()
    try:
        await asyncio.wait_for(reader.read(), 5)
    except TimeoutError:
        pass
    writer.close()
    return False
