"""The one cap on live worker processes, and the share of the cores each one gets.

App side, torch-free. A `WorkerLimiter` is shared by every pool (and client) given it: a
worker process starts only in a free slot, made if need be by stopping the least recently
used IDLE worker (no request in flight); a busy one is never stopped mid-request, so a
request may wait for a slot and, after its timeout, says that all workers are busy.

Threads: every live worker gets ``cores // live workers`` torch intra-op threads (at least
one). A worker starts with its share (``--threads``), and whenever the number of live workers
changes the others are told their new share (a ``threads`` message): workers that each
start torch with all cores' threads spin against each other (seen: a 200-token generation
13x slower while one other ran).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from sandbox.errors import WorkerBusy

log = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on; ``OMP_NUM_THREADS``, when set, caps them (a benchmark
    that pins its processes to one thread each)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cap = os.environ.get("OMP_NUM_THREADS", "")
    if cap.isdigit() and int(cap) > 0:
        cores = min(cores, int(cap))
    return max(1, cores)


def thread_budget(live: int, cores: int | None = None) -> int:
    """Intra-op threads of each of ``live`` workers sharing ``cores`` (default: this machine's)."""
    return max(1, (cores or available_cores()) // max(1, live))


class WorkerLimiter:
    """One cap on live worker processes, shared by every pool (and client) given it.

    A client holds a slot from just before its process starts until the process is gone.
    When all slots are taken, the least recently used idle worker is stopped to free one
    (idle: no request in flight, checked with its request gate taken, so that none starts
    meanwhile); a busy worker is never stopped, so the request waits for one to finish.
    """

    def __init__(self, cap: int, cores: int | None = None):
        if cap < 1:
            raise ValueError(f"the worker cap must be at least 1, not {cap}")
        self.cap = cap
        self.cores = cores
        self._cond = threading.Condition()
        self._holders: set[Any] = set()
        self._told: dict[Any, int] = {}  # the thread share each holder was last given

    def live(self) -> int:
        """Slots taken: worker processes alive or starting."""
        with self._cond:
            return len(self._holders)

    def threads(self) -> int:
        """The thread share of each live worker now (what a starting worker is given)."""
        with self._cond:
            return thread_budget(len(self._holders), self.cores)

    def acquire(self, client: Any, timeout: float) -> None:
        """A slot for ``client``'s next process; raises `WorkerBusy` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if client in self._holders:
                    return
                if len(self._holders) < self.cap:
                    self._holders.add(client)
                    break
                victim = self._lock_idle(exclude=client)
                if victim is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise WorkerBusy(
                            f"All {self.cap} workers are busy with other requests (at most {self.cap} "
                            f"run at once), so the worker of {client.root.name} could not start.",
                            hint="Try again when one of them has finished.",
                        )
                    # Woken when a worker stops or finishes a request; the periodic wake-up
                    # also notices a holder whose process died on its own.
                    self._cond.wait(min(left, 1.0))
                    continue
                # The victim's slot passes to ``client`` before the victim is stopped, so
                # no other request can take it in between.
                self._holders.discard(victim)
                self._holders.add(client)
            try:
                log.info("stopping the idle worker of %s to start one for %s", victim.root.name, client.root.name)
                victim.close()
            finally:
                victim._lock.release()
            break
        self.rebalance()

    def _lock_idle(self, exclude: Any) -> Any | None:
        """The least recently used holder with no request in flight, its request gate taken."""
        others = sorted((c for c in self._holders if c is not exclude), key=lambda c: (c.waiting > 0, c.last_used))
        for candidate in others:
            if candidate._lock.acquire(blocking=False):
                if candidate.in_flight == 0:
                    return candidate
                candidate._lock.release()
        return None

    def release(self, client: Any) -> None:
        """``client``'s process is gone: its slot is free."""
        with self._cond:
            self._holders.discard(client)
            self._told.pop(client, None)
            self._cond.notify_all()
        self.rebalance()

    def notify(self) -> None:
        """A worker finished a request: requests waiting for a slot may now stop it."""
        with self._cond:
            self._cond.notify_all()

    def rebalance(self) -> None:
        """Tell every live worker its thread share, when it changed since it was last told."""
        with self._cond:
            share = thread_budget(len(self._holders), self.cores)
            changed = [c for c in self._holders if self._told.get(c) != share]
            for client in changed:
                self._told[client] = share
        for client in changed:
            client.set_threads(share)
