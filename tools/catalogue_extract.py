"""Regenerate simulator/data/events/source/*.yaml from openssh-portable's git history (dev tool).

    python tools/catalogue_extract.py GIT_DIR [--since 5.0] [--out DIR]
    python tools/catalogue_extract.py --patches 9.2=DEBIAN_DIR [--patches 10.0=...] --name debian \
        --package "openssh 1:9.2p1-2+deb12u10, 1:10.0p1-7+deb13u4"

GIT_DIR is a clone (bare or not) of openssh-portable with its release tags (V_5_0_P1 ...).
For every release tag from --since on, every log call (logit, verbose, debug, debug2, debug3,
error, fatal, logdie, sigdie, do_log2, their _f/_r/_fr variants, packet_disconnect and its
successors, auth_debug_add) in the files linked into the server (each tag's Makefile.in:
LIBSSH_OBJS, LIBOPENSSH_OBJS, SSHDOBJS, SSHD_SESSION_OBJS, SSHD_AUTH_OBJS, less the files only
the client tools use, plus openbsd-compat's port-*/bsd-* files) becomes one entry: its format
string turned into a template (printf conversions -> typed fields, __func__ and literal
arguments inlined, the _f function prefix and _r error suffix added as log.c does, and
packet_disconnect's "Disconnecting ...: " prefix as that tag's packet.c writes it), its level,
the versions whose source has it, and its file:function.

With --patches, the log calls a distribution's patch set adds (the "+" lines of each patch in a
debian/patches-style folder, in the server's files) become `source/<name>.yaml`, the versions
being the upstream versions of the packages whose patch set has the message; messages upstream
also writes (already in the upstream files) are left out.

Only format strings are taken from the source, as facts about what sshd writes; no code is
copied. Hand-written entries in simulator/data/events/<topic>.yaml are not touched (they win
when the catalogue loads).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "simulator" / "data" / "events" / "source"

# Files of the Makefile's object lists that only the client tools link (ssh, scp, sftp,
# ssh-agent, ssh-keygen, ...): their messages never appear in a server's log.
CLIENT_ONLY = {
    "ssh.c", "readconf.c", "clientloop.c", "sshtty.c", "sshconnect.c", "sshconnect1.c", "sshconnect2.c",
    "mux.c", "ssh-agent.c", "ssh-add.c", "ssh-keygen.c", "ssh-keyscan.c", "ssh-keysign.c", "scp.c",
    "sftp.c", "sftp-client.c", "sftp-glob.c", "progressmeter.c", "ssh-pkcs11-helper.c", "ssh-sk-helper.c",
    "sk-usbhid.c", "moduli.c", "ssh-pkcs11.c", "readpass.c", "logintest.c", "sftp-server-main.c",
    "ssh-sk.c", "dns.c", "ssh_api.c", "krl.c", "sshsig.c", "authfd.c", "misc-agent.c",
    "ssh-pkcs11-client.c", "ssh-sk-client.c", "kexgexc.c", "sftp-usergroup.c", "scard.c",
    "scard-opensc.c", "roaming_client.c", "ssh-rand-helper.c", "kexdhc.c", "kexecdhc.c",
    "kexc25519c.c", "kexgssc.c", "ssh-pkcs11-uri.c",
}
# Files in the object lists whose code is compiled out of every portable build: J-PAKE
# (5.2-6.6) sits under #ifdef JPAKE, which configure never defines.
NEVER_BUILT = {"jpake.c", "schnorr.c", "auth2-jpake.c"}
OBJ_LISTS = ("LIBSSH_OBJS", "LIBOPENSSH_OBJS", "SSHDOBJS", "SSHD_SESSION_OBJS", "SSHD_AUTH_OBJS")

CALL = re.compile(
    r"\b(logit|verbose|debug|debug2|debug3|error|fatal|logdie|sigdie|do_log2|cleanup_exit_log|"
    r"packet_disconnect|ssh_packet_disconnect|sshpkt_disconnect|sshpkt_fatal_log|auth_debug_add)"
    r"(_f|_r|_fr)?\s*\("
)
LEVELS = {
    "logit": "INFO", "verbose": "VERBOSE", "debug": "DEBUG1", "debug2": "DEBUG2", "debug3": "DEBUG3",
    "error": "ERROR", "fatal": "FATAL", "logdie": "ERROR", "sigdie": "FATAL", "packet_disconnect": "INFO",
    "ssh_packet_disconnect": "INFO", "sshpkt_disconnect": "INFO", "auth_debug_add": "DEBUG1",
}
DISCONNECTS = ("packet_disconnect", "ssh_packet_disconnect", "sshpkt_disconnect")
MACROS = {"PRIu64": "llu", "PRId64": "lld", "PRIx64": "llx", "PRIu32": "u", "PRIx32": "x", "PRIu8": "u",
          "PRIi64": "lld", "SSH_FP_DIGEST": None}
CONV = re.compile(r"%(?:%|[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?:hh|h|ll|l|z|j|t|q|L)?([diouxXcspfegEG]))")
FIELD_TYPES = {"d": "int", "i": "int", "u": "uint", "o": "uint", "x": "hex", "X": "hex", "c": "char",
               "p": "word", "f": "float", "e": "float", "g": "float", "E": "float", "G": "float"}


class Repo:
    """Read-only access to the git directory: tags, trees and blobs (one cat-file process)."""

    def __init__(self, git_dir: str) -> None:
        self.git_dir = git_dir
        self._cat = subprocess.Popen(["git", "--git-dir", git_dir, "cat-file", "--batch"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def run(self, *args: str) -> str:
        done = subprocess.run(["git", "--git-dir", self.git_dir, *args], capture_output=True, text=True,
                              errors="replace")
        return done.stdout

    def blob(self, sha: str) -> str:
        assert self._cat.stdin is not None and self._cat.stdout is not None
        self._cat.stdin.write(sha.encode() + b"\n")
        self._cat.stdin.flush()
        head = self._cat.stdout.readline().split()
        if len(head) < 3 or head[1] == b"missing":
            return ""
        data = self._cat.stdout.read(int(head[2]) + 1)[:-1]
        return data.decode("utf-8", "replace")

    def tree(self, tag: str) -> dict[str, str]:
        """path -> blob id of every file of a tag."""
        out = {}
        for line in self.run("ls-tree", "-r", tag).splitlines():
            meta, _, path = line.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "blob":
                out[path] = parts[2]
        return out

    def close(self) -> None:
        if self._cat.stdin:
            self._cat.stdin.close()
        self._cat.wait()


def version_of(tag: str) -> tuple[int, int]:
    _, major, minor, _ = tag.split("_")
    return int(major), int(minor)


def release_tags(repo: Repo, since: tuple[int, int]) -> list[str]:
    tags = [t for t in repo.run("tag").split() if re.fullmatch(r"V_\d+_\d+_P1", t)]
    return sorted((t for t in tags if version_of(t) >= since), key=version_of)


def server_files(makefile: str, tree: dict[str, str]) -> list[str]:
    """The C files linked into the server programs, from a tag's Makefile.in."""
    objs: set[str] = set()
    for var in OBJ_LISTS:
        m = re.search(rf"^{var}\s*=(.*?)(?:\n\n|\n[A-Z_]+\s*=)", makefile, re.S | re.M)
        if m:
            objs |= set(re.findall(r"([\w.-]+)\.o\b", m.group(1)))
    files = sorted(f"{o}.c" for o in objs
                   if f"{o}.c" not in CLIENT_ONLY and f"{o}.c" not in NEVER_BUILT and f"{o}.c" in tree)
    compat = sorted(p for p in tree if re.fullmatch(r"openbsd-compat/(?:port|bsd)-[^/]*\.c", p))
    return files + compat


