"""How often the paired intervals hold: coverage by simulation on skewed documents.

A population of documents with lognormal lengths and a few hard ones (their loss per byte
several times the rest, and where the two runs differ most), so per-document differences are
skewed as on real text. The true difference is that of the population's totals; each trial
draws ``n`` documents, builds the interval and checks whether it holds the truth. Used by
`bench/coverage.py` (figures in the README) and by the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sandbox.evaluation import intervals, metrics


@dataclass
class Population:
    """Per-document sums of two runs (the same documents, one tokenizer) and the true difference."""

    a: metrics.DocSums
    b: metrics.DocSums
    truth: float  # bits per byte of b minus a, on the whole population's totals


def skewed_population(size: int = 100_000, *, hard_share: float = 0.1, hard_shift: float = 1.1, seed: int = 0) -> Population:
    """Two runs on ``size`` documents: lognormal lengths; a ``hard_share`` of hard documents
    (4x the loss per byte), on which run b is worse while it is a little better elsewhere."""
    rng = np.random.default_rng(seed)
    n_bytes = np.maximum(rng.lognormal(6.0, 0.9, size).astype(np.int64), 8)
    hard = rng.random(size) < hard_share
    rate_a = rng.gamma(20.0, 0.05, size) * np.where(hard, 4.0, 1.0)  # nats per byte
    rate_b = rate_a * np.where(hard, rng.normal(hard_shift, 0.05, size), rng.normal(0.98, 0.02, size))
    tokens = np.maximum(n_bytes // 4, 1)
    hits = rng.binomial(tokens, 0.4)[:, None]
    a = metrics.DocSums(tokens, rate_a * n_bytes, n_bytes, hits)
    b = metrics.DocSums(tokens, rate_b * n_bytes, n_bytes, hits)
    truth = (b.nll.sum() - a.nll.sum()) / metrics.LN2 / n_bytes.sum()
    return Population(a, b, float(truth))


def _take(s: metrics.DocSums, idx: np.ndarray) -> metrics.DocSums:
    return metrics.DocSums(s.tokens[idx], s.nll[idx], s.bytes[idx], s.hits[idx])


def coverage(pop: Population, n_docs: int, trials: int, *, method: str = "studentized",
             n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Share of ``trials`` samples of ``n_docs`` documents whose 95 % paired interval of bits
    per byte holds the population's difference, and that share's binomial standard error."""
    rng = np.random.default_rng(seed)
    size = len(pop.a.tokens)
    held = 0
    for trial in range(trials):
        idx = rng.choice(size, n_docs, replace=False)
        a, b = _take(pop.a, idx), _take(pop.b, idx)
        if method == "studentized":  # bits per byte alone (paired_bootstrap computes every metric)
            counts = metrics.resample_counts(n_docs, n_resamples, trial)
            iv = intervals.studentized(metrics._table(a), metrics._table(b), metrics.ratio_metric("bits_per_byte"), counts)
            lo, hi = iv.lo, iv.hi
        else:
            _, lo, hi = metrics.paired_bootstrap(a, b, [1], n_resamples=n_resamples, seed=trial,
                                                 method=method)["bits_per_byte"]
        held += lo <= pop.truth <= hi
    share = held / trials
    return share, math.sqrt(share * (1.0 - share) / trials)
