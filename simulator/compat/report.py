"""The compat table: on the terminal (rich), as JSON, JUnit and one self-contained HTML page,
and what changed against a baseline (an earlier JSON report, or the `--before` config).

A change is a regression to report (exit 1) when a client that connected no longer does, one
that was refused now connects, or what it negotiated or how it authenticates changed: any of
these breaks or changes someone's login, so a reviewer should see it before it ships.
"""

from __future__ import annotations

import html
import json
import shutil
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from rich.console import Console
from rich.table import Table as RichTable

from simulator.compat.check import Table
from simulator.errors import BadInputError

SHORT = {"publickey": "pubkey", "keyboard-interactive": "kbd-int"}
COMPARED = ("ok", "kex", "host_key", "cipher", "mac", "compression", "session", "sftp")


def render_terminal(table: Table, *, colour: bool) -> str:
    """A rich table: profile x negotiated algorithms, auth, session, SFTP, verdict; then the
    sshd line explaining each failure."""
    title = f"{table.config} on {table.target} ({table.sshd_version})"
    grid = RichTable(title=title, title_justify="left", show_lines=False)
    for name in ("profile", "kex", "host key", "cipher", "MAC", "comp", "offered", "auth", "session", "sftp",
                 "verdict"):
        grid.add_column(name, overflow="fold")
    for row in table.rows:
        style = "green" if row.ok else "red"
        auth = ", ".join(f"{SHORT.get(m, m)} {r}" for m, r in row.methods.items())
        grid.add_row(row.profile, row.kex or "-", row.host_key or "-", row.cipher or "-", row.mac or "-",
                     row.compression or "-", ",".join(row.offered) or "-", auth, row.session, row.sftp or "-",
                     f"[{style}]{row.verdict}[/{style}]")

    width = max(160, shutil.get_terminal_size((200, 40)).columns)
    console = Console(record=True, width=width, force_terminal=colour, no_color=not colour, highlight=False)
    with console.capture() as captured:
        console.print(grid)
        for row in table.rows:
            if row.evidence:
                console.print(f"{row.profile}: {row.verdict}: {row.evidence}", markup=False, highlight=False)
    return captured.get().rstrip("\n")


def to_json(tables: list[Table], changes: dict[str, list[str]] | None = None, *, per_target: int = 1) -> str:
    """One table: the issue's shape. `--before/--after`: {"target", "before", "after", "changes"}.
    Several targets: {"targets": [one of those per target]}. `per_target`: tables a target has
    (1, or 2 with --before/--after), in order."""
    items: list[dict[str, Any]] = []
    for i in range(0, len(tables), per_target):
        group = tables[i:i + per_target]
        if changes is None:
            items.append(group[0].to_json())
        else:
            items.append({"target": group[1].target, "before": group[0].to_json(), "after": group[1].to_json(),
                          "changes": changes.get(group[1].target, [])})
    return json.dumps(items[0] if len(items) == 1 else {"targets": items}, indent=2) + "\n"


def to_junit(tables: list[Table]) -> str:
    """A test suite per config, a test case per profile; a failure carries sshd's line."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for table in tables:
        failures = sum(1 for r in table.rows if not r.ok)
        out.append(f"  <testsuite name={quoteattr(f'compat {table.config} on {table.target}')} "
                   f"tests=\"{len(table.rows)}\" "
                   f"failures=\"{failures}\" time=\"{table.seconds:.2f}\">")
        for row in table.rows:
            out.append(f"    <testcase classname={quoteattr(f'{table.config} on {table.target}')} "
                       f"name={quoteattr(row.profile)}>")
            if not row.ok:
                out.append(f"      <failure message={quoteattr(row.verdict)}>{escape(row.evidence or '')}</failure>")
            out.append("    </testcase>")
        out.append("  </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"


def to_html(tables: list[Table], changes: list[str] | None = None) -> str:
    """One self-contained page (no scripts, no outside resources)."""
    e = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>sshsim compat</title><style>",
             "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #bbb;"
             "padding:2px 6px;font-size:13px}.ok{background:#dfd}.bad{background:#fdd}",
             "</style></head><body>"]
    for table in tables:
        parts.append(f"<h2>{e(table.config)} on {e(table.target)} ({e(table.sshd_version)})</h2><table><tr>")
        parts += [f"<th>{h}</th>" for h in ("profile", "kex", "host key", "cipher", "MAC", "compression",
                                               "offered", "auth", "session", "sftp", "verdict", "evidence")]
        parts.append("</tr>")
        for r in table.rows:
            cells = (r.profile, r.kex, r.host_key, r.cipher, r.mac, r.compression, ", ".join(r.offered),
                     "; ".join(f"{m}: {v}" for m, v in r.methods.items()), r.session, r.sftp, r.verdict, r.evidence)
            parts.append(f"<tr class=\"{'ok' if r.ok else 'bad'}\">"
                         + "".join(f"<td>{e(c or '-')}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    if changes:
        parts.append("<h2>Changes</h2><ul>" + "".join(f"<li>{e(c)}</li>" for c in changes) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)


def load_baseline(text: str, name: str) -> dict[str | None, dict[str, dict[str, Any]]]:
    """target -> profile -> row of an earlier compat JSON report (a one-line error for anything
    else). A report of one target is keyed None too: it is the baseline of whatever target runs."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"not JSON: {exc.msg}", file=name, line=exc.lineno, column=exc.colno) from None
    items = data.get("targets") if isinstance(data, dict) and "targets" in data else [data]
    if not isinstance(items, list) or not items:
        raise BadInputError("not an sshsim compat JSON report (\"targets\" is not a list of tables)", file=name)
    out: dict[str | None, dict[str, dict[str, Any]]] = {}
    for item in items:
        if isinstance(item, dict) and "after" in item and "rows" not in item:
            item = item["after"]  # a --before/--after report: its "after" is the state to compare with
        rows = item.get("rows") if isinstance(item, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and isinstance(r.get("profile"), str)
                                                 for r in rows):
            raise BadInputError("not an sshsim compat JSON report (no \"rows\" with a \"profile\" each)", file=name)
        table = {r["profile"]: r for r in rows}
        target = item.get("target")
        out[target if isinstance(target, str) else None] = table
    if len(items) == 1:
        out[None] = next(iter(out.values()))
    return out


def changes(before: dict[str, dict[str, Any]], after: Table) -> list[str]:
    """Readable lines, one per change that matters (see the module's docstring)."""
    out: list[str] = []
    for row in after.rows:
        now = row.to_json()
        old = before.get(row.profile)
        if old is None:
            continue  # a profile the baseline did not run: nothing to compare
        if old.get("ok") and not now["ok"]:
            out.append(f"{row.profile}: connected before, now {row.verdict}: {row.evidence or 'no sshd line'}")
        elif not old.get("ok") and now["ok"]:
            out.append(f"{row.profile}: was {old.get('verdict', 'refused')}, now connects")
        for key in COMPARED[1:]:
            if old.get(key) != now[key]:
                out.append(f"{row.profile}: {key} {old.get(key) or '-'} -> {now[key] or '-'}")
        old_auth, new_auth = old.get("auth") or {}, now["auth"]
        if sorted(old_auth.get("offered") or []) != sorted(new_auth["offered"]):
            out.append(f"{row.profile}: auth offered {','.join(old_auth.get('offered') or []) or '-'} -> "
                       f"{','.join(new_auth['offered']) or '-'}")
        for method, result in new_auth["methods"].items():
            was = (old_auth.get("methods") or {}).get(method)
            if was is not None and was != result:
                out.append(f"{row.profile}: {method} {was} -> {result}")
    return out