def literal_end(src: str, start: int) -> int:
    """Where the C string or char literal opening at src[start] ends (just past its closing quote;
    a backslash escapes the next character)."""
    quote, j, n = src[start], start + 1, len(src)
    while j < n and src[j] != quote:
        j += 2 if src[j] == "\\" else 1
    return j + 1


def strip_comments(src: str) -> str:
    """C source without comments (newlines kept), string and char literals untouched."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in "\"'":
            j = literal_end(src, i)
            out.append(src[i:j])
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * src.count("\n", i, j))
            i = j
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_args(src: str, start: int) -> list[str] | None:
    """The raw arguments of a call whose '(' ends just before src[start]."""
    depth, args, cur, i, n = 0, [], [], start, len(src)
    while i < n:
        c = src[i]
        if c in "\"'":
            j = literal_end(src, i)
            cur.append(src[i:j])
            i = j
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur).strip())
                return args
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    return None


def literal(arg: str) -> str | None:
    """Concatenated C string literals (PRI* macros expanded); None if not a pure literal."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*)|(\S)', arg)
    if not parts:
        return None
    s = []
    for lit, ident, other in parts:
        if lit or (not ident and not other):
            s.append(bytes(lit, "utf-8").decode("unicode_escape", "replace") if "\\" in lit else lit)
        elif MACROS.get(ident):
            s.append(MACROS[ident])  # type: ignore[arg-type]
        else:
            return None
    return "".join(s)


