"""Metrics from per-position scores: hand-computed values, padding, bootstrap, round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sandbox.evaluation import metrics
from sandbox.evaluation.details import decoded_prefix_ends


def test_rank_hits_counts_every_k_from_one_rank() -> None:
    rank = np.array([0, 1, 2, 2, 7, 0])
    doc = np.array([0, 0, 0, 1, 1, 1])
    hits = metrics.rank_hits(rank, doc, n_groups=2, kmax=3)
    # doc 0: ranks 0,1,2 -> top1 1, top2 2, top3 3; doc 1: ranks 2,7,0 -> 1, 1, 2.
    np.testing.assert_array_equal(hits, [[1, 2, 3], [1, 1, 2]])


def test_metrics_by_hand() -> None:
    # Two documents; NLLs chosen so that totals are easy: 9 ln2 nats over 4 tokens, 4 bytes...
    nll = np.array([math.log(2), math.log(4), math.log(8), math.log(8), math.log(2)])
    rank = np.array([0, 1, 2, 2, 0])
    doc = np.array([0, 0, 0, 0, 1])
    sums = metrics.document_sums(nll, rank, doc, doc_bytes=np.array([4, 2]), kmax=3)
    np.testing.assert_array_equal(sums.tokens, [4, 1])
    m = metrics.metrics(sums, [1, 2, 3])
    assert m["top1"] == pytest.approx(2 / 5) and m["top2"] == pytest.approx(3 / 5) and m["top3"] == 1.0
    assert m["loss"] == pytest.approx(10 * math.log(2) / 5)
    assert m["perplexity"] == pytest.approx(4.0)  # exp(2 ln 2)
    assert m["bits_per_byte"] == pytest.approx(10 / 6)  # 10 bits over 6 bytes
    assert m["tokens_per_byte"] == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="1..3"):
        metrics.metrics(sums, [5])


def test_position_sums() -> None:
    pos = metrics.position_sums(np.array([1.0, 2.0, 3.0]), np.array([0, 4, 1]), np.array([0, 1, 1]), length=3, kmax=2)
    np.testing.assert_array_equal(pos["count"], [1, 2, 0])
    np.testing.assert_allclose(pos["nll"], [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(pos["hits"], [[1, 1], [0, 1], [0, 0]])


def _random_sums(n_docs: int, seed: int) -> metrics.DocSums:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(20, 200, n_docs)
    per_token = rng.gamma(4.0, 0.8, n_docs)  # documents differ in difficulty
    hits1 = rng.binomial(tokens, 0.3)
    hits = np.column_stack([hits1, hits1 + rng.binomial(tokens - hits1, 0.2)])
    return metrics.DocSums(tokens=tokens, nll=tokens * per_token, bytes=tokens * 3, hits=hits)


def test_bootstrap_contains_the_estimate_and_shrinks_with_more_documents() -> None:
    few, many = _random_sums(20, seed=1), _random_sums(800, seed=2)
    widths = {}
    for name, sums in (("few", few), ("many", many)):
        point = metrics.metrics(sums, [1, 2])
        ci = metrics.bootstrap(sums, [1, 2], n_resamples=500, seed=0)
        for metric, value in point.items():
            lo, hi = ci[metric]
            assert lo <= value <= hi, metric
        widths[name] = {m: ci[m][1] - ci[m][0] for m in ci}
    for metric in ("loss", "top1", "top2", "bits_per_byte", "perplexity"):
        assert widths["many"][metric] < widths["few"][metric] / 3, metric


def test_bootstrap_is_seeded_and_chunking_does_not_change_it() -> None:
    sums = _random_sums(50, seed=3)
    a = metrics.bootstrap(sums, [1], n_resamples=200, seed=7)
    b = metrics.bootstrap(sums, [1], n_resamples=200, seed=7)
    c = metrics.bootstrap(sums, [1], n_resamples=200, seed=8)
    assert a == b and a != c
    small_chunks = metrics.bootstrap(sums, [1], n_resamples=200, seed=7, chunk_cells=50 * 7)
    assert small_chunks == a  # same stream of multinomial draws, drawn in pieces


def test_changed_characters_positional_and_difflib() -> None:
    assert metrics.changed_characters("café au lait", "café au lait") == 0
    # Same length: positional comparison (a lossy tokenizer replaced two characters by spaces).
    assert metrics.changed_characters("Zoë's café", "Zo 's caf ") == 2
    # Different length: difflib matching blocks (a dropped character, then two replaced by one).
    assert metrics.changed_characters("hello world", "helo world") == 1
    assert metrics.changed_characters("naïve ≠ bad", "naive ? bad!!") == 2


def test_char_losses_spread_evenly_and_keep_the_total() -> None:
    # "ab" "c" "def": three tokens, ends after each decoded prefix.
    out = metrics.char_losses(6, np.array([2, 3, 6]), np.array([1.0, 3.0, 0.6]))
    np.testing.assert_allclose(out, [0.5, 0.5, 3.0, 0.2, 0.2, 0.2])
    # A token that ends inside a character (adds no character) joins the one completing it.
    out = metrics.char_losses(3, np.array([1, 1, 2, 3]), np.array([1.0, 0.25, 0.75, 2.0]))
    np.testing.assert_allclose(out, [1.0, 1.0, 2.0])
    assert out.sum() == pytest.approx(4.0)


def test_decoded_prefix_ends_drop_a_dangling_partial_character() -> None:
    full = "né!"
    prefixes = ["n", "n\ufffd", "né", "né!"]  # é split over two byte tokens
    np.testing.assert_array_equal(decoded_prefix_ends(prefixes, full), [1, 1, 2, 3])
    # A real U+FFFD in the text is kept.
    np.testing.assert_array_equal(decoded_prefix_ends(["\ufffd"], "\ufffd"), [1])


def test_align_to_original() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(metrics.align_to_original("abcd", "abcd", values), values)
    # Replaced character: value carried over; dropped character: NaN; totals kept.
    out = metrics.align_to_original("aëcd", "a cd", values)
    np.testing.assert_allclose(out, values)
    out = metrics.align_to_original("abxcd", "abcd", values)
    assert np.isnan(out[2]) and np.nansum(out) == pytest.approx(10.0)
    out = metrics.align_to_original("abcd", "abZcd", np.array([1.0, 2.0, 5.0, 3.0, 4.0]))
    np.testing.assert_allclose(out, [1.0, 7.0, 3.0, 4.0])


# -- paired differences ------------------------------------------------------------------------


def _direct_totals(sums: metrics.DocSums, idx: list[int]) -> dict[str, float]:
    """Metrics of one resample, summed document by document in a plain loop."""
    tokens = nll = n_bytes = 0.0
    hits = [0.0] * sums.kmax
    for i in idx:
        tokens += sums.tokens[i]
        nll += sums.nll[i]
        n_bytes += sums.bytes[i]
        for k in range(sums.kmax):
            hits[k] += sums.hits[i, k]
    out = {f"top{k + 1}": hits[k] / tokens for k in range(sums.kmax)}
    out.update(loss=nll / tokens, perplexity=math.exp(nll / tokens), bits_per_byte=nll / math.log(2) / n_bytes,
               tokens_per_byte=tokens / n_bytes)
    return out


def _pair(n_docs: int, seed: int) -> tuple[metrics.DocSums, metrics.DocSums]:
    """Two runs on the same documents (same bytes), different tokenizers (token counts)."""
    a = _random_sums(n_docs, seed)
    rng = np.random.default_rng(seed + 100)
    tokens_b = (a.tokens * 0.7).astype(np.int64) + 1
    nll_b = a.nll * rng.uniform(0.8, 1.1, n_docs)  # hard documents stay hard for b
    hits_b = np.minimum(a.hits, tokens_b[:, None])
    return a, metrics.DocSums(tokens=tokens_b, nll=nll_b, bytes=a.bytes, hits=hits_b)


def test_paired_differences_equal_a_direct_loop_over_fixed_resamples() -> None:
    a, b = _pair(4, seed=5)
    resamples = [[0, 0, 1, 3], [2, 2, 2, 2], [0, 1, 2, 3], [3, 1, 1, 0], [1, 1, 1, 2]]
    counts = np.stack([np.bincount(idx, minlength=4) for idx in resamples])
    got = metrics.resampled_differences(a, b, [1, 2], counts)
    for r, idx in enumerate(resamples):
        da, db = _direct_totals(a, idx), _direct_totals(b, idx)
        for name in ("bits_per_byte", "loss", "perplexity", "top1", "top2", "tokens_per_byte"):
            assert got[name][r] == pytest.approx(db[name] - da[name], rel=1e-12), (name, idx)


def test_paired_interval_matches_exhaustive_enumeration_of_three_documents() -> None:
    # With 3 documents, the bootstrap draws one of 27 equally likely index triples. Bits per
    # byte of pooled totals lie between the documents' own ratios (a mediant), so the lowest
    # and highest differences are those of a document drawn three times (each 1/27 > 2.5 %):
    # the 95 % percentile interval (method="percentile") is exactly those two values.
    import itertools

    a, b = _pair(3, seed=11)
    exact = [_direct_totals(b, list(t))["bits_per_byte"] - _direct_totals(a, list(t))["bits_per_byte"]
             for t in itertools.product(range(3), repeat=3)]
    diff, lo, hi = metrics.paired_bootstrap(a, b, [1], n_resamples=20000, seed=0, method="percentile")["bits_per_byte"]
    assert lo == pytest.approx(min(exact), rel=1e-12) and hi == pytest.approx(max(exact), rel=1e-12)
    full = _direct_totals(b, [0, 1, 2])["bits_per_byte"] - _direct_totals(a, [0, 1, 2])["bits_per_byte"]
    assert diff == pytest.approx(full, rel=1e-12)
    # The mean of the resampled differences is near the exact bootstrap mean.
    counts = next(metrics.resample_counts(3, 20000, seed=0))
    mean = metrics.resampled_differences(a, b, [1], counts)["bits_per_byte"].mean()
    assert mean == pytest.approx(float(np.mean(exact)), abs=0.01 * (max(exact) - min(exact)))


def test_pairing_narrows_the_interval_of_a_real_difference() -> None:
    a = _random_sums(60, seed=21)
    rng = np.random.default_rng(3)
    b = metrics.DocSums(a.tokens, a.nll * rng.uniform(0.95, 0.97, 60), a.bytes, a.hits)  # b a little better everywhere
    paired = metrics.paired_bootstrap(a, b, [1], n_resamples=500, seed=0)
    diff, lo, hi = paired["bits_per_byte"]
    assert lo <= diff <= hi < 0  # a clear improvement...
    ci_a, ci_b = metrics.bootstrap(a, [1], n_resamples=500)["bits_per_byte"], metrics.bootstrap(b, [1], n_resamples=500)["bits_per_byte"]
    assert ci_a[0] < ci_b[1]  # ...that the runs' own intervals would call an overlap
    assert hi - lo < (ci_a[1] - ci_a[0]) / 5
    noise = metrics.DocSums(a.tokens, a.nll * rng.uniform(0.9, 1.1, 60), a.bytes, a.hits)
    _, lo, hi = metrics.paired_bootstrap(a, noise, [1], n_resamples=500, seed=0)["bits_per_byte"]
    assert lo < 0 < hi  # no systematic difference: the interval spans 0


def test_paired_bootstrap_is_seeded_chunk_free_and_needs_the_same_documents() -> None:
    a, b = _pair(40, seed=8)
    one = metrics.paired_bootstrap(a, b, [1], n_resamples=300, seed=4)
    assert one == metrics.paired_bootstrap(a, b, [1], n_resamples=300, seed=4, chunk_cells=40 * 7)
    assert one != metrics.paired_bootstrap(a, b, [1], n_resamples=300, seed=5)
    other = _random_sums(41, seed=8)
    with pytest.raises(ValueError, match="same documents"):
        metrics.paired_bootstrap(a, other, [1])
    shifted = metrics.DocSums(b.tokens, b.nll, b.bytes + 1, b.hits)
    with pytest.raises(ValueError, match="same documents"):
        metrics.paired_bootstrap(a, shifted, [1])


def test_metric_order_puts_bits_per_byte_first() -> None:
    names = metrics.metric_names([1, 5])
    assert names[0] == "bits_per_byte"
    assert [n for n in names if metrics.per_token(n)] == ["loss", "perplexity", "top1", "top5"]
    assert metrics.lower_is_better("loss") and metrics.lower_is_better("top5") is False
    assert metrics.lower_is_better("tokens_per_byte") is None
