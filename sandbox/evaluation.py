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
   the worker batches windows of equal length up to the config's ``max_batch_size``, so no
   pad id ever enters a model and no padded position is ever counted.
4. The worker returns, per position, the NLL of the true token and its rank; this module
   sums them per document and per position in the window (`sandbox.metrics`).

Results are cached per run as JSON under ``cache_dir()/eval/``, keyed by the run's
fingerprint (experiment code + weights size/mtime), the data fingerprint and the settings;
each entry also names its text (``data_label``), so that a comparison drawn from the cache
(`common_evaluation`) only ever puts side by side results on the same text and settings,
and says which text that was.

Verdicts between runs are paired differences (`Report.paired`): both runs scored the same
documents, so one bootstrap over documents resamples both (`sandbox.metrics.paired_bootstrap`).
Every result is also checked for sanity (`sandbox.zoo.sanity`): a loss worse than uniform
guessing, or far from the run's logged validation loss on the same data, is flagged.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sandbox import metrics
from sandbox.errors import UnknownRunError, WorkerError
from sandbox.numfmt import format_number
from sandbox.settings import cache_dir
from sandbox.zoo import sanity
from sandbox.zoo.discovery import Run, find_experiment, find_run

EVAL_VERSION = 1  # bump when the method changes: older cache entries are then ignored
DEFAULT_KS = (1, 5, 10)
MAX_DETAIL_CHARS = 4000  # per-token views read at most this much of a document
SMALL_SAMPLE = 30  # fewer documents than this: intervals (and so verdicts) mean little

Progress = Callable[[str, int, int], None]  # (run id, windows done, windows in all)


class EvaluationCancelled(Exception):
    """The cancel flag was raised; the worker streams were closed (and so cancelled)."""


@dataclass(frozen=True)
class EvalSettings:
    """Everything besides the run and the data that can change the numbers."""

    kmax: int = 10  # top-k hits are kept for every k in 1..kmax
    overlap: int = 0  # tokens of already-scored context each later window carries (0: disjoint)
    batch_size: int | None = None  # windows per forward pass (capped by max_batch_size)
    autocast: str | None = None  # "bf16" / "fp16" on CUDA; ignored elsewhere
    device: str = "auto"  # the pool's device, for the cache key

    def __post_init__(self) -> None:
        if self.kmax < 1:
            raise ValueError(f"kmax must be at least 1, not {self.kmax}")
        if self.overlap < 0:
            raise ValueError(f"overlap must be >= 0, not {self.overlap}")
        if self.autocast not in (None, "bf16", "fp16"):
            raise ValueError(f"autocast must be bf16, fp16 or None, not {self.autocast!r}")


# -- windows ---------------------------------------------------------------------------------


