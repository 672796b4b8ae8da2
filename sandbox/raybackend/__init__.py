"""Workers on a Ray cluster, behind the worker API of `sandbox.loader` (optional: needs ``ray``).

``make_pool(address)`` gives a `RayWorkerPool` when an address is given or
``$SANDBOX_RAY_ADDRESS`` is set, else the local `sandbox.loader.WorkerPool`; everything that
takes a pool (the pages, the CLI, `sandbox.evaluation`) works with either. Each experiment's
worker is then a Ray actor (`actor.ExperimentActor`) that runs the experiment's worker process
on a node of the cluster; `fanout.evaluate_parallel` evaluates several experiments at once.

Importing this package does not import ``ray``; asking for Ray without it installed raises
`RayUnavailable` with one sentence.
"""

from sandbox.raybackend.client import (
    ADDRESS_ENV,
    INSTALL_SENTENCE,
    RaySettings,
    RayUnavailable,
    RayWorkerClient,
    RayWorkerPool,
    connect,
    make_pool,
)
from sandbox.raybackend.fanout import evaluate_parallel

__all__ = [
    "ADDRESS_ENV",
    "INSTALL_SENTENCE",
    "RaySettings",
    "RayUnavailable",
    "RayWorkerClient",
    "RayWorkerPool",
    "connect",
    "evaluate_parallel",
    "make_pool",
]
