"""Infer a scenario from a real sshd log: the connections it shows, as clients sshsim can play.

What a log reveals becomes the scenario: the client banner picks a profile (an exact match, the
same client family, or asyncssh's defaults with the banner replaced); the negotiated algorithms,
strict KEX, ext-info and the first channel's id, window and packet size override the profile
where they differ; the auth attempts, channel requests and the way the connection ended become
the connection's steps; what was logged becomes the expectations. At DEBUG2 sshd prints the
client's KEXINIT lists, which the profile then takes as sent. What a log cannot reveal (the
command of an exec below DEBUG3, file names of SFTP, environment values) gets a neutral stand-in.

The server is inferred too, from what its lines state and nothing more (`server_config`): the
host key algorithms it offered, a key type PubkeyAcceptedAlgorithms refused, the authorized_keys
files it read, PAM, X11 and forwarding refusals, AuthenticationMethods, a configuration dumped by
`sshd -ddd`; the host key types it had become `server.host_keys` (`host_key_kinds`), its listen
addresses a comment (sshsim owns those keywords). The user's key type, the signature algorithm
and whether the server refused the key become the publickey step (`publickey_step`).
The OpenSSH version it states picks the target (`choose_openssh`): the system's sshd when it is
that release, an upstream build of it, else the nearest; the reason is a comment of the file.
Every input format the parser reads works, `sshd -d`/`-e` output too (one merged stream, one
connection a `Connection from`); a log with no client connection is an error naming the log.

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
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml

from simulator.errors import BadInputError, SshsimError
from simulator.loglevels import LEVELS, RANK
from simulator.logs import group_connections, parse_lines
from simulator.profiles import known_profiles, load_profile
from simulator.scenario.loader import scenario_schema
from simulator.target.accounts import RESERVED_NAMES
from simulator.target.base import KEY_SIG_ALGS

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


_ALGORITHM_NAME = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,64}")  # an SSH algorithm name (RFC 4251 section 6)
_PROPOSAL_KEYS = {"KEX algorithms": "kex", "host key algorithms": "host_key", "ciphers ctos": "encryption",
                  "MACs ctos": "mac", "compression ctos": "compression"}


def client_proposal(events: list[Any]) -> dict[str, list[str]]:
    """The client's KEXINIT lists as sshd prints them at DEBUG2 ("peer client KEXINIT proposal"),
    by profile key; empty below DEBUG2."""
    out: dict[str, list[str]] = {}
    inside = False
    for event in events:
        if event.event == "kex.kex_choose_conf.peer_kexinit_proposal":
            inside = not out
        elif inside and event.event == "kex.proposal":
            key = _PROPOSAL_KEYS.get(str(event.fields.get("what")))
            if key is not None:
                names = str(event.fields.get("list") or "").split(",")
                if names and " " in names[-1]:
                    # syslog cuts a long line (sshd's message buffer): the last name is partial
                    names = names[:-1]
                out[key] = [n for n in names if _ALGORITHM_NAME.fullmatch(n)]
        elif inside and event.event.startswith("kex.kex_buf2prop"):
            inside = False
    return out


def profile_for(conn: Any, events: list[Any] | None = None) -> str | dict[str, Any]:
    """A profile name, or an inline override of one, that reproduces what the log shows."""
    base_name = choose_profile(conn.client_version)
    base = load_profile(base_name)
    override: dict[str, Any] = {}
    if conn.client_version and conn.client_version != base.banner:
        override["banner"] = conn.client_version
    proposal = client_proposal(events or [])
    if proposal:
        # DEBUG2 shows the client's lists as sent: taken whole, nothing to predict.
        for key, names in proposal.items():
            if names and names != list(getattr(base, key)):
                override[key] = names
        return _with_auth_and_channel(conn, base, base_name, override)
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
    return _with_auth_and_channel(conn, base, base_name, override)


def _with_auth_and_channel(conn: Any, base: Any, base_name: str, override: dict[str, Any]) -> str | dict[str, Any]:
    """`override` with the signed publickey method and the first channel's numbers the log shows."""
    signed = signed_method(conn)
    if signed is not None and signed != (base.signed_method or "publickey"):
        override["auth"] = {"signed_method": signed}
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


