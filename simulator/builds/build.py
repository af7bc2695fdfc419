"""Building upstream OpenSSH portable into the cache (simulator/builds/cache.py).

A build runs configure and make in a temp folder under the cache, installs only what the local
target runs (sshd, sshd-session, sshd-auth, sftp-server, the moduli file, an empty privsep folder)
into the version's prefix, and writes the manifest last: a build interrupted anywhere leaves no
manifest, so it is never taken for a finished one. One process builds a version at a time (an
fcntl lock per version); a second one asking for it waits and then finds it built.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from simulator.builds.cache import MANIFEST, cache_root, install_dir, installed_sshd
from simulator.builds.features import parse_version
from simulator.builds.locks import exclusive
from simulator.builds.tarballs import release_tarball, sha256_file
from simulator.builds.versions import is_release, known_versions
from simulator.errors import BadInputError, EnvironmentProblem
from simulator.io import atomic_write_text
from simulator.limits import MAX_SOURCE_TREE_BYTES, MAX_SOURCE_TREE_FILES

STAGES = ("fetching", "configuring", "compiling", "installing")
# The headers configure needs from the system, and the Debian package that has each.
BUILD_HEADERS = {"security/pam_appl.h": "libpam0g-dev", "openssl/evp.h": "libssl-dev", "zlib.h": "zlib1g-dev"}
LAST_LINES = 3  # of the log, in a failed build's one-line error

Progress = Callable[[str], None]


class BuildFailed(EnvironmentProblem):
    """configure or make failed (or a build dependency is missing): nothing was installed."""


def stderr_progress(line: str) -> None:
    """A progress line on stderr: builds take a minute, and stdout stays for what a pipe reads."""
    print(line, file=sys.stderr, flush=True)


def configure_flags(prefix: Path) -> list[str]:
    """The prefix is compiled in (sshd execs <prefix>/libexec/sshd-session; the privsep chroot and
    the moduli file are under it), so a build runs only where it was configured for."""
    return [f"--prefix={prefix}", f"--sysconfdir={prefix}/etc", f"--with-privsep-path={prefix}/empty",
            f"--with-pid-dir={prefix}/run", "--with-pam", "--with-zlib"]


def check_version(version: str) -> None:
    if not is_release(version):
        raise BadInputError(f"{version!r} is not an OpenSSH portable version (like 10.3p1)")


def log_path(version: str) -> Path:
    """The full output of the last build of `version`: apt, configure and make."""
    return cache_root() / "logs" / f"openssh-{version}.log"


def ensure_sshd(version: str, *, tarball: Path | None = None, force: bool = False,
                progress: Progress = stderr_progress) -> Path:
    """The sshd of `version`, built into the cache first when it is not there yet (or with force)."""
    check_version(version)
    found = installed_sshd(version)
    if found is not None and not force:
        return found
    known = known_versions().get(version)
    if known is None and tarball is None:
        raise BadInputError(f"unknown OpenSSH version {version} (known: {', '.join(known_versions())}); "
                            "build another one from its release tarball with --tarball FILE")
    with exclusive(cache_root() / "locks" / f"openssh-{version}.lock",
                   lambda: progress(f"build-sshd {version}: waiting for another build of it to finish")):
        found = installed_sshd(version)
        if found is not None and not force:
            return found  # built by the process we waited for
        return _build(version, tarball, progress)


def _missing_build_dependencies() -> list[str]:
    """Debian packages configure would miss: a C compiler, make, and the PAM, OpenSSL and zlib headers."""
    missing = [tool for tool in ("cc", "make") if shutil.which(tool) is None]
    if "cc" in missing:
        return ["build-essential" if shutil.which("apt-get") else "a C compiler", *BUILD_HEADERS.values()]
    for header, package in BUILD_HEADERS.items():
        probe = subprocess.run(["cc", "-E", "-x", "c", "-o", os.devnull, "-"], input=f"#include <{header}>\n",
                               capture_output=True, text=True)
        if probe.returncode != 0:
            missing.append(package)
    return missing


def _build(version: str, tarball: Path | None, progress: Progress) -> Path:
    missing = _missing_build_dependencies()
    if missing:
        raise BuildFailed(f"cannot build OpenSSH {version}: missing build dependencies ({', '.join(missing)}): "
                          "run `sshsim setup --build` as root")
    started = time.monotonic()
    prefix = install_dir(version)
    log_file = log_path(version)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    work = private_tempdir(f"build-{version}-")
    try:
        with open(log_file, "w") as log:
            def note(text: str) -> None:
                log.write(f"# {text}\n")
                log.flush()
                progress(f"build-sshd {version}: {text}")

            progress(f"build-sshd {version}: fetching (log: {log_file})")
            source = release_tarball(version, known_versions().get(version), tarball, work, log, note)
            digest = sha256_file(source)
            tree = _extract(source, version, work)
            flags = configure_flags(prefix)
            progress(f"build-sshd {version}: configuring")
            _step(["./configure", *flags], tree, log, log_file, version, "configure")
            targets = ["sshd", "sftp-server"] + [t for t in ("sshd-session", "sshd-auth") if _has_target(tree, t)]
            jobs = len(os.sched_getaffinity(0))
            progress(f"build-sshd {version}: compiling ({' '.join(targets)}, make -j{jobs})")
            _step(["make", f"-j{jobs}", *targets], tree, log, log_file, version, "make")
            progress(f"build-sshd {version}: installing into {prefix}")
            _install(tree, prefix, [t for t in targets if t != "sshd"])
            reported = _reported_version(prefix / "sbin" / "sshd")
            # 9.2's sshd says "OpenSSH_9.2" without the portable suffix: the release number decides.
            if parse_version(reported) != parse_version(version):
                raise BuildFailed(f"the built sshd reports {reported!r}, not OpenSSH_{version}; log: {log_file}")
            seconds = round(time.monotonic() - started, 1)
            manifest = {"version": version, "prefix": str(prefix), "tarball_sha256": digest,
                        "configure": flags, "build_seconds": seconds, "sshd_version": reported}
            atomic_write_text(prefix / MANIFEST, json.dumps(manifest, indent=2) + "\n", force=True)
            note(f"built in {seconds} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    found = installed_sshd(version)
    assert found is not None, "a manifest was just written"
    return found


def private_tempdir(prefix: str) -> Path:
    """A new folder under <cache>/tmp: beside the prefix (same file system) and never a symlink's."""
    tmp = cache_root() / "tmp"
    if tmp.is_symlink():
        raise EnvironmentProblem(f"{tmp} is a symbolic link: sshsim does not build through one")
    tmp.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))