def plan_windows(n_targets: int, max_len: int, overlap: int = 0) -> np.ndarray:
    """Windows over one document of ``n_targets`` targets (ids ``T[0..n_targets]``, bos first).

    Returns an int array ``(W, 3)`` of ``(start, end, first)``: the window feeds
    ``T[start:end]``, predicts ``T[start+1:end+1]`` and scores its positions ``first..``.
    Together the windows score every target exactly once (see the module docstring).
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, not {max_len}")
    if n_targets <= 0:
        return np.zeros((0, 3), dtype=np.int64)
    if overlap == 0 or n_targets <= max_len:
        start = np.arange(0, n_targets, max_len)
        end = np.minimum(start + max_len, n_targets)
        return np.column_stack([start, end, np.zeros_like(start)])
    if overlap >= max_len:
        raise ValueError(f"overlap ({overlap}) must be smaller than the context ({max_len})")
    step = max_len - overlap  # new targets per later window
    # Targets scored before each later window; the last window may score fewer.
    done = np.arange(max_len, n_targets, step)
    end = np.minimum(done + step, n_targets)
    start = end - max_len
    later = np.column_stack([start, end, done - start])
    return np.vstack([[[0, max_len, 0]], later])


@dataclass
class Windows:
    """All windows of all documents, flattened, with where each came from."""

    inputs: list[list[int]]
    targets: list[list[int]]
    doc: np.ndarray  # (W,) document index
    first: np.ndarray  # (W,) first scored position

    @property
    def scored(self) -> int:
        return int(sum(len(t) for t in self.targets) - self.first.sum())


def make_windows(docs_ids: list[list[int]], max_len: int, overlap: int = 0) -> Windows:
    """Windows for every document (see `plan_windows`)."""
    inputs, targets, doc, first = [], [], [], []
    for d, ids in enumerate(docs_ids):
        for start, end, f in plan_windows(len(ids) - 1, max_len, overlap):
            inputs.append(ids[start:end])
            targets.append(ids[start + 1 : end + 1])
            doc.append(d)
            first.append(f)
    return Windows(inputs, targets, np.asarray(doc, dtype=np.int64), np.asarray(first, dtype=np.int64))


# -- results ---------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One run's evaluation, or the error that stopped it."""

    run_id: str
    info: dict = field(default_factory=dict)
    sums: metrics.DocSums | None = None
    positions: dict[str, np.ndarray] | None = None  # count, nll, hits per position in the window
    n_chars: int = 0
    changed_chars: int = 0  # characters the tokenizer's round trip did not give back
    windows: int = 0
    seconds: float = 0.0
    cached: bool = False
    error: dict | None = None  # {"message", "hint"}; tracebacks go to the server log only
    warnings: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # sanity sentences (`sandbox.zoo.sanity`), made afresh

    @property
    def ok(self) -> bool:
        return self.error is None and self.sums is not None

    @property
    def tokens(self) -> int:
        return int(self.sums.tokens.sum()) if self.sums is not None else 0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "info": self.info,
            "sums": self.sums.to_dict() if self.sums is not None else None,
            "positions": {k: v.tolist() for k, v in self.positions.items()} if self.positions else None,
            "n_chars": self.n_chars,
            "changed_chars": self.changed_chars,
            "windows": self.windows,
            "seconds": self.seconds,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        pos = data.get("positions")
        return cls(
            run_id=data["run_id"],
            info=data.get("info") or {},
            sums=metrics.DocSums.from_dict(data["sums"]) if data.get("sums") else None,
            positions={k: np.asarray(v) for k, v in pos.items()} if pos else None,
            n_chars=int(data.get("n_chars", 0)),
            changed_chars=int(data.get("changed_chars", 0)),
            windows=int(data.get("windows", 0)),
            seconds=float(data.get("seconds", 0.0)),
            error=data.get("error"),
        )


def _error(exc: BaseException) -> dict:
    """What a run's error row shows (and its JSON export holds): a sentence and a fix hint.

    Never the worker's traceback: it names server paths, and `sandbox.worker.client` has logged it.
    """
    return {"message": str(exc), "hint": getattr(exc, "hint", "")}


# -- cache -----------------------------------------------------------------------------------


def cache_key(run_id: str, run_fp: str, data_fp: str, settings: EvalSettings) -> str:
    """The file name (sha1) of one run's cached result."""
    payload = {"v": EVAL_VERSION, "run": run_id, "run_fp": run_fp, "data": data_fp, **asdict(settings)}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _cache_path(key: str, root: Path | None) -> Path:
    return (root if root is not None else cache_dir() / "eval") / f"{key}.json"


def load_cached(key: str, root: Path | None = None) -> RunResult | None:
    """A cached result, or None when there is none (an unreadable entry counts as none)."""
    try:
        path = _cache_path(key, root)
        data = json.loads(path.read_text(encoding="utf-8"))
        result = RunResult.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    result.cached = True
    return result