def function_starts(src: str) -> list[tuple[int, str]]:
    """(offset, name) of every function definition: a name and '(' on an unindented line
    (after the return type in older sources: "void chachapoly_init(...")."""
    pos = []
    for m in re.finditer(r"^(?:[A-Za-z_][\w \t*]*?[ \t*])?([A-Za-z_]\w*)\s*\([^;]*?$", src, re.M):
        if m.group(1) not in ("if", "while", "for", "switch", "return", "sizeof"):
            pos.append((m.start(), m.group(1)))
    return pos


def argname(expr: str) -> str:
    """A field name for a printf argument."""
    e = expr.strip()
    e = re.sub(r"^\((?:const\s+)?(?:unsigned\s+)?(?:long|int|u_int|u_long|size_t|char \*|long long|"
               r"unsigned long long|u_char|u_int64_t|intmax_t|uintmax_t|double|u_longlong_t)\s*\)", "", e).strip()
    e = re.sub(r"\)+$", "", e)
    m = re.match(r"^(\w+)\((.*)$", e)
    if m:
        fn = m.group(1)
        named = {"ssh_remote_ipaddr": "addr", "get_remote_ipaddr": "addr", "ssh_remote_port": "port",
                 "get_remote_port": "port", "ssh_local_ipaddr": "laddr", "get_local_ipaddr": "laddr",
                 "ssh_local_port": "lport", "get_local_port": "lport", "ssh_err": "err", "strerror": "err",
                 "sshkey_type": "keytype", "key_type": "keytype", "sshkey_ssh_name": "keytype",
                 "key_ssh_name": "keytype", "sshkey_fingerprint": "fp", "key_fingerprint": "fp"}
        if fn in named:
            return named[fn]
        return re.sub(r"^(ssh_|sshkey_|sshbuf_|key_|buffer_)", "", fn)
    ids = [i for i in re.findall(r"[A-Za-z_]\w*", e)
           if i not in ("NULL", "sizeof", "const", "char", "int", "long", "unsigned")]
    if not ids:
        return "arg"
    n = re.sub(r"^(pw_|c_)", "", ids[-1])
    if n == "name" and len(ids) > 1:
        n = ids[-2] + "_name" if ids[-2] != "pw" else "user"
    return n


