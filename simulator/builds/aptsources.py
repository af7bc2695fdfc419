"""The Debian mirror this machine's apt already uses, read from its apt sources.

sshsim names no package archive: the source tarballs come from whatever mirror the machine is
configured for (or $SSHSIM_DEBIAN_MIRROR), in both of apt's formats: one-line `.list` files
(`deb [signed-by=...] URI SUITE COMPONENT...`) and deb822 `.sources` stanzas (`URIs:`, `Suites:`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import EnvironmentProblem

APT_ETC = Path("/etc/apt")
MIRROR_ENV = "SSHSIM_DEBIAN_MIRROR"


@dataclass(frozen=True)
class AptSource:
    """One (type, URI, suite) line of apt's configuration, options kept as apt would read them."""

    type: str                 # "deb" or "deb-src"
    uri: str
    suite: str
    components: tuple[str, ...]
    signed_by: str | None     # a keyring path (an inline key block is not carried over)


def parse_one_line(text: str) -> list[AptSource]:
    """The entries of a one-line `.list` file (comments and disabled lines skipped)."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        options: dict[str, str] = {}
        bracket = re.match(r"^(deb(?:-src)?)\s+\[([^\]]*)\]\s+(.*)$", line)
        if bracket:
            kind, rest = bracket.group(1), bracket.group(3)
            for option in bracket.group(2).split():
                key, _, value = option.partition("=")
                options[key.lower()] = value
        else:
            kind, _, rest = line.partition(" ")
        words = rest.split()
        if kind not in ("deb", "deb-src") or len(words) < 2:
            continue
        out.append(AptSource(kind, words[0], words[1], tuple(words[2:]), options.get("signed-by")))
    return out


def parse_deb822(text: str) -> list[AptSource]:
    """The entries of a deb822 `.sources` file, one per type x URI x suite of each stanza."""
    out = []
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields: dict[str, str] = {}
        current = None
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and current is not None:
                fields[current] += "\n" + raw.strip()  # a continuation line (an inline key block)
                continue
            key, sep, value = raw.partition(":")
            if sep:
                current = key.strip().lower()
                fields[current] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        signed_by = fields.get("signed-by")
        keyring = signed_by if signed_by and "\n" not in signed_by and "BEGIN PGP" not in signed_by else None
        for kind in fields.get("types", "").split():
            if kind not in ("deb", "deb-src"):
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    out.append(AptSource(kind, uri, suite, tuple(fields.get("components", "").split()), keyring))
    return out


def machine_sources(etc: Path = APT_ETC) -> list[AptSource]:
    """Every enabled entry of sources.list, sources.list.d/*.list and sources.list.d/*.sources."""
    found: list[AptSource] = []
    files = [etc / "sources.list"]
    parts = etc / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        found += parse_deb822(text) if path.suffix == ".sources" else parse_one_line(text)
    return found


def debian_mirror(etc: Path = APT_ETC) -> tuple[str, str | None]:
    """(mirror URI, keyring or None) of the main archive: $SSHSIM_DEBIAN_MIRROR, else the first
    apt entry with a `main` component for a release suite (not -security or -updates)."""
    explicit = os.environ.get(MIRROR_ENV)
    if explicit:
        return explicit.rstrip("/"), None
    for source in machine_sources(etc):
        if "main" in source.components and "-" not in source.suite and "/" not in source.suite:
            return source.uri.rstrip("/"), source.signed_by
    raise EnvironmentProblem(f"no Debian mirror in {etc}/sources.list or sources.list.d/: set {MIRROR_ENV} "
                             "to a Debian archive's URL")
