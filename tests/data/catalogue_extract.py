"""Regenerate simulator/data/events/source/*.yaml from openssh-portable's source (dev tool).

    python tests/data/catalogue_extract.py PATH/TO/openssh-portable.git

For every release tag V_7_0_P1 .. (newest), every log call (logit, verbose, debug*, error*,
fatal*, do_log2, *_f/_r/_fr variants, packet_disconnect) in the files linked into sshd,
sshd-session and sshd-auth (from each tag's Makefile.in) becomes one entry: its format string
turned into a template (printf conversions -> typed fields, __func__ and literal arguments
inlined, the _f function prefix and _r error suffix added as log.c does), its level, the
versions whose source has it, and its file:function. Only the format strings are taken from
the source, as facts. Hand-written entries in simulator/data/events/<topic>.yaml are not touched.
"""

import collections
import json
import os
import re
import subprocess
import sys

import yaml


REPO = sys.argv[1] if len(sys.argv) > 1 else "openssh-portable"

def git(*a):
    return subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True, errors="replace").stdout

def vkey(t):
    _, a, b, _ = t.split("_"); return (int(a), int(b))


def release_tags():
    tags = [t for t in git("tag").split() if re.fullmatch(r"V_(7|8|9|10)_\d+_P1", t)]
    return sorted(tags, key=vkey)

CLIENT_ONLY = {"ssh.c", "readconf.c", "clientloop.c", "sshtty.c", "sshconnect.c", "sshconnect2.c", "mux.c",
               "ssh-agent.c", "ssh-add.c", "ssh-keygen.c", "ssh-keyscan.c", "ssh-keysign.c", "scp.c", "sftp.c",
               "sftp-client.c", "sftp-glob.c", "progressmeter.c", "ssh-pkcs11-helper.c", "ssh-sk-helper.c",
               "sk-usbhid.c", "moduli.c", "ssh-pkcs11.c", "readpass.c", "logintest.c", "sftp-server-main.c",
               "ssh-sk.c", "dns.c", "ssh_api.c", "krl.c", "sshsig.c", "authfd.c", "misc-agent.c", "ssh-pkcs11-client.c",
               "ssh-sk-client.c", "kexgexc.c", "sftp-usergroup.c"}

def files_for(tag):
    mk = git("show", f"{tag}:Makefile.in")
    objs = set()
    for var in ("LIBSSH_OBJS", "LIBOPENSSH_OBJS", "SSHDOBJS", "SSHD_SESSION_OBJS", "SSHD_AUTH_OBJS"):
        m = re.search(rf"^{var}\s*=(.*?)(?:\n\n|\n[A-Z_]+\s*=)", mk, re.S | re.M)
        if m:
            objs |= set(re.findall(r"([\w.-]+)\.o\b", m.group(1)))
    fl = {o + ".c" for o in objs}
    compat = [f for f in git("ls-tree", "--name-only", f"{tag}:openbsd-compat").split() if f.endswith(".c") and (f.startswith("port-") or f.startswith("bsd-") )]
    fl = {f for f in fl if f not in CLIENT_ONLY}
    return sorted(fl) + ["openbsd-compat/" + f for f in compat]

CALL = re.compile(r"\b(logit|verbose|debug|debug2|debug3|error|fatal|logdie|sigdie|do_log2|cleanup_exit_log|packet_disconnect|ssh_packet_disconnect|sshpkt_disconnect|sshpkt_fatal_log|auth_debug_add)(_f|_r|_fr)?\s*\(")
LEVELS = {"logit": "INFO", "verbose": "VERBOSE", "debug": "DEBUG1", "debug2": "DEBUG2", "debug3": "DEBUG3",
          "error": "ERROR", "fatal": "FATAL", "logdie": "ERROR", "sigdie": "FATAL", "packet_disconnect": "INFO",
          "ssh_packet_disconnect": "INFO", "sshpkt_disconnect": "INFO", "auth_debug_add": "DEBUG1"}

def strip_comments(src):
    out = []; i = 0; n = len(src)
    while i < n:
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j+1]); i = j + 1
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2); j = n if j < 0 else j + 2
            out.append(" " * 0 + "\n" * src.count("\n", i, j)); i = j
        elif src.startswith("//", i):
            j = src.find("\n", i); j = n if j < 0 else j
            i = j
        else:
            out.append(c); i += 1
    return "".join(out)

