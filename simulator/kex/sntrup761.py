"""Streamlined NTRU Prime sntrup761: key pair, encapsulation, decapsulation.

Written from the NTRU Prime specification (round 3, the variant OpenSSH and liboqs ship): the
ring R = Z[x]/(x^p - x - 1) with p = 761, q = 4591 and weight w = 286. The byte layouts,
hash prefixes and randomness consumption follow the specification exactly, so that key pairs
generated from the NIST AES-256 CTR DRBG reproduce the published known-answer tests bit for
bit (tests/test_sntrup761.py checks this).

Why numpy and Python integers: OpenSSH's own C code is not importable from Python, and liboqs
is often absent. Products with a small polynomial are float64 convolutions (every partial sum is
an integer below 2**53, so they are exact). The two inversions that dominate key generation use
the divstep algorithm: in R/3 on bit-sliced Python integers (one integer per coefficient sign,
so one step is a few word operations), in R/q on numpy rows.

This implementation branches on secret data and is not constant time. It is meant for a test
harness that drives a real sshd, not for protecting long-lived secrets against local timing
attackers. Decapsulation still implements the implicit rejection of the specification, because
its output is observable on the wire.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

P = 761
Q = 4591
W = 286
Q12 = (Q - 1) // 2

HASH_BYTES = 32
SMALL_BYTES = (P + 3) // 4
ROUNDED_MODULUS = (Q + 2) // 3
RQ_BYTES = 1158
ROUNDED_BYTES = 1007

PUBLICKEY_BYTES = RQ_BYTES
SECRETKEY_BYTES = 2 * SMALL_BYTES + PUBLICKEY_BYTES + SMALL_BYTES + HASH_BYTES
CIPHERTEXT_BYTES = ROUNDED_BYTES + HASH_BYTES
SHAREDSECRET_BYTES = HASH_BYTES

RandomBytes = Callable[[int], bytes]
IntArray = npt.NDArray[np.int64]


class KeyPair(NamedTuple):
    """A public key (sent to the peer) and the secret key that decapsulates for it."""

    public_key: bytes
    secret_key: bytes


class Encapsulation(NamedTuple):
    """What encapsulation yields: the ciphertext to send and the 32-byte shared key."""

    ciphertext: bytes
    shared_key: bytes


# ---------------------------------------------------------------------------------------------
# Hashing: SHA-512 of a one-byte domain prefix and the input, truncated to 32 bytes.


def _hash_prefix(prefix: int, data: bytes) -> bytes:
    """Hash_prefix of the specification; the prefix separates the uses of one hash function."""
    return hashlib.sha512(bytes((prefix,)) + data).digest()[:HASH_BYTES]


def _hash_confirm(r_enc: bytes, cache: bytes) -> bytes:
    """The confirmation hash appended to a ciphertext, binding it to the public key."""
    return _hash_prefix(2, _hash_prefix(3, r_enc) + cache)


def _hash_session(prefix: int, r_enc: bytes, ciphertext: bytes) -> bytes:
    """The session key: prefix 1 for a valid ciphertext, 0 for the implicit-rejection key."""
    return _hash_prefix(prefix, _hash_prefix(3, r_enc) + ciphertext)


# ---------------------------------------------------------------------------------------------
# Arithmetic in R/q and R/3. Polynomials are int64 arrays of length P, coefficient i of x^i,
# with centred representatives: [-Q12, Q12] in R/q and {-1, 0, 1} in R/3.


def _fold(product: npt.NDArray[np.float64]) -> IntArray:
    """Reduce a product of degree <= 2p-2 modulo x^p - x - 1 (x^(p+j) = x^(j+1) + x^j)."""
    low = product[:P].copy()
    high = product[P:]
    low[: P - 1] += high
    low[1:] += high
    return np.rint(low).astype(np.int64)


def _freeze_q(values: IntArray) -> IntArray:
    """Centred representative modulo q, in [-Q12, Q12]."""
    return (values + Q12) % Q - Q12


def _freeze_3(values: IntArray) -> IntArray:
    """Centred representative modulo 3, in {-1, 0, 1}."""
    return (values + 1) % 3 - 1


def _mult(a: IntArray, small: IntArray) -> IntArray:
    """Product in Z[x]/(x^p - x - 1) of any polynomial with a small one (exact in float64).

    With |a| <= Q12 and |small| <= 1 every partial sum is below 3 * 761 * 2295 < 2**23.
    """
    return _fold(np.convolve(a.astype(np.float64), small.astype(np.float64)))


def _rq_mult_small(a: IntArray, small: IntArray) -> IntArray:
    """Product in R/q of an R/q element with a small polynomial."""
    return _freeze_q(_mult(a, small))


def _rq_mult(a: IntArray, b: IntArray) -> IntArray:
    """Product in R/q of two R/q elements (centred), exact in float64.

    With |a|, |b| <= Q12 a partial sum is at most 761 * 2295**2 < 2**32, and folding the top
    half in twice keeps every value below 2**34, far from 2**53.
    """
    return _freeze_q(_fold(np.convolve(a.astype(np.float64), b.astype(np.float64))))


def _r3_mult(a: IntArray, b: IntArray) -> IntArray:
    """Product in R/3 of two small polynomials."""
    return _freeze_3(_mult(a, b))


def _round3(a: IntArray) -> IntArray:
    """Round each coefficient to the nearest multiple of 3 (the specification's Round)."""
    return a - _freeze_3(a)


# ---------------------------------------------------------------------------------------------
# Inversion in R/3, by divsteps on bit-sliced polynomials.
#
# A polynomial over GF(3) is a pair of Python integers (plus, minus): bit i of `plus` is set
# when coefficient i is 1, bit i of `minus` when it is -1. Adding two such pairs takes seven
# word operations on all 762 coefficients at once, so one divstep costs about as much as a
# handful of scalar operations.

_R3Poly = tuple[int, int]
_MASK_P1 = (1 << (P + 1)) - 1


def _gf3_add(x: _R3Poly, y: _R3Poly) -> _R3Poly:
    """Coefficient-wise sum in GF(3) (a minimal seven-operation formula)."""
    t = (x[0] | y[1]) ^ (x[1] | y[0])
    return (x[1] | y[1]) ^ t, (x[0] | y[0]) ^ t


def _pack_bits(flags: npt.NDArray[np.bool_]) -> int:
    """Little-endian bit packing of a boolean vector into one integer."""
    return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")


def _unpack_bits(value: int, count: int) -> npt.NDArray[np.bool_]:
    """Inverse of `_pack_bits` for the first `count` bits."""
    raw = value.to_bytes((count + 7) // 8, "little")
    return np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")[:count].astype(bool)


def _r3_recip(g: IntArray) -> IntArray | None:
    """Inverse of g in R/3, or None when g is not invertible.

    The divstep iteration of the specification (2p - 1 steps on the reversed polynomials
    f = x^p - x - 1 and g); g is invertible exactly when delta ends at 0.
    """
    reversed_g = g[::-1]
    f: _R3Poly = (1, (1 << (P - 1)) | (1 << P))  # reversed x^p - x - 1: 1 - x^(p-1) - x^p
    gg: _R3Poly = (_pack_bits(reversed_g == 1), _pack_bits(reversed_g == -1))
    v: _R3Poly = (0, 0)
    r: _R3Poly = (1, 0)
    delta = 1
    for _ in range(2 * P - 1):
        v = ((v[0] << 1) & _MASK_P1, (v[1] << 1) & _MASK_P1)
        if (gg[0] | gg[1]) & 1:
            if delta > 0:
                f, gg, v, r = gg, f, r, v
                delta = -delta
            if (gg[0] & 1) == (f[0] & 1):  # same sign: g0 * f0 = 1, subtract f
                gg = _gf3_add(gg, (f[1], f[0]))
                r = _gf3_add(r, (v[1], v[0]))
            else:
                gg = _gf3_add(gg, f)
                r = _gf3_add(r, v)
        delta += 1
        gg = (gg[0] >> 1, gg[1] >> 1)
    if delta != 0:
        return None
    plus = _unpack_bits(v[0], P)[::-1]
    minus = _unpack_bits(v[1], P)[::-1]
    result = plus.astype(np.int64) - minus.astype(np.int64)
    return result if f[0] & 1 else -result


# ---------------------------------------------------------------------------------------------
# Inversion in R/q, by divsteps on numpy rows. Row 0 of each pair is f (or g), row 1 is v (or r);
# the pairs swap by reference. Residues are kept in [0, q) as int32: f0*g - g0*f stays below
# q**2 < 2**31 in magnitude, and int32 halves the cost of the reduction, the dearest operation.


def _rq_recip3(f_small: IntArray) -> IntArray:
    """Inverse of 3f in R/q (R/q is a field, so it always exists for nonzero f).

    f need not be small: any int64 polynomial works (its coefficients are reduced mod q first);
    `_rq_batch_recip3` passes a product of many f.
    """
    size = P + 1
    fv = np.zeros((2, size), np.int32)
    gr = np.zeros((2, size), np.int32)
    scratch = np.empty((2, size), np.int32)
    fv[0, 0] = 1
    fv[0, P - 1] = Q - 1
    fv[0, P] = Q - 1
    gr[0, :P] = f_small[::-1] % Q
    gr[1, 0] = pow(3, -1, Q)
    delta = 1
    for _ in range(2 * P - 1):
        fv[1, 1:] = fv[1, :-1]
        fv[1, 0] = 0
        g0 = int(gr[0, 0])
        if g0:
            if delta > 0:
                fv, gr = gr, fv
                delta = -delta
                g0 = int(gr[0, 0])
            f0 = int(fv[0, 0])
            np.multiply(gr, f0, out=gr)
            np.multiply(fv, g0, out=scratch)
            np.subtract(gr, scratch, out=gr)
            np.remainder(gr, Q, out=gr)
        delta += 1
        gr[0, :-1] = gr[0, 1:]
        gr[0, -1] = 0
    scale = pow(int(fv[0, 0]), -1, Q)
    return _freeze_q(fv[1, :P][::-1].astype(np.int64) * scale)


# ---------------------------------------------------------------------------------------------
# Encodings.


def _small_encode(small: IntArray) -> bytes:
    """Four coefficients per byte, two bits each (coefficient + 1); the last byte holds one."""
    shifted = (small + 1).astype(np.uint8)
    body = shifted[: P - 1].reshape(-1, 4)
    packed = body[:, 0] | (body[:, 1] << 2) | (body[:, 2] << 4) | (body[:, 3] << 6)
    return packed.tobytes() + bytes((int(shifted[P - 1]),))


def _small_decode(data: bytes) -> IntArray:
    """Inverse of `_small_encode` (values 3 decode to 2, as in the specification)."""
    raw = np.frombuffer(data, np.uint8, count=SMALL_BYTES).astype(np.int64)
    body = (raw[: P // 4, None] >> np.array([0, 2, 4, 6])) & 3
    return np.concatenate([body.reshape(-1), raw[P // 4 :] & 3]) - 1


@dataclass(frozen=True)
class _Level:
    """One halving step of the specification's Encode: which moduli pair up, and byte counts."""

    moduli: IntArray  # M at this level (length n)
    pair_bytes: IntArray  # bytes emitted for each pair (0, 1 or 2)
    byte_offsets: IntArray  # where each pair's bytes start, within this level
    total_bytes: int


@functools.cache
def _plan(modulus: int, length: int) -> tuple[tuple[_Level, ...], int]:
    """The data-independent shape of Encode/Decode for `length` values below `modulus`.

    Returns the levels from the bottom up, and the modulus left for the final single value.
    """
    levels = []
    moduli = np.full(length, modulus, np.int64)
    while len(moduli) > 1:
        pairs = len(moduli) // 2
        product = moduli[0 : 2 * pairs : 2] * moduli[1 : 2 * pairs : 2]
        two = product > 256 * 16383
        one = (product >= 16384) & ~two
        pair_bytes = two * 2 + one * 1
        reduced = np.where(two, (((product + 255) >> 8) + 255) >> 8, product)
        reduced = np.where(one, (product + 255) >> 8, reduced)
        offsets = np.concatenate([[0], np.cumsum(pair_bytes)[:-1]]).astype(np.int64)
        levels.append(_Level(moduli, pair_bytes, offsets, int(pair_bytes.sum())))
        moduli = np.concatenate([reduced, moduli[2 * pairs :]])
    return tuple(levels), int(moduli[0])


def _encode(values: IntArray, modulus: int) -> bytes:
    """The specification's Encode: mixed-radix packing of values below a common modulus."""
    levels, top_modulus = _plan(modulus, len(values))
    out: list[bytes] = []
    current = values.astype(np.int64)
    for level in levels:
        pairs = len(level.pair_bytes)
        m0 = level.moduli[0 : 2 * pairs : 2]
        combined = current[0 : 2 * pairs : 2] + current[1 : 2 * pairs : 2] * m0
        emitted = np.stack([combined & 255, (combined >> 8) & 255], axis=1)
        keep = np.arange(2)[None, :] < level.pair_bytes[:, None]
        out.append(emitted[keep].astype(np.uint8).tobytes())
        combined = combined >> (8 * level.pair_bytes)
        current = np.concatenate([combined, current[2 * pairs :]])
    top = int(current[0])
    tail = bytearray()
    while top_modulus > 1:
        tail.append(top & 255)
        top >>= 8
        top_modulus = (top_modulus + 255) >> 8
    out.append(bytes(tail))
    return b"".join(out)


def _decode(data: bytes, modulus: int, length: int) -> IntArray:
    """The specification's Decode; out-of-range inputs are reduced exactly as it does."""
    levels, top_modulus = _plan(modulus, length)
    raw = np.frombuffer(data, np.uint8).astype(np.int64)
    starts = np.cumsum([0] + [level.total_bytes for level in levels])
    position = int(starts[-1])
    if top_modulus == 1:
        top = 0
    elif top_modulus <= 256:
        top = int(raw[position]) % top_modulus
    else:
        top = (int(raw[position]) + (int(raw[position + 1]) << 8)) % top_modulus
    current = np.array([top], np.int64)
    for level, start in zip(reversed(levels), reversed(starts[:-1]), strict=True):
        pairs = len(level.pair_bytes)
        index = int(start) + level.byte_offsets
        low = np.where(level.pair_bytes >= 1, raw[np.minimum(index, len(raw) - 1)], 0)
        high = np.where(level.pair_bytes == 2, raw[np.minimum(index + 1, len(raw) - 1)], 0)
        combined = low + (high << 8) + (current[:pairs] << (8 * level.pair_bytes))
        m0 = level.moduli[0 : 2 * pairs : 2]
        m1 = level.moduli[1 : 2 * pairs : 2]
        decoded = np.empty(len(level.moduli), np.int64)
        decoded[0 : 2 * pairs : 2] = combined % m0
        decoded[1 : 2 * pairs : 2] = (combined // m0) % m1
        if len(level.moduli) % 2:
            decoded[-1] = current[-1]
        current = decoded
    return current


def _rq_encode(h: IntArray) -> bytes:
    """Public key encoding: coefficients shifted to [0, q)."""
    return _encode(h + Q12, Q)


def _rq_decode(data: bytes) -> IntArray:
    """Public key decoding (any 1158 bytes decode to some element of R/q)."""
    return _decode(data, Q, P) - Q12


def _rounded_encode(c: IntArray) -> bytes:
    """Ciphertext encoding: multiples of 3 in [-Q12, Q12] as values below (q + 2) / 3."""
    return _encode(((c + Q12) * 10923) >> 15, ROUNDED_MODULUS)


def _rounded_decode(data: bytes) -> IntArray:
    """Ciphertext decoding."""
    return _decode(data, ROUNDED_MODULUS, P) * 3 - Q12


# ---------------------------------------------------------------------------------------------
# Randomness, consumed exactly as the specification does (one call per polynomial), so that a
# deterministic generator reproduces the known-answer tests.


def _random_words(randombytes: RandomBytes) -> npt.NDArray[np.uint64]:
    """P little-endian 32-bit words from one call."""
    return np.frombuffer(randombytes(4 * P), "<u4").astype(np.uint64)


def _small_random(randombytes: RandomBytes) -> IntArray:
    """A uniformly random small polynomial (each coefficient in {-1, 0, 1})."""
    words = _random_words(randombytes)
    return (((words & 0x3FFFFFFF) * 3) >> 30).astype(np.int64) - 1


def _short_random(randombytes: RandomBytes) -> IntArray:
    """A random small polynomial of weight exactly W: sort tagged words, keep the tags."""
    words = _random_words(randombytes)
    words[:W] &= np.uint64(0xFFFFFFFE)
    words[W:] = (words[W:] & np.uint64(0xFFFFFFFC)) | np.uint64(1)
    words.sort()
    return (words & np.uint64(3)).astype(np.int64) - 1


# ---------------------------------------------------------------------------------------------
# The KEM.


def keypair(randombytes: RandomBytes = os.urandom) -> KeyPair:
    """Generate a key pair; `randombytes` is replaceable so tests can use the NIST DRBG."""
    g, ginv, f, rho = _draw_key_material(randombytes)
    return _keypair_from(g, ginv, f, _rq_recip3(f), rho)


def _draw_key_material(randombytes: RandomBytes) -> tuple[IntArray, IntArray, IntArray, bytes]:
    """g (until invertible in R/3) and its inverse, then f, then rho: the reference's order of
    random draws, which the KATs depend on."""
    while True:
        g = _small_random(randombytes)
        ginv = _r3_recip(g)
        if ginv is not None:
            break
    f = _short_random(randombytes)
    return g, ginv, f, randombytes(SMALL_BYTES)


def _rq_batch_recip3(fs: list[IntArray]) -> list[IntArray]:
    """Inverses of 3f for every f, with one inversion in R/q (Montgomery's trick).

    R/q is a field and each f is nonzero, so every prefix product is nonzero and invertible.
    prefix[i] = f_0 ... f_i; one inversion gives 1 / (3 prefix[-1]); walking back,
    1 / (3 f_i) = (1 / (3 prefix[i])) * prefix[i-1] and 1 / (3 prefix[i-1]) = that times f_i.
    The inverse is unique, so each result equals `_rq_recip3(f)` exactly.
    """
    if not fs:
        return []
    prefix = [_freeze_q(fs[0])]
    for f in fs[1:]:
        prefix.append(_rq_mult_small(prefix[-1], f))
    inverse = _rq_recip3(prefix[-1])  # 1 / (3 f_0 ... f_{k-1})
    result: list[IntArray] = [inverse] * len(fs)
    for i in range(len(fs) - 1, 0, -1):
        result[i] = _rq_mult(inverse, prefix[i - 1])
        inverse = _rq_mult_small(inverse, fs[i])
    result[0] = inverse
    return result


def _keypair_from(g: IntArray, ginv: IntArray, f: IntArray, f3inv: IntArray, rho: bytes) -> KeyPair:
    """The key pair for (g, 1/g in R/3, f, 1/(3f) in R/q, rho): the tail of `keypair`."""
    public_key = _rq_encode(_rq_mult_small(f3inv, g))
    secret_key = b"".join(
        (
            _small_encode(f),
            _small_encode(ginv),
            public_key,
            rho,
            _hash_prefix(4, public_key),
        )
    )
    return KeyPair(public_key, secret_key)


def keypairs(count: int, randombytes: RandomBytes = os.urandom) -> list[KeyPair]:
    """`count` key pairs, identical to `count` successive `keypair(randombytes)` calls.

    Randomness is drawn per key in the same order as `keypair` (g until invertible in R/3, f,
    rho), but the R/q inversions of all 3f are batched into one: about 1 inversion and
    3 (count - 1) multiplications instead of `count` inversions.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    drawn = [_draw_key_material(randombytes) for _ in range(count)]
    inverses = _rq_batch_recip3([f for _, _, f, _ in drawn])
    return [_keypair_from(g, ginv, f, f3inv, rho) for (g, ginv, f, rho), f3inv in zip(drawn, inverses, strict=True)]


def _hide(r: IntArray, h: IntArray, cache: bytes) -> tuple[bytes, bytes]:
    """Encrypt r under h; returns (ciphertext with confirmation hash, encoding of r)."""
    r_enc = _small_encode(r)
    c = _round3(_rq_mult_small(h, r))
    return _rounded_encode(c) + _hash_confirm(r_enc, cache), r_enc


def encaps(public_key: bytes, randombytes: RandomBytes = os.urandom) -> Encapsulation:
    """Encapsulate a fresh random secret to `public_key`."""
    if len(public_key) != PUBLICKEY_BYTES:
        raise ValueError(f"sntrup761 public key must be {PUBLICKEY_BYTES} bytes")
    cache = _hash_prefix(4, public_key)
    r = _short_random(randombytes)
    ciphertext, r_enc = _hide(r, _rq_decode(public_key), cache)
    return Encapsulation(ciphertext, _hash_session(1, r_enc, ciphertext))


def _decrypt(c: IntArray, f: IntArray, ginv: IntArray) -> IntArray:
    """Recover the weight-w input, or the fixed weight-w vector when decryption fails."""
    e = _freeze_3(_freeze_q(3 * _rq_mult_small(c, f)))
    ev = _r3_mult(e, ginv)
    if int(np.count_nonzero(ev)) == W:
        return ev
    fallback = np.zeros(P, np.int64)
    fallback[:W] = 1
    return fallback


def decaps(ciphertext: bytes, secret_key: bytes) -> bytes:
    """Decapsulate; a ciphertext that does not re-encrypt identically yields the rejection key.

    Implicit rejection: instead of an error, the key is a hash of the secret rho and the
    ciphertext, so an attacker learns nothing from tampering.
    """
    if len(ciphertext) != CIPHERTEXT_BYTES:
        raise ValueError(f"sntrup761 ciphertext must be {CIPHERTEXT_BYTES} bytes")
    if len(secret_key) != SECRETKEY_BYTES:
        raise ValueError(f"sntrup761 secret key must be {SECRETKEY_BYTES} bytes")
    f = _small_decode(secret_key[:SMALL_BYTES])
    ginv = _small_decode(secret_key[SMALL_BYTES : 2 * SMALL_BYTES])
    offset = 2 * SMALL_BYTES
    public_key = secret_key[offset : offset + PUBLICKEY_BYTES]
    offset += PUBLICKEY_BYTES
    rho = secret_key[offset : offset + SMALL_BYTES]
    cache = secret_key[offset + SMALL_BYTES :]
    r = _decrypt(_rounded_decode(ciphertext[:ROUNDED_BYTES]), f, ginv)
    expected, r_enc = _hide(r, _rq_decode(public_key), cache)
    if hmac.compare_digest(expected, ciphertext):
        return _hash_session(1, r_enc, ciphertext)
    return _hash_session(0, rho, ciphertext)