def to_template(fmt: str, args: list[str], func: str) -> str:
    """A printf format and its arguments -> a catalogue template."""
    out: list[str] = []
    used: collections.Counter[str] = collections.Counter()
    ai = pos = 0
    for m in CONV.finditer(fmt):
        out.append(fmt[pos:m.start()].replace("{", "{{").replace("}", "}}"))
        pos = m.end()
        conv, spec = m.group(1), m.group(0)
        if spec == "%%":
            out.append("%")
            continue
        ai += spec.count("*")
        arg = args[ai] if ai < len(args) else None
        ai += 1
        if conv == "s" and arg is not None and arg.strip() == "__func__":
            out.append(func)
            continue
        if conv == "s" and arg is not None:
            lit = literal(arg)
            if lit is not None and "%" not in lit:
                out.append(lit.replace("{", "{{").replace("}", "}}"))
                continue
        base = re.sub(r"\W", "_", argname(arg) if arg else "arg").strip("_").lower() or "arg"
        if base[0].isdigit():
            base = "f_" + base
        used[base] += 1
        name = base if used[base] == 1 else f"{base}{used[base]}"
        typ = FIELD_TYPES.get(conv or "", "")
        out.append("{" + name + (":" + typ if typ else "") + "}")
    out.append(fmt[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def disconnect_prefix(packet_c: str) -> str:
    """How packet_disconnect writes its message locally in this version: "Disconnecting: " before
    7.5, "Disconnecting <who>: " (authenticating/invalid user, address and port) from 7.5."""
    m = re.search(r'logit\("Disconnecting([^"]*)"', packet_c)
    if m and m.group(1).count("%s") >= 2:
        return "Disconnecting {who}: "
    return "Disconnecting: "


def extract(src: str, path: str, disconnect: str, outer: str = "?") -> list[dict[str, Any]]:
    """Every log call of one file (or of the code a patch adds): level, template, function
    (`outer` for a call before any definition: a patch hunk's enclosing function)."""
    src = strip_comments(src)
    funcs = function_starts(src)
    starts = [p for p, _ in funcs]
    res = []
    for m in CALL.finditer(src):
        kind, suf = m.group(1), m.group(2) or ""
        line_start = src.rfind("\n", 0, m.start()) + 1
        if m.start() == line_start:
            continue  # a definition or prototype, not a call
        args = split_args(src, m.end())
        if not args:
            continue
        i = bisect.bisect_right(starts, m.start()) - 1
        func = funcs[i][1] if i >= 0 else outer
        level = LEVELS.get(kind)
        if kind in ("cleanup_exit_log", "sshpkt_fatal_log"):
            continue
        if kind == "do_log2":
            if "_r" in suf:
                args.pop(0)
            lv = re.match(r"SYSLOG_LEVEL_(\w+)", args.pop(0) if args else "")
            level = lv.group(1) if lv else "VARIES"
        elif kind in ("ssh_packet_disconnect", "sshpkt_disconnect") or "_r" in suf:
            args.pop(0)  # the ssh/session argument, or the error code of an _r call
        if not args:
            continue
        fmt = literal(args[0])
        if fmt is None:
            continue
        tmpl = to_template(fmt, args[1:], func)
        if "_f" in suf:
            if not func:
                continue  # a patch hunk whose function is unknown: the prefix cannot be told
            tmpl = func + ": " + tmpl
        if "_r" in suf:
            tmpl = tmpl + ": {err}"
        if kind in DISCONNECTS:
            tmpl = disconnect + tmpl
            level = "INFO"
        res.append({"level": level, "template": tmpl, "func": func, "file": path})
    return res


def extract_all(repo: Repo, tags: list[str]) -> dict[str, Any]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    done: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for tag in tags:
        ver = "{}.{}".format(*version_of(tag))
        tree = repo.tree(tag)
        disconnect = disconnect_prefix(repo.blob(tree.get("packet.c", "")))
        for path in server_files(repo.blob(tree.get("Makefile.in", "")), tree):
            key = (tree[path], disconnect)
            if key not in done:
                done[key] = extract(repo.blob(tree[path]), path, disconnect)
            for e in done[key]:
                d = out.setdefault((e["template"], e["level"]), {**e, "versions": []})
                if ver not in d["versions"]:
                    d["versions"].append(ver)
                d["file"], d["func"] = e["file"], e["func"]  # the newest version names the source
        print(tag, len(out), file=sys.stderr)
    return {"versions": ["{}.{}".format(*version_of(t)) for t in tags], "entries": list(out.values())}


HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@ ?(.*)$")
DEFINITION = re.compile(r"^(?:[A-Za-z_][\w \t*]*?[ \t*])?([A-Za-z_]\w*)\s*\([^;]*$")
FILE = re.compile(r"^\+\+\+ (?:\./)?[^/\s]+/(?:\./)?(\S+)")  # patch -p1: the first component goes


def patch_hunks(text: str) -> list[tuple[str, str, str]]:
    """(file, enclosing function from the hunk header, the lines the hunk adds) of a unified diff."""
    out = []
    path = ""
    func = "?"
    added: list[str] = []

    def flush() -> None:
        if path and added:
            out.append((path, func, "\n".join(added)))
        added.clear()

    for line in text.splitlines():
        if line.startswith("+++ "):
            flush()
            m = FILE.match(line)
            path = m.group(1) if m else ""
        elif line.startswith("--- "):
            flush()
        elif (h := HUNK.match(line)) is not None:
            flush()
            names = re.findall(r"([A-Za-z_]\w*)\s*\(", h.group(1))
            func = names[-1] if names else ""  # unknown until a definition shows up
        elif line[:1] in ("+", " "):
            m = DEFINITION.match(line[1:])
            if m and m.group(1) not in ("if", "while", "for", "switch", "return", "sizeof"):
                flush()  # a function starts (in the context or in the added lines)
                func = m.group(1)
            if line[0] == "+":
                added.append(line[1:])
    flush()
    return out


def skeleton(template: str) -> str:
    """A template's literal text with its fields blanked (names and types differ between sources)."""
    return re.sub(r"\{[A-Za-z_]\w*(?::\w+)?\}", "{}", template)


def extract_patches(sets: list[tuple[str, Path]], known: set[str]) -> dict[str, Any]:
    """Log calls the patch sets add to server files; `known`: upstream templates (left out)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for ver, folder in sets:
        series = folder / "series"
        names = ([n.split("#")[0].strip() for n in series.read_text().splitlines()] if series.is_file()
                 else sorted(p.name for p in folder.glob("*.patch")))
        for name in filter(None, names):
            for path, outer, code in patch_hunks((folder / name).read_text(errors="replace")):
                base = path.split("/")[-1]
                if not base.endswith(".c") or base in CLIENT_ONLY:
                    continue
                for e in extract(code, path, "Disconnecting {who}: ", outer or ""):
                    if skeleton(e["template"]) in known:
                        continue
                    d = out.setdefault((e["template"], e["level"]), {**e, "versions": [], "patch": name})
                    if ver not in d["versions"]:
                        d["versions"].append(ver)
    versions = sorted({v for v, _ in sets}, key=lambda v: tuple(int(x) for x in v.split(".")))
    return {"versions": versions, "entries": list(out.values())}


def write_patch_yaml(d: dict[str, Any], out: Path, name: str, package: str) -> None:
    ents = []
    for e in d["entries"]:
        t = e["template"]
        if len(re.sub(r"[^A-Za-z]", "", re.sub(r"\{\{|\}\}|\{[^{}]*\}", "", t))) < 5:
            continue
        func = e["func"] or re.sub(r"\W", "_", e["file"].split("/")[-1][:-2])
        ents.append({"event": f"{name}.{func}.{slug(t, func)}", "level": e["level"], "pattern": t,
                     "versions": ", ".join(v for v in d["versions"] if v in e["versions"]),
                     "source": f"{e['file']}:{func} ({e['patch']})"})
    ents.sort(key=lambda x: (x["source"], x["pattern"]))
    with (out / f"{name}.yaml").open("w", encoding="utf-8") as f:
        f.write(f"""# Generated by tools/catalogue_extract.py --patches from the patch sets of {package}:
# one entry per log call the patches add to the files linked into sshd, leaving out messages upstream
# OpenSSH also writes. `versions`: the upstream versions of the packages whose patches have it;
# `source`: file:function (the patch that adds the call). Regenerate, do not edit by hand.
""")
        yaml.dump(ents, f, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    print(name, len(ents), file=sys.stderr)


def topic(path: str) -> str:
    f = path.split("/")[-1]
    if f in ("channels.c", "nchan.c"):
        return "channel"
    if f.startswith("kex") or f in ("dh.c", "compat.c", "cipher.c", "mac.c", "kex-names.c", "umac.c",
                                    "cipher-chachapoly.c", "cipher-chachapoly-libcrypto.c", "cipher-aes.c",
                                    "cipher-aesctr.c", "sntrup761.c", "cipher-3des1.c", "cipher-bf1.c",
                                    "cipher-ctr.c", "cipher-acss.c", "deattack.c", "compress.c"):
        return "kex"
    if f == "auth-pam.c":
        return "pam"
    if f.startswith("auth") or f in ("hostfile.c", "uidswap.c", "groupaccess.c", "gss-serv.c", "gss-serv-krb5.c",
                                     "gss-genr.c", "addrmatch.c", "match.c", "authfile.c", "jpake.c", "schnorr.c"):
        return "auth"
    if f in ("session.c", "serverloop.c", "sshpty.c", "ttymodes.c", "loginrec.c", "sshlogin.c"):
        return "session"
    if f.startswith("monitor"):
        return "monitor"
    if f in ("packet.c", "dispatch.c", "opacket.c"):
        return "packet"
    if f == "servconf.c":
        return "config"
    if f.startswith("sftp"):
        return "sftp"
    if f in ("srclimit.c",):
        return "listener"
    if f in ("sshd.c", "sshd-session.c", "sshd-auth.c", "canohost.c", "platform-listen.c", "misc.c",
             "roaming_serv.c", "roaming_common.c"):
        return "connection"
    if f.startswith(("sandbox", "audit", "platform")) or path.startswith("openbsd-compat"):
        return "platform"
    return "misc"


def vrange(vs: list[str], allv: list[str]) -> str:
    """The versions an entry is in, as the catalogue's ranges (">=X.Y", "X.Y-X.Z", "X.Y")."""
    idx = sorted(allv.index(v) for v in vs)
    runs = []
    start = prev = idx[0]
    for i in idx[1:]:
        if i == prev + 1:
            prev = i
            continue
        runs.append((start, prev))
        start = prev = i
    runs.append((start, prev))
    parts = []
    for a, b in runs:
        if b == len(allv) - 1:
            parts.append(">=" + allv[a])
        elif a == b:
            parts.append(allv[a])
        else:
            parts.append(allv[a] + "-" + allv[b])
    return ", ".join(parts)


def slug(t: str, func: str) -> str:
    lit = re.sub(r"\{\{|\}\}|\{[^{}]*\}", " ", t)
    if lit.startswith(func + ":") or lit.startswith(func + " "):
        lit = lit[len(func) + 1:]
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", lit)
    return "_".join(w.lower() for w in words[:3]) or "msg"


HEADER = """# Generated by tools/catalogue_extract.py from openssh-portable's source: one entry per log call
# in the files linked into sshd, sshd-session and sshd-auth (OpenSSH {first} to {last}), with the
# versions whose source has it. The format strings are facts taken from the source named in
# `source` (the newest version that has it); printf conversions became template fields
# (%s -> {{name}}, %d -> {{name:int}}, ...; see simulator/logs/catalogue.py).
# Hand-written entries in ../<topic>.yaml take precedence; this file is the long tail.
# Level VARIES: the call passes its level in a variable (do_log2).
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
    quote = (re.fullmatch(r"[0-9.]+", s) or s[:1] in "{['\"!&*%@`|>#?-:, " or ": " in s or " #" in s
             or s.strip() != s or s in ("yes", "no", "true", "false", "null", "on", "off"))
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"' if quote else None)


_Dumper.add_representer(str, _str)


def write_yaml(d: dict[str, Any], out: Path) -> None:
    allv = d["versions"]
    out.mkdir(parents=True, exist_ok=True)
    by_topic = collections.defaultdict(list)
    skipped = 0
    for e in d["entries"]:
        t = e["template"]
        if len(re.sub(r"[^A-Za-z]", "", re.sub(r"\{\{|\}\}|\{[^{}]*\}", "", t))) < 5:
            skipped += 1  # too little literal text to tell the message from any other
            continue
        tp = topic(e["file"])
        by_topic[tp].append({"event": f"{tp}.{e['func']}.{slug(t, e['func'])}", "level": e["level"],
                             "pattern": t, "versions": vrange(e["versions"], allv),
                             "source": f"{e['file']}:{e['func']}"})
    for tp, ents in sorted(by_topic.items()):
        ents.sort(key=lambda x: (x["source"], x["pattern"]))
        with (out / f"{tp}.yaml").open("w", encoding="utf-8") as f:
            f.write(HEADER.format(first=allv[0], last=allv[-1]))
            yaml.dump(ents, f, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
        print(tp, len(ents), file=sys.stderr)
    print("skipped", skipped, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("git_dir", nargs="?",
                    help="openssh-portable git directory (bare or a clone's .git) with release tags")
    ap.add_argument("--patches", action="append", default=[], metavar="VERSION=DIR",
                    help="a distribution's patch folder (debian/patches) for that upstream version")
    ap.add_argument("--name", default="debian", help="with --patches: the output's name (source/NAME.yaml)")
    ap.add_argument("--package", default="", help="with --patches: the packages read, for the header")
    ap.add_argument("--since", default="5.0", help="oldest release to read (default 5.0)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = ap.parse_args(argv)
    if args.patches:
        known = set()
        for f in args.out.glob("*.yaml"):  # the upstream files only (not another distribution's)
            if f.read_text(encoding="utf-8").startswith(HEADER.split("\n")[0]):
                known |= {skeleton(e["pattern"]) for e in yaml.safe_load(f.read_text()) or [] if "pattern" in e}
        sets = [(v, Path(p)) for v, _, p in (a.partition("=") for a in args.patches)]
        write_patch_yaml(extract_patches(sets, known), args.out, args.name, args.package or args.name)
        return 0
    if not args.git_dir:
        ap.error("GIT_DIR is needed (or --patches)")
    git_dir = args.git_dir
    if os.path.isdir(os.path.join(git_dir, ".git")):
        git_dir = os.path.join(git_dir, ".git")
    since = tuple(int(x) for x in args.since.split("."))
    repo = Repo(git_dir)
    try:
        tags = release_tags(repo, since)  # type: ignore[arg-type]
        if not tags:
            print(f"{args.git_dir}: no release tags V_X_Y_P1 from {args.since} on", file=sys.stderr)
            return 2
        write_yaml(extract_all(repo, tags), args.out)
    finally:
        repo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
