"""The HTML report: each scenario's connections as a timeline a person can read at a glance.

One lane per sshd process role of a connection (listener, monitor, pre-auth child, user child,
session child: docs/reference-log.md), all connections of a scenario on one shared axis, so two
interleaved connections are seen side by side. The axis runs in log order, labelled with the
log's time stamps: syslog stamps have whole seconds only, and a whole connection often fits in
one, so an axis in seconds would stack every line of it on one spot.

The file is self-contained (inline CSS and SVG, no script): a CI artifact is opened offline,
often from a sandbox that blocks everything external. Every text from the log is untrusted (a
client banner is whatever the client sent) and goes through `html.escape`, in text and in
attributes alike.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from simulator.logs.events import ROLES
from simulator.logs.formats import iso_timestamp
from simulator.verify.outcome import ScenarioOutcome
from simulator.verify.verifier import Failure, ParsedLog, assign_connections, describe, event_matches, run_ports

# Phase of an event, by the catalogue's event-name prefix (simulator/data/events/*.yaml).
PHASES = {"kex": "key exchange", "auth": "auth", "pam": "auth", "channel": "channel",
          "session": "session", "disconnect": "close"}
PHASE_COLOURS = {"key exchange": "#3b7dd8", "auth": "#d98c1a", "channel": "#2a9d8f",
                 "session": "#8e5bd6", "close": "#c0392b", "other": "#8a8f98"}
ROLE_NAMES = {"listener": "listener", "monitor": "monitor", "preauth": "pre-auth child",
              "user": "user child", "session": "session child", "pam": "PAM child"}

LABEL_W = 190  # the lane labels' column
AXIS_W = 1000  # the drawing area
LANE_H = 22
LANE_GAP = 4
CONN_HEAD = 22  # a connection's title row
AXIS_H = 24

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 8px}h2{font-size:17px;margin:18px 0 6px}
.pass h2 .mark{color:#1e8449}.fail h2 .mark,.error h2 .mark{color:#c0392b}
section.scenario{border-top:2px solid #ddd;padding-top:4px}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.failures{background:#fdecea;border-left:4px solid #c0392b;padding:6px 10px;margin:6px 0}
.failures li{margin:4px 0}
.failures pre,.log{white-space:pre-wrap;overflow-wrap:anywhere;font:12px/1.35 ui-monospace,monospace;margin:2px 0}
details{margin:8px 0}summary{cursor:pointer}
.log span{display:block}.log .hit{background:#fbe3a0}.log .bad{background:#f5b7b1}
.log b{display:inline-block;width:5ch;color:#888;font-weight:normal;text-align:right;margin-right:1ch}
svg{display:block;max-width:100%;height:auto}
svg text{font:12px system-ui,sans-serif;fill:#333}
svg .lane-bg{fill:#f1f3f5}svg .tick{stroke:#ccc}
svg a:hover rect,svg a:focus rect{stroke:#000;stroke-width:1}
"""


@dataclass
class Mark:
    """An expected event placed on the timeline: matched (the line that holds it) or failed."""

    line: int | None
    ok: bool
    text: str


def as_html(outcomes: list[ScenarioOutcome]) -> str:
    """The whole report: failing scenarios first, each with its failures, timeline and log."""
    ordered = sorted(outcomes, key=lambda o: o.ok)  # stable: failures and errors first, else run order
    passed = sum(o.status == "pass" for o in outcomes)
    skipped = sum(o.status == "skip" for o in outcomes)
    legend = "".join(f"<span><i style='background:{c}'></i>{html.escape(p)}</span>"
                     for p, c in PHASE_COLOURS.items())
    legend += ("<span><i style='background:#1e8449;border-radius:6px'></i>expected, matched</span>"
               "<span><i style='background:#c0392b'></i>expected, failed</span>")
    body = "".join(_scenario(o, k) for k, o in enumerate(ordered))
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>sshsim report</title>"
            f"<style>{_CSS}</style></head><body>"
            f"<h1>sshsim report: {passed} passed, {sum(o.status == 'fail' for o in outcomes)} failed, "
            f"{sum(o.status == 'error' for o in outcomes)} errors"
            f"{f', {skipped} skipped' if skipped else ''}</h1>"
            f"<p class='legend'>{legend}</p>{body}</body></html>\n")


