"""`sshsim build-sshd`, `sshsim versions` and the per-version cache, with real builds.

One real build (10.3p1, its tarball fetched from Debian's source archive through a private apt
state, the release site made unreachable so that path is the one taken) into a temp cache is
shared by the module; the error cases are real failed builds through the CLI. A missing compiler
or header fails these tests: CI runs `sshsim setup --tests`, which installs them.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, needs_local_sshd

from simulator.builds.aptsources import AptSource, debian_mirror, machine_sources, parse_deb822, parse_one_line
from simulator.builds.build import ensure_sshd, log_path
from simulator.builds.cache import install_dir, installed_sshd
from simulator.builds.tarballs import PrivateApt, choose_source_version, parse_source_stanzas
from simulator.builds.versions import known_versions

VERSION = "10.3p1"
# A closed loopback port: the release site refuses at once, so the tarball comes through apt.
UNREACHABLE_RELEASE_SITE = "http://127.0.0.1:9/"


def _env(cache: Path) -> dict[str, str]:
    return dict(os.environ, SSHSIM_CACHE=str(cache), SSHSIM_OPENSSH_MIRROR=UNREACHABLE_RELEASE_SITE)


def sshsim(*args: str, cache: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True, text=True, cwd=ROOT,
                          env=_env(cache), timeout=timeout, stdin=subprocess.DEVNULL)


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The command's single error line (progress lines before it are `build-sshd ...`)."""
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("sshsim:")]
    assert len(errors) == 1, out.stderr
    assert out.stderr.rstrip("\n").splitlines()[-1] == errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, list[str]]]:
    """(cache, sshd, progress lines) of a real build of VERSION into a cache of its own."""
    cache = tmp_path_factory.mktemp("sshsim-cache")
    saved = {name: os.environ.get(name) for name in ("SSHSIM_CACHE", "SSHSIM_OPENSSH_MIRROR")}
    os.environ.update(SSHSIM_CACHE=str(cache), SSHSIM_OPENSSH_MIRROR=UNREACHABLE_RELEASE_SITE)
    try:
        progress: list[str] = []
        sshd = ensure_sshd(VERSION, progress=progress.append)
        yield cache, sshd, progress
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def test_build_goes_through_every_stage_and_debian(built: tuple[Path, Path, list[str]]) -> None:
    cache, sshd, progress = built
    stages = [stage for stage in ("fetching", "configuring", "compiling", "installing")
              if any(f"build-sshd {VERSION}: {stage}" in line for line in progress)]
    assert stages == ["fetching", "configuring", "compiling", "installing"], progress
    assert any("tarball from Debian's source archive" in line for line in progress), progress
    assert sshd == cache / "openssh" / VERSION / "sbin" / "sshd"
    tarball = cache / "tarballs" / f"openssh-{VERSION}.tar.gz"
    assert tarball.stat().st_size == known_versions()[VERSION].size
    assert not list((cache / "tmp").iterdir()), "the build's temp folder was left behind"


def test_built_sshd_reports_its_version(built: tuple[Path, Path, list[str]]) -> None:
    _, sshd, _ = built
    out = subprocess.run([str(sshd), "-V"], capture_output=True, text=True)
    assert (out.stderr + out.stdout).startswith(f"OpenSSH_{VERSION}, OpenSSL")


def test_installed_sshd_finds_the_build_and_its_manifest(built: tuple[Path, Path, list[str]]) -> None:
    cache, sshd, _ = built
    prefix = install_dir(VERSION)
    assert prefix == cache / "openssh" / VERSION
    assert installed_sshd(VERSION) == sshd
    manifest = json.loads((prefix / "build.json").read_text())
    assert manifest["prefix"] == str(prefix)
    assert manifest["tarball_sha256"] == known_versions()[VERSION].sha256
    assert f"--with-privsep-path={prefix}/empty" in manifest["configure"]
    assert manifest["sshd_version"].startswith(f"OpenSSH_{VERSION}")
    for helper in ("sshd-session", "sshd-auth", "sftp-server"):
        assert os.access(prefix / "libexec" / helper, os.X_OK), helper
    empty = (prefix / "empty").stat()
    assert (empty.st_mode & 0o777, empty.st_uid, list((prefix / "empty").iterdir())) == (0o755, os.geteuid(), [])
    assert (prefix / "etc" / "moduli").stat().st_size > 0
    # The paths sshd execs and chroots into are compiled in: the binary names its own prefix.
    assert str(prefix / "libexec" / "sshd-session").encode() in sshd.read_bytes()


