"""Logs of the local sshd (OpenSSH 9.2p1, Debian 12) at INFO, VERBOSE, DEBUG1 and DEBUG3.

Two kinds of test: the captured fixtures under tests/data/local (made by
tests/data/capture_local_logs.py, real lines only), and a live capture through the local target
fixture when this machine can run it (root, mount namespaces, openssh-server).
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from simulator.logs import group_connections, normalise_event, parse_file, parse_lines
from tests.conftest import needs_local_sshd

DATA = Path(__file__).resolve().parent / "data"
LEVELS = ("info", "verbose", "debug1", "debug3")


def _load_capture_module():
    spec = importlib.util.spec_from_file_location("capture_local_logs", DATA / "capture_local_logs.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("level", LEVELS)
def test_captured_fixture_has_no_unknown_sshd_line(level: str) -> None:
    events = list(parse_file(DATA / "local" / f"sshd-9.2-{level}.log"))
    sshd = [e for e in events if e.program == "sshd"]
    assert sshd
    assert [e.raw for e in sshd if not e.known] == []
    if level.startswith("debug"):
        wanted = "DEBUG1" if level == "debug1" else "DEBUG3"
        assert any(e.level == wanted for e in sshd)


@pytest.mark.parametrize("level", LEVELS)
def test_captured_fixture_groups_into_twelve_connections(level: str) -> None:
    conns = group_connections(parse_file(DATA / "local" / f"sshd-9.2-{level}.log"))
    clients = [c for c in conns if c.kind == "connection"]
    assert len(clients) == 12
    assert [c.kind for c in conns].count("listener") == 1
    outcomes = [c.outcome for c in clients]
    assert outcomes.count("accepted") == 6
    # every connection knows its client port, and ports are distinct
    assert len({c.port for c in clients}) == 12
    accepted = [c for c in clients if c.outcome == "accepted"]
    assert all("user" in c.pids for c in accepted), [c.pids for c in accepted]
    ends = {c.end for c in clients}
    assert {"disconnect.received", "kex.unable_to_negotiate", "auth.too_many_failures"} <= ends


def test_debug_levels_tell_the_session_child_and_pam_child() -> None:
    conns = group_connections(parse_file(DATA / "local" / "sshd-9.2-debug1.log"))
    shell = next(c for c in conns if any(s.startswith("shell") for s in c.sessions))
    assert "session" in shell.pids
    kbd = [c for c in conns if any(m.startswith("keyboard-interactive") for m, _ in c.auth)]
    assert kbd and all("pam" in c.pids for c in kbd)


def test_new_wording_normalises_to_the_reference_log_form(seed_log_path: Path) -> None:
    local_events = list(parse_file(DATA / "local" / "sshd-9.2-debug1.log"))
    seed_events = list(parse_file(seed_log_path))
    group_connections(local_events)
    group_connections(seed_events)
    local = [e for e in local_events if e.event == "channel.new"]
    seed = [e for e in seed_events if e.event == "channel.new"]
    assert "inactive timeout" in local[0].message and "inactive timeout" not in seed[0].message
    assert normalise_event(local[0]) == normalise_event(seed[0]) == "sshd user DEBUG1: channel 0: new [server-session]"


@needs_local_sshd
@pytest.mark.sshd
@pytest.mark.parametrize("level", ["INFO", "VERBOSE", "DEBUG1", "DEBUG3"])
def test_live_local_sshd_logs_no_unknown_line(local_sshd_factory, level: str) -> None:
    capture = _load_capture_module()
    server = local_sshd_factory(capture.server_spec(level))
    asyncio.run(capture.behaviours(server, quick=True))
    server.wait_idle()
    lines = [r.classic(server.spec.host_name) for r in server.log.records]
    events = list(parse_lines(lines))
    sshd = [e for e in events if e.program is not None and e.program.startswith("sshd")]
    assert len(sshd) > 10
    assert [e.raw for e in sshd if not e.known] == []
    conns = [c for c in group_connections(parse_lines(lines)) if c.kind == "connection"]
    assert len(conns) == 10  # 7 logins/attempts + 3 raw sockets