def _scenario(o: ScenarioOutcome, k: int) -> str:
    esc = html.escape
    anchor = f"s{k}-L"  # line n of scenario k: the target of a lane's or a mark's link
    status = o.status.upper()  # PASS, FAIL, ERROR (the run could not be judged) or SKIP (not this version)
    out = [f"<section class='scenario {o.status}'>"
           f"<h2><span class='mark'>{status}</span> {esc(o.name)} <small>({esc(o.path)}, {o.duration:.2f} s, "
           f"{len(o.lines)} log lines)</small></h2>"]
    if o.skipped:
        # What does not apply to this sshd's version, and why (`requires:`).
        out.append("<div class='skipped'><ul>" + "".join(f"<li>skipped: {esc(s.headline())}</li>"
                                                         for s in o.skipped) + "</ul></div>")
    if o.status == "skip":
        out.append("</section>")
        return "".join(out)
    if o.failures:
        items = "".join(f"<li>{esc(f.headline())}<pre>{esc(chr(10).join(f.context))}</pre></li>"
                        for f in o.failures)
        out.append(f"<div class='failures'><ul>{items}</ul></div>")
    if o.errors:
        out.append("<div class='failures'><ul>" + "".join(f"<li>{esc(e)}</li>" for e in o.errors) + "</ul></div>")
    log = ParsedLog.from_lines(o.lines)
    marks = _marks(o, log)
    out.append(_svg(o, log, marks, anchor))
    bad = {m.line for ms in marks.values() for m in ms if not m.ok and m.line}
    hit = {m.line for ms in marks.values() for m in ms if m.ok and m.line}
    rows = "".join(f"<span id='{anchor}{n}' class='{'bad' if n in bad else 'hit' if n in hit else ''}'>"
                   f"<b>{n}</b>{esc(line)}</span>" for n, line in enumerate(o.lines, 1))
    out.append(f"<details{' open' if not o.ok else ''}><summary>full log ({len(o.lines)} lines)</summary>"
               f"<pre class='log'>{rows}</pre></details></section>")
    return "".join(out)


def _marks(o: ScenarioOutcome, log: ParsedLog) -> dict[int, list[Mark]]:
    """Expected events per log connection id: the line each matched, or the failure's line."""
    scenario = o.plan
    if scenario is None:
        return {}
    ports = run_ports(o.run) if o.run is not None else None
    mapping = assign_connections(scenario, log, ports)
    out: dict[int, list[Mark]] = {}
    for conn_id, expectation in scenario.expectations.items():
        conn = mapping.get(conn_id)
        if conn is None:
            continue
        events = log.events_of(conn)
        failed = {f.expected: f for f in o.failures if f.connection == conn_id and f.expected}
        marks = out.setdefault(conn.id, [])
        for expected in expectation.events:
            text = describe(expected)
            failure = failed.get(text)
            if failure is not None:
                marks.append(Mark(_failure_line(failure), False, f"{conn_id}: {failure.message}"))
                continue
            hit = next((e for e in events if event_matches(expected, e, {})), None)
            if hit is not None:
                marks.append(Mark(hit.line, True, f"{conn_id}: expected {text}: matched line {hit.line}"))
        # The other failures of the connection (an absent event logged, a wrong outcome) at their line.
        named = {describe(x) for x in expectation.events}
        for f in o.failures:
            if f.connection == conn_id and f.expected not in named and _failure_line(f):
                marks.append(Mark(_failure_line(f), False, f"{conn_id}: {f.message}"))
    return out


def _failure_line(failure: Failure) -> int | None:
    """The line a failure points at (the '>' of its context), if any."""
    for row in failure.context:
        head = row[:7]
        if ">" in head:
            try:
                return int(head.split(">")[0])
            except ValueError:
                return None
    return None


def _lanes(log: ParsedLog, conn: Any) -> list[tuple[str, list[Any]]]:
    """(role, events) of one connection, in role order, only roles it has lines of."""
    by_role: dict[str, list[Any]] = {}
    for e in log.events_of(conn):
        by_role.setdefault(e.role or "other", []).append(e)
    order = list(ROLES) + sorted(set(by_role) - set(ROLES))
    return [(r, by_role[r]) for r in order if r in by_role]


def _phase(event_name: str) -> str:
    return PHASES.get(event_name.split(".", 1)[0], "other")


