"""Tokens per byte of a run's tokenizer, from its cached evaluations (no worker, no torch).

Per-token losses of runs with different tokenizers are not comparable: a tokenizer with
longer tokens makes each token harder to predict. An evaluation records, for exactly the
text it scored, how many tokens the run's tokenizer made of how many UTF-8 bytes, so a
logged loss in nats per token converts to an estimate in bits per byte:
``loss × tokens_per_byte / ln 2`` (`sandbox.curves.fairness.per_byte_factor`). It is an estimate:
the ratio is the evaluated text's, not the training data's.

Only evaluations of a run's current fingerprint (code, config, weights) are used, read from
the evaluation cache (`sandbox.evaluation.cache.read_entries`: a file is parsed once per version).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sandbox.evaluation.cache import read_entries
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


def token_rates(runs: Iterable[Run], root: Path | None = None) -> dict[str, TokenRate]:
    """``{run id: TokenRate}`` from the newest cached evaluation of each run's current
    fingerprint; runs never evaluated so are absent. ``root``: the evaluation cache folder."""
    wanted = {run.id: run.fingerprint() for run in runs}
    found: dict[str, TokenRate] = {}
    for _, run_id, meta, result in read_entries(root):  # newest first
        if run_id not in wanted or run_id in found or wanted[run_id] != str(meta.get("run_fp", "")):
            continue
        n_bytes = int(result.sums.bytes.sum())
        if n_bytes > 0:
            found[run_id] = TokenRate(run_id, int(result.sums.tokens.sum()), n_bytes, len(result.sums.tokens))
            if len(found) == len(wanted):
                break
    return found
