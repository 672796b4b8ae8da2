"""Evaluation results cached on disk, and comparisons drawn only from results on the same text.

Results are cached per run as JSON under ``cache_dir()/eval/``, keyed by the run's
fingerprint (experiment code + weights size/mtime), the data fingerprint and the settings;
each entry also names its text (``data_label``), so that a comparison drawn from the cache
(`common_evaluation`) only ever puts side by side results on the same text and settings,
and says which text that was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox.evaluation.report import Report
from sandbox.evaluation.results import EVAL_VERSION, EvalSettings, RunResult
from sandbox.settings import cache_dir
from sandbox.zoo.records import write_json_atomic

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
        write_json_atomic(_cache_path(key, root), {**result.to_dict(), "meta": meta or {}})
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


def read_entries(root: Path | None = None) -> list[tuple[float, str, dict, RunResult]]:
    """Every usable cached result (``root``: another cache folder), newest first, as
    ``(mtime, run id, meta, result)``; each file is parsed once per version. The results are
    shared between callers: read them, never change them (`cached_entries` gives copies)."""
    try:
        folder = root if root is not None else cache_dir() / "eval"
        paths = list(folder.glob("*.json"))
    except OSError:
        return []  # no cache to read: nothing was evaluated as far as we can tell
    found = []
    for path in paths:
        try:
            mtime, entry = _read_entry(path)
        except OSError:
            continue  # removed while we looked
        if entry is not None:
            found.append((mtime, *entry))
    return sorted(found, key=lambda e: e[0], reverse=True)


def cached_entries(models_dir: Path | str | None, run_ids: list[str], root: Path | None = None) -> list[CachedEntry]:
    """Every cached result of ``run_ids`` for their current code and weights, newest first."""
    from sandbox.zoo.discovery import all_runs

    wanted = {r.id: r.fingerprint() for r in all_runs(models_dir) if r.id in run_ids}
    found = []
    for mtime, run_id, meta, result in read_entries(root):
        if wanted.get(run_id) is None or wanted[run_id] != meta.get("run_fp") or not meta.get("data_fp"):
            continue
        result = RunResult.from_dict(result.to_dict())  # a copy: callers may add flags
        result.cached = True
        found.append(CachedEntry(result, str(meta["data_fp"]), str(meta.get("data_label") or ""),
                                 dict(meta.get("settings") or {}), mtime))
    return found


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
