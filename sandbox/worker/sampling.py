"""Next-token sampling: temperature, top-k, top-p, min-p, seeded.

Pure torch on one distribution at a time. The filters run in the order most libraries use
(temperature, then top-k, top-p, min-p) and never remove the most likely token, so the
sampling distribution is never empty.
"""

from __future__ import annotations

import torch

from sandbox.playground.settings import SamplingSettings

TOP_P_SLACK = 1e-6  # rounding allowance when comparing float32 cumulative mass with top_p


def filter_logits(logits: torch.Tensor, s: SamplingSettings) -> torch.Tensor:
    """Temperature-scaled logits (1-D) with every filtered-out token set to -inf.

    The result is shifted so that its largest value is 0 (softmax does not change).
    """
    logits = logits.float()
    if s.temperature > 0:
        # Shift the maximum to 0 first: a tiny temperature then sends the other logits to
        # -inf instead of overflowing them all to +inf (softmax of inf - inf is NaN).
        logits = (logits - logits.max()) / s.temperature
    vocab = logits.shape[-1]
    keep = torch.ones(vocab, dtype=torch.bool, device=logits.device)
    if 0 < s.top_k < vocab:
        # Exactly k tokens, by index (a threshold on the k-th value would keep ties too).
        keep = torch.zeros_like(keep)
        keep[torch.topk(logits, s.top_k).indices] = True
    if s.top_p >= 1.0 and s.min_p <= 0.0:
        return logits.masked_fill(~keep, float("-inf"))  # no probabilities needed
    probs = torch.softmax(logits.masked_fill(~keep, float("-inf")), dim=-1)
    if s.top_p < 1.0:
        keep &= _nucleus(probs, s.top_p)
    if s.min_p > 0.0:
        keep &= probs >= s.min_p * probs.max()
    return logits.masked_fill(~keep, float("-inf"))


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask of the smallest set of most likely tokens whose probability reaches ``top_p``.

    Only the head of the descending order matters, so it is taken with `torch.topk` on a
    few hundred candidates (widened until their mass reaches p): a full sort of a vocabulary
    of thousands costs ~10x more, once per token.
    """
    vocab = probs.shape[-1]
    k = min(vocab, 256)
    while True:
        head, order = torch.topk(probs, k)  # descending
        if k == vocab or float(head.sum()) >= top_p - TOP_P_SLACK:
            break
        k = min(vocab, k * 4)
    mass_before = torch.cumsum(head, dim=-1) - head
    # A token stays while the mass of the more likely tokens is still below p. The float32
    # sum is only good to ~1e-7: a set whose mass reaches p exactly must not take one more
    # token because its sum came out as p - 1e-8.
    keep_head = mass_before < top_p - TOP_P_SLACK
    keep_head[0] = True
    nucleus = torch.zeros(vocab, dtype=torch.bool, device=probs.device)
    nucleus[order[keep_head]] = True
    return nucleus


def sample_next(logits: torch.Tensor, s: SamplingSettings, generator: torch.Generator) -> int:
    """One token id from 1-D ``logits``: argmax when temperature is 0, else a seeded draw.

    Drawing happens on the CPU with ``generator``, so the same seed gives the same tokens
    whatever device computed the logits.
    """
    if s.temperature == 0:
        return int(torch.argmax(logits))
    filtered = filter_logits(logits, s).cpu()
    # Exponential race over the tokens the filters kept: token i wins argmax(p_i / E_i) with
    # E_i ~ Exp(1) with probability exactly p_i. Drawing only for the kept tokens (often a
    # few dozen) is what makes it cheap: torch.multinomial draws one number per token of
    # the whole vocabulary. (One uniform and an inverse CDF would be cheaper still, but then
    # a seed's first number fixes the quantile of every first token: seed 0 starts at 0.97,
    # among the highest ids, where the special tokens live.)
    kept = torch.isfinite(filtered).nonzero().flatten()
    probs = torch.softmax(filtered[kept], dim=-1)
    race = torch.empty_like(probs).exponential_(generator=generator)
    return int(kept[torch.argmax(probs / race)])


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded for one generation."""
    return torch.Generator(device="cpu").manual_seed(int(seed))
