"""Evaluation metrics from per-position scores: pure numpy, no torch, no workers.

The worker gives, for every scored position, the negative log-likelihood of the true next
token (nats) and its rank (how many vocabulary entries have a strictly larger logit), so
"target in the top k" is ``rank < k``. Everything here is built from per-document sums:

- ``tokens``: positions scored (every token of the document after its bos),
- ``nll``: their summed NLL in nats,
- ``bytes``: UTF-8 bytes of the document text that was evaluated,
- ``hits[:, k-1]``: positions whose target was in the top k, for k = 1..kmax.

Ratios of totals (not means of per-document ratios) give the metrics, so a long document
weighs as much as its tokens. Bits per byte divides by the bytes of the text, not by
tokens, which makes models with different tokenizers comparable. Confidence intervals
come from a bootstrap over documents (documents, not tokens, are the independent units).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import numpy as np

from sandbox.evaluation import intervals

LN2 = math.log(2.0)


@dataclass
class DocSums:
    """Per-document totals of one model on one set of documents (arrays of length D)."""

    tokens: np.ndarray  # (D,) int: scored positions
    nll: np.ndarray  # (D,) float: summed NLL, nats
    bytes: np.ndarray  # (D,) int: UTF-8 bytes of the text
    hits: np.ndarray  # (D, kmax) int: positions with rank < k, k = 1..kmax

    @property
    def kmax(self) -> int:
        return int(self.hits.shape[1])

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("tokens", "nll", "bytes", "hits")}

    @classmethod
    def from_dict(cls, data: dict) -> DocSums:
        hits = np.asarray(data["hits"], dtype=np.int64)
        return cls(
            tokens=np.asarray(data["tokens"], dtype=np.int64),
            nll=np.asarray(data["nll"], dtype=np.float64),
            bytes=np.asarray(data["bytes"], dtype=np.int64),
            hits=hits.reshape(len(data["tokens"]), -1),
        )


# -- from positions to sums ------------------------------------------------------------------


def rank_hits(rank: np.ndarray, groups: np.ndarray, n_groups: int, kmax: int) -> np.ndarray:
    """Top-k hit counts ``(n_groups, kmax)``: column k-1 counts positions with rank < k.

    One bincount of (group, rank) for ranks below kmax, then a cumulative sum over k (a
    position of rank r is a hit for every k > r).
    """
    rank = np.asarray(rank)
    groups = np.asarray(groups)
    low = rank < kmax
    counts = np.bincount(groups[low] * kmax + rank[low], minlength=n_groups * kmax)
    return counts.reshape(n_groups, kmax).cumsum(axis=1)


def document_sums(
    nll: np.ndarray, rank: np.ndarray, doc: np.ndarray, doc_bytes: np.ndarray, kmax: int
) -> DocSums:
    """Sum per-position ``nll``/``rank`` into per-document totals (``doc`` = document index)."""
    n = len(doc_bytes)
    doc = np.asarray(doc, dtype=np.int64)
    return DocSums(
        tokens=np.bincount(doc, minlength=n),
        nll=np.bincount(doc, weights=np.asarray(nll, dtype=np.float64), minlength=n),
        bytes=np.asarray(doc_bytes, dtype=np.int64),
        hits=rank_hits(rank, doc, n, kmax),
    )


def position_sums(
    nll: np.ndarray, rank: np.ndarray, position: np.ndarray, length: int, kmax: int
) -> dict[str, np.ndarray]:
    """Totals per position in the window (0 = predicted from one token of context)."""
    position = np.asarray(position, dtype=np.int64)
    return {
        "count": np.bincount(position, minlength=length),
        "nll": np.bincount(position, weights=np.asarray(nll, dtype=np.float64), minlength=length),
        "hits": rank_hits(rank, position, length, kmax),
    }


# -- metrics from totals ---------------------------------------------------------------------


def metric_names(ks: list[int]) -> list[str]:
    """Metric keys in display order: bits per byte first (the only one comparable across
    tokenizers), then the per-token metrics, then tokens per byte."""
    return ["bits_per_byte", "loss", "perplexity", *[f"top{k}" for k in ks], "tokens_per_byte"]


# Metrics measured per token: across different tokenizers they do not compare.
def per_token(name: str) -> bool:
    """True for the metrics that depend on how the text was cut into tokens."""
    return name in ("loss", "perplexity") or name.startswith("top")


def lower_is_better(name: str) -> bool | None:
    """True when a smaller value is better, False when a larger one is, None when neither."""
    if name in ("bits_per_byte", "loss", "perplexity"):
        return True
    if name.startswith("top"):
        return False
    return None


def _from_totals(
    tokens: np.ndarray, nll: np.ndarray, n_bytes: np.ndarray, hits: np.ndarray, ks: list[int]
) -> dict[str, np.ndarray]:
    """Metrics from totals; works on scalars or on a leading axis of bootstrap resamples."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        loss = nll / tokens
        out = {f"top{k}": hits[..., k - 1] / tokens for k in ks}
        out["loss"] = loss
        out["perplexity"] = np.exp(loss)
        out["bits_per_byte"] = nll / LN2 / n_bytes
        out["tokens_per_byte"] = tokens / n_bytes
    return out


