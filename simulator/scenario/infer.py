"""Infer a scenario from a real sshd log: the connections it shows, as clients sshsim can play.

What a log reveals becomes the scenario: the client banner picks a profile (an exact match, the
same client family, or asyncssh's defaults with the banner replaced); the negotiated algorithms,
strict KEX, ext-info and the first channel's id, window and packet size override the profile
where they differ; the auth attempts, channel requests and the way the connection ended become
the connection's steps; what was logged becomes the expectations. What a log cannot reveal (the
command of an exec, file names of SFTP, environment values) gets a neutral stand-in.

A log is written by whoever connects to the server: a client banner or a user name can be
`{{ cycler.__init__.__globals__.os.system(...) }}`, and scenario files are jinja2 templates.
So nothing copied from a log is ever run as template code:

- `infer` (`to_yaml`) escapes the scenario text it writes: every `{` that would open a jinja2
  tag (`{{`, `{%`, `{#`) is written as `{{ '{' }}`, so rendering the file gives back exactly the
  YAML that was dumped and each value arrives literally (`template_escape`). Values that the
  verifier would read as patterns ("~regex", "$capture", "*") become the regex that matches only
  themselves (`literal_field`).
- `replay` never renders at all: it builds the scenario from the inferred data directly
  (`simulator.scenario.loader.scenario_from_data`), with no jinja2 pass and no temporary file.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from typing import Any

import yaml

from simulator.loglevels import LEVELS, RANK
from simulator.logs import group_connections, parse_lines
from simulator.profiles import known_profiles, load_profile
from simulator.scenario.loader import scenario_schema

# Client family (banner prefix) -> profile to start from when no banner matches exactly.
FAMILIES: tuple[tuple[str, str], ...] = (
    ("MoTTY", "motty-0.80"),
    ("PuTTY", "putty-0.80"),
    ("WinSCP", "winscp-6.3"),
    ("SecureBlackbox", "secureblackbox"),
    ("paramiko_3", "paramiko-3.4"),
    ("paramiko", "paramiko-5.1"),
    ("Go", "go-x-crypto-ssh"),
    ("AsyncSSH", "asyncssh-2.24.1"),
)
DEFAULT_PROFILE = "asyncssh-2.24.1"
PASSWORD = "sshsim-password"
LEVEL_ORDER = LEVELS[RANK["INFO"]:]  # the levels a scenario may ask sshd for, least verbose first


def choose_profile(banner: str | None) -> str:
    """The profile whose client the banner names (exactly, by family, or by OpenSSH version)."""
    if not banner:
        return DEFAULT_PROFILE
    for name in sorted(known_profiles()):
        if load_profile(name).banner == banner:
            return name
    m = re.match(r"OpenSSH_(\d+)\.(\d+)", banner)
    if m:
        wanted = (int(m.group(1)), int(m.group(2)))
        versions = []
        for name in known_profiles():
            vm = re.match(r"openssh-(\d+)\.(\d+)", name)
            if vm:
                versions.append(((int(vm.group(1)), int(vm.group(2))), name))
        older = [v for v in versions if v[0] <= wanted]
        return max(older)[1] if older else min(versions)[1]
    for prefix, name in FAMILIES:
        if banner.startswith(prefix):
            return name
    return DEFAULT_PROFILE


_QUERY = {"kex": "kex", "host_key": "key", "encryption": "cipher", "mac": "mac", "compression": "compression"}


@cache
def openssh_names(kind: str) -> frozenset[str] | None:
    """What OpenSSH implements of one algorithm kind (`ssh -Q`), to predict its choice."""
    if kind == "compression":
        # sshd offers only delayed compression ("Compression yes" = none,zlib@openssh.com),
        # whatever the client library can do.
        return frozenset({"none", "zlib@openssh.com"})
    try:
        out = subprocess.run(["ssh", "-Q", _QUERY[kind]], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    names = frozenset(out.stdout.split())
    if kind == "host_key":
        names |= {"rsa-sha2-256", "rsa-sha2-512"}
    return names or None


def _front(kind: str, names: tuple[str, ...], chosen: str | None) -> list[str] | None:
    """The list with the negotiated name moved first, or None when OpenSSH would already
    choose it from the list as it is (its first name OpenSSH implements)."""
    if not chosen or chosen in ("<implicit>",):
        return None
    known = openssh_names(kind)
    first = next((n for n in names if known is None or n in known), None)
    if first == chosen:
        return None
    return [chosen] + [n for n in names if n != chosen]


def profile_for(conn: Any) -> str | dict[str, Any]:
    """A profile name, or an inline override of one, that reproduces what the log shows."""
    base_name = choose_profile(conn.client_version)
    base = load_profile(base_name)
    override: dict[str, Any] = {}
    if conn.client_version and conn.client_version != base.banner:
        override["banner"] = conn.client_version
    kex = list(base.kex)
    if conn.kex:
        kex = _front("kex", tuple(kex), conn.kex) or kex
    kex = [k for k in kex if k not in ("ext-info-c", "kex-strict-c-v00@openssh.com")]
    if conn.ext_info or (not conn.kex and base.ext_info):
        kex.append("ext-info-c")
    if conn.strict_kex or (not conn.kex and base.strict_kex):
        kex.append("kex-strict-c-v00@openssh.com")
    if kex != list(base.kex):
        override["kex"] = kex
    for key, attr, value in (("host_key", "host_key", conn.host_key),
                             ("encryption", "encryption", conn.cipher.get("client->server")),
                             ("mac", "mac", conn.mac.get("client->server")),
                             ("compression", "compression", conn.compression.get("client->server"))):
        moved = _front(key, getattr(base, attr), value)
        if moved is not None:
            override[key] = moved
    if conn.channels:
        first = conn.channels[0]
        channel = {}
        if first.rchan is not None and first.rchan != base.first_channel:
            channel["first_id"] = first.rchan
        if first.window is not None and first.window != base.window:
            channel["window"] = first.window
        if first.max_packet is not None and first.max_packet != base.max_packet:
            channel["max_packet"] = first.max_packet
        if channel:
            override["channel"] = channel
    if not override:
        return base_name
    return {"base": base_name, **override}


def auth_steps(conn: Any) -> tuple[list[Any], bool]:
    """Scenario auth steps from the (method, outcome) pairs; and whether a password is needed."""
    steps: list[Any] = []
    needs_password = False
    failures = 0
    for method, outcome in conn.auth:
        if method == "none":
            continue
        if method.startswith("publickey"):
            if "publickey" not in steps:
                steps.append("publickey")
        elif method == "password":
            if outcome == "accepted":
                steps.append({"password": PASSWORD})
                needs_password = True
            elif outcome == "failed":
                failures += 1
                steps.append({"password": f"wrong-{failures}"})
        elif method == "keyboard-interactive" and outcome == "accepted":
            steps.append({"keyboard-interactive": [PASSWORD]})
            needs_password = True
    return steps or ["publickey"], needs_password


def session_actions(conn: Any) -> list[dict[str, Any]]:
    actions = []
    sessions = list(conn.sessions)
    for channel in conn.channels:
        if channel.ctype != "session":
            continue
        requests = list(channel.requests)
        session: dict[str, Any] = {}
        if "x11-req" in requests:
            session["x11"] = True
        if "pty-req" in requests:
            session["pty"] = True
        if "auth-agent-req@openssh.com" in requests:
            session["agent"] = True
        if "env" in requests:
            session["env"] = {"LANG": "C.UTF-8"}
        started = sessions.pop(0) if sessions else ""
        if "subsystem" in requests:
            m = re.search(r"subsystem '([^']+)'", started)
            session["subsystem"] = m.group(1) if m else "sftp"
        elif "exec" in requests:
            session["exec"] = "true"  # the command is not in the log at these levels
        elif "shell" in requests:
            session["shell"] = True
            session["input"] = "exit\n"
        else:
            continue
        actions.append({"session": session})
    return actions


def expectations_for(conn: Any, events: list[Any]) -> dict[str, Any]:
    """The log's own key events of the connection, as an expectation."""
    wanted = ("connection.remote_version", "kex.algorithm", "kex.cipher", "auth.failed", "auth.accepted",
              "channel.open", "channel.request", "session.start")
    keep_fields = {
        "connection.remote_version": ("software",),
        "kex.algorithm": ("kex",),
        "kex.cipher": ("direction", "cipher", "mac", "compression"),
        "auth.failed": ("method", "user"),
        "auth.accepted": ("method", "user"),
        "channel.open": ("ctype", "rchan", "window", "max_packet"),
        "channel.request": ("request", "want_reply"),
        "session.start": (),
    }
    out = []
    for event in events:
        if event.event not in wanted:
            continue
        if event.event == "kex.cipher" and event.fields.get("direction") != "client->server":
            continue
        fields = {k: literal_field(event.fields[k]) for k in keep_fields[event.event]
                  if event.fields.get(k) is not None}
        out.append({"event": event.event, "fields": fields} if fields else event.event)
    expectation: dict[str, Any] = {"events": out}
    if conn.outcome in ("accepted", "failed"):
        expectation["outcome"] = {"auth": conn.outcome}
    return expectation


