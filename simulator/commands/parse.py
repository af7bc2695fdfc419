"""``sshsim parse LOG``: read a real sshd log and show what happened in it.

Three views: ``jsonl`` (one object per input line, in input order, for tools), ``table`` (one
row per line, for reading along) and ``summary`` (one block per connection: who connected,
what was negotiated, how authentication went, what the session did).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

import click

from simulator.colour import colour_option, paint, printable, use_colour
from simulator.commands.logio import echo_warnings, log_lines, open_log
from simulator.errors import EnvironmentProblem
from simulator.logs.connections import Connection, ConnectionTracker
from simulator.logs.events import Event
from simulator.logs.formats import ALIASES, FORMATS, iso_timestamp
from simulator.logs.parser import parse_lines

_INPUT_FORMATS = sorted(list(FORMATS) + list(ALIASES))


@click.command("parse")
@click.argument("log", metavar="LOG")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "table", "summary"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one JSON object per line; table: one row per line; summary: one block per connection.",
)
@click.option(
    "--input-format",
    type=click.Choice(_INPUT_FORMATS, case_sensitive=False),
    default=None,
    help="How the log was written (default: detected from its first lines).",
)
@colour_option
def parse(log: str, output_format: str, input_format: str | None, color: bool | None) -> None:
    """Parse an sshd log (a file, a .gz, or - for stdin) into events and connections."""
    reader = open_log(log)
    # Streamed: memory stays flat whatever the length of the log.
    events = parse_lines(log_lines(reader), input_format=input_format)
    out = sys.stdout
    try:
        if output_format == "jsonl":
            _write_jsonl(events, out)
        elif output_format == "table":
            _write_table(events, out, use_colour(color))
        else:
            _write_summary(events, out, use_colour(color))
    except BrokenPipeError:  # `sshsim parse big.log | head`
        sys.stderr.close()
        return
    except OSError as exc:  # the log's read errors are warnings: this is the output
        raise EnvironmentProblem(f"cannot write the output: {exc.strerror or exc}") from None
    echo_warnings(reader)


def _grouped(events: Iterator[Event], on_done=None) -> Iterator[Event]:  # noqa: ANN001
    """Events with conn/role; connection summaries go to `on_done` when it is given."""
    # per-connection counters and summary fields only feed the summaries
    tracker = ConnectionTracker(on_done=on_done or (lambda c: None), summaries=on_done is not None,
                                tally=on_done is not None)
    return tracker.run(events)


def _write_jsonl(events: Iterator[Event], out: IO[str]) -> None:
    dumps = json.dumps
    write = out.write
    for ev in _grouped(events):
        d = ev.to_dict()
        d["ts"] = iso_timestamp(ev.ts, ev.format)
        write(dumps(d, ensure_ascii=False))
        write("\n")
    out.flush()


# click styles (simulator/colour.py paints them when colour is on)
_LEVEL_STYLE: dict[str, dict[str, Any]] = {
    "FATAL": {"fg": "red", "bold": True}, "ERROR": {"fg": "red"}, "INFO": {"bold": True}, "VERBOSE": {},
    "DEBUG1": {"dim": True}}
_DIM: dict[str, Any] = {"dim": True}


def _styled(text: str, colour: bool, style: dict[str, Any]) -> str:
    return paint(text, colour, **style) if style else text


def _write_table(events: Iterator[Event], out: IO[str], colour: bool) -> None:
    write = out.write
    write(paint(f"{'line':>6} {'time':<19} {'pid':>7} {'conn':>5} {'role':<8} {'level':<7} {'event':<34} message",
                colour, bold=True, underline=True) + "\n")
    for ev in _grouped(events):
        ts = (iso_timestamp(ev.ts, ev.format) or "")[:19]
        name = ev.event
        event_style = ({"fg": "yellow"} if name == "unknown"
                       else _DIM if name in ("other", "unparsed") else {"fg": "cyan"})
        msg = ev.message if ev.message is not None else ev.raw
        if ev.relay:
            msg += f" [{ev.relay}]"
        write(f"{ev.line:>6} {ts:<19} {ev.pid if ev.pid is not None else '-':>7} "
              f"{ev.conn if ev.conn is not None else '-':>5} {ev.role or '-':<8} "
              + _styled(f"{ev.level or '-':<7} ", colour, _LEVEL_STYLE.get(ev.level or "", _DIM))
              + _styled(f"{name:<34} ", colour, event_style)
              + printable(msg) + "\n")


def _write_summary(events: Iterator[Event], out: IO[str], colour: bool) -> None:
    done: list[Connection] = []
    stats: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    lines = 0
    for ev in _grouped(events, on_done=done.append):
        lines += 1
        formats[ev.format] += 1
        stats[ev.event if ev.event in ("unknown", "other", "unparsed") else "known"] += 1
    write = out.write
    for conn in sorted(done, key=lambda c: c.id):
        write(_connection_block(conn, colour))
    fmt = ", ".join(f"{n} {k}" for k, n in formats.most_common() if k != "none")
    write(
        paint(f"{lines} lines", colour, bold=True)
        + f": {stats['known']} known sshd events, {stats['unknown']} unknown sshd lines, "
        f"{stats['other']} lines of other programs, {stats['unparsed']} unparsed; "
        f"{len([c for c in done if c.kind != 'listener'])} connections; formats: {printable(fmt) or '-'}\n"
    )


def _endpoint(addr: str | None, port: int | None) -> str:
    if addr is None:
        return "?"
    host = f"[{addr}]" if ":" in addr else addr
    return f"{host}:{port}" if port is not None else host


def _connection_block(conn: Connection, colour: bool) -> str:
    """One connection of the summary view: a title line, its rows, an empty line. What came from
    the log is shown with its control characters escaped (`printable`)."""
    d = conn.to_dict()
    pids = ", ".join(f"{role} {' '.join(map(str, p))}" for role, p in conn.pids.items())
    if conn.kind == "listener":
        return (paint("Listener", colour, bold=True) + f" (conn {conn.id}) pids: {pids}; "
                f"lines {conn.first_line}-{conn.last_line}, {conn.n_events} events\n\n")
    title = "Dropped connection" if conn.kind == "dropped" else "Connection"
    out = [paint(f"{title} {conn.id}", colour, bold=True)
           + f"  {printable(_endpoint(conn.addr, conn.port))} -> "
           f"{printable(_endpoint(conn.laddr, conn.lport))}   pids: {pids or '-'}"]
    rows: list[tuple[str, str]] = []
    if conn.client_version or conn.server_version:
        rows.append(("client", conn.client_version or "?"))
        rows.append(("server", conn.server_version or "?"))
    if conn.kex or conn.host_key:
        rows.append(("kex", f"{conn.kex or '?'}   host key {conn.host_key or '?'}"))
    for direction in conn.cipher:
        rows.append(
            (
                "cipher" if direction == next(iter(conn.cipher)) else "",
                f"{direction}: {conn.cipher[direction]}  MAC {conn.mac.get(direction)}  "
                f"compression {conn.compression.get(direction)}",
            )
        )
    if conn.kex:
        rows.append(("kex ext", f"strict KEX {'yes' if conn.strict_kex else 'no'}, "
                                f"ext-info {'yes' if conn.ext_info else 'no'}"))
    if conn.auth or conn.user:
        tried = " -> ".join(f"{m} ({o})" for m, o in conn.auth) or "-"
        rows.append(("auth", tried))
        rows.append(("user", f"{conn.user or '?'}   outcome: {conn.outcome or 'none'}"))
    for ch in d["channels"]:
        reqs = ", ".join(ch["requests"]) or "-"
        rows.append(
            (
                "channel",
                f"#{ch['channel'] if ch['channel'] is not None else '?'} {ch['type']} rchan {ch['rchan']} "
                f"win {ch['window']} max {ch['max_packet']}: {reqs}",
            )
        )
    for s in conn.sessions:
        rows.append(("session", s))
    duration = conn.duration
    span = f"{conn.start or '?'} .. {conn.stop or '?'}"
    if duration is not None:
        span += f" ({duration:g} s)"
    rows.append(("time", f"{span}; lines {conn.first_line}-{conn.last_line}, {conn.n_events} events"
                 + (f", {conn.unknown} unknown" if conn.unknown else "")))
    rows.append(("end", f"{conn.end or '-'}" + (f": {conn.end_reason}" if conn.end_reason else "")))
    out += [f"  {key:<9}{printable(value)}" for key, value in rows]
    return "\n".join(out) + "\n\n"
