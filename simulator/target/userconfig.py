"""A user's own sshd_config (`--sshd-config FILE`, `server.sshd_config_file:`), used as written.

Regression-testing a config means the server under test is exactly the user's: no sshsim
defaults are added (the scenario-override mode's template adds Debian's defaults and
`HostKeyAlgorithms +ssh-rsa`, which would let in clients the user's file locks out). Only the
lines sshsim must own are replaced, each listed in a one-line notice:

- `Port`, `ListenAddress`: ours (loopback, a free port): the sshd runs as root.
- `PidFile`: ours (readiness comes from it, docs/local-target.md).
- `HostKey`: always sshsim's own keys (kept between runs: simulator/target/hostkeys.py) of the
  same types as the file's `HostKey` lines (by the file name, `ssh_host_<type>_key`, else its
  `.pub`), or sshd's default set (rsa, ecdsa, ed25519) when it has none. The file's own keys
  are never read: they are a real host's secrets, and a file from another machine names keys
  that are not here. `HostCertificate` and `HostKeyAgent` go with them (they certify or hold
  those keys).
- `PermitRootLogin`: always `no`: root in the private sshd's namespace is the host's root
  (simulator/target/config.py).
- `Subsystem sftp PATH`: the path becomes the sftp-server of this machine, or of the upstream
  build that runs (its arguments stay;
  `internal-sftp` stays as it is), so a Red Hat path works on Debian.
- `LogLevel`: only when the command or scenario asks for a level (compat reads the negotiated
  algorithms from DEBUG1 lines); otherwise the file's own stays.
- `Include`: resolved by sshsim inside the file's folder only, never on the host. A file meant
  for /etc/ssh names `/etc/ssh/sshd_config.d/*.conf` (Debian's stock file does): that reads
  `sshd_config.d/*.conf` beside the user's file; a relative path too (sshd reads those
  relative to /etc/ssh). Any other absolute path, a `..`, or a link leaving the folder is
  refused at its file:line: sshd would read host files as root and quote them in errors.
  Included files get the same treatment and are handed to sshd as rewritten copies, so sshd
  itself applies its Include semantics (Match state, glob order).

Every replacement keeps the line count (a replaced line becomes a `# sshsim owns: ...`
comment and ours go in a header), so a complaint of `sshd -t` about generated line N maps back
to the user's file and line exactly.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import BadInputError
from simulator.limits import MAX_INCLUDE_DEPTH, MAX_INCLUDED_FILES, MAX_SOURCE_BYTES
from simulator.target.base import Origin, ServerSpec
from simulator.target.config import check_command_user, check_overrides, origin_of, placed, split_line

SFTP_SERVER_CANDIDATES = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                          "/usr/libexec/sftp-server", "/usr/lib/ssh/sftp-server")
# Lines sshsim replaces whatever they say (LogLevel only when a level is asked for).
OWNED = ("port", "listenaddress", "pidfile", "hostkey", "hostcertificate", "hostkeyagent", "permitrootlogin")
ETC_SSH = "/etc/ssh/"
HOST_KEY_TYPES = ("rsa", "ecdsa", "ed25519")  # sshd's default HostKey set, and what keys.py makes
_TYPE_IN_NAME = re.compile(r"(?:^|[_.-])(rsa|ecdsa|ed25519|dsa)(?:[_.-]|$)")
_SSHD_SAYS = re.compile(r"^(?P<file>/\S+?):? line (?P<line>\d+): (?P<what>.*)$")


@dataclass
class ConfigFile:
    """One file of the user's config: where it is, how to name it to the user, its lines."""

    path: Path
    shown: str
    lines: list[str]
    # Line number -> the copies (include file indexes) its Include line reads.
    includes: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class UserConfig:
    """The user's file and every file it includes (index 0 is the file itself)."""

    files: list[ConfigFile]
    root: Path

    @property
    def shown(self) -> str:
        return self.files[0].shown

    def keyword_lines(self, keyword: str) -> list[tuple[ConfigFile, int, list[str]]]:
        """(file, line number, arguments) of every line with `keyword`, in file order."""
        return [(f, n, args) for f in self.files for n, line in enumerate(f.lines, 1)
                for kw, args in [split_line(line)] if kw == keyword]

    def host_key_types(self) -> tuple[str, ...]:
        """The key types of the file's HostKey lines, in its order; sshd's default set without any."""
        types: list[str] = []
        for f, _, args in self.keyword_lines("hostkey"):
            if not args:
                continue
            kind = _key_type(args[0], f.path.parent)
            for k in ([kind] if kind else HOST_KEY_TYPES):
                if k in HOST_KEY_TYPES and k not in types:
                    types.append(k)
        return tuple(types) or HOST_KEY_TYPES


