"""asyncssh glue for sntrup761x25519-sha512 backed by the pure-Python KEM.

asyncssh 2.24 implements the hybrid (sntrup761 + X25519, SHA-512 of both secrets) in
`asyncssh.kex_dh._KexHybridECDH`, and only registers it when liboqs is found. We reuse that
handler, with two changes:

* the PQ object is `SntrupKEM` below, which wraps `simulator.kex.sntrup761`;
* the client's key pair is obtained in `start()` (a coroutine) from the background pool, or an
  executor thread, instead of in the constructor, which asyncssh calls synchronously on the
  event loop while it handles KEXINIT.

asyncssh buffers incoming packets while an asynchronous handler runs, so awaiting in `start()`
cannot reorder the exchange. The server side needs no key pair, only encapsulation.
"""

from __future__ import annotations

from hashlib import sha512
from typing import Any, cast

from asyncssh import kex as _asyncssh_kex
from asyncssh.crypto import Curve25519DH
from asyncssh.kex import register_kex_alg
from asyncssh.kex_dh import _KexECDH, _KexHybridECDH  # asyncssh is pinned (pyproject.toml)

from simulator.kex import sntrup761
from simulator.kex.pool import KeypairPool

PQ_ALG_NAME = b"sntrup761"
KEX_ALGS = (b"sntrup761x25519-sha512", b"sntrup761x25519-sha512@openssh.com")

_pool = KeypairPool()


def keypair_pool() -> KeypairPool:
    """The pool that client key exchanges draw from (shared by all connections)."""
    return _pool


class SntrupKEM:
    """asyncssh's PQKey protocol over the pure-Python sntrup761.

    The key pair is created lazily: a server only encapsulates, and a client gets its key pair
    through `prepare()` before the first `get_public()`.
    """

    pubkey_bytes = sntrup761.PUBLICKEY_BYTES
    privkey_bytes = sntrup761.SECRETKEY_BYTES
    ciphertext_bytes = sntrup761.CIPHERTEXT_BYTES
    secret_bytes = sntrup761.SHAREDSECRET_BYTES

    def __init__(self, alg_name: bytes) -> None:
        if alg_name != PQ_ALG_NAME:
            raise ValueError("Unknown PQ algorithm " + alg_name.decode(errors="replace"))
        self._keypair: sntrup761.KeyPair | None = None

    async def prepare(self) -> None:
        """Obtain this exchange's key pair without blocking the event loop."""
        if self._keypair is None:
            self._keypair = await _pool.acquire()

    def _pair(self) -> sntrup761.KeyPair:
        """The key pair, made synchronously only if `prepare()` was skipped."""
        if self._keypair is None:
            self._keypair = _pool.get()
        return self._keypair

    def get_public(self) -> bytes:
        """The public key the client sends in its KEX_ECDH_INIT."""
        return self._pair().public_key

    def encaps(self, peer_public: bytes) -> tuple[bytes, bytes]:
        """(shared secret, ciphertext), the order asyncssh expects; ValueError on a bad key."""
        ciphertext, secret = sntrup761.encaps(peer_public)
        return secret, ciphertext

    def decaps(self, ciphertext: bytes) -> bytes:
        """The shared secret for the server's ciphertext; ValueError on a bad length."""
        return sntrup761.decaps(ciphertext, self._pair().secret_key)


class KexSntrupX25519(_KexHybridECDH):
    """The hybrid handler, with the client key pair fetched asynchronously in `start()`."""

    def __init__(self, alg: bytes, conn: Any, hash_alg: Any, pq_class: type[SntrupKEM],
                 pq_alg_name: bytes, ecdh_class: Any, *args: object) -> None:
        # Skip _KexHybridECDH.__init__, which would generate the key pair here, on the loop.
        _KexECDH.__init__(self, alg, conn, hash_alg, ecdh_class, *args)
        self._pq = pq_class(pq_alg_name)

    async def start(self) -> None:
        """Client: get the key pair off the loop, then send PQ public key || X25519 key."""
        if self._conn.is_client():
            pq = cast(SntrupKEM, self._pq)
            await pq.prepare()
            self._client_pub = pq.get_public() + self._client_pub
            self._send_init()


def register_python_kex(default: bool = True) -> None:
    """Register both names with asyncssh's `register_kex_alg` (callers ensure it happens once)."""
    for alg in KEX_ALGS:
        register_kex_alg(alg, KexSntrupX25519, sha512, (SntrupKEM, PQ_ALG_NAME, Curve25519DH), default)
    _order_like_liboqs()


def _order_like_liboqs() -> None:
    """Move the names to where asyncssh puts them when liboqs is present: before curve25519.

    register_kex_alg appends, which would rank the hybrid last among the defaults; the client's
    preference order decides the negotiated algorithm, so without this a default asyncssh client
    would pick curve25519-sha256, unlike an OpenSSH 9 client or asyncssh with liboqs.
    """
    for name in ("_kex_algs", "_default_kex_algs"):
        algs = getattr(_asyncssh_kex, name, None)
        if not isinstance(algs, list) or b"curve25519-sha256" not in algs:
            continue
        ours = [alg for alg in algs if alg in KEX_ALGS]
        rest = [alg for alg in algs if alg not in KEX_ALGS]
        anchor = rest.index(b"curve25519-sha256")
        algs[:] = rest[:anchor] + ours + rest[anchor:]
