"""What a scenario or --override may put in the private sshd's config, and errors in its words.

sshd runs as root, so its config is checked before it starts:
- One line per override: a newline inside one would smuggle in lines no check saw.
- sshsim owns `Port` and `ListenAddress`: sshd adds up every such line (they do not replace
  ours), so a scenario's `Port 22` made the private sshd listen on the host's 127.0.0.1:22 and
  a `ListenAddress 0.0.0.0` on every interface. Such an override is written as a comment
  instead (`# sshsim owns: ...`) and a one-line notice names it (`owned_override_notice`); the
  sshd listens only on the loopback addresses and the free port sshsim chose. Every form sshd
  accepts is recognised (any case, `Keyword=value`). The launcher still checks sshd's own
  reading of the final config (`sshd -T`, simulator/target/nsinit.py): loopback only.
- No `Include`: it makes root sshd read any host file, and sshd quotes the lines it rejects
  (an `Include /etc/shadow` puts password hashes into the error).
- No root login: root inside the namespace is the host's root on the host's filesystem (an
  absolute `AuthorizedKeysFile` naming a scenario user's keys would let root in, and
  internal-sftp would then serve the whole disk). sshsim writes `PermitRootLogin no`, and any
  other value is refused. A failed root login logs as it does under Debian's default
  (`prohibit-password`): sshd refuses root passwords unless the value is `yes`.
- Commands that sshd runs for authentication (`AuthorizedKeysCommand`,
  `AuthorizedPrincipalsCommand`) run only as one of the scenario's own users, never as root or
  another system account.

sshd names lines of the generated file ("/tmp/sshsim-x/sshd_config line 3: ..."), which is gone
when the user reads the error: `config_error` maps such a line back to the override's origin
(scenario file:line, or the --override option).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from simulator.errors import BadInputError
from simulator.target.base import Origin, ServerSpec

REFUSED_KEYWORDS = {
    "include": "Include makes the root-run sshd read host files; write the lines themselves instead",
}
_SSHD_LINE = re.compile(r"^(?P<file>\S*sshd_config)(?::| ) ?line (?P<line>\d+): (?P<what>.*)$")


def origin_of(spec: ServerSpec, index: int) -> Origin:
    """Where override `index` came from (an unknown origin still names the key)."""
    if index < len(spec.override_origins):
        return spec.override_origins[index]
    return Origin(key="server.sshd_config")


def _error(message: str, origin: Origin) -> BadInputError:
    return BadInputError(message, file=origin.file, line=origin.line, column=origin.column,
                         key=origin.key if origin.key is not None else "server.sshd_config")


def split_line(line: str) -> tuple[str, list[str]]:
    """(keyword in lower case, arguments) as sshd reads a config line; ('', []) for a comment."""
    text = line.strip()
    if not text or text.startswith("#"):
        return "", []
    m = re.match(r"([^\s=]+)\s*=?\s*(.*)$", text)
    if m is None:
        return "", []
    keyword, rest = m.group(1), m.group(2)
    try:
        args = shlex.split(rest, comments=False, posix=True)
    except ValueError:
        args = rest.split()
    return keyword.lower(), args


COMMAND_USER_KEYWORDS = ("authorizedkeyscommanduser", "authorizedprincipalscommanduser")


def check_command_user(keyword: str, args: list[str], line: str, spec: ServerSpec, origin: Origin) -> None:
    """AuthorizedKeysCommandUser / AuthorizedPrincipalsCommandUser name one of the scenario's
    users (an override's line or a user's own sshd_config line alike)."""
    if keyword in COMMAND_USER_KEYWORDS:
        users = {u.name for u in spec.users}
        if len(args) != 1 or args[0] not in users:
            raise _error(f"'{line.strip()}': authentication commands run only as one of the scenario's "
                         f"users ({', '.join(sorted(users))}), never as root or a system account", origin)


def check_overrides(spec: ServerSpec) -> None:
    """Refuse, before anything starts, an override that is not one line, reads host files, or
    would make sshd listen beyond loopback (one-line BadInputError at the override's origin)."""
    for index, line in enumerate(spec.overrides):
        origin = origin_of(spec, index)
        if any(c in line for c in "\r\n\0"):
            raise _error("one sshd_config line per entry (this one holds a line break)", origin)
        keyword, args = split_line(line)
        if keyword in REFUSED_KEYWORDS:
            raise _error(REFUSED_KEYWORDS[keyword], origin)
        if keyword == "permitrootlogin" and [a.lower() for a in args] != ["no"]:
            raise _error(f"'{line.strip()}': root logins are never allowed (root in the private sshd's "
                         "namespace is the host's root); only 'PermitRootLogin no' may be set", origin)
        check_command_user(keyword, args, line, spec, origin)


# Where the private sshd listens is sshsim's alone (the module's docstring says why).
OWNED_KEYWORDS = ("port", "listenaddress")


def is_owned(line: str) -> bool:
    """Whether an override line sets what sshsim owns (it is then written as a comment)."""
    return split_line(line)[0] in OWNED_KEYWORDS


def placed(line: str) -> str:
    """An override as it is written into the config: as given, or commented when sshsim owns it."""
    return f"# sshsim owns: {line.strip()}" if is_owned(line) else line


def _shown(origin: Origin) -> str:
    if origin.file:
        return f"{origin.file} line {origin.line}" if origin.line else origin.file
    return origin.key or "server.sshd_config"


def owned_override_notice(spec: ServerSpec) -> str | None:
    """The one line saying which overrides set Port or ListenAddress and were replaced (None: none)."""
    replaced = [f"{_shown(origin_of(spec, i))} '{line.strip()}'" for i, line in enumerate(spec.overrides)
                if is_owned(line)]
    if not replaced:
        return None
    return ("sshsim: note: sshsim owns Port and ListenAddress (the private sshd listens only on loopback, "
            f"at a free port it chooses); replaced: {'; '.join(replaced)}")


def for_version(spec: ServerSpec, version: str) -> ServerSpec:
    """`spec` without the override lines whose `requires:` the sshd of `version` does not meet
    (a PerSourcePenalties line would stop a 9.2 sshd from starting): the rest keep their origins."""
    requires = spec.override_requires
    if not any(requires):
        return spec
    keep = [i for i in range(len(spec.overrides))
            if i >= len(requires) or requires[i] is None or requires[i].unmet(version) is None]
    return dataclasses.replace(
        spec,
        overrides=[spec.overrides[i] for i in keep],
        override_origins=[spec.override_origins[i] for i in keep if i < len(spec.override_origins)],
        override_requires=[],
    )


DEFAULT_MAX_STARTUPS = "200:30:400"  # many test connections at once must not be dropped


def max_startups(spec: ServerSpec) -> str:
    """The MaxStartups line's value: the scenario's own when it sets one. sshd keeps the LAST
    MaxStartups it reads (unlike most keywords), so ours must not follow a scenario's."""
    for line in spec.overrides:
        keyword, args = split_line(line)
        if keyword == "maxstartups" and args:
            return args[0]
    return DEFAULT_MAX_STARTUPS


def override_lines(config_text: str, spec: ServerSpec) -> dict[int, int]:
    """Line number in the rendered config (1-based) -> index of the override written there."""
    lines = config_text.split("\n")
    found: dict[int, int] = {}
    at = 0
    # Overrides before the first `Match` come first and the rest last (render_config): the
    # rendered order is the given order.
    for index in range(len(spec.overrides)):
        wanted = placed(spec.overrides[index])
        while at < len(lines) and lines[at] != wanted:
            at += 1
        if at == len(lines):
            break
        found[at + 1] = index
        at += 1
    return found


def config_error(message: str, config_text: str, spec: ServerSpec) -> BadInputError | None:
    """sshd's complaint about the generated config, at the override it is about (or None when
    it is about no override: then sshsim's own lines are at fault)."""
    by_line = override_lines(config_text, spec)
    for row in message.splitlines():
        m = _SSHD_LINE.match(row.strip())
        if m is None:
            continue
        index = by_line.get(int(m.group("line")))
        if index is not None:
            what = m.group("what").strip()
            return _error(f"sshd rejected the configuration line '{spec.overrides[index].strip()}': {what}",
                          origin_of(spec, index))
    return None


def generic_config_message(message: str) -> str:
    """sshd's complaint with the generated file's temp path replaced by what it is."""
    rows = [re.sub(r"\S*sshd_config(\.pre-9\.8)?:?", "the generated sshd_config", row.strip())
            for row in message.splitlines() if row.strip()]
    rows = [r for r in rows if "terminating," not in r] or rows
    return " | ".join(rows[:3])


@cache
def _template() -> jinja2.Template:
    """The sshd_config template, compiled once per process (a compile costs more than a render)."""
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                                        keep_trailing_newline=True)
    return env.from_string(resources.files("simulator.data").joinpath("sshd/sshd_config.j2").read_text())


