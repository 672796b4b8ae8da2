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


class GenStream:
    """One generation's state, advanced a token at a time: alone (`generate`) or, in a
    worker serving several sessions, together with other streams of the same run
    (`step_together`).

    ``feed`` says what the next forward needs, ``accept`` takes that forward's logits of the
    last position and returns the token event. The window over the text and the KV cache's
    refills are the same either way, so a stream picks the same tokens alone or batched.
    """

    def __init__(
        self,
        run: LoadedRun,
        prompt_ids: list[int],
        settings: SamplingSettings,
        *,
        use_cache: bool = True,
        alternatives: int = 5,
    ):
        if not prompt_ids:
            raise ValueError("the prompt must hold at least one token (bos)")
        self.run = run
        self.settings = settings
        self.alternatives = alternatives
        self.max_len = run.max_seq_len
        self.keep = max(1, self.max_len // 2)
        self.ids = [int(i) for i in prompt_ids]
        self.start = max(0, len(self.ids) - self.max_len)
        self.cached = use_cache and run.takes_cache_len
        self.generator = make_generator(settings.seed)
        self.eos = run.tokenizer.eos_id
        self.new: list[int] = []
        self.text = IncrementalText(run.tokenizer)
        self.pieces: dict[int, str] = {}  # the text of each id on its own, decoded once per generation
        self.cache_len = 0  # tokens of ids[start:] already in the model's KV cache
        self.reason = ""  # why it ended ("length", "eos", "cancelled"); "" while it goes on
        self.t0 = time.perf_counter()

    @property
    def finished(self) -> bool:
        return bool(self.reason)

    def piece(self, token_id: int) -> str:
        text_of = self.pieces.get(token_id)
        if text_of is None:
            text_of = self.pieces[token_id] = token_piece(self.run.tokenizer, token_id)
        return text_of

    def context(self) -> list[int]:
        """The window the next token is predicted from (slid by half the context when full)."""
        if len(self.ids) - self.start > self.max_len:
            self.start = len(self.ids) - self.keep
            self.cache_len = 0
        return self.ids[self.start :]

    def own_cache(self) -> None:
        """Make the model's KV cache this stream's: refilled from the window's start when
        another stream or a scoring forward of the same run used it since our last step."""
        if self.run.cache_owner is not self:
            self.cache_len = 0
            self.run.cache_owner = self

    def accept(self, logits: torch.Tensor) -> dict:
        """The token event for the next token drawn from ``logits`` (1-D, last position)."""
        logits = logits.float()
        token = sample_next(logits, self.settings, self.generator)
        probs = torch.softmax(logits, dim=-1)
        alt_probs, alt_ids = torch.topk(probs, min(self.alternatives, probs.shape[-1]))
        self.ids.append(token)
        self.new.append(token)
        event = {
            "id": token,
            "piece": self.piece(token),
            "prob": probs[token].item(),
            "alts": [(i, self.piece(i), p) for p, i in zip(alt_probs.tolist(), alt_ids.tolist(), strict=True)],
            "text": self.text.text(self.new),
        }
        if self.settings.stop_at_eos and self.eos is not None and token == int(self.eos):
            self.reason = "eos"
        elif len(self.new) >= self.settings.max_new_tokens:
            self.reason = "length"
        return event

    def step(self) -> dict:
        """One token on its own: the KV cache's new tokens, or the whole window recomputed.

        Every forward's output is checked as scoring checks it (`LoadedRun.forward`): a model
        wrong only for longer inputs must fail here, not stream noise.
        """
        run = self.run
        context = self.context()
        if self.cached:
            self.own_cache()
            x = torch.tensor([context[self.cache_len :]], dtype=torch.long, device=run.device)
            logits = run.forward(x, self.cache_len)[0, -1]
            self.cache_len = len(context)
        else:
            x = torch.tensor([context], dtype=torch.long, device=run.device)
            logits = run.forward(x)[0, -1]
        return self.accept(logits)

    def done_event(self) -> dict:
        return {
            "done": True,
            "reason": self.reason or "cancelled",
            "n_tokens": len(self.new),
            "used_cache": self.cached,
            "seconds": time.perf_counter() - self.t0,
            "ids": list(self.new),
        }


def step_together(streams: list[GenStream]) -> list[dict]:
    """One token for each of ``streams`` (same run, no KV cache) from ONE batched forward.

    Windows of different lengths are padded to the longest by repeating each one's
    first token after its end: in a causal model (every GPT of the contract) a position
    never sees the ones after it, so each stream's logits at its own last position are
    those it would get alone (to float rounding), and no pad id ever enters the model.
    """
    run = streams[0].run
    contexts = [s.context() for s in streams]
    width = max(map(len, contexts))
    rows = [c + [c[0]] * (width - len(c)) for c in contexts]
    x = torch.tensor(rows, dtype=torch.long, device=run.device)
    logits = run.forward(x)
    last = torch.tensor([len(c) - 1 for c in contexts], device=logits.device)
    picked = logits[torch.arange(len(streams), device=logits.device), last]
    return [s.accept(row) for s, row in zip(streams, picked, strict=True)]


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
    stream = GenStream(run, prompt_ids, settings, use_cache=use_cache, alternatives=alternatives)
    next_check = stream.t0  # when to ask should_stop again
    with torch.inference_mode():
        while not stream.finished and settings.max_new_tokens > 0:
            now = time.perf_counter()
            if now >= next_check:
                if should_stop():
                    stream.reason = "cancelled"
                    break
                next_check = now + STOP_CHECK_EVERY
            yield stream.step()
    yield stream.done_event()
