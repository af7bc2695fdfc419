"""The local target: a private OpenSSH sshd on loopback, the product's embedded default.

sshd runs as root inside its own mount and pid namespaces (see `nsinit`), where /dev/log is our
syslog socket and the scenario's users exist. Nothing on the host changes, and no sshd outlives
the process that started it. Usage::

    with LocalSshd(ServerSpec(log_level="DEBUG1")) as server:
        ...connect to server.host:server.port with server.identity("user")...
        server.wait_idle()
        lines = server.log.lines()

Readiness comes from the pid file, which sshd writes right after listen(); probing with a TCP
connection would add lines to the log and use a MaxStartups slot (docs/local-target.md).
"""

from __future__ import annotations

import dataclasses
import marshal
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import IO, Any

from simulator.builds.features import has_feature
from simulator.capture.syslog import SyslogReceiver
from simulator.errors import BadInputError, EnvironmentProblem, SshsimError, TargetError
from simulator.io import LogStream
from simulator.target.accounts import write_account_files
from simulator.target.base import ManagedTarget, ServerSpec
from simulator.target.chroots import prepare_chroots
from simulator.target.config import (
    DEBIAN_SFTP_SERVER,
    check_overrides,
    config_error,
    for_version,
    generic_config_message,
    max_startups,
    render_config,
)
from simulator.target.keys import write_host_keys, write_users
from simulator.target.listen import chosen_port, free_port, usable_listen_addresses
from simulator.target.procs import children_of, wait_no_descendants
from simulator.target.userconfig import Rendered, check_user_config, map_error, sftp_server
from simulator.target.userconfig import build as build_user_config
from simulator.target.workdirs import make_workdir

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


def find_sshd() -> str:
    """Absolute path of sshd (it refuses to re-exec itself when started by a relative path)."""
    override = os.environ.get("SSHSIM_SSHD")
    if override:
        if os.path.isabs(override) and os.access(override, os.X_OK):
            return override
        raise EnvironmentProblem(f"SSHSIM_SSHD={override} is not an executable sshd given by absolute path; "
                                 "install the openssh-server package or fix SSHSIM_SSHD")
    for candidate in SSHD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise EnvironmentProblem(
        "sshd not found: install the openssh-server package (apt-get install openssh-server xauth)"
    )


_versions: dict[tuple[str, int, int], str] = {}


def sshd_version(sshd: str) -> str:
    """`_sshd_version` once per binary (path, inode, mtime) in this process: two programs run
    at every start otherwise."""
    try:
        info = os.stat(sshd)
    except OSError:
        return _sshd_version(sshd)
    key = (sshd, info.st_ino, info.st_mtime_ns)
    if key not in _versions:
        _versions[key] = _sshd_version(sshd)
    return _versions[key]


def _sshd_version(sshd: str) -> str:
    """'OpenSSH_9.2p1 Debian-2+deb12u3' style string, from `sshd -V` (9.x) or the usage text.

    Only the system's sshd (the package's path) gets the package suffix from the ssh client of
    the same package; an upstream build or SSHSIM_SSHD reports its own `sshd -V` alone (a
    9.2p1 build beside Debian's 9.2p1 client is not "Debian-2+deb12u10")."""
    out = subprocess.run([sshd, "-V"], capture_output=True, text=True)
    text = (out.stderr or out.stdout).strip().splitlines()
    # Before 9.x, -V is an unknown option: the version is the usage text's first OpenSSH_ line.
    named = [row for row in text if row.startswith("OpenSSH_")] or text
    short = named[0].split(",")[0] if named else "unknown"
    if sshd not in SSHD_CANDIDATES:
        return short
    # Debian's sshd -V omits the package suffix that its version string carries; the ssh client
    # of the same source package has it ("OpenSSH_9.2p1 Debian-2+deb12u10").
    try:
        # The client installed beside this sshd (/usr/sbin/sshd -> /usr/bin/ssh) only: an
        # upstream build (SSHSIM_SSHD) of the same number is not the distribution's package.
        client_path = Path(sshd).resolve().parent.parent / "bin" / "ssh"
        if not client_path.is_file():
            return short
        client = subprocess.run([str(client_path), "-V"], capture_output=True, text=True, timeout=5)
        full = (client.stderr or client.stdout).strip().split(",")[0]
    except (OSError, subprocess.SubprocessError):
        return short
    return full if full.startswith(short) else short


def build_sftp_server(sshd: str) -> str | None:
    """The sftp-server installed with an upstream build (`<prefix>/libexec/`), if there is one."""
    candidate = Path(sshd).parent.parent / "libexec" / "sftp-server"
    return str(candidate) if os.access(candidate, os.X_OK) else None


