"""The Docker target: the scenario's sshd in a container of a chosen distribution and version.

Same shape as `LocalSshd` (start/stop, `identity`, `wait_idle`, `log`, `host`, `port`,
`version`, context managers), so the driver and the commands do not care which one runs::

    with DockerSshd(ServerSpec(log_level="DEBUG1"), "debian-13") as server:
        ...connect to server.host:server.port with server.identity("user")...
        server.wait_idle()
        lines = server.log.lines()

How the container is run, and why:
- Host networking, sshd listening on 127.0.0.1 (and ::1) at a port free on the host: the driver
  connects to loopback exactly as with the local target; no bridge, no container address.
- No per-scenario image. The images (docker/Dockerfile.*) hold only the distribution's sshd and
  rsyslog; each run bind-mounts a host directory at /run/sshsim (sshd_config, host keys, the
  pid file, the log sockets) plus /etc/passwd, group, shadow, /etc/pam.d/sshd and /home, all
  made by the same code as the local target's.
- The log. rsyslog in the container owns /dev/log, as on a production server, and writes the
  classic file (RSYSLOG_TraditionalFileFormat: "Mmm dd hh:mm:ss host prog[pid]: message"),
  which is bind-mounted from the host: that file is `log_path`, written live. The same rsyslog
  also forwards every line, as the datagram glibc's syslog(3) sends (priority, timestamp,
  prog[pid], message), to a `SyslogReceiver` socket of ours in /run/sshsim, so `log.records`
  carry program, pid and priority exactly as with the local target. Nothing is lost on the way:
  rsyslog's rate limit is off, sockets block rather than drop (sshd -> rsyslog -> receiver), and
  its forwarding action retries for ever. Timestamps are glibc's, not rsyslog's arrival time.
- `log.flush()` sends a mark into rsyslog's own socket (/dev/log links to /run/sshsim/devlog,
  so the host can reach it) and waits for rsyslog to hand it back: datagrams on one socket keep
  their order and rsyslog processes one message per batch with one worker, so every line logged
  before the call is then in `log.records` and in the file. Marks never reach the file.
- Cleanup on every exit path: `start` stops what it made when anything fails (KeyboardInterrupt
  included), `stop` stops and removes the container, and the engine removes it by itself once it
  exits (auto-remove). If this process dies without cleaning up (SIGKILL), the container notices:
  it reads a FIFO whose only writer is this process, sees end-of-file, and stops itself.
- `spec.first_pid` (the reference log's listener is 6682): a container's /proc/sys is read-only,
  so the entrypoint uses up the pids below it with short-lived subshells (about 2 s for 6682).
- Readiness is the pid file that sshd writes right after listen(), as for the local target (no
  TCP probe: it would add lines to the log).
- `wait_idle` watches sshd's processes through the host's /proc (a local engine's containers are
  host processes); with an engine whose processes are not visible it waits for the log to go
  quiet instead.

The `docker` SDK is an optional extra (`pip install docker`); it is imported only here, on use.
Any Docker Engine API works: Docker itself, or podman's (`docker/podman-engine.sh`).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import time
from importlib import resources
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from simulator.builds.features import features
from simulator.capture import syslog as syslog_mod
from simulator.capture.syslog import SyslogReceiver, SyslogRecord
from simulator.errors import EnvironmentProblem, TargetError
from simulator.io import LogStream
from simulator.target import images
from simulator.target.accounts import write_account_files
from simulator.target.base import ManagedTarget, ServerSpec
from simulator.target.chroots import prepare_chroots
from simulator.target.config import check_overrides, config_error, for_version, max_startups, render_config
from simulator.target.keys import write_host_keys, write_users
from simulator.target.listen import chosen_port, free_port, usable_listen_addresses
from simulator.target.procs import children_of, wait_no_descendants
from simulator.target.workdirs import make_workdir

# Where the per-run directory appears inside the container (the entrypoint's contract).
RUN_IN_CONTAINER = "/run/sshsim"
LOG_IN_CONTAINER = "/var/log/auth.log"
# The first OpenSSH version whose sshd takes PerSourcePenalties (simulator/data/openssh/features.yaml),
# as the entrypoint compares it ("9.8").
_PENALTIES_SINCE = ".".join(map(str, features()["per_source_penalties"].since))
ENGINE_HINT = (
    "start Docker (systemctl start docker), or podman's Docker API: as root "
    "'eval \"$(docker/podman-engine.sh start)\"', or 'podman system service --time=0 "
    "unix:///tmp/podman.sock &' and export DOCKER_HOST=unix:///tmp/podman.sock"
)


# -- the engine --------------------------------------------------------------------------------
def _docker_module() -> Any:
    try:
        import docker  # noqa: PLC0415 - optional extra
    except ImportError:
        raise EnvironmentProblem(
            "the Docker target needs the docker Python SDK: pip install docker (or sshsim[docker])"
        ) from None
    return docker


def engine_address() -> str:
    """Where the SDK will look for the engine (for messages)."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: float = 10.0) -> Any:
    """A docker client that has answered a ping, or a one-line EnvironmentProblem saying what to do."""
    docker = _docker_module()
    address = engine_address()
    _require_local_engine(address)
    if address.startswith("unix://") and not Path(address[len("unix://"):]).exists():
        raise EnvironmentProblem(f"no Docker engine: {address[len('unix://'):]} does not exist; {ENGINE_HINT}")
    try:
        client = docker.from_env(timeout=int(max(timeout, 1)))
        client.ping()
    except Exception as exc:  # the SDK raises DockerException, requests' and OS errors alike
        reason = _engine_reason(str(exc))
        raise EnvironmentProblem(f"no Docker engine answers at {address} ({reason}); {ENGINE_HINT}") from None
    return client


