"""Shared fixtures: a real private sshd (the local target) and the reference log.

Tests that need the local target skip, with the reason, where the machine cannot run it (not
root, no sshd, no namespaces). CI runs as root with openssh-server installed, so there they run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from simulator.cli import main
from simulator.errors import SshsimError

ROOT = Path(__file__).resolve().parents[1]
SEED_LOG_CANDIDATES = (
    ROOT.parent / "shared" / "seed" / "sshd-debug1-motty-secureblackbox.log",
    ROOT / "tests" / "data" / "seed" / "sshd-debug1-motty-secureblackbox.log",
)


def local_target_problem() -> str | None:
    """Why the local sshd target cannot run here, or None when it can."""
    from simulator.target.local import check_environment

    try:
        check_environment()
    except SshsimError as exc:
        return str(exc)
    if shutil.which("unshare") is None and not Path("/proc/self/ns/mnt").exists():
        return "no mount namespaces"
    return None


def running(command: str) -> list[str]:
    """Pids of the processes whose command line ends in `command` (a test's own server-side
    command, such as "sleep 31"), never one that merely contains it: "sleep 300" elsewhere on
    the machine holds "sleep 30" too."""
    pattern = r"(^|[ /])" + re.escape(command) + "$"
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run `sshsim ARGV` in this process, as the console script does; (exit code, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(argv)
    out, err = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out, err


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--accept-goldens", action="store_true", default=False,
                     help="tests/test_goldens.py: write the goldens of the selected tests from fresh passing runs "
                          "(docs/goldens.md).")


_PROBLEM = local_target_problem()
needs_local_sshd = pytest.mark.skipif(_PROBLEM is not None, reason=f"local sshd target unavailable: {_PROBLEM}")


@pytest.fixture
def sshd_server() -> Iterator["object"]:
    """A started LocalSshd with the default spec (user 'user', LogLevel DEBUG1)."""
    if _PROBLEM is not None:
        pytest.skip(f"local sshd target unavailable: {_PROBLEM}")
    from simulator.target.base import ServerSpec
    from simulator.target.local import LocalSshd

    server = LocalSshd(ServerSpec()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_sshd_factory() -> Iterator["object"]:
    """Start LocalSshd instances with a given ServerSpec; all are stopped at teardown."""
    if _PROBLEM is not None:
        pytest.skip(f"local sshd target unavailable: {_PROBLEM}")
    from simulator.target.local import LocalSshd

    started: list[LocalSshd] = []

    def start(spec: object = None, **kwargs: object) -> LocalSshd:
        server = LocalSshd(spec, **kwargs).start()  # type: ignore[arg-type]
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def built_sshd() -> Iterator["object"]:
    """`built_sshd(version)`: the path of that upstream sshd in sshsim's cache ($SSHSIM_CACHE),
    built on first use as `--target local:VERSION` would (simulator/builds/build.py)."""
    from simulator.builds.build import ensure_sshd

    found: dict[str, Path] = {}

    def get(version: str) -> Path:
        if version not in found:
            found[version] = ensure_sshd(version)
        return found[version]

    yield get


def docker_engine_problem() -> str | None:
    """Why no Docker Engine API is reachable here, or None when one answers."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the docker Python SDK is not installed (pip install docker)"
    from simulator.target.docker import engine_problem

    return engine_problem()


@pytest.fixture(scope="session")
def seed_log_path() -> Path:
    """The reference log (two concurrent connections to OpenSSH 8.9p1, DEBUG1)."""
    for candidate in SEED_LOG_CANDIDATES:
        if candidate.exists():
            return candidate
    pytest.fail("reference log not found in ../shared/seed or tests/data/seed")


def client_connect_args(server: object, user: str = "user") -> dict:
    """asyncssh.connect keyword arguments for a key login to `server`."""
    host = server.host.strip("[]")  # type: ignore[attr-defined]
    return dict(host=host, port=server.port, username=user,  # type: ignore[attr-defined]
                client_keys=[str(server.identity(user))], known_hosts=None)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback only: no proxy variable may redirect a test connection."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("SSHSIM_TESTING", "1")
