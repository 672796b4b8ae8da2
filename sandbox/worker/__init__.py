"""The process boundary: one worker process per experiment, and the only place torch is imported.

Two sides live here. The app side (torch-free, what pages and the CLI may import):
`protocol` (the messages), `client` (`WorkerClient`: one worker, many requests in flight)
with `channel` (its pipe and reader thread), `limiter` (`WorkerLimiter`: the cap on live
workers and their share of the cores), `pool` (`WorkerPool`, and the one-off device probe),
`backends` (`make_pool`: local workers, or Ray actors when a Ray address is set) and `ray`
(optional: each experiment's worker started by a Ray actor on a cluster node; the only place
``ray`` is imported). The worker side, run only inside ``python -m sandbox.worker ROOT``
(`server`, and `scheduler`: fair turns and batches across requests): `host` loads the runs of one
experiment the way the contract says (with `loaded` and `failures`), `scoring` and
`generation` answer requests, `sampling` holds the sampling kernels, `params` counts a
loaded model's parameters and `device` picks the torch device. The worker side may import
`sandbox.zoo`, `sandbox.errors`, `sandbox.settings` and `sandbox.playground.settings`
(the sampling settings it receives); nothing outside this package imports the worker side.
"""
