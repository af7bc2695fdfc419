"""sntrup761 (issue 6): bit-exact KATs, KEM properties, the key pair pool, and real key exchanges.

The known-answer tests reproduce the text liboqs's tests/kat_kem prints for sntrup761 and
compare its SHA-256 with the values liboqs records in tests/KATs/kem/kats.json, so the
implementation is proven exact without shipping anyone's test vectors.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading

import asyncssh
import numpy as np
import pytest
from conftest import client_connect_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kat_drbg import CtrDrbg, liboqs_kem_kat

from simulator.kex import register, registered_backend, sntrup761
from simulator.kex.asyncssh_kex import KEX_ALGS, SntrupKEM, keypair_pool
from simulator.kex.pool import KeypairPool

LIBOQS_KAT_SHA256_SINGLE = "afc42c3a5b10f4ef69654250097ebda9b9564570f4086744b24a6daf2bd1f89a"
LIBOQS_KAT_SHA256_ALL = "36e1e53d4e6e295e8fb804449958ad9a3719aa350e91933c65791b9117382d57"
# The first seed of every NIST PQC KAT file (master DRBG seeded with bytes 0..47).
NIST_FIRST_SEED = bytes.fromhex(
    "061550234D158C5EC95595FE04EF7A25767F2E24CC2BC479D09D86DC9ABCFDE7056A8C266F9EF97ED08541DBD2E1FFA1"
)

seeds = st.binary(min_size=48, max_size=48)
kem_settings = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _kat_sha256(count: int) -> str:
    text = liboqs_kem_kat(sntrup761.keypair, sntrup761.encaps, sntrup761.decaps, count)
    return hashlib.sha256(text.encode()).hexdigest()


def _deterministic_keypair(seed: bytes) -> tuple[sntrup761.KeyPair, CtrDrbg]:
    drbg = CtrDrbg.seeded(seed)
    return sntrup761.keypair(drbg.randombytes), drbg


# --- known answers -----------------------------------------------------------------------------


def test_drbg_reproduces_the_nist_first_seed() -> None:
    master = CtrDrbg.seeded(bytes(range(48)))
    assert master.randombytes(48) == NIST_FIRST_SEED


def test_kat_single_matches_liboqs() -> None:
    assert _kat_sha256(1) == LIBOQS_KAT_SHA256_SINGLE


def test_kat_all_matches_liboqs() -> None:
    """All 100 records of `kat_kem sntrup761 --all` (about two seconds)."""
    assert _kat_sha256(100) == LIBOQS_KAT_SHA256_ALL


def test_kat_text_has_liboqs_layout() -> None:
    text = liboqs_kem_kat(sntrup761.keypair, sntrup761.encaps, sntrup761.decaps, 2)
    records = text.split("\n\n")
    assert len(records) == 2 and not text.endswith("\n\n")
    labels = [line.split(" = ")[0] for line in records[1].splitlines()]
    assert labels == ["count", "seed", "pk", "sk", "ct", "ss"]
    assert records[0].startswith("count = 0\nseed = " + NIST_FIRST_SEED.hex().upper() + "\n")


# --- KEM properties ----------------------------------------------------------------------------


def test_sizes_match_the_wire_format() -> None:
    pair = sntrup761.keypair()
    ciphertext, shared = sntrup761.encaps(pair.public_key)
    assert len(pair.public_key) == 1158 == sntrup761.PUBLICKEY_BYTES
    assert len(pair.secret_key) == 1763 == sntrup761.SECRETKEY_BYTES
    assert len(ciphertext) == 1039 == sntrup761.CIPHERTEXT_BYTES
    assert len(shared) == 32 == sntrup761.SHAREDSECRET_BYTES


@kem_settings
@given(seed=seeds)
def test_round_trip(seed: bytes) -> None:
    pair, drbg = _deterministic_keypair(seed)
    ciphertext, shared = sntrup761.encaps(pair.public_key, drbg.randombytes)
    assert sntrup761.decaps(ciphertext, pair.secret_key) == shared


def test_round_trip_with_system_randomness() -> None:
    pair = sntrup761.keypair()
    first = sntrup761.encaps(pair.public_key)
    second = sntrup761.encaps(pair.public_key)
    assert first.shared_key != second.shared_key
    for ciphertext, shared in (first, second):
        assert sntrup761.decaps(ciphertext, pair.secret_key) == shared


def _rejection_key(ciphertext: bytes, secret_key: bytes) -> bytes:
    """What the specification says decapsulation returns for an invalid ciphertext."""
    rho_at = 2 * sntrup761.SMALL_BYTES + sntrup761.PUBLICKEY_BYTES
    rho = secret_key[rho_at : rho_at + sntrup761.SMALL_BYTES]
    inner = hashlib.sha512(b"\x03" + rho).digest()[:32]
    return hashlib.sha512(b"\x00" + inner + ciphertext).digest()[:32]


@kem_settings
@given(seed=seeds, position=st.integers(0, sntrup761.CIPHERTEXT_BYTES - 1), bit=st.integers(0, 7))
def test_tampered_ciphertext_gives_the_implicit_rejection_key(seed: bytes, position: int, bit: int) -> None:
    pair, drbg = _deterministic_keypair(seed)
    ciphertext, shared = sntrup761.encaps(pair.public_key, drbg.randombytes)
    tampered = bytearray(ciphertext)
    tampered[position] ^= 1 << bit
    key = sntrup761.decaps(bytes(tampered), pair.secret_key)
    assert key != shared
    assert key == _rejection_key(bytes(tampered), pair.secret_key)


def test_ciphertext_for_another_key_is_rejected_implicitly() -> None:
    alice, bob = sntrup761.keypair(), sntrup761.keypair()
    ciphertext, shared = sntrup761.encaps(alice.public_key)
    key = sntrup761.decaps(ciphertext, bob.secret_key)
    assert key != shared and key == _rejection_key(ciphertext, bob.secret_key)


def test_wrong_lengths_raise_value_error() -> None:
    pair = sntrup761.keypair()
    ciphertext, _ = sntrup761.encaps(pair.public_key)
    with pytest.raises(ValueError):
        sntrup761.encaps(pair.public_key[:-1])
    with pytest.raises(ValueError):
        sntrup761.decaps(ciphertext + b"\x00", pair.secret_key)
    with pytest.raises(ValueError):
        sntrup761.decaps(ciphertext, pair.secret_key[:-1])


# --- batch key generation ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 5])
def test_batch_keypairs_equal_successive_single_keypairs(count: int) -> None:
    """Same randomness in the same order, one shared R/q inversion: byte-identical pairs."""
    single_rng = CtrDrbg.seeded(NIST_FIRST_SEED)
    batch_rng = CtrDrbg.seeded(NIST_FIRST_SEED)
    singles = [sntrup761.keypair(single_rng.randombytes) for _ in range(count)]
    batch = sntrup761.keypairs(count, batch_rng.randombytes)
    assert batch == singles
    assert single_rng.randombytes(32) == batch_rng.randombytes(32)  # same amount consumed


def test_batch_public_keys_match_single_for_the_same_f_and_g() -> None:
    rng = CtrDrbg.seeded(bytes(range(48))).randombytes
    fs, gs = [], []
    while len(gs) < 6:
        g = sntrup761._small_random(rng)
        if sntrup761._r3_recip(g) is not None:
            gs.append(g)
            fs.append(sntrup761._short_random(rng))
    batch = sntrup761._rq_batch_recip3(fs)
    for f, g, f3inv in zip(fs, gs, batch):
        single = sntrup761._rq_recip3(f)
        assert np.array_equal(f3inv, single)
        assert sntrup761._rq_encode(sntrup761._rq_mult_small(f3inv, g)) == sntrup761._rq_encode(
            sntrup761._rq_mult_small(single, g)
        )


def test_batch_keypairs_round_trip() -> None:
    pairs = sntrup761.keypairs(4)
    assert len({pair.public_key for pair in pairs}) == 4
    for pair in pairs:
        ciphertext, shared = sntrup761.encaps(pair.public_key)
        assert sntrup761.decaps(ciphertext, pair.secret_key) == shared


def test_batch_keypairs_edge_counts() -> None:
    assert sntrup761.keypairs(0) == []
    with pytest.raises(ValueError):
        sntrup761.keypairs(-1)


# --- ring arithmetic and encodings -------------------------------------------------------------


def _one() -> np.ndarray:
    unit = np.zeros(sntrup761.P, np.int64)
    unit[0] = 1
    return unit


@kem_settings
@given(seed=seeds)
def test_r3_inverse_is_an_inverse(seed: bytes) -> None:
    g = sntrup761._small_random(CtrDrbg.seeded(seed).randombytes)
    ginv = sntrup761._r3_recip(g)
    if ginv is not None:
        assert np.array_equal(sntrup761._r3_mult(g, ginv), _one())


def test_r3_zero_is_not_invertible() -> None:
    assert sntrup761._r3_recip(np.zeros(sntrup761.P, np.int64)) is None


@kem_settings
@given(seed=seeds)
def test_rq_inverse_of_3f_is_an_inverse(seed: bytes) -> None:
    f = sntrup761._short_random(CtrDrbg.seeded(seed).randombytes)
    finv = sntrup761._rq_recip3(f)
    assert np.abs(finv).max() <= sntrup761.Q12
    assert np.array_equal(sntrup761._rq_mult_small(sntrup761._freeze_q(3 * finv), f), _one())


@settings(max_examples=10, deadline=None)
@given(
    a=st.lists(st.integers(-sntrup761.Q12, sntrup761.Q12), min_size=761, max_size=761),
    b=st.lists(st.integers(-sntrup761.Q12, sntrup761.Q12), min_size=761, max_size=761),
)
def test_rq_mult_matches_exact_integer_product(a: list[int], b: list[int]) -> None:
    product = [0] * (2 * sntrup761.P - 1)
    for i, ai in enumerate(a):
        if ai:
            for j, bj in enumerate(b):
                product[i + j] += ai * bj
    for k in range(len(product) - 1, sntrup761.P - 1, -1):  # x^(p+j) = x^(j+1) + x^j
        product[k - sntrup761.P + 1] += product[k]
        product[k - sntrup761.P] += product[k]
    expected = [(c + sntrup761.Q12) % sntrup761.Q - sntrup761.Q12 for c in product[: sntrup761.P]]
    got = sntrup761._rq_mult(np.array(a, np.int64), np.array(b, np.int64))
    assert got.tolist() == expected


def test_rq_mult_is_exact_at_the_extremes() -> None:
    top = np.full(sntrup761.P, sntrup761.Q12, np.int64)
    square = sntrup761._rq_mult(top, top)
    assert np.array_equal(sntrup761._rq_mult(top, -top), sntrup761._freeze_q(-square))
    assert np.array_equal(sntrup761._rq_mult(top, _one()), top)


@kem_settings
@given(seed=seeds)
def test_short_random_has_weight_w(seed: bytes) -> None:
    r = sntrup761._short_random(CtrDrbg.seeded(seed).randombytes)
    assert np.count_nonzero(r) == sntrup761.W and set(np.unique(r)) <= {-1, 0, 1}


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.integers(-sntrup761.Q12, sntrup761.Q12), min_size=761, max_size=761))
def test_rq_encoding_round_trips(values: list[int]) -> None:
    h = np.array(values, np.int64)
    encoded = sntrup761._rq_encode(h)
    assert len(encoded) == sntrup761.RQ_BYTES
    assert np.array_equal(sntrup761._rq_decode(encoded), h)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.integers(-765, 765), min_size=761, max_size=761))
def test_rounded_encoding_round_trips(values: list[int]) -> None:
    c = np.array(values, np.int64) * 3
    encoded = sntrup761._rounded_encode(c)
    assert len(encoded) == sntrup761.ROUNDED_BYTES
    assert np.array_equal(sntrup761._rounded_decode(encoded), c)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.integers(-1, 1), min_size=761, max_size=761))
def test_small_encoding_round_trips(values: list[int]) -> None:
    small = np.array(values, np.int64)
    encoded = sntrup761._small_encode(small)
    assert len(encoded) == sntrup761.SMALL_BYTES
    assert np.array_equal(sntrup761._small_decode(encoded), small)


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=1158, max_size=1158))
def test_any_public_key_bytes_decode_into_range(data: bytes) -> None:
    h = sntrup761._rq_decode(data)
    assert h.min() >= -sntrup761.Q12 and h.max() <= sntrup761.Q12


# --- the key pair pool -------------------------------------------------------------------------


def test_pool_is_bounded_and_hands_each_pair_out_once() -> None:
    # refill_at=2: top up after every take, so the pool must come back to exactly its bound
    # (with the default refill_at=1 it may rest at 2; see the batch refill test below).
    pool = KeypairPool(size=3, refill_at=2)
    try:
        pool.start()
        pairs = [pool.get() for _ in range(8)]
        assert len({pair.public_key for pair in pairs}) == 8
        deadline = threading.Event()
        for _ in range(100):  # let the filler top the pool up, then check it stops at the bound
            if pool.available() == 3:
                break
            deadline.wait(0.05)
        assert pool.available() == 3
        deadline.wait(0.1)
        assert pool.available() == 3
    finally:
        pool.close()
    assert not pool.running and pool.available() == 0


def test_pool_refills_in_batches_up_to_the_bound() -> None:
    batches: list[int] = []

    def generate_batch(count: int) -> list[sntrup761.KeyPair]:
        batches.append(count)
        return sntrup761.keypairs(count)

    pool = KeypairPool(size=6, generate_batch=generate_batch)
    try:
        pool.start()
        wait = threading.Event()
        for _ in range(200):
            if pool.available() == 6:
                break
            wait.wait(0.05)
        assert pool.available() == 6 and batches == [6]
        taken = [pool.take() for _ in range(2)]  # 4 left, above refill_at = 3: no refill
        wait.wait(0.3)
        assert pool.available() == 4 and batches == [6]
        taken.append(pool.take())  # 3 left: refill the 3 missing in one batch
        for _ in range(200):
            if pool.available() == 6:
                break
            wait.wait(0.05)
        assert pool.available() == 6 and batches == [6, 3]
        assert all(pair is not None for pair in taken)
        assert len({pair.public_key for pair in taken if pair is not None}) == 3
    finally:
        pool.close()
    assert not pool.running and pool.available() == 0


def test_pool_rejects_bad_refill_level() -> None:
    with pytest.raises(ValueError):
        KeypairPool(size=4, refill_at=4)
    with pytest.raises(ValueError):
        KeypairPool(size=4, refill_at=-1)


async def test_empty_pool_generates_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    used_threads: list[int] = []

    def generate() -> sntrup761.KeyPair:
        used_threads.append(threading.get_ident())
        return sntrup761.keypair()

    pool = KeypairPool(size=0, generate=generate)
    pairs = await asyncio.gather(*(pool.acquire() for _ in range(10)))
    assert len({pair.public_key for pair in pairs}) == 10
    assert len(used_threads) == 10 and loop_thread not in used_threads


async def test_ten_concurrent_acquisitions_do_not_block_the_loop() -> None:
    """While ten key pairs are obtained, a ticker on the loop keeps running."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    pool = KeypairPool(size=0)
    task = asyncio.ensure_future(ticker())
    try:
        await asyncio.gather(*(pool.acquire() for _ in range(10)))
    finally:
        task.cancel()
    assert ticks > 10