def auth_steps(conn: Any, publickey: Any = "publickey") -> tuple[list[Any], bool]:
    """Scenario auth steps from the (method, outcome) pairs, `publickey` standing for the
    publickey attempt; and whether a password is needed."""
    steps: list[Any] = []
    needs_password = False
    failures = 0
    for method, outcome in conn.auth:
        if method == "none":
            continue
        if method.startswith("publickey"):
            if not any(s is publickey for s in steps):
                steps.append(publickey)
        elif method == "password":
            if outcome == "accepted":
                steps.append({"password": PASSWORD})
                needs_password = True
            elif outcome == "failed":
                failures += 1
                steps.append({"password": f"wrong-{failures}"})
        elif method.startswith("keyboard-interactive") and outcome == "accepted":
            steps.append({"keyboard-interactive": [PASSWORD]})
            needs_password = True
        elif method.startswith("keyboard-interactive") and outcome == "failed":
            failures += 1
            steps.append({"keyboard-interactive": [f"wrong-{failures}"]})
    return steps or ["publickey"], needs_password


def unlogged_failures(conn: Any, events: list[Any], steps: list[Any]) -> list[Any]:
    """`steps` with the failed attempts only PAM logged put first: at INFO a wrong password or
    keyboard-interactive answer leaves "PAM: Authentication failure for USER from ADDR" and no
    "Failed ..." line. They are taken as attempts of the method that got in (else password)."""
    pam_failures = sum(1 for e in events if e.event == "pam.auth_failure")
    logged = sum(1 for m, o in conn.auth if o == "failed" and m.startswith(("password", "keyboard-interactive")))
    extra = pam_failures - logged
    if extra <= 0:
        return steps
    kbd = any(isinstance(s, dict) and "keyboard-interactive" in s for s in steps)
    added = [{"keyboard-interactive": [f"wrong-pam-{i}"]} if kbd else {"password": f"wrong-pam-{i}"}
             for i in range(1, extra + 1)]
    return added + steps


def signed_method(conn: Any) -> str | None:
    """The method name of the client's signed publickey request, when the log shows one:
    `publickey-hostbound-v00@openssh.com` (OpenSSH 8.9+ against a server offering it) or plain
    `publickey` after a postponed query; None when the log does not tell."""
    methods = [m for m, _ in conn.auth]
    if any(m.startswith("publickey-hostbound") for m in methods):
        return "publickey-hostbound-v00@openssh.com"
    if methods.count("publickey") >= 2 and any(o == "accepted" for m, o in conn.auth if m == "publickey"):
        # query then signed request, both plain publickey: a client without hostbound support
        return "publickey" if conn.ext_info else None
    return None


def session_actions(conn: Any, events: list[Any] | None = None) -> list[dict[str, Any]]:
    """The connection's sessions and forwardings, in the order its channels were opened."""
    actions: list[dict[str, Any]] = []
    sessions = list(conn.sessions)
    # DEBUG3: "mm_audit_run_command entering command CMD" names each exec's command (the
    # monitor's audit hook); without it the command is not in the log and 'true' stands in.
    commands = [e.fields.get("command") for e in events or () if e.event == _RUN_COMMAND]
    forwards = [e for e in events or () if e.event == "channel.direct_tcpip"]
    # A refused forward: "server_input_channel_open: failure direct-tcpip" (DEBUG1), "refused
    # local port forward" (INFO, a refusal by configuration); one refusal may log both.
    refused_forwards = max(
        sum(1 for e in events or () if e.event == "channel.open_failure" and e.fields.get("ctype") == "direct-tcpip"),
        sum(1 for e in events or () if e.event.startswith("session.server_request_direct_tcpip.refused")))
    for channel in conn.channels:
        if channel.ctype == "direct-tcpip":
            fwd = forwards.pop(0) if forwards else None
            port = fwd.fields.get("target_port") if fwd is not None else None
            host = fwd.fields.get("host") if fwd is not None else None
            loopback = isinstance(host, str) and _LOOPBACK.fullmatch(host) is not None
            spec: dict[str, Any] = {"host": host if loopback else "127.0.0.1",
                                    "port": port if isinstance(port, int) and 0 < port < 65536 else 9}
            if refused_forwards:
                refused_forwards -= 1
                spec["expect_refused"] = True
            actions.append({"forward": spec})
            continue
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
            command = commands.pop(0) if commands else None
            session["exec"] = command if isinstance(command, str) and command else "true"
        elif "shell" in requests:
            session["shell"] = True
            session["input"] = "exit\n"
        else:
            continue
        actions.append({"session": session})
    if not any(c.ctype == "direct-tcpip" for c in conn.channels):
        # INFO: no channel lines, but "refused local port forward: ..., target H port P"
        for event in events or ():
            if event.event.startswith("session.server_request_direct_tcpip.refused"):
                host, port = event.fields.get("target"), event.fields.get("target_port")
                loopback = isinstance(host, str) and _LOOPBACK.fullmatch(host) is not None
                actions.append({"forward": {"host": host if loopback else "127.0.0.1",
                                            "port": port if isinstance(port, int) and 0 < port < 65536 else 9,
                                            "expect_refused": True}})
    if not any(c.ctype == "session" for c in conn.channels):
        # VERBOSE and INFO: no channel lines, but "Starting session: shell on pts/0 ..." says
        # what each session was
        for started in sessions:
            actions.append({"session": _session_from_start(started, commands)})
    return actions


