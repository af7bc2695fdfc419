"""`sshsim parse LOG`: the three views and one-line errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from simulator.cli import main
from simulator.commands.parse import parse

REQUIRED = {"line", "ts", "host", "program", "pid", "level", "event", "fields", "conn", "role", "raw"}


def test_jsonl_one_object_per_line_in_order(seed_log_path: Path) -> None:
    result = CliRunner().invoke(parse, [str(seed_log_path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 180
    assert [r["line"] for r in rows] == list(range(1, 181))
    assert all(REQUIRED <= r.keys() for r in rows)
    first = rows[0]
    assert first["event"] == "listener.forked_child" and first["role"] == "listener" and first["pid"] == 6682
    assert first["ts"] == "--01-29T11:23:02" and first["fields"] == {"pid": 10348}
    assert rows[79]["program"] == "systemd-logind" and rows[79]["event"] == "other" and rows[79]["conn"] is None


def test_summary_shows_what_a_person_wants(seed_log_path: Path) -> None:
    result = CliRunner().invoke(parse, [str(seed_log_path), "--format", "summary"])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("MoTTY_Release_0.80", "SecureBlackbox", "sntrup761x25519-sha512@openssh.com",
                 "diffie-hellman-group-exchange-sha256", "hmac-sha1", "zlib@openssh.com",
                 "publickey (accepted)", "x11-req, pty-req, shell", "subsystem 'sftp'",
                 "10.199.34.74:53688", "2 connections"):
        assert text in out, text


def test_table_view(seed_log_path: Path) -> None:
    result = CliRunner().invoke(parse, [str(seed_log_path), "--format", "table"])
    assert result.exit_code == 0
    assert "auth.accepted" in result.output and "listener.forked_child" in result.output


def test_stdin_and_gzip(seed_log_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(parse, ["-", "--format", "jsonl"], input=seed_log_path.read_bytes())
    assert result.exit_code == 0 and len(result.output.splitlines()) == 180
    gz = tmp_path / "auth.log.gz"
    gz.write_bytes(gzip.compress(seed_log_path.read_bytes()))
    result = runner.invoke(parse, [str(gz)])
    assert result.exit_code == 0 and len(result.output.splitlines()) == 180


def test_input_format_override(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_text("3488 11:30:03:638 Accepted password for sftp from 127.0.0.1 port 62063 ssh2\n")
    result = CliRunner().invoke(parse, [str(log), "--input-format", "windows"])
    row = json.loads(result.output)
    assert row["format"] == "windows" and row["event"] == "auth.accepted" and row["pid"] == 3488


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2 and one line, as every other command that reads a log (it was exit 1)."""
    for path, what in ((tmp_path / "missing.log", "log file not found"), (tmp_path, "is a directory")):
        with pytest.raises(SystemExit) as done:
            main(["parse", str(path)])
        err = capsys.readouterr().err
        assert done.value.code == 2
        assert err == f"sshsim: error: {path}: {what}" + (", not a log file" if path == tmp_path else "") + "\n"


def test_table_and_summary_show_control_characters_escaped(tmp_path: Path) -> None:
    """A log is untrusted: an ESC or a carriage return in a line must not reach the terminal as
    it is (it would move the cursor or recolour the screen); it is shown as an escape."""
    log = tmp_path / "auth.log"
    log.write_text(
        "Jan 29 11:23:02 h sshd[1001]: Connection from 10.0.0.1 port 1024 on 10.0.0.2 port 22 rdomain \"\"\n"
        "Jan 29 11:23:03 h sshd[1001]: Invalid user ev\x1b[2Jil\x07 from 10.0.0.1 port 1024\n"
        "Jan 29 11:23:03 h sshd[1001]: Received disconnect from 10.0.0.1 port 1024:11: bye\rfake [preauth]\n",
        encoding="utf-8")
    for view in ("table", "summary"):
        result = CliRunner().invoke(parse, [str(log), "--format", view, "--no-color"])
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output and "\r" not in result.output
    table = CliRunner().invoke(parse, [str(log), "--format", "table"]).output
    assert "Invalid user ev\\x1b[2Jil\\x07 from 10.0.0.1 port 1024" in table
    summary = CliRunner().invoke(parse, [str(log), "--format", "summary"]).output
    assert "bye\\x0dfake" in summary


def test_table_and_summary_colour_follows_the_one_decision(seed_log_path: Path) -> None:
    """--color/--no-color (simulator/colour.py) decide for parse's views as for every command:
    coloured with --color, plain with --no-color, plain when not a terminal by default."""
    runner = CliRunner()
    for view in ("table", "summary"):
        coloured = runner.invoke(parse, [str(seed_log_path), "--format", view, "--color"]).output
        plain = runner.invoke(parse, [str(seed_log_path), "--format", view, "--no-color"]).output
        default = runner.invoke(parse, [str(seed_log_path), "--format", view]).output
        assert "\x1b[" in coloured and "\x1b[" not in plain and default == plain
        assert click.unstyle(coloured) == plain