def test_forked_child_does_not_reuse_the_parents_pairs() -> None:
    pool = KeypairPool(size=2)
    try:
        pool.start()
        while pool.available() < 2:
            threading.Event().wait(0.02)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: the inherited pool must be empty and restartable
            try:
                os.write(write_end, str(pool.available()).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        reported = os.read(read_end, 16)
        os.close(read_end)
        os.waitpid(pid, 0)
        assert reported == b"0"
        assert pool.available() == 2
    finally:
        pool.close()


# --- asyncssh registration ---------------------------------------------------------------------


def test_register_is_idempotent_and_orders_like_liboqs() -> None:
    first, second = register(), register()
    assert first == second == registered_backend()
    from asyncssh.kex import get_default_kex_algs, get_kex_algs

    for alg in KEX_ALGS:
        assert get_kex_algs().count(alg) == 1
    defaults = get_default_kex_algs()
    if first == "python":
        assert defaults.index(KEX_ALGS[1]) < defaults.index(b"curve25519-sha256")
        assert keypair_pool().running


def test_pq_shim_follows_asyncssh_protocol() -> None:
    client, server = SntrupKEM(b"sntrup761"), SntrupKEM(b"sntrup761")
    secret, ciphertext = server.encaps(client.get_public())
    assert client.decaps(ciphertext) == secret
    with pytest.raises(ValueError):
        SntrupKEM(b"mlkem768")
    with pytest.raises(ValueError):
        server.encaps(b"short")


async def test_asyncssh_client_and_server_agree_over_loopback(tmp_path: object) -> None:
    """Both ends in asyncssh: exercises the client (decaps) and server (encaps) paths."""
    register()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
            return key.public_data == client_key.public_data

    async def handle(process: asyncssh.SSHServerProcess) -> None:
        process.stdout.write("ok\n")
        process.exit(0)

    for alg in KEX_ALGS:
        listener = await asyncssh.listen(
            "127.0.0.1", 0, server_host_keys=[host_key], server_factory=Server,
            process_factory=handle, kex_algs=[alg.decode()],
        )
        port = listener.sockets[0].getsockname()[1]
        try:
            async with asyncssh.connect(
                "127.0.0.1", port, username="u", client_keys=[client_key], known_hosts=None,
                kex_algs=[alg.decode()],
            ) as conn:
                result = await conn.run("x", check=True)
                assert result.stdout == "ok\n"
        finally:
            listener.close()
            await listener.wait_closed()


# --- a real key exchange with OpenSSH ----------------------------------------------------------

KEX_LINE = re.compile(r"sshd\[(\d+)\]: debug1: kex: algorithm: (\S+)")
DONE_LINE = re.compile(r"sshd\[(\d+)\]: debug1: KEX done")


@pytest.mark.sshd
async def test_openssh_negotiates_sntrup761_and_the_session_works(sshd_server: object) -> None:
    register()
    async with asyncssh.connect(
        **client_connect_args(sshd_server), kex_algs=["sntrup761x25519-sha512@openssh.com"]
    ) as conn:
        result = await conn.run("echo kex-ok", check=True)
        assert result.stdout == "kex-ok\n"
    sshd_server.wait_idle()  # type: ignore[attr-defined]
    text = "\n".join(sshd_server.log.lines())  # type: ignore[attr-defined]
    pids = {m.group(1) for m in KEX_LINE.finditer(text) if m.group(2) == "sntrup761x25519-sha512@openssh.com"}
    assert pids, "sshd did not log kex: algorithm: sntrup761x25519-sha512@openssh.com"
    assert pids <= {m.group(1) for m in DONE_LINE.finditer(text)}
    assert "Accepted publickey for user" in text


@pytest.mark.sshd
async def test_ten_concurrent_connections_use_sntrup761(sshd_server: object) -> None:
    """Ten simultaneous key exchanges all complete (none waits on another's key generation)."""
    register()

    async def session(index: int) -> str:
        async with asyncssh.connect(**client_connect_args(sshd_server), kex_algs=[alg.decode() for alg in KEX_ALGS[::-1]]) as conn:
            result = await conn.run(f"echo {index}", check=True)
            return str(result.stdout).strip()

    outputs = await asyncio.gather(*(session(i) for i in range(10)))
    assert outputs == [str(i) for i in range(10)]
    sshd_server.wait_idle()  # type: ignore[attr-defined]
    text = "\n".join(sshd_server.log.lines())  # type: ignore[attr-defined]
    algorithms = [m.group(2) for m in KEX_LINE.finditer(text)]
    assert len(algorithms) == 10 and set(algorithms) <= {alg.decode() for alg in KEX_ALGS}
    assert len(DONE_LINE.findall(text)) == 10


@pytest.mark.sshd
async def test_rekeying_repeats_the_sntrup761_exchange(sshd_server: object) -> None:
    """Client-initiated rekeys (every 64 KiB sent) each run the hybrid exchange again."""
    register()
    async with asyncssh.connect(
        **client_connect_args(sshd_server), kex_algs=["sntrup761x25519-sha512@openssh.com"],
        rekey_bytes=64 * 1024,
    ) as conn:
        result = await conn.run("wc -c", input="x" * 300_000, check=True)
        assert str(result.stdout).strip() == "300000"
    sshd_server.wait_idle()  # type: ignore[attr-defined]
    text = "\n".join(sshd_server.log.lines())  # type: ignore[attr-defined]
    algorithms = [m.group(2) for m in KEX_LINE.finditer(text)]
    assert len(algorithms) >= 3 and set(algorithms) == {"sntrup761x25519-sha512@openssh.com"}
