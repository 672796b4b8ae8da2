"""The sampler: filter supports on fixed distributions, sampled frequencies, seeds, greedy."""

from __future__ import annotations

import math

import pytest
import torch

from sandbox.playground.settings import MAX_NEW_TOKENS_CAP, SamplingSettings
from sandbox.worker.sampling import filter_logits, make_generator, sample_next

# A fixed distribution with distinct probabilities (sorted order == index order).
PROBS = torch.tensor([0.40, 0.25, 0.15, 0.10, 0.05, 0.03, 0.02])
LOGITS = PROBS.log()


def support(logits: torch.Tensor, **kw) -> set[int]:
    """Token ids that survive the filters of ``SamplingSettings(**kw)``."""
    kept = filter_logits(logits, SamplingSettings(**kw))
    return set(torch.isfinite(kept).nonzero().flatten().tolist())


def filtered_probs(logits: torch.Tensor, **kw) -> torch.Tensor:
    return torch.softmax(filter_logits(logits, SamplingSettings(**kw)), dim=-1)


# -- supports ---------------------------------------------------------------------------


@pytest.mark.parametrize("k, expected", [(1, {0}), (2, {0, 1}), (4, {0, 1, 2, 3}), (7, set(range(7)))])
def test_top_k_keeps_the_k_most_likely_tokens(k, expected):
    assert support(LOGITS, top_k=k) == expected


def test_top_k_keeps_the_largest_not_the_smallest_set():
    # The template experiment's bug class: a mask on the wrong side of the k-th value.
    # Shuffle so that index order says nothing about rank.
    logits = torch.tensor([0.1, 3.0, -2.0, 2.5, 0.7, -1.0])
    assert support(logits, top_k=2) == {1, 3}
    assert support(logits, top_k=3) == {1, 3, 4}
    dropped = torch.isinf(filter_logits(logits, SamplingSettings(top_k=3)))
    assert dropped.tolist() == [True, False, True, False, False, True]


def test_top_k_keeps_exactly_k_even_with_ties():
    # A threshold on the k-th value (`logits < kth`) would keep all five tied tokens.
    logits = torch.tensor([2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    kept = support(logits, top_k=3)
    assert len(kept) == 3
    assert 0 in kept and kept <= {0, 1, 2, 3, 4, 5}


def test_top_k_zero_or_above_vocab_is_off():
    assert support(LOGITS, top_k=0) == set(range(7))
    assert support(LOGITS, top_k=50) == set(range(7))


@pytest.mark.parametrize(
    "p, expected",
    [
        (0.10, {0}),  # the most likely token alone already reaches p
        (0.40, {0}),  # reached exactly by one token: no second token
        (0.41, {0, 1}),
        (0.65, {0, 1}),  # 0.40 + 0.25 reaches 0.65 exactly
        (0.66, {0, 1, 2}),
        (0.90, {0, 1, 2, 3}),
        (0.96, {0, 1, 2, 3, 4, 5}),
        (1.00, set(range(7))),
    ],
)
def test_top_p_keeps_the_smallest_set_reaching_p(p, expected):
    kept = support(LOGITS, top_p=p)
    assert kept == expected
    # Smallest: the set reaches p, and dropping its least likely token would not.
    mass = sum(PROBS[i].item() for i in kept)
    assert mass >= p - 1e-6
    assert mass - PROBS[max(kept)].item() < p - 1e-6 or len(kept) == 1


def test_top_p_applies_to_the_distribution_after_top_k():
    # After top-k=3 the renormalised probs are 0.5, 0.3125, 0.1875: 0.5 + 0.3125 reaches
    # p=0.8 with two tokens (on the unfiltered probs it would take three: 0.40+0.25+0.15).
    assert support(LOGITS, top_k=3, top_p=0.8) == {0, 1}
    assert support(LOGITS, top_k=3, top_p=0.85) == {0, 1, 2}


@pytest.mark.parametrize(
    "min_p, expected",
    [
        (0.0, set(range(7))),
        (0.04, set(range(7))),  # threshold 0.016: everything
        (0.2, {0, 1, 2, 3}),  # threshold 0.08
        (0.5, {0, 1}),  # threshold 0.20
        (0.7, {0}),  # threshold 0.28
        (1.0, {0}),
    ],
)
def test_min_p_is_relative_to_the_most_likely_token(min_p, expected):
    assert support(LOGITS, min_p=min_p) == expected


def test_min_p_scales_with_the_top_probability():
    # Same min_p on a flatter distribution keeps more tokens: the cut is min_p * max prob,
    # not an absolute probability.
    flat = torch.tensor([0.2, 0.18, 0.16, 0.16, 0.15, 0.15]).log()
    assert support(flat, min_p=0.5) == set(range(6))
    assert support(LOGITS, min_p=0.5) == {0, 1}


def test_temperature_is_applied_before_the_filters():
    # At temperature 2 the distribution flattens, so top-p = 0.65 needs more tokens.
    hot = torch.softmax(LOGITS / 2, dim=-1)
    cum = torch.cumsum(hot, dim=0)
    need = int((cum < 0.65).sum()) + 1
    assert support(LOGITS, temperature=2.0, top_p=0.65) == set(range(need))
    assert need > 2
    torch.testing.assert_close(filtered_probs(LOGITS, temperature=2.0), hot)


def test_filters_never_remove_the_most_likely_token():
    for kw in ({"top_k": 1}, {"top_p": 1e-9}, {"min_p": 1.0}, {"top_k": 1, "top_p": 0.01, "min_p": 1.0}):
        assert support(LOGITS, **kw) == {0}


def test_tiny_temperature_is_greedy_without_nans():
    probs = filtered_probs(torch.tensor([10.0, 9.0, 1.0]), temperature=1e-30)
    assert not torch.isnan(probs).any()
    assert probs.tolist() == [1.0, 0.0, 0.0]


# -- sampling ---------------------------------------------------------------------------


def assert_frequencies_match(logits: torch.Tensor, settings: SamplingSettings, n: int = 20_000) -> None:
    """Sampled counts within 5 binomial sigmas of the filtered distribution; zero outside it."""
    expected = torch.softmax(filter_logits(logits, settings), dim=-1)
    gen = make_generator(settings.seed)
    counts = torch.zeros_like(expected)
    for _ in range(n):
        counts[sample_next(logits, settings, gen)] += 1
    for i, p in enumerate(expected.tolist()):
        if p == 0:
            assert counts[i] == 0, f"token {i} is filtered out but was drawn {int(counts[i])} times"
            continue
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(counts[i].item() - n * p) <= 5 * sigma + 1, (i, counts[i].item(), n * p)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"temperature": 0.7},
        {"top_k": 3},
        {"top_p": 0.8},
        {"min_p": 0.2},
        {"temperature": 1.5, "top_k": 5, "top_p": 0.9, "min_p": 0.1},
    ],
)
def test_sampled_frequencies_match_the_filtered_distribution(kw):
    assert_frequencies_match(LOGITS, SamplingSettings(seed=7, **kw))


