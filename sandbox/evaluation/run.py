"""Evaluate runs on the same documents through their workers (the Evaluation page and CLI).

Method, per run (each run in its experiment's own worker process, so colliding module names
cannot mix models up):

1. Every document is tokenized by the run's own tokenizer with its bos token: ids
   ``T[0] = bos, T[1..n]``. The n text tokens are the targets; each is scored exactly once.
2. Windows of at most ``max_seq_len`` inputs cover the targets. By default they do not
   overlap: window w feeds ``T[wL : wL+L]`` and predicts ``T[wL+1 : wL+L+1]``. The first
   target of a later window, ``T[wL+1]``, is therefore predicted from that window's own
   first input ``T[wL]`` alone (the previous window's last target, reused as context, never
   re-scored), and context grows again from there. With ``overlap = c > 0`` every later
   window is filled with up to ``L`` inputs and only its last ``L - c`` positions are scored
   (the rest is context), exactly as lm-evaluation-harness's rolling loglikelihood does with
   ``context_len = c + 1``: each token is still scored once, with at least c tokens of context.
3. Logits come from ``model(input_ids)`` alone (never targets, which switch on dropout);
   the worker batches windows of similar length (any session's) up to the config's
   ``max_batch_size``, the shorter ones filled by repeating their own first token after
   their end (a causal model never looks ahead); no pad id ever enters a model and no filler
   position is ever counted (`sandbox.worker.scheduler`).
4. The worker returns, per position, the NLL of the true token and its rank; this module
   sums them per document and per position in the window (`sandbox.evaluation.metrics`).

Results are cached per run (`sandbox.evaluation.cache`); several runs' results make a
`sandbox.evaluation.report.Report`, with paired verdicts and sanity flags.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from sandbox.errors import UnknownRunError, WorkerError
from sandbox.evaluation import bytelosses, metrics
from sandbox.evaluation.cache import cache_key, load_cached, save_cached
from sandbox.evaluation.report import Report
from sandbox.evaluation.results import (
    EvalSettings,
    EvaluationCancelled,
    Progress,
    RunResult,
    error_row,
)
from sandbox.evaluation.windows import make_windows, plan_windows
from sandbox.zoo.discovery import Run, find_experiment, find_run

# -- one run ---------------------------------------------------------------------------------


def score_documents(
    client: Any,
    run_name: str,
    docs_ids: list[list[int]],
    doc_bytes: np.ndarray,
    max_len: int,
    settings: EvalSettings,
    on_batch: Callable[[int, int], None] = lambda done, total: None,
    cancel: Callable[[], bool] = lambda: False,
    token_nll: list[np.ndarray] | None = None,
) -> tuple[metrics.DocSums, dict[str, np.ndarray], int]:
    """Per-document and per-position sums of one run over tokenized documents.

    ``token_nll``, when given (an empty list), receives each document's per-target NLL in
    text order (for its per-byte losses).
    """
    windows = make_windows(docs_ids, max_len, settings.overlap)
    # Where each window starts in its document, in make_windows' order: target index = start + position.
    starts = [int(w[0]) for ids in docs_ids for w in plan_windows(len(ids) - 1, max_len, settings.overlap)]
    win_start = np.asarray(starts, dtype=np.int64)
    total = len(windows.inputs)
    on_batch(0, total)
    parts: list[tuple[np.ndarray, ...]] = []
    stream = client.stream(
        "score",
        run=run_name,
        windows=windows.inputs,
        targets=windows.targets,
        batch_size=settings.batch_size,
        autocast=settings.autocast,
    )
    done = 0
    try:
        for item in stream:
            index = np.asarray(item["index"], dtype=np.int64)
            nll, rank = item["nll"], item["rank"]
            position = np.arange(nll.shape[1])
            keep = position[None, :] >= windows.first[index][:, None]  # context-only positions out
            parts.append(
                (nll[keep], rank[keep], np.broadcast_to(windows.doc[index][:, None], keep.shape)[keep],
                 np.broadcast_to(position, keep.shape)[keep], (win_start[index][:, None] + position[None, :])[keep])
            )
            done += len(index)
            on_batch(done, total)  # may raise (Streamlit's stop/rerun): the finally cancels
            if cancel():
                raise EvaluationCancelled("evaluation cancelled")
    finally:
        stream.close()  # closing the worker stream cancels the request there
    if parts:
        nll, rank, doc, pos, target = (np.concatenate(c) for c in zip(*parts, strict=True))
    else:
        nll, rank, doc, pos, target = (np.zeros(0, dtype=t) for t in (np.float32, np.int32, np.int64, np.int64, np.int64))
    expected = windows.scored
    if nll.size != expected:
        raise RuntimeError(f"{nll.size} positions came back for {expected} targets (a stream ended early)")
    if token_nll is not None:
        for d, ids in enumerate(docs_ids):
            values = np.zeros(max(len(ids) - 1, 0), dtype=np.float64)
            mine = doc == d
            values[target[mine]] = nll[mine]
            token_nll.append(values)
    sums = metrics.document_sums(nll, rank, doc, doc_bytes, settings.kmax)
    return sums, metrics.position_sums(nll, rank, pos, max_len, settings.kmax), total


def probe_loss(client: Any, run_name: str, docs: list[str], max_len: int) -> float:
    """Loss (nats/token) of one run on a few short documents, scored as an evaluation scores.

    The doctor's sanity probe (`sandbox.zoo.sanity.probe_documents`): a handful of windows, no
    round-trip check, no cache.
    """
    docs_ids = client.request("encode", run=run_name, texts=docs, bos=True)
    doc_bytes = np.fromiter((len(d.encode("utf-8")) for d in docs), dtype=np.int64, count=len(docs))
    sums, _, _ = score_documents(client, run_name, docs_ids, doc_bytes, max_len, EvalSettings(kmax=1))
    tokens = int(sums.tokens.sum())
    return float(sums.nll.sum() / tokens) if tokens else math.nan


def evaluate_run(
    client: Any,
    run: Run,
    docs: list[str],
    settings: EvalSettings,
    *,
    run_fp: str,
    data_fp: str,
    data_label: str = "",
    progress: Progress | None = None,
    cancel: Callable[[], bool] = lambda: False,
    use_cache: bool = True,
    cache_root: Path | None = None,
) -> RunResult:
    """Evaluate one run (errors of the worker propagate; `evaluate` turns them into rows)."""
    from sandbox.zoo.accounting import remember_loaded

    key = cache_key(run.id, run_fp, data_fp, settings)
    # An entry from before per-byte losses were kept counts as none: it is made again once.
    if use_cache and (hit := load_cached(key, cache_root)) is not None and hit.byte_losses is not None:
        if progress:
            progress(run.id, hit.windows, hit.windows)
        return hit
    info = client.request("info", run=run.name)  # loads the run: not part of the timing
    remember_loaded(run, info)  # the run's parameter count, for the pages that show it
    t0 = time.perf_counter()
    docs_ids = client.request("encode", run=run.name, texts=docs, bos=True)
    changed = roundtrip_changes(client, run.name, docs, docs_ids)
    doc_bytes = np.fromiter((len(d.encode("utf-8")) for d in docs), dtype=np.int64, count=len(docs))
    token_nll: list[np.ndarray] = []
    sums, positions, n_windows = score_documents(
        client,
        run.name,
        docs_ids,
        doc_bytes,
        int(info["max_seq_len"]),
        settings,
        on_batch=(lambda done, total: progress(run.id, done, total)) if progress else (lambda d, t: None),
        cancel=cancel,
        token_nll=token_nll,
    )
    byte_losses = document_byte_losses(client, run.name, docs, docs_ids, token_nll)
    result = RunResult(
        run_id=run.id,
        info={k: info.get(k) for k in ("n_params", "vocab_size", "tokenizer", "max_seq_len", "max_batch_size", "device", "kind", "start")},
        sums=sums,
        positions=positions,
        n_chars=sum(map(len, docs)),
        changed_chars=changed,
        windows=n_windows,
        seconds=time.perf_counter() - t0,
        byte_losses=bytelosses.pack_documents(byte_losses),
    )
    meta = {"run_fp": run_fp, "data_fp": data_fp, "data_label": data_label, "settings": asdict(settings)}
    if use_cache and (warning := save_cached(key, result, cache_root, meta)):
        result.warnings.append(warning)
    return result


def document_byte_losses(
    client: Any, run_name: str, docs: list[str], docs_ids: list[list[int]], token_nll: list[np.ndarray]
) -> list[np.ndarray]:
    """Each document's per-byte losses (nats, one per UTF-8 byte of the document): every
    token's loss spread over the bytes it covers (`sandbox.evaluation.bytelosses`), from one
    worker request for the tokens' byte lengths (not a decode of every prefix)."""
    spans = client.request("token_bytes", run=run_name, docs=[ids[1:] for ids in docs_ids])
    out = []
    for text, nll, span in zip(docs, token_nll, spans, strict=True):
        ends = np.cumsum(np.asarray(span["lengths"], dtype=np.int64))
        decoded = span["decoded"]
        out.append(bytelosses.per_byte_losses(text, nll, ends, None if decoded == text else decoded))
    return out


