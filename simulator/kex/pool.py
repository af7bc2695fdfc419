"""A bounded pool of pre-generated sntrup761 key pairs, filled by a background thread.

asyncssh builds a key exchange handler synchronously while it processes the peer's KEXINIT, so
a 10-15 ms key generation there would stall the event loop, and ten concurrent connections
would queue behind one another. Key pairs are ephemeral and independent of the connection, so
they can be made ahead of time: a daemon thread keeps up to `size` of them ready, a connection
takes one without waiting, and when the pool runs dry the key pair is made in an executor
thread instead, never on the loop.

The filler makes key pairs in batches (`sntrup761.keypairs`, which shares one R/q inversion
among the batch, the dearest step): it waits until the pool is down to `refill_at` ready pairs
(half of `size` by default) and then fills every free slot in one batch, so a refill costs a
fraction of the CPU time of as many single key generations; `refill_at=size - 1` refills after
every take. A batch only fills free slots, so the ready pairs plus the batch being handed over
never exceed `size`.

Each key pair is handed out once (a queue pop). A forked child drops the parent's pool, so two
processes never use the same ephemeral key.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import weakref
from collections.abc import Callable, Sequence

from simulator.kex import sntrup761

DEFAULT_POOL_SIZE = 10
_PUT_POLL_SECONDS = 0.5


class KeypairPool:
    """Thread-safe, bounded supply of fresh key pairs."""

    def __init__(
        self,
        size: int = DEFAULT_POOL_SIZE,
        generate: Callable[[], sntrup761.KeyPair] = sntrup761.keypair,
        generate_batch: Callable[[int], Sequence[sntrup761.KeyPair]] | None = None,
        refill_at: int | None = None,
    ) -> None:
        """`generate` makes one pair (used when the pool is empty); `generate_batch(n)` makes n
        for the filler (default: `sntrup761.keypairs` with the default `generate`, else n calls
        of `generate`). The filler refills once at most `refill_at` pairs are ready (default
        size // 2)."""
        if size < 0:
            raise ValueError("pool size must be >= 0")
        if refill_at is None:
            refill_at = size // 2
        if not 0 <= refill_at < max(size, 1):
            raise ValueError("refill_at must be in [0, size)")
        self.size = size
        self.refill_at = refill_at
        self._generate = generate
        if generate_batch is None:
            if generate is sntrup761.keypair:
                generate_batch = sntrup761.keypairs
            else:
                generate_batch = lambda count: [generate() for _ in range(count)]  # noqa: E731
        self._generate_batch = generate_batch
        self._lock = threading.Lock()
        self._reset()
        _POOLS.add(self)

    def _reset(self) -> None:
        """Fresh, empty state (also what a forked child starts from)."""
        self._queue: queue.Queue[sntrup761.KeyPair] = queue.Queue(maxsize=max(self.size, 1))
        self._stop = threading.Event()
        self._taken = threading.Event()  # set by take(): the filler rechecks the level
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the filler thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def available(self) -> int:
        """How many key pairs are ready now (approximate while the filler runs)."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the filler thread (no-op when running or when the pool size is 0)."""
        with self._lock:
            if self.size == 0 or self.running:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._fill,
                args=(self._queue, self._stop, self._taken),
                name="sntrup761-pool",
                daemon=True,
            )
            self._thread.start()

    def _fill(
        self, ready: queue.Queue[sntrup761.KeyPair], stop: threading.Event, taken: threading.Event
    ) -> None:
        """Top the pool up in batches until stopped.

        Whenever at most `refill_at` pairs are ready, one batch fills every free slot; above
        that level the filler sleeps until a take() (so the pool may rest between `refill_at`
        + 1 and `size` pairs, if pairs were taken while a batch was being made).
        """
        while not stop.is_set():
            taken.clear()  # before reading the level, so a take() after the read wakes us
            level = ready.qsize()
            if level > self.refill_at:
                taken.wait(_PUT_POLL_SECONDS)
                continue
            for pair in self._generate_batch(self.size - level):
                while not stop.is_set():
                    try:
                        ready.put(pair, timeout=_PUT_POLL_SECONDS)
                        break
                    except queue.Full:
                        continue

    def take(self) -> sntrup761.KeyPair | None:
        """A ready key pair, or None when the pool is empty; never blocks."""
        self.start()
        try:
            pair = self._queue.get_nowait()
        except queue.Empty:
            return None
        self._taken.set()
        return pair

    def get(self) -> sntrup761.KeyPair:
        """A key pair, generated on the calling thread if none is ready (for sync callers)."""
        return self.take() or self._generate()

    async def acquire(self) -> sntrup761.KeyPair:
        """A key pair for a coroutine: from the pool, else generated in the default executor."""
        pair = self.take()
        if pair is not None:
            return pair
        return await asyncio.get_running_loop().run_in_executor(None, self._generate)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the filler thread and drop the ready key pairs."""
        with self._lock:
            self._stop.set()
            self._taken.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def _after_fork_in_child(self) -> None:
        """The filler thread did not survive the fork and its queue lock may be held: start over."""
        self._lock = threading.Lock()
        self._reset()


_POOLS: weakref.WeakSet[KeypairPool] = weakref.WeakSet()


def _reset_pools_in_child() -> None:
    """Forget every pool's key pairs in a forked child (they belong to the parent)."""
    for pool in list(_POOLS):
        pool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pools_in_child)