def save_cached(key: str, result: RunResult, root: Path | None = None, meta: dict | None = None) -> str | None:
    """Write a result atomically; returns a warning sentence instead of raising on failure.

    ``meta`` (run and data fingerprints, the text's label, settings) is stored beside it for
    `common_evaluation`.
    """
    try:
        path = _cache_path(key, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({**result.to_dict(), "meta": meta or {}}, f)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        return f"The result of {result.run_id} could not be cached ({exc.strerror or exc}); it is shown but not saved."
    return None


@dataclass
class CachedEntry:
    """One cached result of a run's current code and weights, with what it was computed on."""

    result: RunResult
    data_fp: str
    data_label: str
    settings: dict
    mtime: float

    @property
    def documents(self) -> int:
        return len(self.result.sums.tokens) if self.result.sums is not None else 0

    @property
    def text(self) -> str:
        """The text it was evaluated on, in words: "100 documents of bundled corpus, validation split"."""
        return text_name(self.documents, self.data_label, self.data_fp)


def text_name(documents: int, label: str, fingerprint: str) -> str:
    """Evaluation text in words: "100 documents of bundled corpus, validation split"."""
    return f"{documents:,} document{'' if documents == 1 else 's'} of {label or f'text {fingerprint}'}"


_ENTRIES: dict[tuple[str, int, int], tuple[str, dict, RunResult] | None] = {}  # parsed once per file version


def _read_entry(path: Path) -> tuple[float, tuple[str, dict, RunResult] | None]:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _ENTRIES:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            result = RunResult.from_dict(data)
            meta = data.get("meta") or {}
            _ENTRIES[key] = (result.run_id, meta, result) if result.ok and isinstance(meta, dict) else None
        except (OSError, ValueError, KeyError, TypeError):
            _ENTRIES[key] = None  # an entry being written, or from an older version
    return st.st_mtime, _ENTRIES[key]


def cached_entries(models_dir: Path | str | None, run_ids: list[str], root: Path | None = None) -> list[CachedEntry]:
    """Every cached result of ``run_ids`` for their current code and weights, newest first."""
    from sandbox.zoo.discovery import all_runs

    wanted = {r.id: r.fingerprint() for r in all_runs(models_dir) if r.id in run_ids}
    found = []
    try:
        folder = root if root is not None else cache_dir() / "eval"
        paths = list(folder.glob("*.json"))
    except OSError:
        return []  # no cache to read: nothing was evaluated as far as we can tell
    for path in paths:
        try:
            mtime, entry = _read_entry(path)
        except OSError:
            continue  # removed while we looked
        if entry is None:
            continue
        run_id, meta, result = entry
        if wanted.get(run_id) is None or wanted[run_id] != meta.get("run_fp") or not meta.get("data_fp"):
            continue
        result = RunResult.from_dict(result.to_dict())  # a copy: callers may add flags
        result.cached = True
        found.append(CachedEntry(result, str(meta["data_fp"]), str(meta.get("data_label") or ""),
                                 dict(meta.get("settings") or {}), mtime))
    return sorted(found, key=lambda e: e.mtime, reverse=True)


def common_evaluation(models_dir: Path | str | None, run_ids: list[str], root: Path | None = None) -> Report | None:
    """The newest cached results of all ``run_ids`` on the SAME text with the SAME settings.

    None when there are none: then no figure may compare the runs' evaluations (say which
    text each was evaluated on instead, `evaluated_texts`). Flags are checked afresh.
    """
    groups: dict[tuple[str, str], dict[str, CachedEntry]] = {}
    for entry in cached_entries(models_dir, run_ids, root):  # newest first: the first of each run wins
        group = groups.setdefault((entry.data_fp, json.dumps(entry.settings, sort_keys=True)), {})
        group.setdefault(entry.result.run_id, entry)
    complete = [g for g in groups.values() if all(r in g for r in run_ids)]
    if not complete or not run_ids:
        return None
    best = max(complete, key=lambda g: min(e.mtime for e in g.values()))
    first = best[run_ids[0]]
    try:
        settings = EvalSettings(**first.settings)
    except (TypeError, ValueError):
        return None
    results = [best[r].result for r in run_ids]
    sums = first.result.sums
    data = {"source": first.data_label, "documents": first.documents, "fingerprint": first.data_fp,
            "bytes": int(sums.bytes.sum()), "chars": first.result.n_chars}
    report = Report(results=results, settings=settings, data=data)
    report.check_sanity(models_dir)
    return report


def evaluated_texts(models_dir: Path | str | None, run_ids: list[str], root: Path | None = None) -> dict[str, list[str]]:
    """For each run, the texts its cached evaluations used ("3 documents of notes.txt"), newest first."""
    out: dict[str, list[str]] = {r: [] for r in run_ids}
    for entry in cached_entries(models_dir, run_ids, root):
        if entry.text not in out[entry.result.run_id]:
            out[entry.result.run_id].append(entry.text)
    return out


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
) -> tuple[metrics.DocSums, dict[str, np.ndarray], int]:
    """Per-document and per-position sums of one run over tokenized documents."""
    windows = make_windows(docs_ids, max_len, settings.overlap)
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
                 np.broadcast_to(position, keep.shape)[keep])
            )
            done += len(index)
            on_batch(done, total)  # may raise (Streamlit's stop/rerun): the finally cancels
            if cancel():
                raise EvaluationCancelled("evaluation cancelled")
    finally:
        stream.close()  # closing the worker stream cancels the request there
    if parts:
        nll, rank, doc, pos = (np.concatenate(c) for c in zip(*parts, strict=True))
    else:
        nll, rank, doc, pos = (np.zeros(0, dtype=t) for t in (np.float32, np.int32, np.int64, np.int64))
    expected = windows.scored
    if nll.size != expected:
        raise RuntimeError(f"{nll.size} positions came back for {expected} targets (a stream ended early)")
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
    if use_cache and (hit := load_cached(key, cache_root)) is not None:
        if progress:
            progress(run.id, hit.windows, hit.windows)
        return hit
    info = client.request("info", run=run.name)  # loads the run: not part of the timing
    remember_loaded(run, info)  # the run's parameter count, for the pages that show it
    t0 = time.perf_counter()
    docs_ids = client.request("encode", run=run.name, texts=docs, bos=True)
    changed = roundtrip_changes(client, run.name, docs, docs_ids)
    doc_bytes = np.fromiter((len(d.encode("utf-8")) for d in docs), dtype=np.int64, count=len(docs))
    sums, positions, n_windows = score_documents(
        client,
        run.name,
        docs_ids,
        doc_bytes,
        int(info["max_seq_len"]),
        settings,
        on_batch=(lambda done, total: progress(run.id, done, total)) if progress else (lambda d, t: None),
        cancel=cancel,
    )
    result = RunResult(
        run_id=run.id,
        info={k: info.get(k) for k in ("n_params", "vocab_size", "tokenizer", "max_seq_len", "max_batch_size", "device")},
        sums=sums,
        positions=positions,
        n_chars=sum(map(len, docs)),
        changed_chars=changed,
        windows=n_windows,
        seconds=time.perf_counter() - t0,
    )
    meta = {"run_fp": run_fp, "data_fp": data_fp, "data_label": data_label, "settings": asdict(settings)}
    if use_cache and (warning := save_cached(key, result, cache_root, meta)):
        result.warnings.append(warning)
    return result


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