# Where Debian's package (and so the Docker images) keeps sftp-server.
DEBIAN_SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def render_config(spec: ServerSpec, *, sftp_server: str = DEBIAN_SFTP_SERVER, **context: Any) -> str:
    """sshd_config from the data template: overrides first, Match blocks last.

    The overrides are checked first (check_overrides): one line each, no Include; the ones
    that set Port or ListenAddress are written as comments (sshsim owns them)."""
    check_overrides(spec)
    overrides: list[str] = []
    match_blocks: list[str] = []
    for line in spec.overrides:
        target = match_blocks if (match_blocks or line.strip().lower().startswith("match ")) else overrides
        target.append(placed(line))
    # The template is ours, but the override lines in it come from a scenario: sandboxed, as every
    # rendering that carries input (simulator/scenario/template.py).
    return _template().render(overrides=overrides, match_blocks=match_blocks, log_level=spec.log_level,
                              sftp_server=sftp_server, kbd_interactive=_kbd_interactive(overrides), **context)


def _kbd_interactive(overrides: list[str]) -> str:
    """What the overrides make of keyboard-interactive ("yes"/"no"; "no", Debian's default, when
    they say nothing). Before 8.7 sshd needs ChallengeResponseAuthentication to match it: that
    keyword, not KbdInteractiveAuthentication, enabled PAM's keyboard-interactive device."""
    for line in overrides:
        keyword, args = split_line(line)
        if keyword in ("kbdinteractiveauthentication", "challengeresponseauthentication") and args:
            return "yes" if args[0].lower() == "yes" else "no"
    return "no"