def _session_from_start(started: str, commands: list[Any]) -> dict[str, Any]:
    """A session from its "Starting session" kind: "shell on pts/0", "command", "subsystem 'sftp'"."""
    m = re.search(r"subsystem '([^']+)'", started)
    if m:
        return {"subsystem": m.group(1)}
    session: dict[str, Any] = {"pty": True} if " on " in started else {}
    if started.startswith("shell"):
        session.update({"shell": True, "input": "exit\n"})
    else:
        command = commands.pop(0) if commands else None
        session["exec"] = command if isinstance(command, str) and command else "true"
    return session


_RUN_COMMAND = "monitor.mm_audit_run_command.entering_command"
_LOOPBACK = re.compile(r"127\.[0-9.]+|localhost|::1")


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


_METHODS_LIST = re.compile(r"[a-z-]+(?::[a-z]+)?(?:,[a-z-]+(?::[a-z]+)?)*")
_AUTHLOG = frozenset({"auth.accepted", "auth.failed", "auth.postponed", "auth.partial"})


class NoConnectionFound(BadInputError):
    """The log shows no sshd connection to replay (the command names the log: `exc.file`)."""


@dataclass
class Inferred:
    """A scenario inferred from a log, and the notes that explain it (written as comments)."""

    scenario: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def infer_scenario(lines: list[str], name: str = "inferred") -> dict[str, Any]:
    """A scenario (as data, ready for YAML) that replays the connections of a log."""
    return infer(lines, name).scenario