def _key_type(name: str, folder: Path) -> str | None:
    """rsa/ecdsa/ed25519/dsa from a HostKey file name, else from the first word of its .pub
    beside the user's file (never the host's: only the name is read from the user's line)."""
    m = _TYPE_IN_NAME.search(Path(name).name)
    if m:
        return m.group(1)
    pub = folder / (Path(name).name + ".pub")
    try:
        word = pub.read_text(errors="replace")[:200].split(None, 1)[0] if pub.is_file() else ""
    except (OSError, IndexError):
        return None
    return {"ssh-rsa": "rsa", "ssh-ed25519": "ed25519", "ssh-dss": "dsa"}.get(word) or (
        "ecdsa" if word.startswith("ecdsa-") else None)


def sftp_server() -> str | None:
    """The sftp-server binary of this machine (None: only internal-sftp works here)."""
    return next((p for p in SFTP_SERVER_CANDIDATES if os.access(p, os.X_OK)), None)


# -- reading ------------------------------------------------------------------------------------
def _read_bounded(path: Path, shown: str, origin: Origin | None) -> list[str]:
    """The lines of a regular file of at most MAX_SOURCE_BYTES, UTF-8, or a one-line error."""
    # Named in a scenario: the error is at the scenario's line and names the file; else at the file.
    if origin is not None and origin.file:
        where: dict = dict(file=origin.file, line=origin.line, column=origin.column, key=origin.key)
        named = f"sshd_config file {shown}"
    else:
        where, named = dict(file=shown), "sshd_config file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise BadInputError(f"{named} not found", **where) from None
    except OSError as exc:
        raise BadInputError(f"cannot read {named}: {exc.strerror}", **where) from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise BadInputError(f"{named} is not a regular file", **where)
        data = f.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise BadInputError(f"larger than {MAX_SOURCE_BYTES} bytes (MAX_SOURCE_BYTES, docs/limits.md); "
                            "no sshd_config is that long", file=shown)
    if b"\0" in data:
        line = data[:data.index(b"\0")].count(b"\n") + 1
        raise BadInputError("holds a NUL byte: not a text sshd_config", file=shown, line=line)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise BadInputError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", file=shown, line=line) from None
    return text.replace("\r\n", "\n").split("\n")


def _confined(root: Path, candidate: Path) -> Path | None:
    """`candidate` with links resolved, when it stays inside `root`; None when it leaves it."""
    real = candidate.resolve()
    return real if real == root or root in real.parents else None


def load_user_config(path: str | Path, *, base: Path | None = None, origin: Origin | None = None) -> UserConfig:
    """Read the user's sshd_config and what it includes.

    `base`: the scenario's folder when a scenario names the file; the path is then relative to
    it and must stay inside (no `..`, no link leaving it). On the command line the user named
    the file directly. Either way its includes stay inside the file's own folder."""
    shown = str(path)
    where: dict[str, Any] = {}
    if origin:
        where = dict(file=origin.file, line=origin.line, column=origin.column, key=origin.key)
    if base is not None:
        rel = Path(path)
        if rel.is_absolute() or ".." in rel.parts:
            raise BadInputError(f"{shown!r}: the sshd_config file must be inside the scenario's folder "
                                "(a relative path, no '..')", **where)
        root = base.resolve()
        candidate = root / rel
        shown = str(base / rel)
        if _confined(root, candidate) is None:
            raise BadInputError(f"{shown!r} leaves the scenario's folder through a link", **where)
        if candidate.is_symlink():
            candidate = candidate.resolve()
    else:
        candidate = Path(path)
        if candidate.is_symlink():
            candidate = candidate.resolve()
    main = ConfigFile(candidate, shown, _read_bounded(candidate, shown, origin))
    config = UserConfig([main], candidate.resolve().parent)
    _resolve_includes(config, 0, depth=0)
    return config