def split_args(src, start):
    """src[start] is just after '('; return list of raw args and end index."""
    depth = 0; args = []; cur = []; i = start; n = len(src)
    while i < n:
        c = src[i]
        if c in '"\'':
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            cur.append(src[i:j+1]); i = j + 1; continue
        if c in "([{": depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur).strip()); return args, i
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur).strip()); cur = []; i += 1; continue
        cur.append(c); i += 1
    return None, n

MACROS = {"PRIu64": "llu", "PRId64": "lld", "PRIx64": "llx", "PRIu32": "u", "PRIx32": "x", "PRIu8": "u",
          "PRIi64": "lld", "SSH_FP_DIGEST": None}

def literal(arg):
    """Concatenate C string literals (with PRI macros). None if not a pure literal."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*)|(\S)', arg)
    if not parts: return None
    s = []
    for lit, ident, other in parts:
        if lit or (not ident and not other):
            s.append(bytes(lit, "utf-8").decode("unicode_escape", "replace") if "\\" in lit else lit)
        elif ident in MACROS and MACROS[ident]:
            s.append(MACROS[ident])
        else:
            return None
    return "".join(s)

CONV = re.compile(r"%(?:%|[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?:hh|h|ll|l|z|j|t|q|L)?([diouxXcspfegEG]))")

def func_of_positions(src):
    pos = []
    for m in re.finditer(r"^([A-Za-z_]\w*)\s*\([^;]*?$", src, re.M):
        name = m.group(1)
        if name in ("if", "while", "for", "switch", "return"): continue
        pos.append((m.start(), name))
    return pos

def argname(expr):
    e = expr.strip()
    e = re.sub(r"^\((?:const\s+)?(?:unsigned\s+)?(?:long|int|u_int|u_long|size_t|char \*|long long|unsigned long long|u_char|u_int64_t|intmax_t|uintmax_t|double|u_longlong_t)\s*\)", "", e).strip()
    e = re.sub(r"\)+$", "", e)
    m = re.match(r"^(\w+)\((.*)$", e)
    if m:
        fn = m.group(1)
        if fn in ("ssh_remote_ipaddr", "ssh_remote_ipaddr"): return "addr"
        if fn == "ssh_remote_port": return "port"
        if fn == "ssh_local_ipaddr": return "laddr"
        if fn == "ssh_local_port": return "lport"
        if fn in ("ssh_err", "strerror"): return "err"
        if fn in ("sshkey_type", "sshkey_ssh_name"): return "keytype"
        if fn == "sshkey_fingerprint": return "fp"
        fn = re.sub(r"^(ssh_|sshkey_|sshbuf_)", "", fn)
        return fn
    ids = re.findall(r"[A-Za-z_]\w*", e)
    ids = [i for i in ids if i not in ("NULL", "sizeof", "const", "char", "int", "long", "unsigned")]
    if not ids: return "arg"
    n = ids[-1]
    n = re.sub(r"^(pw_|c_)", "", n)
    if n == "name" and len(ids) > 1: n = ids[-2] + "_name" if ids[-2] not in ("pw",) else "user"
    return n

def to_template(fmt, args, func):
    """printf format -> template text; returns (template, fieldnames)."""
    out = []; names = []; used = collections.Counter(); ai = 0; pos = 0
    for m in CONV.finditer(fmt):
        lit = fmt[pos:m.start()]; pos = m.end()
        out.append(lit.replace("{", "{{").replace("}", "}}"))
        conv = m.group(1); spec = m.group(0)
        if spec == "%%": out.append("%"); continue
        nstar = spec.count("*")
        arg = None
        ai += nstar
        if ai < len(args): arg = args[ai]
        ai += 1
        if conv == "s" and arg is not None and arg.strip() == "__func__":
            out.append(func); continue
        if conv == "s" and arg is not None:
            l = literal(arg)
            if l is not None and "%" not in l:
                out.append(l.replace("{", "{{").replace("}", "}}")); continue
        base = argname(arg) if arg else "arg"
        base = re.sub(r"\W", "_", base).strip("_").lower() or "arg"
        if base[0].isdigit(): base = "f_" + base
        used[base] += 1
        name = base if used[base] == 1 else f"{base}{used[base]}"
        typ = {"d": "int", "i": "int", "u": "uint", "o": "uint", "x": "hex", "X": "hex", "c": "char", "p": "word",
               "f": "float", "e": "float", "g": "float", "E": "float", "G": "float"}.get(conv, "")
        out.append("{" + name + (":" + typ if typ else "") + "}")
        names.append(name)
    out.append(fmt[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out), names

def extract(tag, path):
    src = git("show", f"{tag}:{path}")
    if not src: return []
    src = strip_comments(src)
    funcs = func_of_positions(src)
    res = []
    import bisect
    starts = [p for p, _ in funcs]
    for m in CALL.finditer(src):
        kind, suf = m.group(1), m.group(2) or ""
        # skip definitions / prototypes
        line_start = src.rfind("\n", 0, m.start()) + 1
        if src[line_start:m.start()].strip() == "" and re.match(r"^\w+\(", src[line_start:]) and m.start() == line_start:
            continue
        args, end = split_args(src, m.end())
        if not args: continue
        i = bisect.bisect_right(starts, m.start()) - 1
        func = funcs[i][1] if i >= 0 else "?"
        a = list(args)
        level = LEVELS.get(kind)
        if kind == "do_log2":
            lv = a.pop(0) if "_r" not in suf else None
            if "_r" in suf:
                a.pop(0); lv = a.pop(0)
            mm = re.match(r"SYSLOG_LEVEL_(\w+)", lv or "")
            level = {"DEBUG1": "DEBUG1"}.get(mm.group(1), mm.group(1)) if mm else "VARIES"
        elif kind == "cleanup_exit_log":
            continue
        elif kind == "sshpkt_fatal_log":
            continue
        elif kind in ("packet_disconnect", "ssh_packet_disconnect", "sshpkt_disconnect"):
            if kind != "packet_disconnect": a.pop(0)
        elif "_r" in suf:
            a.pop(0)
        if not a: continue
        fmt = literal(a[0])
        if fmt is None: continue
        tmpl, names = to_template(fmt, a[1:], func)
        if "_f" in suf:
            tmpl = func + ": " + tmpl
        if "_r" in suf:
            tmpl = tmpl + ": {err}"
        if kind in ("packet_disconnect", "ssh_packet_disconnect", "sshpkt_disconnect"):
            # logged as "Disconnecting <who>: <msg>" by packet.c
            tmpl = "Disconnecting {who}: " + tmpl
            level = "INFO"
        res.append({"level": level, "template": tmpl, "func": func, "file": path, "kind": kind + suf, "fmt": fmt})
    return res

def extract_all():
    tags = release_tags()
    out = {}
    cache = {}
    for tag in tags:
        ver = "%d.%d" % vkey(tag)
        for f in files_for(tag):
            blob = git("rev-parse", f"{tag}:{f}").strip()
            if not blob or "fatal" in blob: continue
            if blob not in cache:
                cache[blob] = extract(tag, f)
            for e in cache[blob]:
                k = (e["template"], e["level"])
                d = out.setdefault(k, {**e, "versions": []})
                if ver not in d["versions"]: d["versions"].append(ver)
                d["file"], d["func"], d["fmt"] = e["file"], e["func"], e["fmt"]
        print(tag, len(out), file=sys.stderr)
    return {"versions": ["%d.%d" % vkey(t) for t in tags], "entries": list(out.values())}




def topic(path):
    f = path.split("/")[-1]
    if f in ("channels.c", "nchan.c"): return "channel"
    if f.startswith("kex") or f in ("dh.c", "compat.c", "cipher.c", "mac.c", "kex-names.c", "umac.c", "cipher-chachapoly.c", "cipher-chachapoly-libcrypto.c", "cipher-aes.c", "cipher-aesctr.c", "sntrup761.c"): return "kex"
    if f == "auth-pam.c": return "pam"
    if f.startswith("auth") or f in ("hostfile.c", "uidswap.c", "groupaccess.c", "gss-serv.c", "gss-serv-krb5.c", "gss-genr.c", "addrmatch.c", "match.c", "authfile.c"): return "auth"
    if f in ("session.c", "serverloop.c", "sshpty.c", "ttymodes.c", "loginrec.c", "sshlogin.c"): return "session"
    if f.startswith("monitor"): return "monitor"
    if f in ("packet.c", "dispatch.c", "opacket.c"): return "packet"
    if f == "servconf.c": return "config"
    if f.startswith("sftp"): return "sftp"
    if f in ("srclimit.c",): return "listener"
    if f in ("sshd.c", "sshd-session.c", "sshd-auth.c", "canohost.c", "platform-listen.c", "misc.c"): return "connection"
    if f.startswith(("sandbox", "audit", "platform")) or path.startswith("openbsd-compat"): return "platform"
    return "misc"

def vrange(vs):
    idx = sorted(ALLV.index(v) for v in vs)
    runs = []; start = prev = idx[0]
    for i in idx[1:]:
        if i == prev + 1: prev = i; continue
        runs.append((start, prev)); start = prev = i
    runs.append((start, prev))
    parts = []
    for a, b in runs:
        if b == len(ALLV) - 1: parts.append(">=" + ALLV[a] if a else ">=" + ALLV[a])
        elif a == b: parts.append(ALLV[a])
        else: parts.append(ALLV[a] + "-" + ALLV[b])
    return ", ".join(parts)

def literal_text(t):
    return re.sub(r"\{\{|\}\}|\{[^{}]*\}", "", t)

def slug(t, func):
    lit = re.sub(r"\{\{|\}\}|\{[^{}]*\}", " ", t)
    if lit.startswith(func + ":"): lit = lit[len(func) + 1:]
    elif lit.startswith(func + " "): lit = lit[len(func) + 1:]
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", lit)
    return "_".join(w.lower() for w in words[:3]) or "msg"

def write_yaml(d, OUT):
    global ALLV
    ALLV = d["versions"]
    os.makedirs(OUT, exist_ok=True)
    by_topic = collections.defaultdict(list)
    names = collections.Counter()
    skipped = 0
    for e in d["entries"]:
        t = e["template"]
        lit = re.sub(r"[^A-Za-z]", "", literal_text(t))
        if len(lit) < 5:
            skipped += 1; continue
        tp = topic(e["file"])
        func = e["func"]
        name = f"{tp}.{func}.{slug(t, func)}"
        ent = {"event": name, "level": e["level"], "pattern": t, "versions": vrange(e["versions"]),
               "source": f"{e['file']}:{func}"}
        by_topic[tp].append(ent)

    HEADER = """# Generated from openssh-portable's source: one entry per log call in the files linked into