def infer(lines: list[str], name: str = "inferred") -> Inferred:
    """The scenario that replays a log's connections, with notes on what was inferred and why.

    Raises NoConnectionFound when the log has no client connection (no client banner at DEBUG1,
    no authentication line at INFO)."""
    events = list(parse_lines(lines))
    grouped = group_connections(events)
    by_conn: dict[int, list[Any]] = {}
    for event in events:
        if event.conn is not None:  # looked up by connection id only
            by_conn.setdefault(event.conn, []).append(event)
    # A client: its banner (DEBUG1), an authentication line (INFO), or at least sshd's
    # "Connection from" (VERBOSE; a client that sent nothing, or a log that ends there)
    conns = [c for c in grouped if c.kind == "connection" and (
        c.client_version or c.auth or any(e.event == "connection.from" for e in by_conn.get(c.id, ())))]
    if not conns:
        formats = sorted({e.format for e in events if e.format and e.format != "none"})
        counted = sum(1 for line in lines if line.strip())
        raise NoConnectionFound(f"no sshd connection found ({counted} line{'s' if counted != 1 else ''}; formats seen: "
                                f"{', '.join(formats) or 'none'})")
    levels = {e.level for e in events if e.level}
    level = max((lv for lv in levels if lv in LEVEL_ORDER), key=LEVEL_ORDER.index, default="INFO")
    host = next((e.host for e in events if e.host), "localhost")
    if not _schema_pattern("server", "properties", "host_name").fullmatch(host):
        host = "localhost"
    user_name = _schema_pattern("user", "properties", "name")
    users: dict[str, bool] = {}
    # names sshd said have no account ("Invalid user X from ...", "Failed password for invalid user X")
    invalid = {str(e.fields.get("user")) for e in events
               if e.event == "auth.invalid_user" or (e.event in _AUTHLOG and e.fields.get("invalid"))}
    # uids the log shows ("session opened for user X(uid=N)"), kept where the schema allows them
    uids = {str(e.fields.get("user")): e.fields.get("uid") for e in events if e.event == "pam.session_opened"}
    reserved: set[str] = set()  # system accounts the private sshd keeps (root is the host's root)
    connections = []
    expect = {}
    clock = _Clock()
    for index, conn in enumerate(conns, 1):
        family = (conn.client_version or "client").split("_")[0]
        conn_id = f"c{index}-" + re.sub(r"[^A-Za-z0-9]+", "-", family).strip("-").lower()
        steps, needs_password = auth_steps(conn, publickey_step(conn, by_conn.get(conn.id, [])))
        steps = unlogged_failures(conn, by_conn.get(conn.id, []), steps)
        user = conn.user or "user"
        accepted = conn.outcome == "accepted"
        if user in RESERVED_NAMES and (accepted or any(m == "password" for m, _ in conn.auth)):
            reserved.add(user)
        if (accepted or any(m == "password" for m, _ in conn.auth)) and user_name.fullmatch(user) \
                and user not in invalid and user not in RESERVED_NAMES:
            # (A name the server could not have as an account, "admin{{x}}", stays the client's
            # login name only.)
            users[user] = users.get(user, False) or needs_password
        if not (conn.client_version or conn.auth):
            # sshd saw the TCP connection and no SSH from it: a client that sends nothing
            hold = round(max(0.0, min(conn.duration or 0.0, 5.0)), 3)
            plan_raw: dict[str, Any] = {"id": conn_id, "profile": DEFAULT_PROFILE,
                                        "raw": {"send_banner": False, "hold": hold}}
            offset = clock.start_of(conn)
            if offset:
                plan_raw["start"] = offset
            connections.append(plan_raw)
            expect[conn_id] = expectations_for(conn, by_conn.get(conn.id, []))
            continue
        plan: dict[str, Any] = {"id": conn_id, "profile": profile_for(conn, by_conn.get(conn.id, [])),
                                "user": user, "auth": steps}
        offset = clock.start_of(conn)
        if offset:
            plan["start"] = offset
        actions = session_actions(conn, by_conn.get(conn.id, [])) if accepted else []
        if accepted and not actions:
            # Logged in, did nothing the log shows (INFO), left later: stay as long as the log
            # says (bounded), at least long enough that sshd's post-login messages find the
            # client still there (else sshd logs "Broken pipe" in place of the disconnect).
            actions = [{"wait": round(max(0.2, min(conn.duration or 0.0, 2.0)), 3)}]
        if actions:
            plan["actions"] = actions
        end_event = conn.end or ""
        if end_event.startswith("disconnect.received"):
            plan["end"] = _disconnect(by_conn.get(conn.id, []))
        elif end_event or accepted:
            # an end sshd logged that is no client DISCONNECT, or none at all after a login (the
            # session closed, no "Received disconnect"): the client closed the TCP connection
            plan["end"] = "drop"
        connections.append(plan)
        expect[conn_id] = expectations_for(conn, by_conn.get(conn.id, []))
    _infer_interleaving(conns, connections, by_conn)
    notes: list[str] = []
    if clock.squeezed:
        notes.append(f"idle time between connections longer than {GAP_SECONDS:g} s is cut to {GAP_SECONDS:g} s "
                     f"({clock.squeezed} gap(s)): the replay keeps the order and the overlaps, not the hours")
    if reserved:
        notes.append("the log's logins as " + ", ".join(sorted(reserved)) + " have no account here (a system "
                     "account of the private sshd; root there is the host's root): those logins fail in the replay")
    server: dict[str, Any] = {"log_level": level, "host_name": host}
    version = server_version(events, conns)
    if version is None:
        # no version line (INFO, VERBOSE): the programs' names still bound it
        programs = {e.program for e in events}
        version = ("OpenSSH_10.0 or later (sshd-auth)" if "sshd-auth" in programs else
                   "OpenSSH_9.8 or later (sshd-session)" if "sshd-session" in programs else None)
    openssh, why = choose_openssh(version)
    if openssh is not None:
        server["openssh"] = openssh
    notes.append(why)
    config, config_notes = server_config(events, level)
    notes.extend(config_notes)
    if config:
        server["sshd_config"] = config
    kinds, kind_notes = host_key_kinds(events)
    notes.extend(kind_notes)
    if kinds:
        server["host_keys"] = kinds
    taken = {uid for uid in uids.values() if isinstance(uid, int)}
    free = (uid for uid in range(1000, 60001) if uid not in taken)

    def uid_of(name: str) -> int:
        uid = uids.get(name)
        return uid if isinstance(uid, int) and 1000 <= uid <= 60000 else next(free)

    server["users"] = [{"name": u, "uid": uid_of(u), **({"password": PASSWORD} if pw else {})}
                       for i, (u, pw) in enumerate(sorted(users.items()))] or [{"name": "user"}]
    scenario = {"name": name, "description": f"inferred from a log of {len(conns)} connection(s)",
                "server": server, "connections": connections, "expect": expect}
    return Inferred(scenario, notes)


