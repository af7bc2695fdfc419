"""The NIST AES-256 CTR DRBG that generates PQC known-answer tests, and liboqs's KAT text.

NIST's KAT generator (rng.c of the submission packages) is CTR_DRBG with AES-256, no
derivation function and no prediction resistance: the state is a key and a counter V, and every
call to randombytes produces blocks AES(K, V+1), AES(K, V+2), ... then refreshes (K, V) from
three more blocks. The output therefore depends on how the bytes are split into calls, which is
why the implementation under test must request its randomness exactly as the reference does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SEED_BYTES = 48


@dataclass
class CtrDrbg:
    """AES-256 CTR DRBG; `randombytes` has the signature the KEM expects."""

    key: bytes = bytes(32)
    counter: int = 0

    @classmethod
    def seeded(cls, entropy: bytes, personalization: bytes | None = None) -> CtrDrbg:
        """randombytes_init: absorb 48 bytes of entropy (xor the personalization string)."""
        if len(entropy) != SEED_BYTES:
            raise ValueError("the NIST DRBG takes exactly 48 bytes of entropy")
        material = entropy
        if personalization is not None:
            material = bytes(a ^ b for a, b in zip(entropy, personalization))
        drbg = cls()
        drbg._update(material)
        return drbg

    def _blocks(self, count: int) -> bytes:
        """AES-256 of the next `count` counter values (big-endian, 128-bit wrap-around)."""
        start = self.counter
        self.counter = (start + count) % (1 << 128)
        plain = b"".join(((start + i + 1) % (1 << 128)).to_bytes(16, "big") for i in range(count))
        encryptor = Cipher(algorithms.AES(self.key), modes.ECB()).encryptor()
        return encryptor.update(plain) + encryptor.finalize()

    def _update(self, provided: bytes | None) -> None:
        """AES256_CTR_DRBG_Update: three blocks, xored with the provided data, become K || V."""
        temp = self._blocks(3)
        if provided is not None:
            temp = bytes(a ^ b for a, b in zip(temp, provided))
        self.key = temp[:32]
        self.counter = int.from_bytes(temp[32:], "big")

    def randombytes(self, length: int) -> bytes:
        """Generate `length` bytes, then refresh the state (one NIST randombytes call)."""
        out = self._blocks((length + 15) // 16)[:length]
        self._update(None)
        return out

    def copy(self) -> CtrDrbg:
        """A snapshot of the state (liboqs saves and restores the master generator)."""
        return CtrDrbg(self.key, self.counter)


KemKeypair = Callable[[Callable[[int], bytes]], tuple[bytes, bytes]]
KemEncaps = Callable[[bytes, Callable[[int], bytes]], tuple[bytes, bytes]]
KemDecaps = Callable[[bytes, bytes], bytes]


def _hex_line(label: str, data: bytes) -> str:
    """One `label = HEX` line as liboqs's OQS_fprintBstr writes it (upper case)."""
    return f"{label} = {data.hex().upper() if data else '00'}\n"


def liboqs_kem_kat(
    keypair: KemKeypair, encaps: KemEncaps, decaps: KemDecaps, count: int = 1
) -> str:
    """The text liboqs's tests/kat_kem prints: one record (`single`) or 100 (`--all`).

    The master DRBG is seeded with bytes 0..47; each record's 48-byte seed is the master's next
    output, and the KEM then runs on a DRBG seeded with it. Records are separated by a blank
    line, with none after the last. `encaps` returns (ciphertext, shared key).
    """
    master = CtrDrbg.seeded(bytes(range(SEED_BYTES)))
    records = []
    for index in range(count):
        seed = master.randombytes(SEED_BYTES)
        drbg = CtrDrbg.seeded(seed)
        public_key, secret_key = keypair(drbg.randombytes)
        ciphertext, shared = encaps(public_key, drbg.randombytes)
        if decaps(ciphertext, secret_key) != shared:
            raise AssertionError(f"KAT record {index}: decapsulation disagrees")
        records.append(
            f"count = {index}\n"
            + _hex_line("seed", seed)
            + _hex_line("pk", public_key)
            + _hex_line("sk", secret_key)
            + _hex_line("ct", ciphertext)
            + _hex_line("ss", shared)
        )
    return "\n".join(records)
