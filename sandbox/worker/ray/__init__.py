"""Workers on a Ray cluster (optional: needs ``ray``, `requirements-ray.txt`).

Where it lives and why: the Ray backend is one more way to run the worker process, so it is
part of `sandbox.worker`, the process boundary. It is app side: the app's process joins the
cluster (`connect`), sends each experiment's files (`files`) and drives one actor per
experiment through `client.RayWorkerClient` and `pool.RayWorkerPool`, the same worker API as
`sandbox.worker.client` / `sandbox.worker.pool`. The actor (`actor.ExperimentActor`) runs
on a node of the cluster, where it starts the experiment's worker with the same
`WorkerClient` the app uses locally, so the worker side (``python -m sandbox.worker``) is
still reached only through its entry point, now on the node. Nothing here imports torch or
the worker side (checked by the import contracts), and ``ray`` is imported only here, and
lazily: importing this package without ``ray`` installed works, and asking for a Ray pool
then raises `RayUnavailable` with one sentence (`INSTALL_SENTENCE`).

`settings` reads the ``SANDBOX_RAY_*`` variables and says what an actor asks the cluster
for. `sandbox.worker.backends.make_pool` chooses between this and the local pool.
"""

from sandbox.worker.ray.settings import ADDRESS_ENV, INSTALL_SENTENCE, RaySettings, RayUnavailable

__all__ = ["ADDRESS_ENV", "INSTALL_SENTENCE", "RaySettings", "RayUnavailable"]