def _disconnect(events: list[Any]) -> str | dict[str, Any]:
    """How the client said goodbye: the code and text of its SSH_MSG_DISCONNECT as the log shows
    them ("Received disconnect from A port P:11: disconnected by user"), else the profile's own."""
    for event in events:
        if event.event.startswith("disconnect.received"):
            code, text = event.fields.get("code"), event.fields.get("reason")
            if isinstance(code, int) and 0 <= code <= 0xFFFFFFFF and isinstance(text, str) and len(text) <= 1024:
                return {"disconnect": {"code": code, "text": text}}
    return "disconnect"


# The user key types a scenario can give a user (users[].key_type), by the names sshd logs.
_KEY_TYPES = {"ED25519": "ssh-ed25519", "ssh-ed25519": "ssh-ed25519", "RSA": "ssh-rsa", "ssh-rsa": "ssh-rsa",
              "rsa-sha2-256": "ssh-rsa", "rsa-sha2-512": "ssh-rsa", "ECDSA": "ecdsa-sha2-nistp256",
              "ecdsa-sha2-nistp256": "ecdsa-sha2-nistp256"}


def user_key_type(events: list[Any]) -> str | None:
    """The type of the key the client logged in with (or offered), as users[].key_type names it."""
    for event in events:
        if event.event in ("auth.pubkey_test", "auth.key_accepted", "auth.key_match"):
            found = _KEY_TYPES.get(str(event.fields.get("keytype") or event.fields.get("algorithm")))
            if found:
                return found
        if event.event in ("auth.accepted", "auth.partial", "auth.postponed", "auth.failed") and \
                str(event.fields.get("method") or "").startswith("publickey"):
            info = str(event.fields.get("info") or "").split()
            if info and info[0] in _KEY_TYPES:
                return _KEY_TYPES[info[0]]
    return None


# users[].key_type names -> the publickey step's `key`.
_KEY_KINDS = {"ssh-ed25519": "ed25519", "ecdsa-sha2-nistp256": "ecdsa", "ssh-rsa": "rsa"}


def publickey_step(conn: Any, events: list[Any]) -> Any:
    """The connection's publickey step: `publickey` for an authorized ed25519 key, else
    {publickey: {key, algorithm, authorized}} with the key's type (the Accepted/Failed/Postponed
    line's, or DEBUG's pkblob), the signature algorithm of an RSA key (DEBUG's `pkalg`; the other
    types have one) and authorized: false when sshd refused every publickey attempt."""
    kind = _KEY_KINDS.get(user_key_type(events) or "", "ed25519")
    algorithm = None
    for event in events:
        if event.event in ("auth.pubkey_test", "auth.pubkey_signature"):
            alg = str(event.fields.get("algorithm") or "")
            if kind == "rsa" and alg in KEY_SIG_ALGS["rsa"]:
                algorithm = alg
    outcomes = [o for m, o in conn.auth if m.startswith("publickey")]
    refused = "failed" in outcomes and not any(o in ("accepted", "partial", "postponed") for o in outcomes)
    if kind == "ed25519" and algorithm is None and not refused:
        return "publickey"
    return {"publickey": {"key": kind, **({"algorithm": algorithm} if algorithm else {}),
                          **({"authorized": False} if refused else {})}}


# Host key algorithm names (private host key lines, list_hostkey_types) -> server.host_keys types.
_HOST_KEY_KINDS = {"ssh-rsa": "rsa", "rsa-sha2-256": "rsa", "rsa-sha2-512": "rsa",
                   "ecdsa-sha2-nistp256": "ecdsa", "ssh-ed25519": "ed25519"}


def host_key_kinds(events: list[Any]) -> tuple[list[str], list[str]]:
    """server.host_keys from the log, and notes: the types of sshd's "private host key #N" lines
    (DEBUG1, at start-up), else those its list_hostkey_types offered (DEBUG1, per connection);
    a type sshsim cannot make (DSA, ECDSA-384/521, sk-) is a note."""
    loaded: list[str] = []
    offered: list[str] = []
    for event in events:
        if event.event == "connection.main.host_key":
            name = str(event.fields.get("keytype") or event.fields.get("pubkey") or "")
            if name and name not in loaded:
                loaded.append(name)
        elif event.event == "kex.host_key_types" and not offered:
            offered = [a for a in str(event.fields.get("types") or "").split(",") if a]
    names = loaded or offered
    kinds: list[str] = []
    others: list[str] = []
    for name in names:
        kind = _HOST_KEY_KINDS.get(name)
        if kind is None:
            if not name.endswith("-cert-v01@openssh.com") and _ALGORITHM_NAME.fullmatch(name) and name not in others:
                others.append(name)
        elif kind not in kinds:
            kinds.append(kind)
    notes = [f"the log's server also had host keys {', '.join(others)}: sshsim makes only ed25519, ecdsa "
             "(nistp256) and rsa keys"] if others and kinds else []
    return kinds, notes


