"""Tokens per byte of a run's tokenizer, from its cached evaluations (no worker, no torch).

Per-token losses of runs with different tokenizers are not comparable: a tokenizer with
longer tokens makes each token harder to predict. An evaluation records, for exactly the
text it scored, how many tokens the run's tokenizer made of how many UTF-8 bytes, so a
logged loss in nats per token converts to an estimate in bits per byte:
``loss × tokens_per_byte / ln 2`` (`sandbox.curves.fairness.per_byte_factor`). It is an estimate:
the ratio is the evaluated text's, not the training data's.

Only evaluations of a run's current fingerprint (code, config, weights) are used, read from
`sandbox.evaluation.run`'s cache; a file is parsed once per (path, size, mtime).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sandbox.settings import cache_dir
from sandbox.zoo.discovery import Run


@dataclass(frozen=True)
class TokenRate:
    """What one cached evaluation says of a run's tokenizer."""

    run_id: str
    tokens: int
    bytes: int
    documents: int

    @property
    def tokens_per_byte(self) -> float:
        return self.tokens / self.bytes


_SEEN: dict[str, tuple[tuple[int, int], tuple[str, str, TokenRate] | None]] = {}
_LOCK = threading.Lock()


def _read(path: Path, stamp: tuple[int, int]) -> tuple[str, str, TokenRate] | None:
    """(run id, run fingerprint, rate) of one cached evaluation; None if it has none."""
    from sandbox.evaluation.results import RunResult

    key = str(path)
    with _LOCK:
        seen = _SEEN.get(key)
    if seen is not None and seen[0] == stamp:
        return seen[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        result = RunResult.from_dict(data)
        run_fp = str(data.get("meta", {}).get("run_fp", ""))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # being written, or from another version: not remembered, read again later
    entry = None
    if result.ok and int(result.sums.bytes.sum()) > 0:
        rate = TokenRate(result.run_id, int(result.sums.tokens.sum()), int(result.sums.bytes.sum()), len(result.sums.tokens))
        entry = (result.run_id, run_fp, rate)
    with _LOCK:
        _SEEN[key] = (stamp, entry)
    return entry


def token_rates(runs: Iterable[Run], root: Path | None = None) -> dict[str, TokenRate]:
    """``{run id: TokenRate}`` from the newest cached evaluation of each run's current
    fingerprint; runs never evaluated so are absent. ``root``: the evaluation cache folder."""
    wanted = {run.id: run.fingerprint() for run in runs}
    folder = root if root is not None else cache_dir() / "eval"
    files = []
    try:
        for path in folder.glob("*.json"):
            try:
                st = path.stat()
            except OSError:
                continue  # removed since it was listed
            files.append((st.st_mtime_ns, path, (st.st_size, st.st_mtime_ns)))
    except OSError:
        return {}
    found: dict[str, TokenRate] = {}
    for _, path, stamp in sorted(files, key=lambda f: f[0], reverse=True):
        entry = _read(path, stamp)
        if entry is None:
            continue
        run_id, run_fp, rate = entry
        if run_id in wanted and run_id not in found and wanted[run_id] == run_fp:
            found[run_id] = rate
            if len(found) == len(wanted):
                break
    return found