# sshd, sshd-session and sshd-auth (OpenSSH {first} to {last}), with the versions whose source has it.
# The format strings are facts taken from the source named in `source`; printf conversions became
# template fields (%s -> {{name}}, %d -> {{name:int}}, ...; see simulator/logs/catalogue.py).
# Hand-written entries in ../<topic>.yaml take precedence; this file is the long tail.
# Level VARIES: the call passes its level in a variable (do_log2).
"""
    class D(yaml.SafeDumper): pass
    def str_rep(dumper, s):
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"' if (re.fullmatch(r"[0-9.]+", s) or s[:1] in "{['\"!&*%@`|>#?-:, " or ": " in s or " #" in s or s.strip() != s or s in ("yes","no","true","false","null","on","off")) else None)
    D.add_representer(str, str_rep)
    for tp, ents in sorted(by_topic.items()):
        ents.sort(key=lambda x: (x["source"], x["pattern"]))
        with open(f"{OUT}/{tp}.yaml", "w") as f:
            f.write(HEADER.format(first=ALLV[0], last=ALLV[-1]))
            yaml.dump(ents, f, Dumper=D, sort_keys=False, width=1000, allow_unicode=True)
        print(tp, len(ents))
    print("skipped", skipped)


if __name__ == "__main__":
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "simulator", "data", "events", "source")
    write_yaml(extract_all(), os.path.normpath(out_dir))
