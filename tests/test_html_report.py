"""The HTML report as a browser draws it: the reference scenario's timeline, screenshot in
headless Chromium, must show each connection's process lanes; log text must stay text.

Runs a real scenario against the real local sshd (no recorded report): the lanes come from
the parser's roles of a live log.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

from tests.conftest import ROOT, needs_local_sshd

SEED = ROOT / "scenarios" / "seed" / "motty-secureblackbox.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (sshsim setup --tests)")
WINDOW = (1400, 1000)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "simulator", "run", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)


def screenshot(html_file: Path, png: Path) -> None:
    """Chromium's own rendering of the file, offline (no network, no profile left behind)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run",
                        f"--user-data-dir={profile}", f"--screenshot={png}",
                        f"--window-size={WINDOW[0]},{WINDOW[1]}", html_file.as_uri()],
                       capture_output=True, timeout=120, check=True)


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows, bytes per pixel) of an 8-bit RGB/RGBA PNG: enough for a screenshot."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), (depth, colour)
            bpp = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def phase_bands(png: Path, phase_colours: list[str], x_from: int) -> list[tuple[int, int, int, int]]:
    """Runs of screenshot rows holding a phase colour right of `x_from`: (top, bottom, min x, max x)."""
    width, height, rows, bpp = decode_png(png.read_bytes())
    wanted = {bytes.fromhex(c.lstrip("#")) for c in phase_colours}
    bands: list[tuple[int, int, int, int]] = []
    current: list[int] | None = None
    for y, row in enumerate(rows):
        xs = [x for x in range(x_from, width) if row[x * bpp:x * bpp + 3] in wanted]
        if xs and current is None:
            current = [y, y, min(xs), max(xs)]
        elif xs:
            current[1], current[2], current[3] = y, min(current[2], min(xs)), max(current[3], max(xs))
        elif current is not None:
            bands.append(tuple(current))  # type: ignore[arg-type]
            current = None
    return bands


@needs_local_sshd
@needs_chromium
def test_reference_scenario_timeline_draws_both_connections_lanes(tmp_path: Path) -> None:
    from simulator.verify.timeline import LABEL_W, PHASE_COLOURS

    report = tmp_path / "report.html"
    out = _run(str(SEED), "--report", "html", str(report))
    assert out.returncode == 0, out.stdout + out.stderr
    text = report.read_text()
    # One file: nothing fetched from anywhere, no script.
    assert not re.search(r"<(script|link|img|iframe)\b", text, re.I)
    assert not re.search(r"(src|href)\s*=\s*['\"](https?:)?//", text, re.I)
    lanes = re.findall(r"<g class='lane' data-conn='(\d+)' data-role='(\w+)' data-y='(\d+)'", text)
    by_conn: dict[str, set[str]] = {}
    for conn, role, _ in lanes:
        by_conn.setdefault(conn, set()).add(role)
    assert len(by_conn) == 2, by_conn
    for roles in by_conn.values():
        assert {"listener", "monitor", "preauth", "user"} <= roles, roles
    assert "session" in set().union(*by_conn.values())  # MoTTY's shell runs in a session child
    assert text.count("class='expect ok'") >= 20 and "class='expect failed'" not in text
    assert "<title>" in text and "Accepted publickey for user" in text  # the raw line on hover

    png = tmp_path / "report.png"
    screenshot(report, png)
    # The page starts at x=16 (body margin); events are drawn right of the label column.
    bands = phase_bands(png, list(PHASE_COLOURS.values()), 16 + LABEL_W)
    # The lanes are the last bands (the legend is above them): as many as lanes, spaced as drawn.
    assert len(bands) >= len(lanes) + 1, (bands, lanes)
    drawn = bands[-len(lanes):]
    ys = [int(y) for _, _, y in lanes]
    for (top, *_), y in zip(drawn, ys):
        assert abs((top - drawn[0][0]) - (y - ys[0])) <= 2, (drawn, ys)
    # SecureBlackbox connects after MoTTY: its lanes start further right, on the same axis.
    first = [b for b, (conn, _, _) in zip(drawn, lanes) if conn == lanes[0][0]]
    second = [b for b, (conn, _, _) in zip(drawn, lanes) if conn != lanes[0][0]]
    assert min(b[2] for b in second) > min(b[2] for b in first)


@needs_local_sshd
def test_failing_scenario_first_with_untrusted_banner_as_text(tmp_path: Path) -> None:
    scenario = tmp_path / "banner.yaml"
    scenario.write_text(
        "name: untrusted-banner\n"
        "server:\n  users:\n    - {name: user, uid: 1000}\n"
        "connections:\n"
        "  - id: evil\n"
        "    profile: {base: openssh-9.6, banner: \"<script>alert(1)</script><b>x</b>\"}\n"
        "    user: user\n    auth: [publickey]\n"
        "    actions:\n      - session: {exec: \"true\"}\n"
        "expect:\n  evil:\n    events:\n"
        "      - {event: auth.accepted}\n"
        "      - {event: kex.algorithm, fields: {kex: no-such-kex}}\n")
    report = tmp_path / "report.html"
    out = _run(str(SEED), str(scenario), "--report", "html", str(report))
    assert out.returncode == 1, out.stdout + out.stderr
    text = report.read_text()
    assert "<script" not in text and "<b>x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in text
    # The failing scenario comes first, though it ran second, with its failure and failed mark.
    assert text.index("untrusted-banner") < text.index("motty-secureblackbox")
    assert "class='expect failed'" in text and "no-such-kex" in text
    assert re.search(r"class='expect ok' href='#[\w-]+'", text)