def test_second_ensure_returns_the_build_without_building(built: tuple[Path, Path, list[str]]) -> None:
    _, sshd, _ = built
    manifest = install_dir(VERSION) / "build.json"
    before = (manifest.stat().st_mtime_ns, sshd.stat().st_mtime_ns, log_path(VERSION).stat().st_mtime_ns)
    progress: list[str] = []
    assert ensure_sshd(VERSION, progress=progress.append) == sshd
    assert progress == []
    assert (manifest.stat().st_mtime_ns, sshd.stat().st_mtime_ns, log_path(VERSION).stat().st_mtime_ns) == before
    out = sshsim("build-sshd", VERSION, cache=built[0])
    assert (out.returncode, out.stdout, out.stderr) == (0, f"{VERSION}: already built: {sshd}\n", "")


def test_versions_lists_the_build(built: tuple[Path, Path, list[str]]) -> None:
    cache, sshd, _ = built
    out = sshsim("versions", "--json", cache=cache)
    assert out.returncode == 0, out.stderr
    rows = {row["version"]: row for row in json.loads(out.stdout)["versions"]}
    assert rows[VERSION]["built"] is True and rows[VERSION]["sshd"] == str(sshd)
    assert rows["8.4p1"]["built"] is False and rows["8.4p1"]["ci"] is True
    assert set(rows) == set(known_versions())
    text = sshsim("versions", cache=cache).stdout
    assert [VERSION, "built", str(sshd)] in [line.split()[:3] for line in text.splitlines()]


