"""A pool of workers, one per (experiment root, code fingerprint, device), and the device probe.

The app's side of the workers, torch-free: pages and the CLI ask the pool for an
experiment's `WorkerClient`; workers of older code are retired once their requests end.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
import threading
from collections import OrderedDict
from typing import Any

from sandbox.worker.client import START_TIMEOUT, WorkerClient, WorkerLimiter, worker_env
from sandbox.worker.protocol import requested_device
from sandbox.zoo.discovery import Experiment

log = logging.getLogger(__name__)


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
        self, max_workers: int = 4, device: str | None = None, *, limiter: WorkerLimiter | None = None, **client_kw: Any
    ):
        self.limiter = limiter if limiter is not None else WorkerLimiter(max_workers)
        self.max_workers = self.limiter.cap
        self.device = device
        self.client_kw = client_kw
        self._clients: OrderedDict[tuple, WorkerClient] = OrderedDict()
        self._lock = threading.Lock()

    def client(self, experiment: Experiment) -> WorkerClient:
        """The worker handle for ``experiment`` (created lazily; the process starts on first use)."""
        key = (str(experiment.root), experiment.fingerprint(), self.device)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                # Code changed since that worker was started: its modules are stale. Another
                # session may be in the middle of a request on it: retire it, not close it.
                for old_key in [k for k in self._clients if k[0] == key[0]]:
                    self._clients.pop(old_key).retire()
                client = WorkerClient(experiment.root, self.device, limiter=self.limiter, **self.client_kw)
                self._clients[key] = client
            self._clients.move_to_end(key)
            return client

    def close_all(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def live_workers(self) -> int:
        return sum(c.alive for c in self._clients.values())
