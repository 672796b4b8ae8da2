"""The pool of Ray workers: one actor per experiment, behind the `WorkerPool` API."""

from __future__ import annotations

from typing import Any

from sandbox.worker.pool import WorkerPool
from sandbox.worker.ray.client import RayWorkerClient
from sandbox.worker.ray.connect import connect, require_ray
from sandbox.worker.ray.settings import RaySettings
from sandbox.zoo.discovery import Experiment


class RayWorkerPool(WorkerPool):
    """`WorkerPool` with Ray actors: one per (experiment root, code fingerprint, device), capped
    (and least recently used first evicted) by the same `WorkerLimiter`.

    Made with an ``address`` (settings from the environment) or whole ``settings``; raises
    `RayUnavailable` with the install sentence when ``ray`` is not installed.
    """

    spread = True  # its workers may be on several machines: `evaluate` runs experiments side by side

    def __init__(
        self,
        address: str | None = None,
        max_workers: int = 4,
        device: str | None = None,
        *,
        settings: RaySettings | None = None,
        limiter: Any = None,
        **client_kw: Any,
    ):
        require_ray()  # fail when the pool is made, not at its first request
        super().__init__(max_workers, device, limiter=limiter, **client_kw)
        if settings is None:
            if not address:
                raise ValueError("a Ray pool needs an address or settings")
            settings = RaySettings.from_env(address)
        self.settings = settings

    @property
    def label(self) -> str:
        """Where the workers run, for the app's caption and the CLI (an address, never a path)."""
        if self.settings.address == "auto":
            return "workers: Ray cluster (auto: the one this machine belongs to)"
        return f"workers: Ray cluster at {self.settings.address}"

    def connect(self) -> None:
        """Join the cluster now (the CLI fails fast with the sentence instead of per request)."""
        connect(self.settings.address)

    def client(self, experiment: Experiment, *, session: str | None = None) -> RayWorkerClient:
        """The worker handle for ``experiment`` (its actor starts on first use).

        `WorkerPool.client` with a `RayWorkerClient`: the same key, and a client of older
        code retired once its requests end. One actor per experiment: no replicas (a cluster
        adds nodes, not copies), so ``session`` does not choose among workers here.
        """
        key = (str(experiment.root), experiment.fingerprint(), self.device)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                for old_key in [k for k in self._clients if k[0] == key[0]]:
                    self._clients.pop(old_key).retire()
                client = RayWorkerClient(
                    experiment.root, self.device, settings=self.settings, limiter=self.limiter, **self.client_kw
                )
                self._clients[key] = client
            self._clients.move_to_end(key)
            return client
