"""Facts stated once: sshd's log levels, the colour decision, the KEXINIT name-list parser.

Where a fact must also stand in a data file (the scenario schema is JSON, read by editors), the
test holds the copy to the one list.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulator.colour import use_colour
from simulator.kex.kexinit import MSG_KEXINIT, hassh, parse_kexinit
from simulator.loglevels import CONFIG_VALUES, LEVELS, MESSAGE_LEVELS
from simulator.scenario import scenario_schema

ROOT = Path(__file__).resolve().parents[1]


def test_scenario_schema_offers_exactly_sshds_log_levels() -> None:
    enum = scenario_schema()["$defs"]["server"]["properties"]["log_level"]["enum"]
    assert tuple(enum) == CONFIG_VALUES
    assert set(CONFIG_VALUES) - set(LEVELS) == {"DEBUG"} and "QUIET" not in MESSAGE_LEVELS


def test_the_catalogue_and_the_parser_use_the_one_list() -> None:
    from simulator.logs.catalogue import LEVELS as CATALOGUE_LEVELS
    from simulator.scenario.infer import LEVEL_ORDER

    assert CATALOGUE_LEVELS == MESSAGE_LEVELS + ("VARIES",)
    assert LEVEL_ORDER == ("INFO", "VERBOSE", "DEBUG1", "DEBUG2", "DEBUG3")


@pytest.mark.parametrize("choice, no_color, expected", [
    (True, "1", True),     # the flag wins over NO_COLOR
    (False, "", False),
    (None, "1", False),    # not a terminal here, and NO_COLOR set
    (None, "", False),     # pytest's captured streams are not terminals
])
def test_colour_decision(monkeypatch: pytest.MonkeyPatch, choice: bool | None, no_color: str, expected: bool) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    assert use_colour(choice) is expected
    assert use_colour(choice, err=True) is expected


def test_diff_colours_only_when_asked(tmp_path: Path) -> None:
    log = ROOT / "tests" / "data" / "local" / "sshd-9.2-info.log"
    run = [sys.executable, "-m", "simulator", "diff", str(log), str(log)]
    env = {"PYTHONPATH": str(ROOT), "NO_COLOR": "1", "PATH": "/usr/bin:/bin"}
    plain = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    forced = subprocess.run(run + ["--color"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert plain.returncode == forced.returncode == 0
    assert "\x1b[" not in plain.stdout and "\x1b[32m" in forced.stdout


def _kexinit(*lists: str, trailing: bytes = b"\x00" + b"\x00" * 4) -> bytes:
    body = b"".join(len(x).to_bytes(4, "big") + x.encode() for x in lists)
    return bytes((MSG_KEXINIT,)) + b"\x11" * 16 + body + trailing


def test_kexinit_lists_and_hassh() -> None:
    lists = parse_kexinit(_kexinit("curve25519-sha256,ext-info-c", "ssh-ed25519", "aes128-ctr", "aes256-ctr",
                                   "hmac-sha2-256", "hmac-sha1", "none", "none,zlib", "", ""))
    assert lists.kex == ["curve25519-sha256", "ext-info-c"] and lists.encryption_s2c == ["aes256-ctr"]
    assert lists.languages_c2s == [] and lists.compression_s2c == ["none", "zlib"]
    # HASSH is the client-to-server lists only: the s2c ones above do not enter it.
    assert hassh(lists.kex, lists.encryption_c2s, lists.mac_c2s, lists.compression_c2s) == \
        hassh(["curve25519-sha256", "ext-info-c"], ["aes128-ctr"], ["hmac-sha2-256"], ["none"])


@pytest.mark.parametrize("payload, message", [
    (b"", "not a KEXINIT packet"),
    (b"\x15" + b"\x00" * 60, "not a KEXINIT packet"),
    (bytes((MSG_KEXINIT,)) + b"\x00" * 16 + b"\x00\x00\x00\x09abc", "runs past the packet"),
    (bytes((MSG_KEXINIT,)) + b"\x00" * 16 + b"\x00\x00\x00\x00" * 3, "ends inside its name-lists"),
])
def test_malformed_kexinit_is_refused(payload: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_kexinit(payload)
