"""External corpora: the real sshd logs Debian's fail2ban package ships (many OpenSSH versions)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from simulator.logs import group_connections, parse_file


def _fail2ban_logs() -> Path | None:
    """The test logs of the installed fail2ban package.

    Debian installs fail2ban for the system Python (/usr/lib/python3/dist-packages), which a
    virtualenv or another interpreter does not see; so look there too.
    """
    places: list[Path] = []
    spec = importlib.util.find_spec("fail2ban")
    if spec is not None and spec.submodule_search_locations:
        places.extend(Path(p) for p in spec.submodule_search_locations)
    for pattern in ("/usr/lib/python3/dist-packages/fail2ban", "/usr/lib/python3*/site-packages/fail2ban",
                    "/usr/local/lib/python3*/dist-packages/fail2ban"):
        places.extend(Path("/").glob(pattern.lstrip("/")))
    for place in places:
        logs = place / "tests" / "files" / "logs"
        if (logs / "sshd").is_file():
            return logs
    return None


LOGS = _fail2ban_logs()
pytestmark = pytest.mark.skipif(
    LOGS is None, reason="fail2ban is not installed (apt-get install fail2ban): its sshd test logs are the corpus"
)


@pytest.mark.parametrize("name", ["sshd", "sshd-journal"])
def test_at_least_99_percent_of_sshd_lines_are_known(name: str) -> None:
    events = list(parse_file(LOGS / name))
    sshd = [e for e in events if e.program is not None and e.program.startswith("sshd")]
    assert len(sshd) > 100, "the corpus should hold well over a hundred sshd lines"
    unknown = [e.raw for e in sshd if not e.known]
    share = 1 - len(unknown) / len(sshd)
    assert share >= 0.99, f"{len(unknown)} unknown of {len(sshd)}: {unknown[:10]}"


def test_comment_lines_are_kept_as_unparsed() -> None:
    events = list(parse_file(LOGS / "sshd"))
    comments = [e for e in events if e.raw.startswith("#")]
    assert comments and all(e.event == "unparsed" and e.conn is None for e in comments)


def test_formats_of_the_corpus_lines() -> None:
    events = list(parse_file(LOGS / "sshd"))
    formats = {e.format for e in events if e.program}
    assert {"syslog", "iso", "rfc5424"} <= formats
    solaris = [e for e in events if e.extra and e.extra.get("msgid") == "800047"]
    assert solaris and all(e.event == "auth.failed" and e.extra["facility"] == "auth" for e in solaris)
    journal = list(parse_file(LOGS / "sshd-journal"))
    assert {e.format for e in journal if e.program} == {"no-timestamp"}
    kernel = [e for e in journal if e.extra and "kernel_ts" in e.extra]
    assert len(kernel) == 3 and all(e.event == "auth.failed" for e in kernel)


def test_auth_outcome_fields_from_many_versions() -> None:
    events = {e.raw: e for e in parse_file(LOGS / "sshd") if e.program}
    ev = next(e for raw, e in events.items() if "Failed password for invalid user ROOT from 194.117.26.69" in raw)
    assert ev.event == "auth.failed"
    assert ev.fields["user"] == "ROOT" and ev.fields["invalid"] == "invalid user"
    assert ev.fields["addr"] == "194.117.26.69" and ev.fields["port"] == 50273
    ev = next(e for raw, e in events.items() if "Received disconnect from 198.51.100.76 port 58846:11: Bye Bye" in raw)
    assert ev.event == "disconnect.received" and ev.fields["code"] == 11 and ev.relay == "preauth"
    ev = next(e for raw, e in events.items() if "Unable to negotiate with 192.0.2.1 port 55419" in raw)
    assert ev.event == "kex.unable_to_negotiate" and ev.fields["what"] == "cipher"


def test_info_logs_group_by_pid() -> None:
    conns = group_connections(parse_file(LOGS / "sshd"))
    assert len(conns) > 50
    assert all(c.kind in ("connection", "dropped", "listener") for c in conns)