def _resolve_includes(config: UserConfig, index: int, depth: int) -> None:
    """Find the files each Include line of file `index` reads, inside the config's folder."""
    f = config.files[index]
    for number, line in enumerate(f.lines, 1):
        keyword, args = split_line(line)
        if keyword != "include":
            continue
        if depth >= MAX_INCLUDE_DEPTH:
            raise BadInputError(f"Include nested deeper than {MAX_INCLUDE_DEPTH} files (MAX_INCLUDE_DEPTH)",
                                file=f.shown, line=number)
        f.includes[number] = []
        for pattern in args:
            for found in _glob_inside(config.root, pattern, f.shown, number):
                if len(config.files) >= MAX_INCLUDED_FILES:
                    raise BadInputError(f"more than {MAX_INCLUDED_FILES} included files (MAX_INCLUDED_FILES)",
                                        file=f.shown, line=number)
                rel = found.relative_to(config.root)
                shown = str(Path(f.shown).parent / rel) if Path(f.shown).parent != Path(".") else str(rel)
                config.files.append(ConfigFile(found, shown, _read_bounded(found, shown, None)))
                f.includes[number].append(len(config.files) - 1)
                _resolve_includes(config, len(config.files) - 1, depth + 1)


def _glob_inside(root: Path, pattern: str, shown: str, number: int) -> list[Path]:
    """The files an Include pattern names, read inside `root` (see the module's docstring)."""
    if pattern.startswith(ETC_SSH):
        pattern = pattern[len(ETC_SSH):]
    elif pattern.startswith("/") or pattern.startswith("~"):
        raise BadInputError(f"Include {pattern}: only files beside the config (or under /etc/ssh/, read from "
                            "its folder) are included; sshd would read a host file as root", file=shown, line=number)
    if ".." in Path(pattern).parts:
        raise BadInputError(f"Include {pattern}: '..' would leave the config's folder", file=shown, line=number)
    found = []
    for name in sorted(glob.glob(glob.escape(str(root)) + "/" + pattern)):
        real = _confined(root, Path(name))
        if real is None:
            raise BadInputError(f"Include {pattern}: {name} is a link leaving the config's folder",
                                file=shown, line=number)
        if real.is_file():
            found.append(real)
    return found


# -- rendering ----------------------------------------------------------------------------------
@dataclass
class Rendered:
    """The config handed to sshd, its included copies, and how to name their lines to the user."""

    text: str
    includes: dict[str, str]  # file name in the include folder -> text
    # generated main line -> (file, line) in the user's words; include copies map 1:1.
    main_map: dict[int, tuple[str, int, str | None]]
    include_map: dict[str, str]  # copy name -> user's file as shown


def owned_line(keyword: str, log_level: str | None) -> bool:
    return keyword in OWNED or (keyword == "loglevel" and log_level is not None)


def render_user_config(config: UserConfig, *, header: list[str], log_level: str | None, include_dir: Path,
                       before: list[tuple[str, Origin]], after: list[tuple[str, Origin]],
                       sftp: str | None = None) -> Rendered:
    """The user's file with sshsim's `header` first, then the `before` overrides, the file with
    owned lines commented in place, then the `after` overrides (Match blocks). `sftp`: the
    sftp-server that goes with the sshd (an upstream build's own), else this machine's."""
    sftp = sftp or sftp_server()
    names = {i: f"{i:03d}-{f.path.name}" for i, f in enumerate(config.files) if i}

    def transform(f: ConfigFile) -> list[str]:
        out = []
        for number, line in enumerate(f.lines, 1):
            keyword, args = split_line(line)
            if owned_line(keyword, log_level):
                out.append(f"# sshsim owns: {line.strip()}")
            elif keyword == "include":
                copies = [str(include_dir / names[i]) for i in f.includes.get(number, [])]
                out.append(("Include " + " ".join(copies)) if copies else f"# sshsim: matched no files: {line.strip()}")
            elif keyword == "subsystem" and len(args) >= 2 and args[0] == "sftp" and args[1] != "internal-sftp" \
                    and sftp is not None:
                out.append(" ".join(["Subsystem", "sftp", sftp] + args[2:]))
            else:
                out.append(line)
        return out

    text_lines = list(header)
    main_map: dict[int, tuple[str, int, str | None]] = {}
    for line, origin in before:
        text_lines.append(line)
        main_map[len(text_lines)] = (origin.file or "", origin.line or 0, origin.key)
    main = config.files[0]
    offset = len(text_lines)
    for number, line in enumerate(transform(main), 1):
        text_lines.append(line)
        main_map[offset + number] = (main.shown, number, None)
    for line, origin in after:
        text_lines.append(line)
        main_map[len(text_lines)] = (origin.file or "", origin.line or 0, origin.key)
    includes = {names[i]: "\n".join(transform(f)) + "\n" for i, f in enumerate(config.files) if i}
    return Rendered("\n".join(text_lines) + "\n", includes, main_map,
                    {names[i]: f.shown for i, f in enumerate(config.files) if i})