def test_greedy_is_argmax_whatever_the_filters():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = torch.randn(50, generator=g)
        for kw in ({}, {"top_k": 5}, {"top_p": 0.3}, {"min_p": 0.9}):
            s = SamplingSettings(temperature=0, **kw)
            assert sample_next(logits, s, make_generator(123)) == int(logits.argmax())


def _draw(seed: int, n: int = 200) -> list[int]:
    s = SamplingSettings(temperature=1.0, seed=seed)
    logits = torch.randn(100, generator=torch.Generator().manual_seed(5))
    gen = make_generator(s.seed)
    return [sample_next(logits, s, gen) for _ in range(n)]


def test_same_seed_gives_the_same_tokens():
    assert _draw(42) == _draw(42)
    assert _draw(42) != _draw(43)


def test_the_global_torch_seed_does_not_matter():
    torch.manual_seed(1)
    a = _draw(9)
    torch.manual_seed(2)
    assert _draw(9) == a


# -- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"temperature": -0.1},
        {"temperature": float("nan")},
        {"top_k": -1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"min_p": -0.1},
        {"min_p": 1.1},
        {"max_new_tokens": 0},
        {"max_new_tokens": MAX_NEW_TOKENS_CAP + 1},
    ],
)
def test_invalid_settings_are_refused(kw):
    with pytest.raises(ValueError):
        SamplingSettings(**kw)


def test_settings_round_trip_through_a_dict():
    s = SamplingSettings(temperature=0.5, top_k=3, top_p=0.9, min_p=0.05, max_new_tokens=7, seed=3)
    assert SamplingSettings(**s.as_dict()) == s


def test_a_single_possible_token_is_always_drawn_wherever_it_sits():
    gen = make_generator(0)
    s = SamplingSettings(temperature=1.0)
    for position in (0, 3, 7):
        logits = torch.full((8,), float("-inf"))
        logits[position] = 0.0
        assert {sample_next(logits, s, gen) for _ in range(50)} == {position}