# -- several runs ----------------------------------------------------------------------------


@dataclass
class Report:
    """The results of several runs on the same documents, and how they were obtained."""

    results: list[RunResult]
    settings: EvalSettings
    data: dict  # source, documents, fingerprint, bytes, chars

    def result(self, run_id: str) -> RunResult:
        return next(r for r in self.results if r.run_id == run_id)

    @property
    def on_bundled(self) -> bool:
        """True when the text is (a sample of) the bundled corpus's validation split."""
        from sandbox.data import BUNDLED_LABEL

        return self.data.get("source") == BUNDLED_LABEL

    def summary(self, ks: list[int], *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
        """One row per run: bits/byte, loss, perplexity, top-k with 95 % intervals, speed."""
        return summary_table(self.results, ks, n_resamples=n_resamples, seed=seed)

    def check_sanity(self, models_dir: Path | str | None, *, record: bool = False) -> None:
        """Fill each result's ``flags`` (`sandbox.zoo.sanity`); with ``record``, remember verdicts
        made on the bundled corpus so that default choices can leave flagged runs out."""
        where = "on the bundled corpus" if self.on_bundled else f"on {self.data.get('source') or 'this text'}"
        for r in self.results:
            if not r.ok:
                continue
            try:
                run = find_run(models_dir, r.run_id)
            except UnknownRunError:
                continue
            loss = float(r.sums.nll.sum() / r.sums.tokens.sum()) if r.sums.tokens.sum() else math.nan
            r.flags = sanity.check(run, loss, r.info.get("vocab_size"), on_bundled=self.on_bundled, where=where)
            if record and self.on_bundled and math.isfinite(loss):
                sanity.record(run, r.flags, loss, "evaluation")

    def same_tokens(self) -> bool:
        """True when every run cut the text into the same tokens, as far as can be told: same
        tokenizer name, same number of outputs, same token count in every document. Only then
        do per-token metrics (loss, perplexity, top-k) compare."""
        ok = [r for r in self.results if r.ok]
        return all(same_cut(ok[0], r) for r in ok[1:])

    def small_sample_note(self) -> str | None:
        """A sentence when there are too few documents for intervals to mean much."""
        n = int(self.data.get("documents") or 0)
        if 0 < n < SMALL_SAMPLE:
            return (f"Intervals from {n} documents mean little: evaluate at least {SMALL_SAMPLE} documents "
                    "before trusting a verdict.")
        return None

    def notes(self) -> list[str]:
        """Sentences to show under the results: a small sample, tokenizers that differ."""
        out = [note] if (note := self.small_sample_note()) else []
        if not self.same_tokens():
            cuts = "; ".join(
                f"{r.run_id}: {r.info.get('tokenizer') or '?'}, {r.info.get('vocab_size') or '?'} outputs, "
                f"{r.tokens:,} tokens" for r in self.results if r.ok
            )
            out.append(
                "Loss, perplexity and top-k accuracy are per token, and these runs cut the text into "
                f"tokens differently ({cuts}): those are not comparable across tokenizers. Bits per byte is."
            )
        return out

    def paired(self, ks: list[int], reference: str | None = None, *, n_resamples: int = 1000, seed: int = 0) -> list[dict]:
        """Paired differences (run − reference) of every metric, with 95 % intervals and verdicts.

        ``reference`` defaults to the first run that succeeded. Per-token metrics are marked not
        comparable (and get no verdict) when the runs' tokenizers differ (`same_tokens`).
        """
        ok = [r for r in self.results if r.ok]
        if len(ok) < 2:
            return []
        ref = next((r for r in ok if r.run_id == reference), ok[0])
        rows = []
        for r in ok:
            if r is ref:
                continue
            try:
                diffs = metrics.paired_bootstrap(ref.sums, r.sums, list(ks), n_resamples=n_resamples, seed=seed)
            except ValueError:
                continue  # not the same documents: nothing to pair
            for name, (diff, lo, hi) in diffs.items():
                fair = same_cut(ref, r) or not metrics.per_token(name)
                rows.append({
                    "reference": ref.run_id, "run": r.run_id, "metric": name,
                    "difference": diff, "lo": lo, "hi": hi, "comparable": fair,
                    "verdict": verdict(r.run_id, ref.run_id, name, diff, lo, hi) if fair else None,
                })
        return rows

    def to_json(self, ks: list[int], *, n_resamples: int = 1000, seed: int = 0, reference: str | None = None) -> str:
        """Everything: settings, data, the summary rows, paired differences, notes, flags and
        each run's raw sums."""
        table = self.summary(ks, n_resamples=n_resamples, seed=seed)
        paired = self.paired(ks, reference, n_resamples=n_resamples, seed=seed)
        payload = {
            "method_version": EVAL_VERSION,
            "settings": asdict(self.settings),
            "data": self.data,
            "ks": list(ks),
            "summary": json.loads(table.to_json(orient="records")),
            "reference": paired[0]["reference"] if paired else None,
            "paired": [{k: _finite_or_none(v) for k, v in row.items()} for row in paired],
            "notes": self.notes(),
            "flags": {r.run_id: r.flags for r in self.results if r.flags},
            "runs": [r.to_dict() for r in self.results],
        }
        return json.dumps(payload, indent=1)


def same_cut(a: RunResult, b: RunResult) -> bool:
    """True when two results cut the text into the same tokens, as far as can be told."""
    return (a.info.get("tokenizer"), a.info.get("vocab_size")) == (b.info.get("tokenizer"), b.info.get("vocab_size")) and (
        np.array_equal(a.sums.tokens, b.sums.tokens)
    )


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN: a non-finite float becomes null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


# How a paired difference is said: (words, scale, digits); top-k differences are in points.
_SAID = {"bits_per_byte": ("bits/byte", 1.0, 3), "loss": ("nats/token", 1.0, 3), "perplexity": ("perplexity", 1.0, 2)}


def verdict(run: str, reference: str, metric: str, diff: float, lo: float, hi: float) -> str | None:
    """One sentence on a paired difference ``run − reference`` of ``metric`` and its interval.

    "B is better than A by 0.036 bits/byte [0.021, 0.050]" when the 95 % interval excludes 0
    (the interval given as the winner's advantage), "B vs A: no clear difference in ..." when
    it spans 0. None for metrics without a better direction (tokens per byte).
    """
    lower = metrics.lower_is_better(metric)
    if lower is None or not all(map(math.isfinite, (diff, lo, hi))):
        return None
    if metric.startswith("top"):
        unit, scale, digits = f"points of top-{metric[3:]} accuracy", 100.0, 1
    else:
        unit, scale, digits = _SAID[metric]
    if lo <= 0 <= hi:
        what = "top-" + metric[3:] + " accuracy" if metric.startswith("top") else metric.replace("_", " ")
        return (f"{run} vs {reference}: no clear difference in {what} "
                f"({diff * scale:+.{digits}f} [{lo * scale:+.{digits}f}, {hi * scale:+.{digits}f}])")
    sign = -1.0 if lower else 1.0  # turns run − reference into the run's advantage
    adv, a, b = diff * sign * scale, *sorted((lo * sign * scale, hi * sign * scale))
    if a > 0:
        return f"{run} is better than {reference} by {adv:.{digits}f} {unit} [{a:.{digits}f}, {b:.{digits}f}]"
    return f"{reference} is better than {run} by {-adv:.{digits}f} {unit} [{-b:.{digits}f}, {-a:.{digits}f}]"


def summary_table(results: list[RunResult], ks: list[int], *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The results table: a row per run, NaN and an ``error`` sentence where a run failed."""
    rows = []
    for r in results:
        row: dict[str, Any] = {"run": r.run_id, "check": "suspect" if r.flags else ""}
        if r.ok:
            point = metrics.metrics(r.sums, list(ks))
            intervals = metrics.bootstrap(r.sums, list(ks), n_resamples=n_resamples, seed=seed)
            for name in metrics.metric_names(list(ks)):
                row[name] = point[name]
                row[f"{name}_lo"], row[f"{name}_hi"] = intervals[name]
            row.update(
                documents=len(r.sums.tokens),
                tokens=r.tokens,
                roundtrip_changed=r.changed_chars / r.n_chars if r.n_chars else 0.0,
                tokens_per_s=r.tokens_per_s,
                parameters=r.info.get("n_params"),
                tokenizer=r.info.get("tokenizer"),
                vocab=r.info.get("vocab_size"),
                cached=r.cached,
            )
        row["error"] = r.error["message"] if r.error else ""
        rows.append(row)
    columns = ["run", "check", *[c for n in metrics.metric_names(list(ks)) for c in (n, f"{n}_lo", f"{n}_hi")]]
    columns += ["documents", "tokens", "roundtrip_changed", "tokens_per_s", "parameters", "tokenizer", "vocab", "cached", "error"]
    return pd.DataFrame(rows).reindex(columns=columns)


def accuracy_by_k(results: list[RunResult], *, n_resamples: int = 300, seed: int = 0) -> pd.DataFrame:
    """Long table (run, k, accuracy, lo, hi) for every k in 1..kmax."""
    frames = []
    for r in results:
        if not r.ok:
            continue
        ks = list(range(1, r.sums.kmax + 1))
        point = metrics.metrics(r.sums, ks)
        ci = metrics.bootstrap(r.sums, ks, n_resamples=n_resamples, seed=seed)
        frames.append(
            pd.DataFrame(
                {
                    "run": r.run_id,
                    "k": ks,
                    "accuracy": [point[f"top{k}"] for k in ks],
                    "lo": [ci[f"top{k}"][0] for k in ks],
                    "hi": [ci[f"top{k}"][1] for k in ks],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "k", "accuracy", "lo", "hi"])


def by_position(results: list[RunResult], ks: list[int]) -> pd.DataFrame:
    """Long table (run, position, tokens, loss, top{k}...) per position in the context window."""
    frames = []
    for r in results:
        if not r.ok or not r.positions:
            continue
        count = r.positions["count"]
        used = count > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            frame = pd.DataFrame({"run": r.run_id, "position": np.flatnonzero(used), "tokens": count[used],
                                  "loss": r.positions["nll"][used] / count[used]})
            for k in ks:
                if k <= r.positions["hits"].shape[1]:
                    frame[f"top{k}"] = r.positions["hits"][used, k - 1] / count[used]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "position", "tokens", "loss"])


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
) -> Report:
    """Evaluate every run on the same ``docs``; a run that fails gets an error row, the rest go on.

    ``pool`` is a `sandbox.worker.pool.WorkerPool`: each experiment gets its own worker process.
    Raises `EvaluationCancelled` when ``cancel()`` turns true (streams are closed first).
    """
    from sandbox.data import data_fingerprint

    data_fp = data_fingerprint(docs)
    results = []
    for run_id in run_ids:
        try:
            run = find_run(models_dir, run_id)
            exp = find_experiment(models_dir, run.experiment)
            result = evaluate_run(
                pool.client(exp),
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
            result = RunResult(run_id=run_id, error=_error(exc))
        results.append(result)
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


# -- one document in detail --------------------------------------------------------------------


def document_details(
    client: Any,
    run_name: str,
    text: str,
    *,
    max_len: int,
    overlap: int = 0,
    top_n: int = 10,
    n_positions: int = 64,
) -> dict:
    """Per-token view of one document for one run.

    Returns ``ids`` (bos first), ``pieces`` (each token decoded alone), per-target ``nll`` and
    ``rank``, ``top_ids``/``top_probs``/``top_pieces`` for the first ``n_positions`` targets,
    the ``decoded`` text and ``char_nll``: each token's loss spread evenly over its characters
    and carried onto the characters of ``text`` (see `sandbox.metrics.char_losses`).
    """
    text = text[:MAX_DETAIL_CHARS]
    ids = client.request("encode", run=run_name, texts=[text], bos=True)[0]
    windows = make_windows([ids], max_len, overlap)
    n = len(ids) - 1
    nll, rank = np.zeros(n), np.zeros(n, dtype=np.int64)
    p = min(n_positions, n, max_len)
    top_ids, top_probs = np.zeros((p, top_n), dtype=np.int64), np.zeros((p, top_n))
    starts = [int(w[0]) for w in plan_windows(n, max_len, overlap)]
    stream = client.stream(
        "score", run=run_name, windows=windows.inputs, targets=windows.targets, top_n_positions=p, top_n=top_n
    )
    try:
        for item in stream:
            for row, w in enumerate(item["index"]):
                first, length = int(windows.first[w]), len(windows.inputs[w])
                at = slice(starts[w] + first, starts[w] + length)
                nll[at] = item["nll"][row, first:length]
                rank[at] = item["rank"][row, first:length]
                if w == 0 and p:
                    width = item["top_ids"].shape[-1]
                    top_ids[:, :width] = item["top_ids"][row, :p]
                    top_probs[:, :width] = item["top_probs"][row, :p]
    finally:
        stream.close()
    unique = sorted(set(ids) | set(top_ids.ravel().tolist()))
    piece_of = dict(zip(unique, client.request("pieces", run=run_name, ids=unique), strict=True))
    decoded = client.request("decode", run=run_name, ids=ids[1:])
    prefixes = client.request("decode_prefixes", run=run_name, ids=ids[1 : n + 1])
    ends = decoded_prefix_ends(prefixes, decoded)
    char_nll = metrics.align_to_original(text, decoded, metrics.char_losses(len(decoded), ends, nll))
    return {
        "ids": ids,
        "pieces": [piece_of[i] for i in ids],
        "nll": nll,
        "rank": rank,
        "top_ids": top_ids,
        "top_probs": top_probs,
        "top_pieces": [[piece_of[int(i)] for i in row] for row in top_ids],
        "decoded": decoded,
        "text": text,
        "char_nll": char_nll,
    }


def decoded_prefix_ends(prefixes: list[str], full: str) -> np.ndarray:
    """Character length of each decoded prefix, not counting a dangling partial character.

    A prefix that ends inside a multi-byte character decodes with a trailing U+FFFD that the
    full text does not have there; it is not counted, so that token adds no character and its
    loss goes to the token that completes the character.
    """
    ends = np.empty(len(prefixes), dtype=np.int64)
    for i, prefix in enumerate(prefixes):
        n = len(prefix)
        while n and prefix[n - 1] == "\ufffd" and (n > len(full) or full[n - 1] != "\ufffd"):
            n -= 1
        ends[i] = n
    return ends


def summary_text(table: pd.DataFrame, ks: list[int], digits: int = 4) -> pd.DataFrame:
    """The summary as text cells, "value [lo, hi]", for terminals and plain tables."""

    def cell(row: pd.Series, name: str) -> str:
        value, lo, hi = row.get(name), row.get(f"{name}_lo"), row.get(f"{name}_hi")
        if value is None or pd.isna(value):
            return ""
        return f"{format_number(value, digits)} [{format_number(lo, digits)}, {format_number(hi, digits)}]"

    out = pd.DataFrame({"run": table["run"], "check": table["check"].fillna("")})
    for name in metrics.metric_names(list(ks)):
        out[name] = [cell(row, name) for _, row in table.iterrows()]
    out["roundtrip_changed"] = table["roundtrip_changed"].map(lambda v: "" if pd.isna(v) else f"{v:.2%}")
    out["tokens_per_s"] = table["tokens_per_s"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
    out["error"] = table["error"].fillna("")
    return out