@needs_local_sshd
def test_built_sshd_serves_a_scenario(built: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    """The installed layout works as a whole: sshd execs its sshd-session and sshd-auth from the
    prefix, chroots into its empty folder, and a password login through PAM is logged by them."""
    cache, sshd, _ = built
    log = tmp_path / "run.log"
    env = dict(_env(cache), SSHSIM_SSHD=str(sshd))
    out = subprocess.run([sys.executable, "-m", "simulator", "run", "scenarios/library/password-success.yaml",
                          "--log-out", str(log)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    text = log.read_text()
    assert "sshd-session[" in text and "Accepted password for alice" in text


def test_the_private_apt_index_chooses_the_source_that_carries_the_tarball(
        built: tuple[Path, Path, list[str]]) -> None:
    """On the real source index the module's build updated: the pinned version is chosen; once it is
    gone, another version with the same orig sha256 is; a tarball no version carries, none."""
    known = known_versions()[VERSION]
    with open(os.devnull, "w") as sink:
        shown = PrivateApt(known.debian_suite, sink).run("apt-cache", "showsrc", "openssh")
    stanzas = parse_source_stanzas(shown.stdout)
    assert (known.debian_source, {known.orig_file: known.sha256}) in [
        (v, {f: s for f, s in files.items() if f == known.orig_file}) for v, files in stanzas]
    assert choose_source_version(stanzas, known) == known.debian_source
    gone = type(known)(**{**known.__dict__, "debian_source": "1:0.0p0-0"})
    assert choose_source_version(stanzas, gone) == known.debian_source
    changed = type(known)(**{**known.__dict__, "sha256": "0" * 64})
    assert choose_source_version(stanzas, changed) is None


def test_unknown_version_is_one_error(tmp_path: Path) -> None:
    line = one_error_line(sshsim("build-sshd", "1.2p3", cache=tmp_path))
    assert "unknown OpenSSH version 1.2p3" in line and "--tarball" in line
    line = one_error_line(sshsim("build-sshd", "../x", cache=tmp_path))
    assert "not an OpenSSH portable version" in line
    assert not (tmp_path / "openssh").exists()


def test_tarball_with_a_wrong_checksum_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake.tar.gz"
    _write_tar(fake, {f"openssh-{VERSION}/configure": b"#!/bin/sh\nexit 0\n"})
    line = one_error_line(sshsim("build-sshd", VERSION, "--tarball", str(fake), cache=tmp_path / "cache"))
    assert f"{fake}: sha256 " in line and known_versions()[VERSION].sha256 in line
    assert installed_sshd_in(tmp_path / "cache") == []
    assert not list((tmp_path / "cache" / "tarballs").iterdir())


def test_failed_configure_is_one_error_with_its_last_lines(built: tuple[Path, Path, list[str]],
                                                           tmp_path: Path) -> None:
    """A real release tree whose configure fails: the error quotes configure's last words and
    names the log, nothing is installed and no temp folder is left."""
    broken = _release_with_configure(built[0], tmp_path, "0.1p1",
                                     "echo 'checking for OpenSSL headers... no'\n"
                                     "echo 'configure: error: *** OpenSSL headers missing' >&2\nexit 1\n")
    cache = tmp_path / "cache"
    line = one_error_line(sshsim("build-sshd", "0.1p1", "--tarball", str(broken), cache=cache))
    assert "configure exited 1" in line
    assert "configure: error: *** OpenSSL headers missing" in line
    assert line.endswith(f"full log: {cache / 'logs' / 'openssh-0.1p1.log'}")
    assert installed_sshd_in(cache) == [] and not list((cache / "tmp").iterdir())


def test_tarball_outside_its_version_folder_is_refused(built: tuple[Path, Path, list[str]],
                                                       tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.tar.gz"
    _write_tar(elsewhere, {"openssh-0.2p1/configure": b"#!/bin/sh\nexit 0\n", "../escape": b"x"})
    line = one_error_line(sshsim("build-sshd", "0.2p1", "--tarball", str(elsewhere), cache=tmp_path))
    assert "'../escape' outside openssh-0.2p1/" in line
    assert not (tmp_path.parent / "escape").exists()


def test_interrupted_build_leaves_no_temp_folder_and_no_process(built: tuple[Path, Path, list[str]],
                                                                tmp_path: Path) -> None:
    marker = f"sshsim-test-configure-{os.getpid()}"
    script = f"echo configuring\nexec env SSHSIM_TEST_MARKER={marker} sleep 300\n"
    slow = _release_with_configure(built[0], tmp_path, "0.3p1", script)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "simulator", "build-sshd", "0.3p1", "--tarball", str(slow)]
    proc = subprocess.Popen(command, cwd=ROOT, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while not _sleepers(marker):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert err.splitlines()[-1] == "sshsim: interrupted by SIGTERM"
    assert _sleepers(marker) == []
    assert list((cache / "tmp").iterdir()) == []
    assert installed_sshd_in(cache) == []


def test_two_builds_of_one_version_take_turns(built: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    """The second build of a version waits for the first one's lock instead of building beside it
    in the same prefix (here both fail at configure, each in turn)."""
    marker = f"sshsim-test-lock-{os.getpid()}"
    tarball = _release_with_configure(built[0], tmp_path, "0.5p1",
                                      f"env SSHSIM_TEST_MARKER={marker} sleep 3\nexit 1\n")
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "simulator", "build-sshd", "0.5p1", "--tarball", str(tarball)]
    first = subprocess.Popen(command, cwd=ROOT, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not _sleepers(marker):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = sshsim(*command[3:], cache=cache, timeout=120)
        _, first_err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert "waiting for another build of it to finish" in second.stderr
    assert "waiting" not in first_err
    for out in (subprocess.CompletedProcess(command, first.returncode, "", first_err), second):
        assert "configure exited 1" in one_error_line(out)


def test_symlinked_tarball_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.tar.gz"
    _write_tar(real, {"openssh-0.6p1/configure": b"#!/bin/sh\nexit 0\n"})
    (tmp_path / "link.tar.gz").symlink_to(real)
    line = one_error_line(sshsim("build-sshd", "0.6p1", "--tarball", str(tmp_path / "link.tar.gz"),
                                 cache=tmp_path / "cache"))
    assert line.endswith("link.tar.gz: cannot read the tarball: it is a symbolic link")


def test_apt_sources_of_both_formats_read_the_same(tmp_path: Path) -> None:
    """The machine's own apt configuration, and its main entry written out in both formats."""
    entries = machine_sources()
    assert entries, "no apt sources on this machine"
    uri, keyring = debian_mirror()
    main = next(e for e in entries if e.uri.rstrip("/") == uri)
    options = f"[arch=amd64 signed-by={keyring}] " if keyring else "[arch=amd64] "
    one_line = (f"# {main.uri} commented out\n"
                f"deb {options}{main.uri} {main.suite} {' '.join(main.components)}\n"
                f"#deb-src {main.uri} {main.suite} main\n"
                f"deb-src {main.uri} {main.suite}-updates main contrib  # trailing comment\n")
    deb822 = (f"Types: deb\n# a comment inside\nURIs: {main.uri}\nSuites: {main.suite}\n"
              f"Components: {' '.join(main.components)}\n" + (f"Signed-By: {keyring}\n" if keyring else "") +
              f"\nTypes: deb-src\nURIs: {main.uri}\nSuites: {main.suite}-updates\nComponents: main contrib\n"
              f"\nEnabled: no\nTypes: deb-src\nURIs: {main.uri}\nSuites: disabled\nComponents: main\n"
              "\nTypes: deb\nURIs: http://127.0.0.1/inline\nSuites: stable\nComponents: main\n"
              "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n -----END PGP PUBLIC KEY BLOCK-----\n")
    expected = [AptSource("deb", main.uri, main.suite, main.components, keyring),
                AptSource("deb-src", main.uri, f"{main.suite}-updates", ("main", "contrib"), None)]
    assert parse_one_line(one_line) == expected
    assert parse_deb822(deb822) == [*expected, AptSource("deb", "http://127.0.0.1/inline", "stable", ("main",), None)]
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("deb http://127.0.0.1/security bookworm-security main\n")
    (etc / "sources.list.d" / "main.sources").write_text(deb822)
    (etc / "sources.list.d" / "old.list.disabled").write_text(one_line.replace(main.uri, "http://127.0.0.1/no"))
    assert debian_mirror(etc) == (main.uri.rstrip("/"), keyring)


# -- helpers ------------------------------------------------------------------------------------

def installed_sshd_in(cache: Path) -> list[str]:
    """Versions with anything installed under a cache's openssh/ folder."""
    root = cache / "openssh"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _write_tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))


def _release_with_configure(cache: Path, tmp_path: Path, version: str, script: str) -> Path:
    """The real release tree of VERSION (from the module build's cached tarball), renamed to
    `version` and with its configure replaced by `script`, tarred again."""
    work = tmp_path / f"tree-{version}"
    with tarfile.open(cache / "tarballs" / f"openssh-{VERSION}.tar.gz") as archive:
        archive.extractall(work, filter="data")
    tree = work / f"openssh-{version}"
    (work / f"openssh-{VERSION}").rename(tree)
    (tree / "configure").write_text("#!/bin/sh\n" + script)
    out = tmp_path / f"openssh-{version}.tar.gz"
    with tarfile.open(out, "w:gz") as archive:
        archive.add(tree, arcname=tree.name)
    shutil.rmtree(work)
    return out


def _sleepers(marker: str) -> list[int]:
    """Pids of the test's own slow configure (its environment carries the marker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