def _extract(source: Path, version: str, work: Path) -> Path:
    """Unpack the tarball into work/src: every member inside openssh-<version>/, no links out,
    no devices (tarfile's data filter), bounded in count and size before anything is written."""
    top = f"openssh-{version}"
    dest = work / "src"
    try:
        with tarfile.open(source, "r:*") as archive:
            members, total = [], 0
            for member in archive:
                members.append(member)
                total += member.size
                if len(members) > MAX_SOURCE_TREE_FILES or total > MAX_SOURCE_TREE_BYTES:
                    raise BadInputError(f"the tarball unpacks to more than {MAX_SOURCE_TREE_FILES} files or "
                                        f"{MAX_SOURCE_TREE_BYTES} bytes (MAX_SOURCE_TREE_FILES, MAX_SOURCE_TREE_BYTES)")
                if member.name.rstrip("/") != top and not member.name.startswith(top + "/"):
                    raise BadInputError(f"the tarball holds {member.name!r} outside {top}/: not OpenSSH {version}'s "
                                        "release tarball")
            if not members:
                raise BadInputError("the tarball is empty")
            archive.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BadInputError(f"cannot unpack the tarball of OpenSSH {version}: {exc}") from None
    tree = dest / top
    if not (tree / "configure").is_file():
        raise BadInputError(f"the tarball of OpenSSH {version} has no {top}/configure: not a portable release")
    return tree


def _step(command: list[str], cwd: Path, log: IO[str], log_file: Path, version: str, name: str) -> None:
    """Run a build step into the log, in a process group of its own so an interrupt stops all of
    it (a SIGTERM to sshsim reaches make's compilers only through us)."""
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    try:
        proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    except OSError as exc:
        raise BuildFailed(f"cannot run {command[0]}: {exc.strerror}; log: {log_file}") from None
    try:
        status = proc.wait()
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # the group ended on its own (a Ctrl-C reaches it from the terminal too)
        proc.wait()
        raise
    if status != 0:
        raise BuildFailed(f"building OpenSSH {version} failed: {name} exited {status}: {_tail(log_file)}; "
                          f"full log: {log_file}")


def _tail(log_file: Path) -> str:
    """The log's last lines joined into one: the compiler's or configure's own words."""
    with open(log_file, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - 8192))
        lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-LAST_LINES:])


def _has_target(tree: Path, target: str) -> bool:
    """Whether this release's Makefile builds `target` (sshd-session from 9.8, sshd-auth from 10.0)."""
    try:
        makefile = (tree / "Makefile").read_text(errors="replace")
    except OSError:
        return False  # no Makefile: make says so, as a failed build
    return re.search(rf"^{re.escape(target)}\$\(EXEEXT\):", makefile, re.M) is not None


def _install(tree: Path, prefix: Path, helpers: list[str]) -> None:
    """Replace the prefix's binaries with the new ones; the manifest goes first, so a reader in
    between sees "not built", never a mix."""
    if prefix.is_symlink():
        raise BuildFailed(f"{prefix} is a symbolic link: sshsim does not install through one")
    (prefix / MANIFEST).unlink(missing_ok=True)
    for sub in ("sbin", "libexec", "etc", "empty", "run"):
        target = prefix / sub
        if target.is_symlink():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
    os.chmod(prefix / "empty", 0o755)  # sshd refuses a privsep folder others can write
    if os.geteuid() == 0:
        os.chown(prefix / "empty", 0, 0)
    shutil.copyfile(tree / "sshd", prefix / "sbin" / "sshd")
    os.chmod(prefix / "sbin" / "sshd", 0o755)
    for helper in helpers:
        shutil.copyfile(tree / helper, prefix / "libexec" / helper)
        os.chmod(prefix / "libexec" / helper, 0o755)
    # Without its moduli file sshd logs "could not open ... moduli" at every group exchange.
    shutil.copyfile(tree / "moduli", prefix / "etc" / "moduli")


def _reported_version(sshd: Path) -> str:
    """The `OpenSSH_x.yPz, OpenSSL ...` line sshd prints for -V (before 9.x, inside its usage text)."""
    out = subprocess.run([str(sshd), "-V"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    for line in (out.stderr + out.stdout).splitlines():
        if line.startswith("OpenSSH_"):
            return line.strip()
    return (out.stderr + out.stdout).strip()[:200]
