"""A pool of workers, one per (experiment root, code fingerprint, device), and the device probe.

The app's side of the workers, torch-free: pages and the CLI ask the pool for an
experiment's `WorkerClient`; workers of older code are retired once their requests end.

Replicas: a worker serves many sessions at once and batches what it can, but work that
cannot share a forward (a KV cache sized for one sequence, ``max_batch_size: 1``) runs one
request after another on one core. So when a session asks for an experiment whose workers
are all busy and a worker slot is free, on a CPU the pool starts a replica of that
experiment (at most one per core); each request goes to the least busy replica.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from typing import Any

from sandbox.worker.client import START_TIMEOUT, WorkerClient, WorkerLimiter, worker_env
from sandbox.worker.limiter import available_cores
from sandbox.worker.protocol import requested_device
from sandbox.zoo.discovery import Experiment

log = logging.getLogger(__name__)

PICK_GRACE = 1.0  # seconds a replica just handed to a session counts as busy


@functools.lru_cache(maxsize=1)
def _probed_device() -> str:
    """What ``python -m sandbox.worker.device`` prints: the device a worker would pick."""
    cmd = [sys.executable, "-m", "sandbox.worker.device"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=START_TIMEOUT, env=worker_env(), check=True)
        lines = done.stdout.strip().splitlines()
        return requested_device(lines[-1] if lines else "") or "cpu"
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("probing the device failed (%s); workers will pick their own", exc)
        return "cpu"


def probe_device(override: str | None = None) -> str:
    """The device workers use, learned without importing torch in this process: ``override``
    or ``$SANDBOX_DEVICE`` when set, else what one short-lived worker-side probe finds (run
    once per process, then remembered). Raises ValueError for an unknown device name."""
    return requested_device(override) or _probed_device()


class WorkerPool:
    """One worker per (experiment root, code fingerprint, device); live ones capped by a limiter.

    Pools given the same ``limiter`` share its cap (the app's main pool and its Playground
    lanes); without one a pool gets its own cap of ``max_workers``.
    """

    def __init__(
        self,
        max_workers: int = 4,
        device: str | None = None,
        *,
        limiter: WorkerLimiter | None = None,
        max_replicas: int | None = None,
        **client_kw: Any,
    ):
        self.limiter = limiter if limiter is not None else WorkerLimiter(max_workers)
        self.max_workers = self.limiter.cap
        self.device = device
        # Replicas buy parallel cores; on a GPU they would only duplicate its memory.
        if max_replicas is None:
            max_replicas = min(2, available_cores()) if device == "cpu" else 1
        self.max_replicas = max(1, max_replicas)
        self.client_kw = client_kw
        self._clients: OrderedDict[tuple, WorkerClient] = OrderedDict()
        self._picked: dict[int, tuple[float, str]] = {}  # id(client) -> when, and to which session, last given
        self._lock = threading.Lock()

    def client(self, experiment: Experiment, *, session: str | None = None) -> WorkerClient:
        """The worker handle for ``experiment`` (created lazily; the process starts on first use).

        With ``session`` (a session about to send requests), the least busy of the
        experiment's replicas, a new one when all are busy and a worker slot is free.
        """
        primary = self._primary(experiment)
        if session is None or self.max_replicas == 1:
            return primary
        key = (str(experiment.root), experiment.fingerprint(), self.device)
        now = time.monotonic()

        def load(c: WorkerClient) -> int:
            # A client handed to another session a moment ago has its requests on the way:
            # count it busy, so that sessions starting together spread over the replicas.
            at, who = self._picked.get(id(c), (-1e9, None))
            return c.in_flight + (now - at < PICK_GRACE and who != session)

        with self._lock:
            replicas = [primary] + [c for r in range(1, self.max_replicas) if (c := self._clients.get((*key, r)))]
            chosen = min(replicas, key=load)
            if load(chosen) and len(replicas) < self.max_replicas and self.limiter.live() < self.limiter.cap:
                chosen = self._new_client(experiment)
                self._clients[(*key, len(replicas))] = chosen
                log.info("starting replica %d of the worker of %s", len(replicas), experiment.name)
            self._picked[id(chosen)] = (now, session)
            return chosen

    def busy(self, experiment: Experiment) -> int:
        """Requests in flight on the least busy of ``experiment``'s workers (what a session's
        next request would share its worker with)."""
        key = (str(experiment.root), experiment.fingerprint(), self.device)
        with self._lock:
            found = [c for k, c in self._clients.items() if k[:3] == key]
        return min((c.in_flight for c in found), default=0)

    def _primary(self, experiment: Experiment) -> WorkerClient:
        key = (str(experiment.root), experiment.fingerprint(), self.device)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                # Code changed since that worker was started: its modules are stale. Another
                # session may be in the middle of a request on it: retire it, not close it.
                for old_key in [k for k in self._clients if k[0] == key[0]]:
                    self._clients.pop(old_key).retire()
                client = self._new_client(experiment)
                self._clients[key] = client
            self._clients.move_to_end(key)
            return client

    def _new_client(self, experiment: Experiment) -> WorkerClient:
        """A handle on a new worker of ``experiment`` (its process starts on first use)."""
        return WorkerClient(experiment.root, self.device, limiter=self.limiter, **self.client_kw)

    def close_all(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def live_workers(self) -> int:
        return sum(c.alive for c in self._clients.values())