def _reachable_copy(program: str, work: Path) -> str:
    """`program` placed in the run's folder: the session runs it as the scenario's user, who
    cannot pass through root's 0700 home, where the build cache usually is
    (~/.cache/sshsim). A hard link where the file system allows it, else a copy."""
    folder = work / "libexec"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    placed = folder / Path(program).name
    try:
        os.link(program, placed)
    except OSError:
        shutil.copy2(program, placed)
    os.chmod(placed, 0o755)
    return str(placed)


def check_environment(sshd: str | None = None) -> str:
    """Raise a one-line EnvironmentProblem when this machine cannot run the local target;
    return the sshd to run (`sshd`, an upstream build's, else the system's)."""
    sshd = sshd or find_sshd()
    if os.geteuid() != 0:
        raise EnvironmentProblem(
            "the local sshd target needs root (sshd privilege separation and mount namespaces); "
            "run as root, or use the Docker target (--target docker)"
        )
    if not Path("/proc/self/ns/mnt").exists() or not Path("/proc/self/ns/pid").exists():
        raise EnvironmentProblem(
            "the local sshd target needs mount and pid namespaces, which this kernel does not offer; "
            "use the Docker target (--target docker)"
        )
    return sshd


class LocalSshd(ManagedTarget):
    """A private sshd on loopback, started and stopped by this object."""

    def __init__(
        self,
        spec: ServerSpec | None = None,
        *,
        log_path: Path | str | None = None,
        echo: IO[str] | None = None,
        keep_workdir: bool = False,
        sshd: str | None = None,
        stderr_args: tuple[str, ...] = (),
    ) -> None:
        """`sshd`: an upstream build's sshd (simulator/builds); None: the system's (SSHSIM_SSHD
        overrides which one that is). `stderr_args`: sshd's own logging options, ("-e",) or
        ("-d", "-e") (one connection, no fork), to reproduce an `sshd -d`/`-e` log: sshd then logs
        to its stderr, read with `stderr_lines` before `stop`."""
        self.spec = spec or ServerSpec()
        self._sshd = sshd
        self.stderr_args = tuple(stderr_args)
        self.log_path = Path(log_path) if log_path else None
        self._echo = echo
        self._keep_workdir = keep_workdir
        self.workdir: Path | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.log: SyslogReceiver
        self.version = ""
        self._proc: subprocess.Popen | None = None
        self._status_r: int | None = None
        self._status_buf = b""
        self._init_pid: int | None = None
        self._identities: dict[str, Path] = {}
        self._log_stream: LogStream | None = None
        # Why the log file stopped early (a full disk), if it did; the records are all kept.
        self.log_error: SshsimError | None = None
        self.config_text = ""
        self._rendered: Rendered | None = None

    # -- public ---------------------------------------------------------------------------
    @property
    def listener_pid(self) -> int | None:
        """Host pid of the sshd listener (the only child of the namespace's init)."""
        if self._init_pid is None:
            return None
        kids = children_of(self._init_pid)
        return kids[0] if kids else None

    def alive(self) -> bool:
        """True while the launcher (and so sshd) is running."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> LocalSshd:
        check_overrides(self.spec)  # bad input fails before anything is made
        if self.spec.config_file is not None:
            check_user_config(self.spec.config_file, self.spec)
        sshd = check_environment(self._sshd)
        self.version = sshd_version(sshd)
        # Scenario lines meant for other versions are left out (`requires:` on an sshd_config line).
        self.spec = for_version(self.spec, self.version)
        try:
            self._prepare(sshd)
            self._launch()
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM to the launcher (passed down to sshd); SIGKILL after `timeout`; remove all."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._init_pid is not None:
            _wait_gone(self._init_pid, timeout)
        if self._status_r is not None:
            os.close(self._status_r)
            self._status_r = None
        if getattr(self, "log", None) is not None:
            try:
                self.log.close()
            except OSError:
                pass
        if self._log_stream is not None:
            self._log_stream.close(raise_error=False)
            self.log_error = self._log_stream.error
            self._log_stream = None
        if self.workdir is not None and not self._keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def stderr_lines(self, timeout: float = 5.0) -> list[str]:
        """What sshd wrote to its stderr (its log, with `stderr_args`); in debug mode (-d) sshd
        ends after its one connection, so this waits up to `timeout` for it to end first."""
        if self.workdir is None:
            return []
        if "-d" in self.stderr_args:
            deadline = time.monotonic() + timeout
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        try:
            return (self.workdir / "sshd.stderr").read_text(errors="replace").splitlines()
        except OSError:
            return []

    def wait_idle(self, timeout: float = 10.0, settle: float = 0.05) -> None:
        """Wait until the listener has no connection processes left, then drain the log."""
        listener = self.listener_pid
        if listener is not None:
            wait_no_descendants(listener, time.monotonic() + timeout, settle)
        self.log.flush()

    # -- set-up ---------------------------------------------------------------------------
    def _prepare(self, sshd: str) -> None:
        spec = self.spec
        self.workdir = make_workdir("sshsim-")
        os.chmod(self.workdir, 0o711)
        work = self.workdir
        listen = usable_listen_addresses(spec.listen)
        self.host = listen[0] if ":" not in listen[0] else f"[{listen[0]}]"
        self.port = chosen_port(spec.port, listen) if spec.port is not None else free_port(listen)
        # An upstream build's own sftp-server goes with its sshd; else the system's.
        built = build_sftp_server(sshd) if sshd not in SSHD_CANDIDATES else None
        sftp = _reachable_copy(built, work) if built else sftp_server()

        user_config = spec.config_file
        if user_config is not None and not spec.own_host_keys:
            # Fresh keys of the types the user's file names (simulator/target/userconfig.py).
            host_keys = write_host_keys(dataclasses.replace(spec, host_key_types=user_config.host_key_types()),
                                        work / "hostkeys")
        else:
            host_keys = write_host_keys(spec, work / "hostkeys")
        home_root = work / "home"
        home_root.mkdir(mode=0o755)
        self._identities = write_users(spec, work / "client", home_root)
        chroot_logs = prepare_chroots(spec, work / "srv") if spec.chroot_dirs else []

        accounts = write_account_files(spec, work / "etc")
        pam = work / "pam-sshd"
        pam.write_text(resources.files("simulator.data").joinpath(f"pam/{spec.pam_profile}").read_text())

        if user_config is not None and not spec.own_host_keys:
            include_dir = work / "include"
            include_dir.mkdir(mode=0o700)
            self._rendered = build_user_config(spec, port=self.port, listen=listen, host_keys=host_keys,
                                               pid_file=str(work / "sshd.pid"), include_dir=include_dir,
                                               sftp=sftp)
            for name, text in self._rendered.includes.items():
                (include_dir / name).write_text(text)
            self.config_text = self._rendered.text
        else:
            self.config_text = render_config(
                spec,
                port=self.port,
                listen=listen,
                host_keys=host_keys,
                pid_file=str(work / "sshd.pid"),
                max_startups=max_startups(spec),
                per_source_penalties=has_feature(self.version, "per_source_penalties"),
                kbd_interactive_alone=has_feature(self.version, "kbd_interactive_alone"),
                sftp_server=sftp or DEBIAN_SFTP_SERVER,
            )
        (work / "sshd_config").write_text(self.config_text)

        # The capture socket is 0666 (the user child logs as its own uid) inside a 0700 folder:
        # processes of the namespace reach it through the /dev/log bind mount, whose path is
        # theirs, while host users cannot even reach the socket to inject lines.
        capture = work / "capture"
        capture.mkdir(mode=0o700)
        os.chmod(capture, 0o700)
        socket_path = capture / "log.sock"
        self._log_stream = LogStream(self.log_path, force=True) if self.log_path else None
        self.log = SyslogReceiver(socket_path, host=spec.host_name,
                                  on_record=self._on_record if (self._echo or self._log_stream) else None)
        self.log.start()

        self._spec_file = work / "nsinit.spec"  # marshal: the launcher reads it without importing json
        self._spec_data = {
            "sshd": sshd,
            "config": str(work / "sshd_config"),
            "log_socket": str(socket_path),
            "passwd": str(accounts["passwd"]),
            "group": str(accounts["group"]),
            "shadow": str(accounts["shadow"]),
            "pam_sshd": str(pam),
            "home": str(home_root),
            "srv": str(work / "srv") if spec.chroot_dirs else None,
            "chroot_dev_logs": chroot_logs,
            "stderr": str(work / "sshd.stderr"),
            "extra_args": [a for a in self.stderr_args if a in ("-d", "-e")],
            "first_pid": spec.first_pid if spec.first_pid is not None else random.randint(1000, 30000),
        }

    def _on_record(self, record: Any) -> None:
        line = record.classic(self.spec.host_name)
        if self._log_stream is not None:
            self._log_stream.write(line)
        if self._echo is not None:
            self._echo.write(line + "\n")
            self._echo.flush()

    def _launch(self) -> None:
        assert self.workdir is not None
        status_r, status_w = os.pipe()
        os.set_blocking(status_r, False)
        self._status_r = status_r
        data = dict(self._spec_data, status_fd=status_w, parent=os.getpid())
        self._spec_file.write_bytes(marshal.dumps(data))
        try:
            self._proc = subprocess.Popen(
                # The launcher's file run alone (-I -S: no site, no package import): it needs only
                # the standard library, and importing the package cost more than sshd's own start.
                [sys.executable, "-I", "-S", str(Path(__file__).with_name("nsinit.py")), str(self._spec_file)],
                stdin=subprocess.DEVNULL,
                pass_fds=(status_w,),
                # Own session: a terminal's Ctrl-C reaches only us; we stop sshd in order.
                start_new_session=True,
                env=_child_env(),
            )
        finally:
            os.close(status_w)

    def _status_events(self) -> list[dict[str, Any]]:
        assert self._status_r is not None
        try:
            while chunk := os.read(self._status_r, 65536):
                self._status_buf += chunk
        except BlockingIOError:
            pass
        events = []
        # nsinit.Status's frames: a 4-byte length, then a marshalled dict
        while len(self._status_buf) >= 4:
            size = int.from_bytes(self._status_buf[:4], "big")
            if len(self._status_buf) < 4 + size:
                break
            events.append(marshal.loads(self._status_buf[4:4 + size]))
            self._status_buf = self._status_buf[4 + size:]
        return events

    def _wait_ready(self, timeout: float) -> None:
        assert self.workdir is not None and self._proc is not None
        pid_file = self.workdir / "sshd.pid"
        deadline = time.monotonic() + timeout
        while True:
            for event in self._status_events():
                if event["event"] == "init":
                    self._init_pid = int(event["pid"])
                elif event["event"] == "error":
                    raise self._failure(event)
                elif event["event"] == "exited":
                    raise self._failure({"stage": "start", "message": f"sshd exited with {event['code']}"})
            if pid_file.exists() and pid_file.stat().st_size > 0:
                return
            if "-d" in self.stderr_args and _says_listening(self.workdir / "sshd.stderr"):
                return  # debug mode writes no pid file; it says it listens once it does
            if self._proc.poll() is not None:
                for event in self._status_events():
                    if event["event"] in ("error", "exited"):
                        raise self._failure(event if event["event"] == "error" else
                                            {"stage": "start", "message": f"sshd exited with {event['code']}"})
                raise self._failure({"stage": "start", "message": f"launcher exited with {self._proc.returncode}"})
            if time.monotonic() > deadline:
                raise TargetError(f"sshd did not become ready within {timeout:.0f} s")
            time.sleep(0.002)

    def _failure(self, event: dict[str, Any]) -> SshsimError:
        stage = event.get("stage")
        message = " ".join(str(event.get("message", "")).split())
        if stage == "config":
            raw = str(event.get("message", ""))
            if self.spec.config_file is not None and self.workdir is not None and self._rendered is not None:
                at_user = map_error(raw, self._rendered, str(self.workdir / "sshd_config"),
                                    str(self.workdir / "include"), self.spec.config_file)
                if at_user is not None:
                    return at_user
            return (config_error(raw, self.config_text, self.spec)
                    or TargetError(f"sshd rejected the configuration: {generic_config_message(raw)}"))
        if stage == "listen":
            return BadInputError(f"sshd would listen on {message}, beyond loopback; the private sshd "
                                 "listens on loopback only", key="server.sshd_config")
        if stage == "unshare":
            return EnvironmentProblem(
                f"cannot create mount/pid namespaces ({message}); use the Docker target (--target docker)"
            )
        extra = ""
        if stage == "start" and self.workdir is not None:
            self.log.flush()
            said = [r.message for r in self.log.records][-3:]
            err = (self.workdir / "sshd.stderr")
            if err.exists():
                said += err.read_text(errors="replace").split("\n")[-3:]
            said = [s for s in said if s.strip()]
            if said:
                extra = ": " + " | ".join(said)
        return TargetError(f"sshd failed to start ({stage}): {message}{extra}")


def _child_env() -> dict[str, str]:
    """The launcher must import this package even when it is run from a source tree."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _says_listening(stderr: Path) -> bool:
    """sshd's stderr has its "Server listening on" line (its readiness in debug mode)."""
    try:
        return b"Server listening on" in stderr.read_bytes()
    except OSError:
        return False


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state == "Z":
            return
        time.sleep(0.005)