_VERSION = re.compile(r"OpenSSH_(\d+)\.(\d+)(?:p(\d+))?")


def server_version(events: list[Any], conns: list[Any]) -> str | None:
    """The server's own OpenSSH version string as the log states it: its banner ("Local version
    string"), else `sshd version` of a debug start-up."""
    for conn in conns:
        if conn.server_version and _VERSION.search(conn.server_version):
            return str(conn.server_version).removeprefix("SSH-2.0-")
    for event in events:
        if event.event == "connection.main.sshd_version":
            return str(event.fields.get("ssh_version") or "") or None
    return None


def _release(text: str) -> tuple[int, int, int] | None:
    m = _VERSION.search(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)) if m else None


def choose_openssh(version: str | None) -> tuple[str | None, str]:
    """`server.openssh` for a log whose server states `version`: the system's sshd when it is that
    release, else an upstream build of it, else the nearest of the built ones and the system's.
    Returns (the key's value or None for the system's sshd, the reason, for a comment)."""
    # imported here: start-up cost: the version table and the sshd probe only when inferring
    from simulator.builds.cache import installed_sshd
    from simulator.builds.versions import known_versions

    system = _system_version()
    system_release = _release(system) if system else None
    built = {v: r for v in known_versions() if (r := _release("OpenSSH_" + v)) and installed_sshd(v) is not None}
    wanted = _release(version) if version else None
    if wanted is None:
        return None, ("the log does not state the server's OpenSSH version: the target is the system's sshd"
                      + (f" ({system})" if system else ""))
    if version and " or later" in version:
        # only a lower bound: the oldest release here that meets it
        later = sorted([(r, v) for v, r in built.items() if r >= wanted]
                       + ([(system_release, None)] if system_release and system_release >= wanted else []),
                       key=lambda c: (c[0], c[1] is not None))
        if not later:
            return None, f"the log's server is {version}; no such build here: the system's sshd ({system})"
        release, pick = later[0]
        return pick, (f"the log's server is {version}: the oldest such release here, "
                      + (f"server.openssh: {pick}" if pick else f"the system's sshd ({system})"))
    if system_release == wanted:
        return None, f"the log's server is {version}: the system's sshd is that release ({system})"
    exact = next((v for v, r in built.items() if r == wanted), None)
    if exact is not None:
        return exact, f"the log's server is {version}: an upstream build of that release (server.openssh: {exact})"
    # The system's sshd first: of two as near, the distribution's package (patched as most
    # logs' servers are) beats an upstream build of the same release.
    candidates: list[tuple[tuple[int, int, int], str | None]] = [(system_release, None)] if system_release else []
    candidates += [(r, v) for v, r in built.items()]
    if not candidates:
        return None, f"the log's server is {version}; no build of it here: the system's sshd"

    def distance(release: tuple[int, int, int]) -> tuple[int, int]:
        # releases apart (a minor number runs 0-9: 8.9 is followed by 9.0); a tie goes to the newer
        return (abs((release[0] * 10 + release[1]) - (wanted[0] * 10 + wanted[1])), -release[0] * 10 - release[1])

    release, pick = min(candidates, key=lambda c: distance(c[0]))
    label = f"{release[0]}.{release[1]}p{release[2]}"
    if pick is None:
        return None, (f"the log's server is {version}; no build of it here: the nearest is the system's sshd "
                      f"({system}); `sshsim build-sshd` a release to run it")
    return pick, (f"the log's server is {version}; no build of it here: the nearest built release is "
                  f"{label} (server.openssh: {pick}); `sshsim build-sshd` a release to run it")


@cache
def _system_version() -> str | None:
    """The system sshd's version (the local target's default), None when there is none."""
    # imported here: start-up cost: the target package only to name the system's sshd
    from simulator.target.local import find_sshd, sshd_version

    try:
        return sshd_version(find_sshd())
    except (OSError, SshsimError, subprocess.SubprocessError):  # no system sshd to name
        return None


