"""Which workers the app and the CLI use: local processes, or actors on a Ray cluster.

`make_pool` is the one factory the pages' cached pools and the CLI call: the local
`WorkerPool` by default, a `sandbox.worker.ray.pool.RayWorkerPool` when a Ray address is
given (``--ray ADDRESS|auto``) or ``$SANDBOX_RAY_ADDRESS`` is set. ``ray`` is optional: it is
imported only when asked for, and a missing one is `RayUnavailable`, one sentence.
"""

from __future__ import annotations

from typing import Any

from sandbox.settings import ray_address
from sandbox.worker.pool import WorkerPool

LOCAL_LABEL = "workers: local processes on the app's machine"


def make_pool(ray: str | None = None, **kw: Any) -> WorkerPool:
    """A worker pool: on the Ray cluster at ``ray`` (else ``$SANDBOX_RAY_ADDRESS``) when one
    is set, else local processes. ``kw`` go to either (``max_workers``, ``device``,
    ``limiter``, ``timeout``...). Raises `RayUnavailable` when Ray is asked for and is not
    installed."""
    address = ray_address(ray)
    if address is None:
        return WorkerPool(**kw)
    from sandbox.worker.ray.pool import RayWorkerPool

    return RayWorkerPool(address, **kw)


def pool_label(pool: Any) -> str:
    """Where a pool's workers run, in words for a caption (an address, never a path)."""
    return getattr(pool, "label", LOCAL_LABEL)