def _check_ks(ks: list[int], kmax: int) -> None:
    bad = [k for k in ks if not 1 <= k <= kmax]
    if bad:
        raise ValueError(f"k must lie in 1..{kmax} (the k the results were computed for), not {bad}")


def metrics(sums: DocSums, ks: list[int]) -> dict[str, float]:
    """Point estimates: top-k accuracies, loss (nats/token), perplexity, bits/byte, tokens/byte."""
    _check_ks(ks, sums.kmax)
    values = _from_totals(
        sums.tokens.sum(), sums.nll.sum(), sums.bytes.sum(), sums.hits.sum(axis=0), ks
    )
    return {name: float(v) for name, v in values.items()}


def bootstrap(
    sums: DocSums,
    ks: list[int],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    chunk_cells: int = 4_000_000,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every metric, resampling documents with replacement.

    Each resample is a vector of document counts drawn from a multinomial, so the resampled
    totals of all metrics are one matrix product ``counts @ per-document sums``. Resamples are
    drawn in chunks of at most ``chunk_cells`` counts to bound memory on large corpora.
    """
    _check_ks(ks, sums.kmax)
    n = len(sums.tokens)
    if n == 0:
        return {name: (math.nan, math.nan) for name in metric_names(ks)}
    table = _table(sums)
    t = np.concatenate([counts @ table for counts in resample_counts(n, n_resamples, seed, chunk_cells)])
    values = _from_totals(t[:, 0], t[:, 1], t[:, 2], t[:, 3:], ks)
    return {name: _interval(v, confidence) for name, v in values.items()}


def _table(sums: DocSums) -> np.ndarray:
    """Columns tokens, nll, bytes, hits@1..kmax: one matmul with counts resamples them all."""
    return np.column_stack([sums.tokens, sums.nll, sums.bytes, sums.hits]).astype(np.float64)


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of resampled values (NaN when none is finite)."""
    tail = (1.0 - confidence) / 2.0 * 100.0
    if not np.isfinite(values).any():
        return math.nan, math.nan
    lo, hi = np.nanpercentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def resample_counts(n: int, n_resamples: int, seed: int, chunk_cells: int = 4_000_000):
    """Bootstrap resamples of ``n`` documents as count vectors, in chunks of ``(size, n)``.

    Row r, column d: how often document d is drawn in resample r (a multinomial draw is the
    same thing as ``n`` indices drawn with replacement, counted). Chunks hold at most
    ``chunk_cells`` counts, to bound memory on large corpora.
    """
    rng = np.random.default_rng(seed)
    per_chunk = max(1, chunk_cells // max(n, 1))
    for start in range(0, n_resamples, per_chunk):
        size = min(per_chunk, n_resamples - start)
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=size)


def resampled_differences(a: DocSums, b: DocSums, ks: list[int], counts: np.ndarray) -> dict[str, np.ndarray]:
    """Metric of ``b`` minus metric of ``a`` in each resample given by a counts matrix.

    The same counts (the same documents, drawn the same number of times) apply to both
    runs' per-document sums: that is what makes the difference *paired*.
    """
    ta, tb = counts @ _table(a), counts @ _table(b)
    va = _from_totals(ta[:, 0], ta[:, 1], ta[:, 2], ta[:, 3:], ks)
    vb = _from_totals(tb[:, 0], tb[:, 1], tb[:, 2], tb[:, 3:], ks)
    return {name: vb[name] - va[name] for name in va}


def ratio_metric(name: str) -> intervals.RatioMetric:
    """The metric ``name`` as a ratio of two columns of `_table` (for studentized intervals)."""
    if name.startswith("top"):
        return intervals.RatioMetric(3 + int(name[3:]) - 1, 0)
    return {
        "bits_per_byte": intervals.RatioMetric(1, 2, 1.0 / LN2),
        "loss": intervals.RatioMetric(1, 0),
        "perplexity": intervals.RatioMetric(1, 0, exp=True),
        "tokens_per_byte": intervals.RatioMetric(0, 2),
    }[name]


def _check_paired(a: DocSums, b: DocSums, ks: list[int]) -> None:
    """Raise ValueError unless both runs were scored on the same documents, for every k."""
    _check_ks(ks, min(a.kmax, b.kmax))
    if len(a.tokens) != len(b.tokens) or not np.array_equal(a.bytes, b.bytes):
        raise ValueError("a paired difference needs both runs scored on the same documents")


def paired_intervals(
    a: DocSums,
    b: DocSums,
    ks: list[int],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    chunk_cells: int = 4_000_000,
) -> dict[str, intervals.PairedInterval]:
    """Paired difference ``b - a`` of every metric with its studentized bootstrap interval,
    p-value and Monte Carlo noise (`sandbox.evaluation.intervals`).

    Both runs were scored on the same documents; each resample draws document indices once
    and applies them to both runs' per-document sums, so what the two runs share (a hard
    document is hard for both) cancels out. Every metric uses the same resamples (same seed).
    """
    _check_paired(a, b, ks)
    n = len(a.tokens)
    if n == 0:
        return {name: intervals.PairedInterval(*[math.nan] * 5) for name in metric_names(ks)}
    ta, tb = _table(a), _table(b)
    return {
        name: intervals.studentized(ta, tb, ratio_metric(name), resample_counts(n, n_resamples, seed, chunk_cells), confidence)
        for name in metric_names(ks)  # display order: bits per byte first
    }


def paired_bootstrap(
    a: DocSums,
    b: DocSums,
    ks: list[int],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    chunk_cells: int = 4_000_000,
    method: str = "studentized",
) -> dict[str, tuple[float, float, float]]:
    """Paired difference ``b - a`` of every metric: ``(difference, lo, hi)``.

    ``method="studentized"`` (the default) is `paired_intervals`' bootstrap-t, which keeps
    close to its nominal coverage on few, skewed documents; ``"percentile"`` is the plain
    percentile interval of the resampled differences (too narrow there: see the README).
    The difference is of the ratio-of-totals metrics (bits/byte of b's totals minus a's).
    """
    if method == "studentized":
        got = paired_intervals(a, b, ks, n_resamples=n_resamples, seed=seed, confidence=confidence,
                               chunk_cells=chunk_cells)
        return {name: (iv.difference, iv.lo, iv.hi) for name, iv in got.items()}
    if method != "percentile":
        raise ValueError(f"method must be 'studentized' or 'percentile', not {method!r}")
    _check_paired(a, b, ks)
    point_a, point_b = metrics(a, ks), metrics(b, ks)
    n = len(a.tokens)
    if n == 0:
        return {name: (math.nan, math.nan, math.nan) for name in metric_names(ks)}
    chunks = [resampled_differences(a, b, ks, counts) for counts in resample_counts(n, n_resamples, seed, chunk_cells)]
    out = {}
    for name in metric_names(ks):
        lo, hi = _interval(np.concatenate([c[name] for c in chunks]), confidence)
        out[name] = (point_b[name] - point_a[name], lo, hi)
    return out


# -- tokenizer fidelity ------------------------------------------------------------------------


def changed_characters(original: str, decoded: str) -> int:
    """How many characters of ``original`` the round trip did not give back.

    Method: when both strings have the same length (a tokenizer that substitutes characters,
    e.g. unknown ones by a space) a positional comparison, vectorised; otherwise difflib's
    matching blocks (characters of ``original`` outside every matching block). Equal strings
    cost nothing.
    """
    if original == decoded:
        return 0
    if len(original) == len(decoded):
        a = np.frombuffer(original.encode("utf-32-le"), dtype=np.uint32)
        b = np.frombuffer(decoded.encode("utf-32-le"), dtype=np.uint32)
        return int(np.count_nonzero(a != b))
    matcher = difflib.SequenceMatcher(None, original, decoded, autojunk=False)
    return len(original) - sum(block.size for block in matcher.get_matching_blocks())


# -- per-character loss ------------------------------------------------------------------------


def char_losses(n_chars: int, ends: np.ndarray, token_nll: np.ndarray) -> np.ndarray:
    """Spread each token's loss evenly over the characters it decodes to.

    ``ends[i]`` is the length of the text decoded from tokens ``0..i`` (the decoded-prefix
    length); token i covers characters ``[ends[i-1], ends[i])``. A token that ends inside a
    multi-byte character adds no character of its own: its loss joins the next token that
    does (they share a start), so no loss is dropped and the per-character sum equals the
    per-token sum.
    """
    ends = np.minimum(np.maximum.accumulate(np.asarray(ends, dtype=np.int64)), n_chars)
    token_nll = np.asarray(token_nll, dtype=np.float64)
    out = np.zeros(n_chars, dtype=np.float64)
    if n_chars == 0 or ends.size == 0:
        return out
    starts = np.concatenate([[0], ends[:-1]])
    # Trailing tokens that add nothing belong to the last character.
    starts = np.minimum(starts, n_chars - 1)
    seg_starts, seg = np.unique(starts, return_inverse=True)
    seg_loss = np.bincount(seg, weights=token_nll, minlength=len(seg_starts))
    seg_ends = np.append(seg_starts[1:], max(n_chars, int(ends[-1])))
    widths = seg_ends - seg_starts
    out_seg = np.repeat(np.arange(len(seg_starts)), widths)
    out[seg_starts[0] : seg_starts[0] + out_seg.size] = (seg_loss / widths)[out_seg]
    return out


def align_to_original(original: str | bytes, decoded: str | bytes, values: np.ndarray) -> np.ndarray:
    """Per-character (or per-byte, given bytes) ``values`` of ``decoded`` carried onto the
    characters (bytes) of ``original``.

    Lossless tokenizers decode to the original, so this is the identity. Otherwise difflib's
    opcodes map blocks: equal blocks copy, a replaced block spreads its total evenly over the
    original block, inserted characters add to the original character before them (so the
    total is kept), and original characters the decoding dropped get NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if original == decoded:
        return values.copy()
    out = np.full(len(original), np.nan)
    extra = np.zeros(len(original))
    matcher = difflib.SequenceMatcher(None, original, decoded, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out[i1:i2] = values[j1:j2]
        elif tag == "replace":
            out[i1:i2] = values[j1:j2].sum() / (i2 - i1)
        elif tag == "insert" and len(original):
            extra[max(i1 - 1, 0)] += values[j1:j2].sum()
    return np.where(np.isnan(out) & (extra != 0), extra, out + extra)