# sshd_config keywords the scenario may set from what the log shows; the rest of a dumped
# configuration (DEBUG3 "FILE:N setting KEY VALUE") is sshsim's or the machine's own.
_CONFIG_KEYS = {k.lower(): k for k in (
    "HostKeyAlgorithms", "PubkeyAcceptedAlgorithms", "PubkeyAcceptedKeyTypes", "AuthorizedKeysFile", "UsePAM",
    "X11Forwarding", "PasswordAuthentication", "KbdInteractiveAuthentication", "PubkeyAuthentication",
    "AuthenticationMethods", "AllowTcpForwarding", "PermitTTY", "MaxAuthTries", "Ciphers", "MACs",
    "KexAlgorithms", "AllowAgentForwarding", "PermitUserEnvironment", "Compression")}
# Keywords sshsim writes itself (Port, ListenAddress, HostKey, PidFile, LogLevel, ...): noted only.
_OWNED_KEYS = {"port", "listenaddress", "hostkey", "pidfile", "loglevel", "syslogfacility", "subsystem",
               "permitrootlogin", "maxstartups"}

def server_config(events: list[Any], level: str) -> tuple[list[str], list[str]]:
    """sshd_config lines for what the log shows of its server, and notes on the rest.

    Only what a line states: a dumped configuration (DEBUG3 with -d), the host key algorithms
    the server offered (list_hostkey_types), a key type refused by PubkeyAcceptedAlgorithms, the
    authorized_keys files tried, PAM's lines (or their absence at DEBUG1 and above), X11 refused.
    """
    lines: dict[str, str] = {}
    notes: list[str] = []
    listening: list[str] = []
    dumped: dict[str, str] = {}
    keys_files: list[str] = []
    pam = False
    auth_seen = False
    refused_algs: list[str] = []
    pubkey_keyword = "PubkeyAcceptedAlgorithms"
    kbd_interactive = False
    method_lists: list[str] = []
    chains: dict[int, list[str]] = {}
    for event in events:
        name = event.event
        fields = event.fields
        if name == "listener.listening":
            where = f"{fields.get('laddr')} port {fields.get('lport')}"
            if where not in listening:
                listening.append(where)
        elif name == "kex.host_key_types" and "HostKeyAlgorithms" not in lines:
            offered = [a for a in str(fields.get("types") or "").split(",") if a]
            known = openssh_names("host_key")
            offered = [a for a in offered if known is None or a in known]
            if offered:
                lines["HostKeyAlgorithms"] = ",".join(offered)
        elif name == "config.process_server_config_line_depth.setting":
            key, value = str(fields.get("arg") or ""), str(fields.get("cp") or "")
            if key.lower() not in dumped:
                dumped[key.lower()] = f"{key} {value}"
        elif name == "auth.key_file":
            path = str(fields.get("path") or "")
            if path and path not in keys_files:
                keys_files.append(path)
        elif name.startswith("pam.") and event.program and event.program.startswith("sshd"):
            pam = True
        elif name == "auth.request":
            auth_seen = True
        elif name == "auth.auth2_setup_methods_lists.authentication_methods_list":
            listed = str(fields.get("i") or "")
            if _METHODS_LIST.fullmatch(listed) and listed not in method_lists:
                method_lists.append(listed)
        elif name in ("auth.partial", "auth.accepted") and isinstance(event.conn, int):
            chain = chains.setdefault(event.conn, [])
            method = str(fields.get("method") or "")
            if _METHODS_LIST.fullmatch(method) and (not chain or chain[-1] != "."):
                chain.append(method if name == "auth.partial" else method + ".")
        if name in ("auth.postponed", "auth.failed", "auth.accepted", "auth.partial") and \
                str(fields.get("method") or "").startswith("keyboard-interactive"):
            kbd_interactive = True
        elif name == "session.session_setup_x11fwd.x11_forwarding_disabled":
            lines.setdefault("X11Forwarding", "no")
        elif name.startswith("session.server_request_direct_tcpip.refused"):
            # sshd refuses a local forward by configuration (or an authorized_keys option)
            lines.setdefault("AllowTcpForwarding", "no")
        elif name.startswith(("auth.userauth_pubkey.key_type_not", "auth.userauth_pubkey.signature_algorithm_not")):
            alg = fields.get("keytype") or fields.get("pkalg")
            if isinstance(alg, str) and _ALGORITHM_NAME.fullmatch(alg) and alg not in refused_algs:
                refused_algs.append(alg)
            if "PubkeyAcceptedKeyTypes" in (event.message or ""):  # its name before OpenSSH 8.5
                pubkey_keyword = "PubkeyAcceptedKeyTypes"
    if listening:
        notes.append("the log's server listened on " + ", ".join(listening)
                     + "; sshsim owns Port and ListenAddress (loopback, a free port)")
    for key, line in dumped.items():
        if key in _CONFIG_KEYS:
            keyword = _CONFIG_KEYS[key]
            lines.setdefault(keyword, line.split(" ", 1)[1] if " " in line else "")
        elif key in _OWNED_KEYS:
            notes.append(f"the log's configuration says `{line}`: sshsim owns that keyword")
    if refused_algs and not {"PubkeyAcceptedAlgorithms", "PubkeyAcceptedKeyTypes"} & set(lines):
        lines[pubkey_keyword] = "-" + ",".join(refused_algs)
    if keys_files and "AuthorizedKeysFile" not in lines:
        relative = [_home_relative(p) for p in keys_files]
        if all(relative) and ".ssh/authorized_keys" in relative and relative != [".ssh/authorized_keys"]:
            lines["AuthorizedKeysFile"] = " ".join(r for r in relative if r)
        elif not all(relative):
            notes.append("the log's server read authorized keys from " + ", ".join(keys_files)
                         + "; the replay keeps them in the user's ~/.ssh/authorized_keys")
    if "AuthenticationMethods" not in lines:
        # sshd's lists at DEBUG1 ("authentication methods list 0: publickey,password"), else the
        # methods a login needed one after the other (Partial ..., then Accepted ...)
        multi = [",".join(m.rstrip(".") for m in chain) for chain in chains.values()
                 if len(chain) > 1 and chain[-1].endswith(".")]
        if method_lists:
            lines["AuthenticationMethods"] = " ".join(method_lists)
        elif multi:
            lines["AuthenticationMethods"] = " ".join(dict.fromkeys(multi))
    if kbd_interactive and "KbdInteractiveAuthentication" not in lines:
        lines["KbdInteractiveAuthentication"] = "yes"  # sshd went on with the method: it was on
    if "UsePAM" not in lines:
        if pam:
            lines["UsePAM"] = "yes"
        elif auth_seen and RANK.get(level, 0) >= RANK["DEBUG1"]:
            lines["UsePAM"] = "no"  # sshd logs "PAM: initializing" at DEBUG1 whenever PAM is on
    notes.append(f"LogLevel {level}: the most verbose level of the log's lines")
    return [f"{key} {value}" for key, value in lines.items()], notes


