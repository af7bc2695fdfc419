"""Time the pure-Python sntrup761 against X25519 from `cryptography`, on one core.

Prints machine-readable `name=value` lines (milliseconds, median of --runs) and a short table:

    keypair_ms=...   encaps_ms=...   decaps_ms=...   x25519_ms=...   batch_keypair_ms=...

batch_keypair_ms is the amortised cost of one key pair made by `sntrup761.keypairs(BATCH)`, as
the key pair pool's filler makes them (BATCH = the pool's default size), one R/q inversion
shared by the batch.

x25519_ms is one side of an X25519 exchange (key generation, public encoding, shared secret),
the work the classical half of the hybrid adds. Targets (issue 6): key pair <= 30 ms and
decapsulation <= 5 ms; OpenSSH's portable C code takes about 74 ms per key pair here.

Usage: python benchmarks/bench_sntrup761.py [--runs 50] [--all-cores]
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before numpy loads: measure one core

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.kex import sntrup761

TARGETS_MS = {"keypair_ms": 30.0, "decaps_ms": 5.0}
BATCH = 10  # simulator.kex.pool.DEFAULT_POOL_SIZE


def median_ms(action: Callable[[], object], runs: int) -> float:
    """Median wall time of `runs` calls, after one warm-up call (caches, lazy imports)."""
    action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def x25519_one_side() -> bytes:
    """Key generation, public key encoding and the shared secret: one side of X25519."""
    private = X25519PrivateKey.generate()
    private.public_key().public_bytes_raw()
    return private.exchange(PEER_PUBLIC)


PEER_PUBLIC = X25519PrivateKey.generate().public_key()


def measure(runs: int) -> dict[str, float]:
    """All five figures, in milliseconds."""
    pair = sntrup761.keypair()
    ciphertext, _ = sntrup761.encaps(pair.public_key)
    return {
        "keypair_ms": median_ms(sntrup761.keypair, runs),
        "encaps_ms": median_ms(lambda: sntrup761.encaps(pair.public_key), runs),
        "decaps_ms": median_ms(lambda: sntrup761.decaps(ciphertext, pair.secret_key), runs),
        "x25519_ms": median_ms(x25519_one_side, runs),
        "batch_keypair_ms": median_ms(lambda: sntrup761.keypairs(BATCH), max(1, runs // BATCH)) / BATCH,
    }


def pin_to_one_core() -> str:
    """Restrict this process to one CPU where the OS allows it; says which."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed calls per figure (median)")
    parser.add_argument("--all-cores", action="store_true", help="do not pin to one CPU")
    args = parser.parse_args(argv)
    where = "all cores" if args.all_cores else pin_to_one_core()
    results = measure(args.runs)
    for name, value in results.items():
        print(f"{name}={value:.3f}")
    print(f"# sntrup761 (pure Python + numpy), median of {args.runs}, {where}")
    x25519 = results["x25519_ms"]
    for name, value in results.items():
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else f"  (target <= {target:g} ms: {'met' if value <= target else 'MISSED'})"
        print(f"#   {name[:-3]:13s} {value:8.3f} ms  {value / x25519:8.1f}x X25519{verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
