"""Evaluate runs of several experiments at once: one thread per experiment, each on its worker.

`evaluate_parallel` is `sandbox.evaluation.run.evaluate` with the experiments side by side:
the runs of one experiment still go one after another through its one worker (a worker
answers one request at a time), while different experiments' workers (Ray actors across a
cluster, or local processes) work in parallel. The results are those of `evaluate`, run for
run: the same `evaluate_run` makes them, in the same order in the report. The pages and the
CLI call `evaluate_runs`, which chooses it for a pool spread over a cluster (``pool.spread``:
the Ray backend).

The caller's callbacks stay in the caller's thread: ``progress`` is called there (Streamlit
draws only from its script thread, and a Stop or rerun arrives as an exception in that
callback), and ``cancel`` is polled there. Either one stops every experiment's thread, whose
open stream is then closed, which cancels the scoring in its worker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox.errors import UnknownRunError, WorkerError
from sandbox.evaluation import run as serial
from sandbox.evaluation.report import Report
from sandbox.evaluation.results import (
    EvalSettings,
    EvaluationCancelled,
    Progress,
    RunResult,
    error_row,
)
from sandbox.evaluation.run import client_for, evaluate_run, report_of
from sandbox.zoo.discovery import Experiment, Run, lookup

POLL = 0.05  # seconds between looks at ``cancel`` while no progress arrives


def evaluate_runs(pool: Any, run_ids: list[str], docs: list[str], settings: EvalSettings, **kw: Any) -> Report:
    """`evaluate_parallel` when ``pool``'s workers are spread over a cluster (``pool.spread``),
    else `sandbox.evaluation.run.evaluate` (one run after another on this machine, where
    experiments side by side would only share its cores); the same results either way."""
    if getattr(pool, "spread", False):
        return evaluate_parallel(pool, run_ids, docs, settings, **kw)
    # Looked up when called, not bound at import: whoever wraps `run.evaluate` (a fault
    # test does) wraps the pages' and the CLI's path too.
    return serial.evaluate(pool, run_ids, docs, settings, **kw)


def evaluate_parallel(
    pool: Any,
    run_ids: list[str],
    docs: list[str],
    settings: EvalSettings,
    *,
    models_dir: Path | str | None = None,
    data_label: str = "",
    progress: Progress | None = None,
    cancel: Callable[[], bool] = lambda: False,
    use_cache: bool = True,
    cache_root: Path | None = None,
    max_parallel: int | None = None,
    session: str | None = None,
) -> Report:
    """Evaluate every run on the same ``docs``, the experiments in parallel (see the module).

    A run that fails gets an error row and the rest go on, as in `evaluate`. At most
    ``max_parallel`` experiments at once (default: the pool's worker cap, so that no
    experiment waits for a worker slot another one holds for the whole evaluation). Raises
    `EvaluationCancelled` when ``cancel()`` turns true, and re-raises what ``progress``
    raised, once every thread has stopped. ``session``: as in `evaluate`.
    """
    from sandbox.evaluation.data import data_fingerprint

    data_fp = data_fingerprint(docs)
    results: dict[str, RunResult] = {}
    by_experiment: dict[str, tuple[Experiment, list[Run]]] = {}
    for run_id in run_ids:
        try:  # the lookup `evaluate` makes, so an unknown run gets the same row
            exp, run = lookup(models_dir, run_id)
        except UnknownRunError as exc:
            results[run_id] = RunResult(run_id=run_id, error=error_row(exc))
            continue
        by_experiment.setdefault(exp.name, (exp, []))[1].append(run)

    events: queue.SimpleQueue = queue.SimpleQueue()  # ("progress", run id, done, total)
    stop = threading.Event()
    cancelled = threading.Event()

    def work(exp: Any, exp_runs: list[Run]) -> None:
        for run in exp_runs:
            if stop.is_set():
                return
            try:
                client = client_for(pool, exp, session)
                results[run.id] = evaluate_run(
                    client, run, docs, settings,
                    run_fp=run.fingerprint(), data_fp=data_fp, data_label=data_label,
                    progress=lambda rid, done, total: events.put(("progress", rid, done, total)),
                    cancel=stop.is_set, use_cache=use_cache, cache_root=cache_root,
                )  # fmt: skip
            except (WorkerError, UnknownRunError) as exc:
                results[run.id] = RunResult(run_id=run.id, error=error_row(exc))
            except EvaluationCancelled:
                cancelled.set()
                return

    cap = max_parallel or getattr(pool, "max_workers", None) or len(by_experiment) or 1
    with ThreadPoolExecutor(max_workers=max(1, min(cap, len(by_experiment) or 1)), thread_name_prefix="evaluate") as threads:
        futures = [threads.submit(work, exp, exp_runs) for exp, exp_runs in by_experiment.values()]
        try:
            while not all(f.done() for f in futures) or not events.empty():
                try:
                    event = events.get(timeout=POLL)
                except queue.Empty:
                    event = None
                if event is not None and progress is not None:
                    progress(*event[1:])
                if not stop.is_set() and cancel():
                    stop.set()
        finally:
            stop.set()  # whatever ended the loop (a Stop raised by ``progress``) stops the threads
        for future in futures:
            future.result()  # a thread's unexpected error is raised here, as `evaluate` would
    if cancelled.is_set() or (cancel() and len(results) < len(run_ids)):
        raise EvaluationCancelled("evaluation cancelled")
    return report_of([results[r] for r in run_ids], docs, settings, data_fp, data_label, models_dir)

