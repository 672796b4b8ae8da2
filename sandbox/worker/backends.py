"""Which workers the app and the CLI use: local processes, or actors on a Ray cluster.

`make_pool` is the one factory the pages' cached pools and the CLI call: the local
`WorkerPool` without an address, a `sandbox.worker.ray.pool.RayWorkerPool` with one. The
address is the caller's to resolve (`sandbox.settings.ray_address`: ``--ray ADDRESS|auto``,
else ``$SANDBOX_RAY_ADDRESS``), so that an app that cannot use Ray can still choose local
workers. ``ray`` is optional: it is imported only when asked for, and a missing one is
`RayUnavailable`, one sentence.
"""

from __future__ import annotations

from typing import Any

from sandbox.worker.pool import WorkerPool, probe_device
from sandbox.worker.protocol import requested_device

LOCAL_LABEL = "workers: local processes on the app's machine"
AUTO_DEVICE = "auto"  # on a Ray cluster with no device asked for: each node picks its best


def workers_device(address: str | None, override: str | None = None) -> str:
    """The device the workers use, without importing torch here: ``override`` or
    ``$SANDBOX_DEVICE`` when set; else, for local workers (no ``address``), what the one-off
    probe finds on this machine, and on a Ray cluster `AUTO_DEVICE` (each node applies
    cuda > mps > cpu itself: the app's own machine says nothing about the nodes). Raises
    ValueError for an unknown device name."""
    if address is None:
        return probe_device(override)
    return requested_device(override) or AUTO_DEVICE


def make_pool(address: str | None, **kw: Any) -> WorkerPool:
    """A worker pool: on the Ray cluster at ``address`` ("auto" or ``HOST:PORT``), else (None)
    local processes. ``kw`` go to either (``max_workers``, ``device`` (a name, or
    `AUTO_DEVICE`), ``limiter``, ``timeout``...). Raises `RayUnavailable` when Ray is asked
    for and is not installed."""
    if kw.get("device") == AUTO_DEVICE:
        kw["device"] = None  # each worker picks its own
    if address is None:
        return WorkerPool(**kw)
    from sandbox.worker.ray.pool import RayWorkerPool

    return RayWorkerPool(address, **kw)


def pool_label(pool: Any) -> str:
    """Where a pool's workers run, in words for a caption (an address, never a path)."""
    return getattr(pool, "label", LOCAL_LABEL)