def infer_scenario(lines: list[str], name: str = "inferred") -> dict[str, Any]:
    """A scenario (as data, ready for YAML) that replays the connections of a log."""
    events = list(parse_lines(lines))
    conns = [c for c in group_connections(events) if c.kind == "connection" and c.client_version]
    by_conn: dict[int, list[Any]] = {}
    for event in events:
        if event.conn is not None:  # looked up by connection id only
            by_conn.setdefault(event.conn, []).append(event)
    levels = {e.level for e in events if e.level}
    level = max((lv for lv in levels if lv in LEVEL_ORDER), key=LEVEL_ORDER.index, default="INFO")
    host = next((e.host for e in events if e.host), "localhost")
    if not _schema_pattern("server", "properties", "host_name").fullmatch(host):
        host = "localhost"
    user_name = _schema_pattern("user", "properties", "name")
    users: dict[str, bool] = {}
    connections = []
    expect = {}
    first_ts = None
    for index, conn in enumerate(conns, 1):
        family = (conn.client_version or "client").split("_")[0]
        conn_id = f"c{index}-" + re.sub(r"[^A-Za-z0-9]+", "-", family).strip("-").lower()
        steps, needs_password = auth_steps(conn)
        user = conn.user or "user"
        accepted = conn.outcome == "accepted"
        if (accepted or any(m == "password" for m, _ in conn.auth)) and user_name.fullmatch(user):
            # (A name the server could not have as an account, "admin{{x}}", stays the client's
            # login name only.)
            users[user] = users.get(user, False) or needs_password
        plan: dict[str, Any] = {"id": conn_id, "profile": profile_for(conn), "user": user, "auth": steps}
        start = _seconds(conn.start)
        if start is not None:
            first_ts = start if first_ts is None else first_ts
            if start - first_ts > 0:
                plan["start"] = round(start - first_ts, 3)
        actions = session_actions(conn) if accepted else []
        if actions:
            plan["actions"] = actions
        end_event = conn.end or ""
        if end_event.startswith("disconnect.received"):
            plan["end"] = "disconnect"
        elif end_event:
            plan["end"] = "drop"
        connections.append(plan)
        expect[conn_id] = expectations_for(conn, by_conn.get(conn.id, []))
    _infer_interleaving(conns, connections, by_conn)
    server: dict[str, Any] = {"log_level": level, "host_name": host,
                              "users": [{"name": u, "uid": 1000 + i, **({"password": PASSWORD} if pw else {})}
                                        for i, (u, pw) in enumerate(sorted(users.items()))] or [{"name": "user"}]}
    return {"name": name, "description": f"inferred from a log of {len(conns)} connection(s)",
            "server": server, "connections": connections, "expect": expect}


