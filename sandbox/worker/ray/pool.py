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
        # One actor per experiment, no replicas: a cluster adds nodes, not copies.
        super().__init__(max_workers, device, limiter=limiter, max_replicas=1, **client_kw)
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

    def _new_client(self, experiment: Experiment) -> RayWorkerClient:
        """A `RayWorkerClient` for ``experiment`` (its actor starts on first use)."""
        return RayWorkerClient(experiment.root, self.device, settings=self.settings, limiter=self.limiter, **self.client_kw)
