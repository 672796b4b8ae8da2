"""Evaluate runs of several experiments at once: one thread per experiment, each on its worker.

`evaluate_parallel` is `sandbox.evaluation.evaluate` with the experiments side by side: the
runs of one experiment still go one after another through its one worker (a worker answers
one request at a time), while different experiments' workers (Ray actors across a cluster,
or local processes) work in parallel. The results are those of `evaluate`, run for run: the
same `evaluate_run` makes them, in the same order in the report.

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

from sandbox.discovery import Run, UnknownRunError, discover
from sandbox.evaluation import (
    EvalSettings,
    EvaluationCancelled,
    Progress,
    Report,
    RunResult,
    _error,
    evaluate_run,
)
from sandbox.protocol import WorkerError

POLL = 0.05  # seconds between looks at ``cancel`` while no progress arrives


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
) -> Report:
    """Evaluate every run on the same ``docs``, the experiments in parallel (see the module).

    A run that fails gets an error row and the rest go on, as in `evaluate`. At most
    ``max_parallel`` experiments at once (default: the pool's worker cap, so that no
    experiment waits for a worker slot another one holds for the whole evaluation). Raises
    `EvaluationCancelled` when ``cancel()`` turns true, and re-raises what ``progress``
    raised, once every thread has stopped.
    """
    from sandbox.data import data_fingerprint

    data_fp = data_fingerprint(docs)
    results: dict[str, RunResult] = {}
    by_experiment: dict[str, tuple[Any, list[Run]]] = {}
    runs = {run.id: (exp, run) for exp in discover(models_dir) for run in exp.runs}
    for run_id in run_ids:
        if run_id not in runs:
            results[run_id] = RunResult(run_id=run_id, error=_error(UnknownRunError(f"no run called {run_id!r} in the models directory")))
            continue
        exp, run = runs[run_id]
        by_experiment.setdefault(exp.name, (exp, []))[1].append(run)

    events: queue.SimpleQueue = queue.SimpleQueue()  # ("progress", run, done, total) | ("failed", exc)
    stop = threading.Event()
    cancelled = threading.Event()

    def work(exp: Any, exp_runs: list[Run]) -> None:
        for run in exp_runs:
            if stop.is_set():
                return
            try:
                results[run.id] = evaluate_run(
                    pool.client(exp), run, docs, settings,
                    run_fp=run.fingerprint(), data_fp=data_fp, data_label=data_label,
                    progress=lambda rid, done, total: events.put(("progress", rid, done, total)),
                    cancel=stop.is_set, use_cache=use_cache, cache_root=cache_root,
                )  # fmt: skip
            except (WorkerError, UnknownRunError) as exc:
                results[run.id] = RunResult(run_id=run.id, error=_error(exc))
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
    return _report([results[r] for r in run_ids], docs, settings, data_fp, data_label, models_dir)


def _report(
    results: list[RunResult], docs: list[str], settings: EvalSettings, data_fp: str, data_label: str,
    models_dir: Path | str | None,
) -> Report:
    """The report `evaluate` makes of its results: the text's facts, then the sanity flags."""
    data = {
        "source": data_label,
        "documents": len(docs),
        "fingerprint": data_fp,
        "bytes": int(sum(len(d.encode("utf-8")) for d in docs)),
        "chars": int(sum(map(len, docs))),
    }
    report = Report(results=results, settings=settings, data=data)
    report.check_sanity(models_dir, record=True)
    return report