def roundtrip_changes(client: Any, run_name: str, docs: list[str], docs_ids: list[list[int]]) -> int:
    """Characters of ``docs`` that decode(encode(doc)) does not give back, summed.

    Each request to a worker is a round trip, which costs more than the decoding itself on a
    busy machine, so: one decode of all documents' tokens at once; when that gives back the
    text exactly, nothing changed. Otherwise each document is rebuilt from its tokens' pieces
    (one request for all distinct ids), trusted only if the pieces rebuild the joint decode
    exactly; failing that, one decode request per document.
    """
    text_ids = [ids[1:] for ids in docs_ids]  # without bos
    joined = client.request("decode", run=run_name, ids=[i for ids in text_ids for i in ids])
    if joined == "".join(docs):
        return 0
    unique = sorted({i for ids in text_ids for i in ids})
    piece = dict(zip(unique, client.request("pieces", run=run_name, ids=unique), strict=True))
    decoded = ["".join(piece[i] for i in ids) for ids in text_ids]
    if "".join(decoded) != joined:
        decoded = [client.request("decode", run=run_name, ids=ids) for ids in text_ids]
    return sum(metrics.changed_characters(d, r) for d, r in zip(docs, decoded, strict=True))


def evaluate(
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
    session: str | None = None,
) -> Report:
    """Evaluate every run on the same ``docs``; a run that fails gets an error row, the rest go on.

    ``pool`` is a `sandbox.worker.pool.WorkerPool`: each experiment gets its own worker process.
    ``session`` names the browser session asking (workers serve sessions in turn).
    Raises `EvaluationCancelled` when ``cancel()`` turns true (streams are closed first).
    `sandbox.evaluation.parallel.evaluate_runs` chooses between this and the experiments side
    by side.
    """
    from sandbox.evaluation.data import data_fingerprint

    data_fp = data_fingerprint(docs)
    results = []
    for run_id in run_ids:
        try:
            run = find_run(models_dir, run_id)
            exp = find_experiment(models_dir, run.experiment)
            client = client_for(pool, exp, session)
            result = evaluate_run(
                client,
                run,
                docs,
                settings,
                run_fp=run.fingerprint(),
                data_fp=data_fp,
                data_label=data_label,
                progress=progress,
                cancel=cancel,
                use_cache=use_cache,
                cache_root=cache_root,
            )
        except (WorkerError, UnknownRunError) as exc:
            result = RunResult(run_id=run_id, error=error_row(exc))
        results.append(result)
    return report_of(results, docs, settings, data_fp, data_label, models_dir)


def client_for(pool: Any, exp: Any, session: str | None) -> Any:
    """``exp``'s worker client from ``pool``, its requests tagged with ``session`` when given
    (workers serve sessions in turn)."""
    return pool.client(exp, session=session).for_session(session) if session else pool.client(exp)


def report_of(
    results: list[RunResult], docs: list[str], settings: EvalSettings, data_fp: str, data_label: str,
    models_dir: Path | str | None,
) -> Report:
    """The report of an evaluation's results: the text's facts, then the sanity flags."""
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
