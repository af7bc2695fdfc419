"""The client KEXINIT as bytes and as a fingerprint: one parser of its name-lists, one HASSH.

Both the wire check (what the driver really sent, simulator/driver/wire.py), the negotiation
check (what sshd offers, simulator/driver/fidelity.py) and the profile files (what a client
sends, simulator/profiles.py) need these; a second copy of either would let a profile and
its measurement disagree about what a fingerprint is.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import NamedTuple

MSG_KEXINIT = 20
_COOKIE = 16


class KexinitLists(NamedTuple):
    """The ten name-lists of a KEXINIT, in RFC 4253 section 7.1 order."""

    kex: list[str]
    host_key: list[str]
    encryption_c2s: list[str]
    encryption_s2c: list[str]
    mac_c2s: list[str]
    mac_s2c: list[str]
    compression_c2s: list[str]
    compression_s2c: list[str]
    languages_c2s: list[str]
    languages_s2c: list[str]


def parse_kexinit(payload: bytes) -> KexinitLists:
    """The name-lists of a KEXINIT payload, message byte first.

    Raises ValueError on anything else (a short packet, a list running past the end, non-ASCII
    names): the bytes come from the network.
    """
    return _walk(payload)[0]


def first_kex_packet_follows(payload: bytes) -> bool:
    """The KEXINIT's first_kex_packet_follows flag (the byte after the ten name-lists)."""
    _, pos = _walk(payload)
    if pos >= len(payload):
        raise ValueError("KEXINIT ends before first_kex_packet_follows")
    return payload[pos] != 0


def _walk(payload: bytes) -> tuple[KexinitLists, int]:
    """The ten name-lists and the offset just past them."""
    if not payload or payload[0] != MSG_KEXINIT:
        raise ValueError("not a KEXINIT packet")
    pos = 1 + _COOKIE
    lists: list[list[str]] = []
    for _ in range(10):
        if pos + 4 > len(payload):
            raise ValueError("KEXINIT ends inside its name-lists")
        (length,) = struct.unpack(">I", payload[pos:pos + 4])
        pos += 4
        if pos + length > len(payload):
            raise ValueError("KEXINIT name-list runs past the packet")
        text = payload[pos:pos + length].decode("ascii")
        pos += length
        lists.append(text.split(",") if text else [])
    return KexinitLists(*lists), pos


def hassh(kex: Sequence[str], encryption: Sequence[str], mac: Sequence[str], compression: Sequence[str]) -> str:
    """HASSH: md5 of the client-to-server `kex;encryption;mac;compression` lists, comma-joined."""
    text = ";".join(",".join(names) for names in (kex, encryption, mac, compression))
    return hashlib.md5(text.encode("ascii")).hexdigest()