def _svg(o: ScenarioOutcome, log: ParsedLog, marks: dict[int, list[Mark]], anchor: str) -> str:
    esc = html.escape
    n = max(1, len(o.lines))

    def x(line: int) -> float:
        return LABEL_W + (line - 1) * AXIS_W / n

    step = max(2.0, AXIS_W / n)
    failing = {c for c, ms in marks.items() if any(not m.ok for m in ms)}
    conns = sorted((c for c in log.connections if getattr(c, "kind", "connection") == "connection"),
                   key=lambda c: (c.id not in failing, c.id))
    parts: list[str] = []
    y = AXIS_H
    for conn in conns:
        lanes = _lanes(log, conn)
        who = f"connection {conn.id}: {conn.addr}:{conn.port} {conn.client_version or ''}"
        parts.append(f"<text class='conn-title' x='4' y='{y + 15}'>{esc(who)}</text>")
        y += CONN_HEAD
        lane_y: dict[int, float] = {}
        for role, events in lanes:
            pids = ", ".join(str(p) for p in conn.pids.get(role, []))
            label = ROLE_NAMES.get(role, role) + (f" [{pids}]" if pids else "")
            rects = []
            for e in events:
                colour = PHASE_COLOURS[_phase(e.event)]
                rects.append(f"<a href='#{anchor}{e.line}'><rect x='{x(e.line):.1f}' y='{y + 3}' "
                             f"width='{step:.1f}' height='{LANE_H - 6}' fill='{colour}'>"
                             f"<title>{esc(f'{e.line}: {e.raw}')}</title></rect></a>")
                lane_y[e.line] = y
            parts.append(f"<g class='lane' data-conn='{conn.id}' data-role='{esc(role)}' data-y='{y}' "
                         f"data-h='{LANE_H}'><rect class='lane-bg' x='{LABEL_W}' y='{y}' width='{AXIS_W}' "
                         f"height='{LANE_H}'/><text x='12' y='{y + 15}'>{esc(label)}</text>{''.join(rects)}</g>")
            y += LANE_H + LANE_GAP
        for m in marks.get(conn.id, []):
            parts.append(_mark_svg(m, x, lane_y.get(m.line or -1, y - LANE_H - LANE_GAP), anchor))
        y += LANE_GAP * 2
    parts.insert(0, _axis(log.events, x, y))
    return (f"<svg class='timeline' xmlns='http://www.w3.org/2000/svg' width='{LABEL_W + AXIS_W + 10}' "
            f"height='{y}' viewBox='0 0 {LABEL_W + AXIS_W + 10} {y}' role='img' "
            f"aria-label='timeline of {esc(o.name)}'>{''.join(parts)}</svg>")


def _mark_svg(m: Mark, x: Any, lane_top: float, anchor: str) -> str:
    """A matched expected event: a green dot above its line; a failed one: a red square."""
    esc = html.escape
    cx = x(m.line) + 1 if m.line else LABEL_W + AXIS_W - 6
    shape = (f"<circle cx='{cx:.1f}' cy='{lane_top + 2}' r='3.5' fill='#1e8449' stroke='#fff'/>" if m.ok else
             f"<rect x='{cx - 5:.1f}' y='{lane_top - 3}' width='10' height='10' fill='#c0392b' stroke='#fff'/>")
    cls = "expect ok" if m.ok else "expect failed"
    href = f" href='#{anchor}{m.line}'" if m.line else ""
    return f"<a class='{cls}'{href}><g>{shape}<title>{esc(m.text)}</title></g></a>"


def _axis(events: Iterable[Any], x: Any, height: float) -> str:
    """Tick marks where the log's time stamp changes, labelled with the time of day."""
    out = []
    last = None
    last_x = -1e9
    for e in events:
        stamp = iso_timestamp(e.ts, e.format) if e.ts else None
        clock = stamp.split("T", 1)[1][:8] if stamp and "T" in stamp else None
        if clock is None or clock == last:
            continue
        last = clock
        tx = x(e.line)
        out.append(f"<line class='tick' x1='{tx:.1f}' y1='{AXIS_H - 6}' x2='{tx:.1f}' y2='{height}'/>")
        if tx - last_x > 60:
            out.append(f"<text x='{tx + 2:.1f}' y='{AXIS_H - 10}'>{html.escape(clock)}</text>")
            last_x = tx
    return "".join(out)