def _home_relative(path: str) -> str | None:
    """`/home/alice/.ssh/authorized_keys2` -> `.ssh/authorized_keys2`; None outside a home."""
    m = re.fullmatch(r"/(?:home/[^/]+|root)/(\.ssh/[^/\s]+)", path)
    return m.group(1) if m else None


GAP_SECONDS = 10.0  # the longest idle time between two connections' starts a replay keeps
# Apart by this much in the replay, connections whose starts the log gives in the same second
# (syslog's time stamps have no fraction): started at once, they would reach sshd in either order
# and the diff would pair each with the other's lines.
SAME_SECOND_STAGGER = 0.3


class _Clock:
    """Connections' start offsets from their time stamps, with idle gaps cut to GAP_SECONDS: a
    year of auth.log replays in minutes, in order, overlaps kept."""

    def __init__(self) -> None:
        self.last: float | None = None  # the previous start, as logged
        self.offset = 0.0  # its offset in the replay
        self.squeezed = 0

    def start_of(self, conn: Any) -> float:
        start = _seconds(conn.start)
        if start is None:
            return round(self.offset, 3)
        if self.last is not None:
            gap = start - self.last
            if gap < 0:
                gap += 86400 if gap < -43200 else 0  # past midnight; else out of order: at once
                gap = max(gap, 0.0)
            if gap > GAP_SECONDS:
                gap = GAP_SECONDS
                self.squeezed += 1
            if gap == 0 and start == int(start):
                gap = SAME_SECOND_STAGGER
            self.offset += gap
        self.last = start
        return round(self.offset, 3)


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


def to_yaml(scenario: dict[str, Any], source: str, *, escape: bool = True, notes: list[str] | None = None) -> str:
    """The scenario as a file `sshsim run` reads: escaped for jinja2 (see the module docstring),
    unless `escape` is false (text never rendered, for positions). `notes` become comments."""
    header = (f"# Inferred by `sshsim infer` from {' '.join(source.split())}.\n"
              "# Stand-ins for what a log does not show: exec commands ('true'), shell input ('exit'),\n"
              f"# passwords ({PASSWORD!r}), environment values. Edit freely.\n")
    for note in notes or ():
        header += "# " + " ".join(note.split()) + "\n"
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
