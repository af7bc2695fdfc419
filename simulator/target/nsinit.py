"""Start sshd inside private mount and pid namespaces (run as `python -I -S .../nsinit.py SPEC`).

Why a separate process: the namespaces must be entered before sshd is exec'd, and the mounts
that give sshd its private world (/dev/log, /etc/passwd, /home, /run/sshd, /var/log, a new devpts)
are made by system calls that are simplest in a fresh process. This module uses only the standard
library so that it starts fast.

Process tree, and why each link dies with the one above it:

    sshsim (caller)  --PDEATHSIG-->  outer (this module, host pid)
        outer  --unshare(NEWNS|NEWPID), fork-->  init (pid 1 in the new pid namespace)
            init --fork/exec--> sshd -D (the listener), which forks the per-connection processes

outer and init both die by SIGKILL when their parent dies (PR_SET_PDEATHSIG), and when init (pid 1)
dies the kernel kills every process left in its pid namespace. So no sshd outlives the caller,
even when the caller is SIGKILLed. A normal stop is SIGTERM to outer, passed down to sshd.

The spec is a JSON file given as the only argument; progress and errors go to the status pipe
(file descriptor `status_fd`) as JSON lines.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import signal
import stat
import sys

# Imports cost the launcher's start at every run (the ready time, benchmarks/bench_versions.py):
# typing (~2 ms) is for the type checker only, and the spec and status go as marshal, not JSON
# (json pulls in re, ~5 ms): both ends are this Python (LocalSshd runs sys.executable).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1

# The process's own symbols, libc's among them: ctypes.util.find_library would run `ldconfig -p`
# (a fork and exec, ~5 ms of every start).
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


class SetupError(Exception):
    """A step of the namespace set-up failed; the message says which and why."""


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)} (errno {err})")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when its parent dies; exit now if the parent is already gone
    (`parent`: the pid it must have, for the launcher, whose parent may die before it runs)."""
    parent = os.getppid() if parent is None else parent
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(1)


class Status:
    """Events to the caller over the status pipe: each a 4-byte length and a marshalled dict."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, **fields: Any) -> None:
        try:
            body = marshal.dumps(fields)
            os.write(self.fd, len(body).to_bytes(4, "big") + body)
        except OSError:
            pass


def bind_file(source: str, target: str, readonly: bool = False) -> None:
    """Bind a file over another (the target must exist: the mount point)."""
    if not os.path.exists(target):
        with open(target, "a"):
            pass
    mount(source, target, None, MS_BIND)
    if readonly:
        mount(None, target, None, MS_BIND | MS_RDONLY | 0x20)  # MS_REMOUNT


def make_dev(spec: dict[str, Any]) -> None:
    """A private /dev: the basic character devices, a new devpts instance, and /dev/log.

    A new devpts instance makes the first pty /dev/pts/0 (as in the reference log) and keeps
    the host's ptys out of reach.
    """
    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m")
    for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                               ("urandom", 1, 9), ("tty", 5, 0)):
        path = f"/dev/{name}"
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(path, 0o666)
    os.mkdir("/dev/pts", 0o755)
    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.symlink("pts/ptmx", "/dev/ptmx")
    os.mkdir("/dev/shm", 0o1777)
    os.chmod("/dev/shm", 0o1777)
    os.symlink("/proc/self/fd", "/dev/fd")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"/dev/{name}")
    bind_file(spec["log_socket"], "/dev/log")


def make_run() -> None:
    """A private /run with /run/sshd, the privilege separation directory sshd insists on."""
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
    os.mkdir("/run/sshd", 0o755)
    os.chmod("/run/sshd", 0o755)
    # utmp: sshd records logins and logouts of pty sessions there.
    with open("/run/utmp", "wb"):
        pass
    os.chown("/run/utmp", 0, 43)
    os.chmod("/run/utmp", 0o664)


def make_var_log() -> None:
    """A private /var/log with the login records sshd and PAM write."""
    mount("tmpfs", "/var/log", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=16m")
    for name, mode in (("lastlog", 0o664), ("wtmp", 0o664), ("btmp", 0o660)):
        path = f"/var/log/{name}"
        with open(path, "wb"):
            pass
        os.chmod(path, mode)


def setup_namespace(spec: dict[str, Any]) -> None:
    """Everything sshd sees that differs from the host, visible only inside this namespace."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    make_dev(spec)
    make_run()
    make_var_log()
    for name in ("passwd", "group", "shadow"):
        bind_file(spec[name], f"/etc/{name}")
    bind_file(spec["pam_sshd"], "/etc/pam.d/sshd")
    mount(spec["home"], "/home", None, MS_BIND | MS_REC)
    if spec.get("srv"):
        # Chroot directories: root-owned all the way down, as ChrootDirectory requires.
        mount(spec["srv"], "/srv", None, MS_BIND | MS_REC)
        for dev_log in spec.get("chroot_dev_logs") or []:
            # A log socket inside a chroot, as rsyslog's extra listen sockets give a real server.
            bind_file(spec["log_socket"], dev_log)
    # /tmp stays the host's: the run's own files (config, keys, pid file) live in a directory
    # there, and sessions of the scenario's users are short-lived.