def _infer_interleaving(conns: list[Any], plans: list[dict[str, Any]], by_conn: dict[int, list[Any]]) -> None:
    """Recreate "B connected while A was still authenticating" (the seed log's "pipe 8 sock 9").

    If B's first line falls between A's "Postponed publickey" and A's acceptance, B starts once
    A is postponed and A holds its signed request until B is connected.
    """
    for j, b in enumerate(conns):
        for i, a in enumerate(conns[:j]):
            a_events = by_conn.get(a.id, [])
            postponed = next((e.line for e in a_events if e.event == "auth.postponed"), None)
            accepted = next((e.line for e in a_events if e.event == "auth.accepted"), None)
            if postponed is None or accepted is None or not (postponed < b.first_line < accepted):
                continue
            plans[j]["after"] = {"connection": plans[i]["id"], "event": "auth.postponed"}
            plans[j].pop("start", None)
            if not any(p.get("before") == "signed-publickey" for p in plans[i].get("pause", [])):
                plans[i].setdefault("pause", []).append(
                    {"before": "signed-publickey", "until": {"connection": plans[j]["id"], "event": "connection.from"}})
            break


def _seconds(ts: str | None) -> float | None:
    if not ts:
        return None
    m = re.search(r"(\d\d):(\d\d):(\d\d(?:\.\d+)?)", ts)
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def to_yaml(scenario: dict[str, Any], source: str, *, escape: bool = True) -> str:
    """The scenario as a file `sshsim run` reads: escaped for jinja2 (see the module docstring),
    unless `escape` is false (text never rendered, for positions)."""
    header = (f"# Inferred by `sshsim infer` from {' '.join(source.split())}.\n"
              "# Stand-ins for what a log does not show: exec commands ('true'), shell input ('exit'),\n"
              f"# passwords ({PASSWORD!r}), environment values. Edit freely.\n")
    text = header + yaml.safe_dump(scenario, sort_keys=False, width=110, allow_unicode=True)
    return template_escape(text) if escape else text


_TAG_OPENING = re.compile(r"\{(?=[{%#])")


def template_escape(text: str) -> str:
    """Text that jinja2 renders back to itself: each `{` opening a tag becomes `{{ '{' }}`.

    Only `{{`, `{%` and `{#` open tags (no line statements are configured), and the replacement
    cannot open one itself: its own `{{` is the expression that prints the brace.
    """
    return _TAG_OPENING.sub("{{ '{' }}", text)


def literal_field(value: Any) -> Any:
    """An expected field value that matches exactly `value`: the verifier reads "*", "~regex" and
    "$name" as patterns (simulator/verify/verifier.py, value_matches), so such a value copied
    from a log becomes the regex matching only itself."""
    if isinstance(value, str) and (value == "*" or value.startswith(("~", "$"))):
        return "~" + re.escape(value)
    return value


def _schema_pattern(*path: str) -> re.Pattern[str]:
    """A `pattern` of the scenario schema (the one place it is stated)."""
    node: Any = scenario_schema()["$defs"]
    for key in path:
        node = node[key]
    return re.compile(node["pattern"])
