"""Getting an OpenSSH release tarball that is known to be the release: from the user, the cache,
the upstream release site, or Debian's source archive through apt.

Every source is checked against the sha256 in simulator/data/openssh/versions.yaml before the
tarball is used or kept, so a mirror, a cache file or a download can be wrong but never built.
Debian's `.orig` file is the upstream tarball unchanged, which is why apt can stand in for the
release site where only Debian's archive is reachable. apt is run with a private state under the
cache (its own sources list, lists and package cache) so the machine's apt configuration is read
for its mirror but never changed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from simulator.builds.aptsources import debian_mirror
from simulator.builds.cache import cache_root
from simulator.builds.locks import exclusive
from simulator.builds.versions import KnownVersion, upstream_base
from simulator.errors import BadInputError, EnvironmentProblem
from simulator.limits import MAX_TARBALL_BYTES

# The release site is often unreachable (no route, no DNS): fail over to apt within seconds.
CONNECT_TIMEOUT = 5.0
_CHUNK = 1 << 16

Note = Callable[[str], None]


def tarball_dir() -> Path:
    """Verified release tarballs, kept across builds (a rebuild or another prefix fetches nothing)."""
    return cache_root() / "tarballs"


def copy_hashing(src: IO[bytes], dst: IO[bytes], what: str) -> str:
    """Copy at most MAX_TARBALL_BYTES from src to dst; the sha256 of what was copied."""
    digest = hashlib.sha256()
    total = 0
    while chunk := src.read(_CHUNK):
        total += len(chunk)
        if total > MAX_TARBALL_BYTES:
            raise BadInputError(f"{what} is larger than {MAX_TARBALL_BYTES} bytes (MAX_TARBALL_BYTES); "
                                "an OpenSSH release is about 2 MB")
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with open(path, "rb") as src, open(os.devnull, "wb") as sink:
        return copy_hashing(src, sink, str(path))


def copy_given(given: Path, dest: Path) -> str:
    """Copy the user's tarball (a regular file, no symlink followed) to dest; its sha256."""
    try:
        fd = os.open(given, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        reason = "it is a symbolic link" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
        raise BadInputError(f"cannot read the tarball: {reason}", file=str(given)) from None
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInputError("the tarball is not a regular file", file=str(given))
        with open(dest, "wb") as dst:
            return copy_hashing(src, dst, f"tarball {given}")


def _keep(candidate: Path, known: KnownVersion) -> Path:
    """Move a verified tarball into the cache under its release name."""
    final = tarball_dir() / known.upstream_file
    os.replace(candidate, final)
    return final


def from_cache(known: KnownVersion, note: Note) -> Path | None:
    path = tarball_dir() / known.upstream_file
    if path.is_symlink() or not path.is_file():
        return None
    if sha256_file(path) == known.sha256:
        note(f"tarball from the cache: {path}")
        return path
    note(f"cached {path} does not have the release's sha256: removed, fetching again")
    path.unlink()
    return None


def from_upstream(known: KnownVersion, work: Path, note: Note) -> Path | None:
    url = upstream_base() + known.upstream_file
    if not url.startswith(("https://", "http://")):
        note(f"release site {url}: not an http(s) URL, skipped")
        return None
    partial = work / (known.upstream_file + ".part")
    try:
        with urllib.request.urlopen(url, timeout=CONNECT_TIMEOUT) as response, open(partial, "wb") as out:
            digest = copy_hashing(response, out, url)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        note(f"release site {url}: not reachable ({reason}); trying Debian's source archive")
        return None
    if digest != known.sha256:
        note(f"release site {url}: sha256 {digest} is not the release's; trying Debian's source archive")
        return None
    note(f"tarball from the release site: {url}")
    return _keep(partial, known)


def parse_source_stanzas(text: str) -> list[tuple[str, dict[str, str]]]:
    """(version, {file name: sha256}) of every `openssh` stanza that `apt-cache showsrc` printed."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        package = re.search(r"^Package: (\S+)$", stanza, re.M)
        version = re.search(r"^Version: (\S+)$", stanza, re.M)
        sums = re.search(r"^Checksums-Sha256:\n((?:[ \t].*\n?)+)", stanza, re.M)
        if not (package and version and sums) or package.group(1) != "openssh":
            continue
        files = {}
        for line in sums.group(1).splitlines():
            parts = line.split()
            if len(parts) == 3:
                files[parts[2]] = parts[0]
        out.append((version.group(1), files))
    return out


def choose_source_version(stanzas: list[tuple[str, dict[str, str]]], known: KnownVersion) -> str | None:
    """The pinned source version when the index has it with this tarball, else any other source
    version of the same release whose orig file has the release's sha256 (the orig never changes)."""
    matching = [version for version, files in stanzas if files.get(known.orig_file) == known.sha256]
    if known.debian_source in matching:
        return known.debian_source
    return matching[0] if matching else None


class PrivateApt:
    """apt-get and apt-cache with their own sources list, lists and cache under the sshsim cache:
    one `deb-src` line for one suite, so the machine's apt configuration stays as it is."""

    def __init__(self, suite: str, log: IO[str]) -> None:
        self.state = cache_root() / "apt" / suite
        self.suite = suite
        self.log = log

    def options(self) -> list[str]:
        return ["-o", f"Dir::Etc::SourceList={self.state / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", f"Dir::State::Lists={self.state / 'lists'}", "-o", f"Dir::Cache={self.state / 'cache'}"]

    def prepare(self) -> None:
        mirror, keyring = debian_mirror()
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        signed = f"[signed-by={keyring}] " if keyring else ""
        (self.state / "sources.list").write_text(f"deb-src {signed}{mirror} {self.suite} main\n")

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        command = [tool, "-q", *self.options(), *args]
        self.log.write(f"$ {' '.join(command)}\n")
        self.log.flush()
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        self.log.write(result.stdout + result.stderr)
        self.log.flush()
        return result


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    """apt's own error line (E:) when it printed one, else its last line."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or [f"exit {result.returncode}"])[-1]


def from_debian(known: KnownVersion, work: Path, log: IO[str], note: Note) -> Path:
    """apt-get source --download-only of the Debian source version that carries the tarball.

    The .dsc or the debian.tar of a version may be missing from the archive while its orig file
    is there; apt-get then fails after downloading the orig, which is all that is wanted, so the
    outcome is judged by the orig file's sha256, not apt-get's exit status."""
    if shutil.which("apt-get") is None:
        raise EnvironmentProblem(f"OpenSSH {known.version}: no tarball in the cache, the release site is not "
                                 "reachable and apt-get is not here: pass the release tarball with --tarball FILE")
    apt = PrivateApt(known.debian_suite, log)
    with exclusive(apt.state.parent / f"{known.debian_suite}.lock"):
        apt.prepare()
        note(f"Debian source archive: updating the {known.debian_suite} source index")
        update = apt.run("apt-get", "update")
        if update.returncode != 0:
            raise EnvironmentProblem(f"apt-get update of the {known.debian_suite} source index failed: "
                                     f"{_last_line(update)} (mirror from /etc/apt or $SSHSIM_DEBIAN_MIRROR)")
        shown = apt.run("apt-cache", "showsrc", "openssh")
        chosen = choose_source_version(parse_source_stanzas(shown.stdout), known)
        if chosen is None:
            raise EnvironmentProblem(f"Debian's {known.debian_suite} source index has no openssh version carrying "
                                     f"{known.orig_file} with the release's sha256: pass it with --tarball FILE")
        if chosen != known.debian_source:
            note(f"Debian source {known.debian_source} is gone; {chosen} carries the same tarball")
        download = work / "apt-source"
        download.mkdir()
        os.chmod(download, 0o755)  # apt downloads as its _apt user when it can write here
        note(f"Debian source archive: apt-get source --download-only openssh={chosen}")
        result = apt.run("apt-get", "source", "--download-only", f"openssh={chosen}", cwd=download)
    orig = download / known.orig_file
    if orig.is_symlink() or not orig.is_file():
        about = [line.strip() for line in (result.stderr + result.stdout).splitlines()
                 if line.startswith("E:") and known.orig_file in line]
        raise EnvironmentProblem(f"apt-get source openssh={chosen} did not fetch {known.orig_file}: "
                                 f"{(about or [_last_line(result)])[0]}; pass the release tarball with --tarball FILE")
    digest = sha256_file(orig)
    if digest != known.sha256:
        raise EnvironmentProblem(f"{known.orig_file} from Debian's archive has sha256 {digest}, "
                                 f"not the release's {known.sha256}: not used")
    if result.returncode != 0:
        note(f"apt-get source exited {result.returncode} ({_last_line(result)}); the orig tarball arrived "
             "and matches, which is all the build needs")
    note(f"tarball from Debian's source archive (openssh {chosen})")
    return _keep(orig, known)


def release_tarball(version: str, known: KnownVersion | None, given: Path | None, work: Path,
                    log: IO[str], note: Note) -> Path:
    """A tarball of `version` checked to be the release: the given one, else the cache's, else one
    fetched from the release site or Debian's archive (and then kept in the cache)."""
    tarball_dir().mkdir(parents=True, exist_ok=True)
    if given is not None:
        copy = work / "given.tar"
        digest = copy_given(given, copy)
        if known is None:
            note(f"tarball {given} (sha256 {digest}); {version} is not a known release, so it is not checked")
            return copy
        if digest != known.sha256:
            raise BadInputError(f"sha256 {digest} is not OpenSSH {version}'s ({known.sha256})", file=str(given))
        note(f"tarball {given}: sha256 matches the release")
        kept = work / (known.upstream_file + ".part")
        os.replace(copy, kept)
        return _keep(kept, known)
    if known is None:  # the caller checks; kept here so no path builds an unchecked download
        raise BadInputError(f"unknown OpenSSH version {version}: pass its release tarball with --tarball FILE")
    return from_cache(known, note) or from_upstream(known, work, note) or from_debian(known, work, log, note)