def _require_local_engine(address: str) -> None:
    """The container shares this machine's network and mounts its files: a remote engine cannot
    serve it, so refuse before sending it anything."""
    scheme = address.split("://", 1)[0].lower() if "://" in address else "tcp"
    if scheme in ("unix", "npipe"):
        return
    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    if scheme in ("tcp", "http", "https") and (host in ("localhost", "::1") or host.startswith("127.")):
        return
    raise EnvironmentProblem(
        f"DOCKER_HOST={address} is not an engine on this machine; the Docker target needs a local "
        "one (the container uses this host's loopback network and files)"
    )


def _engine_reason(text: str) -> str:
    """The useful end of the SDK's error chain ("[Errno 111] Connection refused")."""
    errno = re.findall(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if errno:
        return errno[-1].strip()
    return " ".join(text.split())[:120]


def engine_problem() -> str | None:
    """Why the Docker target cannot run here, or None when an engine answers (for test skips)."""
    try:
        connect(timeout=5).close()
    except EnvironmentProblem as exc:
        return str(exc)
    return None


# -- the log -----------------------------------------------------------------------------------
class RelayedSyslogReceiver(SyslogReceiver):
    """A SyslogReceiver fed by rsyslog's forwarding, whose flush goes through rsyslog.

    The base class learns that it has read everything by sending itself a mark; here lines
    travel sshd -> rsyslog -> us, so the mark must take the same road: it is sent into rsyslog's
    socket, and rsyslog's config turns it back into the base class's mark (docker/rsyslog.conf).
    """

    def __init__(self, path: Path, *, relay: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.relay = Path(relay)

    def _send_raw(self, data: bytes) -> None:
        if data.startswith(syslog_mod._FLUSH_MARK) and self.relay.exists():
            stamp = time.strftime("%b %d %H:%M:%S")
            if stamp[4] == "0":
                stamp = stamp[:4] + " " + stamp[5:]
            mark = f"<13>{stamp} sshsim-flush: {secrets.token_hex(4)}".encode()
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as out:
                    out.sendto(mark, str(self.relay))
                return
            except OSError:
                # rsyslog has stopped: all it forwarded is already queued on our own socket,
                # so the base class's direct mark drains it.
                pass
        super()._send_raw(data)


# -- the target --------------------------------------------------------------------------------
class DockerSshd(ManagedTarget):
    """sshd of a test image in a container on the host's network, started and stopped here."""

    def __init__(
        self,
        spec: ServerSpec | None = None,
        image: str | None = None,
        *,
        log_path: Path | str | None = None,
        echo: IO[str] | None = None,
        keep_workdir: bool = False,
        build: bool = True,
        client: Any = None,
    ) -> None:
        self.spec = spec or ServerSpec()
        self.image_name = image or images.DEFAULT_IMAGE
        self.image = ""
        self.log_path = Path(log_path).resolve() if log_path else None
        self._echo = echo
        self._keep_workdir = keep_workdir
        self._build = build
        self._client = client
        self._own_client = client is None
        self.workdir: Path | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.log: RelayedSyslogReceiver
        self.version = ""
        self.config_text = ""
        self.container_id: str | None = None
        self.container_name = ""
        self._container: Any = None
        self._alive_fd: int | None = None
        self._init_pid: int | None = None
        self._identities: dict[str, Path] = {}
        self._mounts: list[tuple[str, str, bool]] = []
        self.timings: dict[str, float] = {}

    # -- public ---------------------------------------------------------------------------
    @property
    def classic_log(self) -> Path | None:
        """The file rsyslog writes (log_path when given, else a file of the run directory)."""
        if self.log_path is not None:
            return self.log_path
        return self.workdir / "auth.log" if self.workdir is not None else None

    @property
    def listener_pid(self) -> int | None:
        """Host pid of the sshd listener, when this host can see the container's processes."""
        if self._init_pid is None or self.workdir is None:
            return None
        try:
            inner = int((self.workdir / "run" / "sshd.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        for child in children_of(self._init_pid):
            if _ns_pid(child) == inner:
                return child
        return None

    def alive(self) -> bool:
        """True while the container (and so sshd) runs."""
        if self._container is None or self.workdir is None or (self.workdir / "run" / "exited").exists():
            return False
        if self._init_pid is not None:
            return _pid_alive(self._init_pid)
        return _running(self._container)

    def start(self, timeout: float = 30.0) -> DockerSshd:
        check_overrides(self.spec)  # bad input fails before any engine is asked
        began = time.monotonic()
        try:
            if self._client is None:
                self._client = connect()
            self.image = images.ensure_image(self._client, self.image_name, build=self._build)
            self._lap("image", began)
            self._prepare()
            self._lap("prepare", began)
            self._run()
            self._lap("run", began)
            self._wait_ready(timeout)
            self._lap("ready", began)
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - began
        return self

    def _lap(self, name: str, began: float) -> None:
        """Seconds spent in each start-up step (for benchmarks and slow-start reports)."""
        self.timings[name] = time.monotonic() - began - sum(
            v for k, v in self.timings.items() if k in ("image", "prepare", "run", "ready"))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and remove the container, close the log, remove the run directory. Idempotent."""
        if self._alive_fd is not None:
            # The container's watchdog sees end-of-file and stops sshd itself, too.
            os.close(self._alive_fd)
            self._alive_fd = None
        container, self._container = self._container, None
        if container is not None:
            _stop_container(self._client, container, timeout)
        if getattr(self, "log", None) is not None:
            try:
                self.log.close()
            except OSError:
                pass
        if self.workdir is not None and not self._keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if self._own_client and self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None

    def wait_idle(self, timeout: float = 10.0, settle: float = 0.05) -> None:
        """Wait until no connection process is left, then until every line they logged is in."""
        deadline = time.monotonic() + timeout
        listener = self.listener_pid
        if listener is None:
            self._wait_quiet(deadline, max(settle, 0.3))
        else:
            wait_no_descendants(listener, deadline, settle)
        self.log.flush()

    # -- set-up ---------------------------------------------------------------------------
    def _prepare(self) -> None:
        spec = self.spec
        self.workdir = make_workdir("sshsim-docker-")
        # 0700: the container reaches what it needs through bind mounts; host users must not
        # reach the log sockets below (rsyslog's devlog, our receiver) to inject lines.
        os.chmod(self.workdir, 0o700)
        work = self.workdir
        run = work / "run"
        # 0755: the user child (uid 1000) logs through /dev/log -> /run/sshsim/devlog.
        run.mkdir(mode=0o755)
        os.chmod(run, 0o755)
        listen = usable_listen_addresses(spec.listen)
        self.host = listen[0] if ":" not in listen[0] else f"[{listen[0]}]"
        self.port = chosen_port(spec.port, listen) if spec.port is not None else free_port(listen)

        host_keys = write_host_keys(spec, run / "hostkeys", RUN_IN_CONTAINER + "/hostkeys")
        home_root = work / "home"
        home_root.mkdir(mode=0o755)
        self._identities = write_users(spec, work / "client", home_root)
        chroot_logs = prepare_chroots(spec, work / "srv") if spec.chroot_dirs else []
        # rsyslog in the container listens on the chroots' sockets too (rsyslog.conf includes it).
        (run / "extra-inputs.conf").write_text("".join(
            f'input(type="imuxsock" Socket="{path}" CreatePath="on" RateLimit.Interval="0" '
            f'UseSysTimeStamp="off" Annotate="off")\n' for path in chroot_logs))
        accounts = write_account_files(spec, work / "etc")
        pam = work / "pam-sshd"
        pam.write_text(resources.files("simulator.data").joinpath(f"pam/{spec.pam_profile}").read_text())

        context: dict[str, Any] = dict(port=self.port, listen=listen, host_keys=host_keys,
                                       pid_file=RUN_IN_CONTAINER + "/sshd.pid", max_startups=max_startups(spec))
        # 9.8 and later: KbdInteractiveAuthentication alone decides (since 8.7); the older config
        # below also writes ChallengeResponseAuthentication, which 8.7+ reads as the same switch.
        context["kbd_interactive_alone"] = True
        # The image's sshd version is known only once it runs: its two configs are decided as for
        # 9.8 and for 9.7 (a scenario line's `requires:` too; docs/scenario-format.md says so).
        self.config_text = render_config(for_version(spec, "9.8"), per_source_penalties=True, **context)
        (run / "sshd_config").write_text(self.config_text)
        # PerSourcePenalties is an error for sshd older than the feature table says; the
        # entrypoint picks this one there (SSHSIM_CONFIG_OLDER_BELOW): the image's own sshd decides.
        older = dict(context, kbd_interactive_alone=False)  # Debian 11's 8.4p1 among them
        (run / "sshd_config.older").write_text(render_config(for_version(spec, "9.7"), per_source_penalties=False,
                                                             **older))

        classic = self.classic_log
        assert classic is not None
        if self.log_path is not None:
            # A fresh file sshsim made (simulator/io.py): never an existing one, nor through a link.
            LogStream(classic, force=True).close()
        else:
            classic.write_text("")

        self.log = RelayedSyslogReceiver(
            run / "receiver.sock", relay=run / "devlog", host=spec.host_name,
            on_record=self._echo_record if self._echo else None,
        )
        self.log.start()

        os.mkfifo(run / "alive", 0o600)
        # Read-write so opening does not block; close-on-exec so no child of ours keeps it open.
        self._alive_fd = os.open(run / "alive", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)

        self._mounts = [
            (str(run), RUN_IN_CONTAINER, False),
            (str(accounts["passwd"]), "/etc/passwd", True),
            (str(accounts["group"]), "/etc/group", True),
            (str(accounts["shadow"]), "/etc/shadow", True),
            (str(pam), "/etc/pam.d/sshd", True),
            (str(home_root), "/home", False),
            (str(classic), LOG_IN_CONTAINER, False),
        ]
        if spec.chroot_dirs:
            self._mounts.append((str(work / "srv"), "/srv", False))
        if Path("/etc/localtime").is_file():
            # Same wall clock in the log lines as the host (and the local target) shows.
            self._mounts.append((str(Path("/etc/localtime").resolve()), "/etc/localtime", True))

    def _echo_record(self, record: SyslogRecord) -> None:
        assert self._echo is not None
        self._echo.write(record.classic(self.spec.host_name) + "\n")
        self._echo.flush()

    def _run(self) -> None:
        docker = _docker_module()
        mounts = [docker.types.Mount(target, source, type="bind", read_only=ro)
                  for source, target, ro in self._mounts]
        self.container_name = f"sshsim-sshd-{self.port}-{secrets.token_hex(3)}"
        try:
            self._container = self._client.containers.run(
                self.image,
                detach=True,
                name=self.container_name,
                network_mode="host",
                auto_remove=True,
                mounts=mounts,
                environment={"SSHSIM_HOSTNAME": self.spec.host_name, "SSHSIM_LOGFILE": LOG_IN_CONTAINER,
                             "SSHSIM_FIRST_PID": str(self.spec.first_pid or 0),
                             "SSHSIM_CONFIG_OLDER_BELOW": _PENALTIES_SINCE},
                labels={"sshsim": "sshd", "sshsim.owner-pid": str(os.getpid())},
            )
        except docker.errors.APIError as exc:
            why = _one_line(exc.explanation or str(exc))
            raise TargetError(f"the engine could not start {self.image}: {why}") from None
        self.container_id = self._container.id

    def _wait_ready(self, timeout: float) -> None:
        assert self.workdir is not None and self._container is not None
        run = self.workdir / "run"
        pid_file = run / "sshd.pid"
        deadline = time.monotonic() + timeout
        next_check = time.monotonic() + 0.2
        while True:
            if pid_file.exists() and pid_file.stat().st_size > 0:
                break
            if (run / "exited").exists():
                raise self._early_exit()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.2
                if not _running(self._container):
                    raise self._early_exit()
            if time.monotonic() > deadline:
                raise TargetError(f"sshd in {self.image} did not become ready within {timeout:.0f} s"
                                  + self._console_tail())
            time.sleep(0.005)
        self.version = _read(run / "version") or "unknown"
        try:
            self._container.reload()
            pid = int(self._container.attrs.get("State", {}).get("Pid") or 0)
            self._init_pid = pid if pid > 0 and Path(f"/proc/{pid}").exists() else None
        except Exception:
            self._init_pid = None

    def _early_exit(self) -> TargetError:
        """One line from what the container said before it ended (it may be removed already)."""
        assert self.workdir is not None
        lines = _tail_lines(self.workdir / "run" / "console.log")
        if not lines and self._container is not None:
            try:
                lines = _tail_lines_text(self._container.logs(tail=20).decode(errors="replace"))
            except Exception:
                pass
        code = _read(self.workdir / "run" / "exited")
        # sshd names the offending line first, then says "terminating, N bad options".
        config_lines = ([line for line in lines if re.search(r"sshd_config\S*:? line \d+", line)]
                        or [line for line in lines if "sshd_config" in line])
        at_override = config_error("\n".join(config_lines), self.config_text, self.spec) if config_lines else None
        if at_override is not None:
            return at_override  # type: ignore[return-value]
        if config_lines:
            detail = re.sub(r"/run/sshsim/sshd_config(\.older)?:?", "sshd_config", config_lines[0])
            return TargetError(f"sshd in {self.image} rejected the configuration: {detail}")
        # sshd -D reports start-up failures such as a busy port to syslog, not to stderr.
        try:
            self.log.flush(timeout=1.0)
            logged = [r.message for r in self.log.records if r.program.startswith("sshd")][-2:]
        except (OSError, TimeoutError, AttributeError):
            logged = []
        lines = [line for line in lines if "rsyslogd: [origin" not in line]
        said = " | ".join(logged + lines[-2:]) if (logged or lines) else "no output"
        status = f" with status {code}" if code else ""
        return TargetError(f"the container of {self.image} exited early{status}: {said}")

    def _console_tail(self) -> str:
        assert self.workdir is not None
        lines = _tail_lines(self.workdir / "run" / "console.log")
        return (": " + " | ".join(lines[-3:])) if lines else ""

    def _wait_quiet(self, deadline: float, quiet: float) -> None:
        """Fallback idle test: no new record for `quiet` seconds."""
        count = len(self.log.records)
        since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = len(self.log.records)
            if now != count:
                count, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return


def docker_target(spec: ServerSpec, image: str | None = None, log_path: Path | str | None = None,
                  **kwargs: Any) -> DockerSshd:
    """The target for `--target docker[:IMAGE]` (not started: use it as a context manager)."""
    return DockerSshd(spec, image, log_path=log_path, **kwargs)


# -- helpers -----------------------------------------------------------------------------------
def _stop_container(client: Any, container: Any, timeout: float) -> None:
    """SIGTERM (the entrypoint stops sshd, then rsyslog), SIGKILL after `timeout`, then remove."""
    # imported here: optional extra: the docker SDK only for --target docker
    import docker.errors

    try:
        container.stop(timeout=int(max(timeout, 1)))
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError:
        pass
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError:
        pass  # 409: the engine is already removing it (auto-remove)
    # Return only once it is gone, so "nothing left running" holds when stop() returns.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.containers.get(container.id)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            return
        time.sleep(0.05)


def _running(container: Any) -> bool:
    # imported here: optional extra: the docker SDK only for --target docker
    import docker.errors

    try:
        container.reload()
    except docker.errors.APIError as exc:
        if _gone(exc):
            return False
        # podman answers 500 ("read /proc/N/cgroup: no such process") while a container exits:
        # not a verdict, the caller asks again.
        return True
    return container.status in ("created", "running")


def _gone(exc: Exception) -> bool:
    """NotFound, or podman's 500 "no such container" while it is auto-removing one."""
    # imported here: optional extra: the docker SDK only for --target docker
    import docker.errors

    return isinstance(exc, docker.errors.NotFound) or "no such container" in str(exc).lower()


def _pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _ns_pid(pid: int) -> int | None:
    """The pid `pid` has in its own (innermost) pid namespace."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _tail_lines(path: Path, count: int = 10) -> list[str]:
    return _tail_lines_text(_read(path))[-count:]


def _tail_lines_text(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