def map_error(message: str, rendered: Rendered, config_path: str, include_dir: str,
              config: UserConfig) -> BadInputError | None:
    """sshd's complaint about the generated files, at the user's file and line (None: it is
    about none of the user's lines, so sshsim's own are at fault)."""
    for row in message.splitlines():
        m = _SSHD_SAYS.match(row.strip())
        if m is None:
            continue
        file, number, what = m.group("file"), int(m.group("line")), m.group("what").strip()
        what = what.replace(include_dir + "/", "")
        if file == config_path:
            shown, line, key = rendered.main_map.get(number, ("", 0, None))
            if not shown:
                continue
            if key:
                return BadInputError(f"sshd rejected this line: {what}", file=shown, line=line or None, key=key)
            text = config.files[0].lines[line - 1].strip()
            return BadInputError(f"sshd rejected '{text}': {what}", file=shown, line=line)
        name = Path(file).name
        if file.startswith(include_dir + "/") and name in rendered.include_map:
            shown = rendered.include_map[name]
            source = next(f for f in config.files if f.shown == shown)
            text = source.lines[number - 1].strip() if 0 < number <= len(source.lines) else ""
            return BadInputError(f"sshd rejected '{text}': {what}", file=shown, line=number)
    return None


def notice(config: UserConfig, log_level: str | None) -> str:
    """The one line that says which lines of the user's file sshsim replaced, and why."""
    parts = ["Port/ListenAddress (loopback only, a free port)", "PidFile",
             f"HostKey (sshsim's {', '.join(config.host_key_types())} keys; the file's own are never read)",
             "PermitRootLogin no (root here is the host's root)"]
    replaced = [f"{f.shown} line{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
                for f in config.files
                for numbers in [[n for n, line in enumerate(f.lines, 1) if owned_line(split_line(line)[0], log_level)]]
                if numbers]
    if log_level is not None:
        parts.append(f"LogLevel {log_level} (asked for)")
    sftp = sftp_server()
    moved = [args[1] for _, _, args in config.keyword_lines("subsystem")
             if len(args) >= 2 and args[0] == "sftp" and args[1] not in ("internal-sftp", sftp)]
    if moved and sftp:
        parts.append(f"Subsystem sftp {moved[0]} -> {sftp}")
    included = [f.shown for f in config.files[1:]]
    if config.keyword_lines("include"):
        folder = Path(config.shown).parent
        parts.append(f"Include read inside {folder if str(folder) != '.' else 'its folder'} only "
                     f"({len(included)} file{'s' if len(included) != 1 else ''})")
    where = f" (replaced: {'; '.join(replaced)})" if replaced else ""
    return (f"sshsim: note: {config.shown} is used as written except the lines sshsim owns: "
            f"{'; '.join(parts)}{where}")


def check_user_config(config: UserConfig, spec: ServerSpec) -> None:
    """The rules of simulator/target/config.py that replacing cannot satisfy: commands sshd
    runs for authentication run only as one of the scenario's users."""
    for f in config.files:
        for number, line in enumerate(f.lines, 1):
            keyword, args = split_line(line)
            check_command_user(keyword, args, line, spec, Origin(file=f.shown, line=number, key=""))


def build(spec: ServerSpec, *, port: int, listen: tuple[str, ...], host_keys: list[str], pid_file: str,
          include_dir: Path, sftp: str | None = None) -> Rendered:
    """The whole config for the user's file in `spec`: sshsim's header (what it owns), the
    scenario's overrides (checked like any override: config.check_overrides), the file."""
    config: UserConfig = spec.config_file
    check_overrides(spec)
    check_user_config(config, spec)
    log_level = spec.log_level if spec.own_log_level else None
    header = ["# sshsim: the lines sshsim owns; the file's own are commented out below (sshsim's notice lists them)",
              f"Port {port}", *[f"ListenAddress {a}" for a in listen], f"PidFile {pid_file}",
              *[f"HostKey {k}" for k in host_keys], "PermitRootLogin no"]
    if log_level is not None:
        header.append(f"LogLevel {log_level}")
    before: list[tuple[str, Origin]] = []
    after: list[tuple[str, Origin]] = []
    for index, line in enumerate(spec.overrides):
        # Match blocks run to the end of the file: an override's goes after the user's file.
        target = after if (after or line.strip().lower().startswith("match ")) else before
        # An override's Port or ListenAddress is commented as the file's own are (config.placed).
        target.append((placed(line), origin_of(spec, index)))
    return render_user_config(config, header=header, log_level=log_level, include_dir=include_dir,
                              before=before, after=after, sftp=sftp)
