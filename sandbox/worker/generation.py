"""Autoregressive generation for one loaded run, as a stream of token events.

Runs inside the experiment's worker. When the model's forward takes ``cache_len`` (contract
fact 5) its KV cache is used: the context is fed once, then one token per step. Otherwise the
whole context is recomputed each step. Both paths use the same window over the text, so they
pick the same tokens: when the context outgrows ``max_seq_len`` the window slides forward by
half of it (re-filling the cache once per ``max_seq_len / 2`` tokens, not once per token).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import torch

from sandbox.playground.settings import SamplingSettings
from sandbox.worker.loaded import LoadedRun
from sandbox.worker.sampling import make_generator, sample_next

STOP_CHECK_EVERY = 0.02  # seconds between two calls of should_stop during a generation


def token_piece(tokenizer, token_id: int) -> str:
    """The text of one token on its own (a partial UTF-8 byte shows as U+FFFD)."""
    try:
        return tokenizer.decode([int(token_id)])
    except Exception:  # noqa: BLE001 — ids the tokenizer cannot decode alone, e.g. specials
        return ""


class IncrementalText:
    """The decoded text of a growing list of ids, without decoding all of them every step.

    Decoding the whole continuation after each token costs O(n) per token (O(n^2) for a
    generation). Instead the text is kept as an exact ``stable`` part, ``decode(ids[:anchor])``,
    refreshed with a full decode every ``every`` tokens, plus the tail after the anchor. The
    tail is decoded together with ``context`` tokens before it and the context's own text is
    cut off again, so that tokenizers whose pieces depend on their neighbours (a leading
    space dropped at the start, bytes of one character split across tokens) still join
    correctly. Should the context's text not be a prefix of the joint text, the whole list is
    decoded instead: the result always equals ``decode(ids)`` for byte-level and
    character-level tokenizers, and is exact at every anchor for any tokenizer.
    """

    def __init__(self, tokenizer, *, every: int = 32, context: int = 4):
        self.tokenizer = tokenizer
        self.every = every
        self.context = context
        self.anchor = 0  # ids[:anchor] decode to `stable` and end on a whole character
        self.stable = ""
        self.before = ""  # the text of the context tokens before the anchor

    def text(self, ids: list[int]) -> str:
        """``decode(ids)`` for the ids so far (``ids`` only ever grows)."""
        decode = self.tokenizer.decode
        if len(ids) - self.anchor >= self.every:
            full = decode(ids)
            # A trailing U+FFFD may be a character whose last bytes are still to come.
            if not full.endswith("\ufffd"):
                self.anchor, self.stable = len(ids), full
                self.before = decode(ids[max(0, self.anchor - self.context) : self.anchor])
            return full
        start = max(0, self.anchor - self.context)
        if start == self.anchor:
            return self.stable + decode(ids[self.anchor :])
        before = self.before
        joint = decode(ids[start:])
        if not joint.startswith(before):
            return decode(ids)
        return self.stable + joint[len(before) :]


def generate(
    run: LoadedRun,
    prompt_ids: list[int],
    settings: SamplingSettings,
    *,
    use_cache: bool = True,
    alternatives: int = 5,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[dict]:
    """Yield one event per new token, then a final ``{"done": True, ...}`` event.

    Token events: ``id``, ``piece``, ``prob`` (the model's probability of the token at
    temperature 1), ``alts`` (the ``alternatives`` most likely tokens with their
    probabilities) and ``text`` (the whole continuation so far, decoded at once so that
    multi-byte characters split across tokens come out right).

    ``should_stop`` is asked before the first token and then at most every
    `STOP_CHECK_EVERY` seconds, between tokens: in a worker it reads the request pipe,
    which costs as much as a small model's whole step if done for every token.
    """
    if not prompt_ids:
        raise ValueError("the prompt must hold at least one token (bos)")
    max_len = run.max_seq_len
    keep = max(1, max_len // 2)
    ids = list(prompt_ids)
    start = max(0, len(ids) - max_len)
    cached = use_cache and run.takes_cache_len
    generator = make_generator(settings.seed)
    eos = run.tokenizer.eos_id
    new: list[int] = []
    text = IncrementalText(run.tokenizer)
    pieces: dict[int, str] = {}  # the text of each id on its own, decoded once per generation

    def piece(token_id: int) -> str:
        text_of = pieces.get(token_id)
        if text_of is None:
            text_of = pieces[token_id] = token_piece(run.tokenizer, token_id)
        return text_of

    cache_len = 0  # tokens of ids[start:] already in the model's KV cache
    reason = "length"
    t0 = time.perf_counter()
    next_check = t0  # when to ask should_stop again
    with torch.inference_mode():
        for _ in range(settings.max_new_tokens):
            now = time.perf_counter()
            if now >= next_check:
                if should_stop():
                    reason = "cancelled"
                    break
                next_check = now + STOP_CHECK_EVERY
            if len(ids) - start > max_len:
                start = len(ids) - keep
                cache_len = 0
            context = ids[start:]
            # Every forward's output is checked as scoring checks it (`LoadedRun.forward`): a
            # model wrong only for longer inputs must fail here, not stream noise.
            if cached:
                fresh = context[cache_len:]
                x = torch.tensor([fresh], dtype=torch.long, device=run.device)
                logits = run.forward(x, cache_len)[0, -1].float()
                cache_len = len(context)
            else:
                x = torch.tensor([context], dtype=torch.long, device=run.device)
                logits = run.forward(x)[0, -1].float()
            token = sample_next(logits, settings, generator)
            probs = torch.softmax(logits, dim=-1)
            alt_probs, alt_ids = torch.topk(probs, min(alternatives, probs.shape[-1]))
            ids.append(token)
            new.append(token)
            yield {
                "id": token,
                "piece": piece(token),
                "prob": probs[token].item(),
                "alts": [(i, piece(i), p) for p, i in zip(alt_probs.tolist(), alt_ids.tolist(), strict=True)],
                "text": text.text(new),
            }
            if settings.stop_at_eos and eos is not None and token == int(eos):
                reason = "eos"
                break
    yield {
        "done": True,
        "reason": reason,
        "n_tokens": len(new),
        "used_cache": cached,
        "seconds": time.perf_counter() - t0,
        "ids": new,
    }