def set_next_pid(pid: int) -> None:
    """Make the next process forked in this pid namespace get `pid` (realistic pids in the log)."""
    if pid <= 1:
        return
    try:
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
    except OSError:
        pass  # an odd but harmless loss: pids stay small


def run_config_test(spec: dict[str, Any]) -> tuple[str, str] | None:
    """`sshd -T` (test and print the effective config): (stage, what is wrong) or None.

    Besides sshd's own complaint (stage "config"), the addresses sshd will really listen on are
    checked (stage "listen"): the host checked the scenario's lines already, but sshd's reading
    (names it resolves, every form it accepts) is the last word before it binds as root."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(write, 2)
        os.dup2(write, 1)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.execv(spec["sshd"], [spec["sshd"], "-T", "-f", spec["config"]])
    os.close(write)
    out = b""
    while chunk := os.read(read, 65536):
        out += chunk
    os.close(read)
    _, status = os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        return "config", text.strip() or f"sshd -T exited with {status}"
    exposed = [row.split(None, 1)[1] for row in text.splitlines()
               if row.lower().startswith("listenaddress ") and not _loopback_listen(row.split(None, 1)[1])]
    if exposed:
        return "listen", ", ".join(exposed)
    return None


def _loopback_listen(value: str) -> bool:
    """`127.0.0.1:22`, `[::1]:22` (sshd -T's form, maybe followed by ` rdomain X`) on loopback?"""
    address = value.split()[0]
    host = address[1:].split("]", 1)[0] if address.startswith("[") else address.rsplit(":", 1)[0]
    # imported here: start-up cost of the launcher (only a config with addresses reaches this)
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_sshd(spec: dict[str, Any]) -> int:
    stderr_path = spec["stderr"]
    pid = os.fork()
    if pid == 0:
        os.setsid()
        devnull = os.open("/dev/null", os.O_RDWR)
        err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(err, 2)
        os.closerange(3, 65536)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.execv(spec["sshd"], [spec["sshd"], "-D", "-f", spec["config"], *spec.get("extra_args", [])])
    return pid


def init_main(spec: dict[str, Any], status: Status) -> int:
    """pid 1 of the namespace: set up, start sshd, reap, pass SIGTERM on, exit when sshd does."""
    die_with_parent()
    try:
        setup_namespace(spec)
    except (SetupError, OSError) as exc:
        status.send(event="error", stage="namespace", message=str(exc))
        return 3
    problem = run_config_test(spec)
    if problem is not None:
        status.send(event="error", stage=problem[0], message=problem[1])
        return 4
    set_next_pid(int(spec.get("first_pid", 0)))
    sshd = start_sshd(spec)
    status.send(event="started", pid=sshd)

    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        try:
            os.kill(sshd, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    code = 0
    while True:
        try:
            pid, wstatus = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == sshd:
            code = os.waitstatus_to_exitcode(wstatus)
            if not stopping:
                status.send(event="exited", code=code)
            break
    # Returning ends pid 1: the kernel then kills whatever is left in the namespace.
    return 0 if stopping else (code or 5)


def outer_main(spec: dict[str, Any]) -> int:
    status = Status(int(spec["status_fd"]))
    # Here, not in a preexec_fn: a preexec_fn makes subprocess fork the whole (large) caller
    # instead of vfork, ~10 ms of every start; the caller's pid in the spec closes the gap.
    die_with_parent(int(spec["parent"]))
    try:
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare(CLONE_NEWNS|CLONE_NEWPID)")
    except SetupError as exc:
        status.send(event="error", stage="unshare", message=str(exc))
        return 3
    child = os.fork()
    if child == 0:
        try:
            code = init_main(spec, status)
        except BaseException as exc:  # never let pid 1 print a traceback and linger
            status.send(event="error", stage="init", message=f"{type(exc).__name__}: {exc}")
            code = 6
        os._exit(code)
    status.send(event="init", pid=child)

    def forward(signum: int, frame: object) -> None:
        try:
            os.kill(child, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            _, wstatus = os.waitpid(child, 0)
            return os.waitstatus_to_exitcode(wstatus)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 0


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        spec = marshal.load(f)
    sys.exit(outer_main(spec))


if __name__ == "__main__":
    main()
