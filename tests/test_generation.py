"""Generation: KV cache vs recompute, the sliding window, eos, cancel, and the events."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sandbox.playground.settings import SamplingSettings
from sandbox.settings import PROJECT_ROOT
from sandbox.worker import generation
from sandbox.worker.generation import IncrementalText, generate
from sandbox.worker.loaded import LoadedRun
from sandbox.zoo.discovery import find_experiment

VOCAB = 12
BOS, EOS = 10, 11
MAX_LEN = 16


class Letters:
    """Ids 0..9 are the letters a..j; bos and eos decode to nothing."""

    bos_id, eos_id, pad_id = BOS, EOS, 12

    def encode(self, text: str, bos: bool = True, eos: bool = False, pad=None) -> list[int]:
        return ([BOS] if bos else []) + [ord(c) - ord("a") for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(ord("a") + i) for i in ids if 0 <= i < 10)


class CachedMean(nn.Module):
    """Logits from a causal running mean of embeddings, with an optional KV-style cache.

    The output depends on the whole window (not just the last token), so a wrong window or a
    stale cache changes the tokens. Asserts the contract's length limit like real models.
    """

    def __init__(self, eos_bias: float = 0.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = nn.Parameter(torch.randn(VOCAB, 8, generator=g))
        self.head = nn.Parameter(torch.randn(8, VOCAB, generator=g) * 3)
        self.bias = nn.Parameter(torch.zeros(VOCAB))
        self.bias.data[EOS] = eos_bias
        self.cache = torch.zeros(MAX_LEN, 8)
        self.calls: list[int] = []

    def forward(self, input_ids: torch.Tensor, cache_len: int = 0):
        seq = input_ids.shape[1]
        assert cache_len + seq <= MAX_LEN, "window longer than max_seq_len"
        self.calls.append(seq)
        x = self.emb[input_ids[0]]
        self.cache[cache_len : cache_len + seq] = x
        total = self.cache[: cache_len + seq].cumsum(0)[cache_len:]
        count = torch.arange(cache_len + 1, cache_len + seq + 1).view(-1, 1)
        return ((total / count) @ self.head + self.bias).unsqueeze(0), None


def make_run(model: nn.Module | None = None, takes_cache_len: bool = True) -> LoadedRun:
    return LoadedRun(
        name="toy",
        model=model or CachedMean(),
        cfg=SimpleNamespace(max_seq_len=MAX_LEN),
        tokenizer=Letters(),
        device="cpu",
        stamp=(0, 0),
        takes_cache_len=takes_cache_len,
        embedding_rows=VOCAB,
    )


def run_all(run: LoadedRun, prompt: list[int], use_cache: bool = True, **kw) -> list[dict]:
    return list(generate(run, prompt, SamplingSettings(**kw), use_cache=use_cache))


@pytest.mark.parametrize("kw", [{"temperature": 0}, {"temperature": 1.0, "seed": 3, "top_k": 5}])
@pytest.mark.parametrize("prompt_len", [1, 5, MAX_LEN, MAX_LEN + 7])
def test_kv_cache_gives_the_same_tokens_as_recompute(kw, prompt_len):
    prompt = [BOS] + [i % 10 for i in range(prompt_len - 1)]
    settings = {"max_new_tokens": 50, "stop_at_eos": False, **kw}  # > MAX_LEN: the window slides
    cached_model = CachedMean()
    cached = run_all(make_run(cached_model), prompt, **settings)
    plain = run_all(make_run(CachedMean()), prompt, use_cache=False, **settings)
    assert cached[-1]["used_cache"] and not plain[-1]["used_cache"]
    assert cached[-1]["ids"] == plain[-1]["ids"]
    assert len(cached[-1]["ids"]) == 50
    # The cache really was used: most forward calls fed one token.
    assert sum(1 for n in cached_model.calls if n == 1) > 40


def test_without_cache_support_the_whole_window_is_recomputed():
    model = CachedMean()
    events = run_all(make_run(model, takes_cache_len=False), [BOS, 1, 2], temperature=0, max_new_tokens=5)
    assert not events[-1]["used_cache"]
    assert model.calls == [3, 4, 5, 6, 7]


def test_window_slides_by_half_the_context():
    model = CachedMean()
    run_all(make_run(model), [BOS], temperature=0, max_new_tokens=40, stop_at_eos=False)
    # Prefill of 1, then single tokens until the window is full, then a refill of half.
    refills = [n for n in model.calls[1:] if n > 1]
    assert refills and set(refills) == {MAX_LEN // 2}
    assert max(model.calls) <= MAX_LEN


def test_events_carry_the_token_its_probability_and_alternatives():
    run = make_run()
    events = run_all(run, [BOS, 0, 1], temperature=0.8, seed=1, max_new_tokens=80, stop_at_eos=False)
    tokens, done = events[:-1], events[-1]
    assert len(tokens) == 80 and done["done"] and done["reason"] == "length"
    assert done["n_tokens"] == 80 and done["ids"] == [e["id"] for e in tokens]
    for i, e in enumerate(tokens):
        assert e["text"] == Letters().decode(done["ids"][: i + 1])
        assert e["piece"] == Letters().decode([e["id"]])
        probs = [p for _, _, p in e["alts"]]
        assert len(e["alts"]) == 5 and probs == sorted(probs, reverse=True)
        assert 0 < e["prob"] <= probs[0] + 1e-7
        if e["id"] in [i for i, _, _ in e["alts"]]:
            alt = next(p for i, _, p in e["alts"] if i == e["id"])
            assert alt == pytest.approx(e["prob"])


class Bytes:
    """Byte-level: one id per UTF-8 byte, so characters are split across tokens."""

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


class Pieces:
    """SentencePiece-like: "▁" marks a word start and the very first space is dropped."""

    vocab = ["▁once", "▁upon", "▁a", "▁ti", "me", ",", "▁the", "re", "▁", "!"]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids).replace("▁", " ").removeprefix(" ")


class Reversed:
    """A decode whose pieces do not join left to right: the incremental path must notice."""

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(97 + i) for i in ids)[::-1]


@pytest.mark.parametrize(
    "tokenizer, ids",
    [
        (Bytes(), list("héllo wörld, 漢字 and 😀 again: ñ!".encode()) * 3),
        (Pieces(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4] * 4),
        (Reversed(), [i % 26 for i in range(60)]),
    ],
)
def test_incremental_text_equals_decoding_everything(tokenizer, ids):
    text = IncrementalText(tokenizer, every=5, context=2)
    for n in range(1, len(ids) + 1):
        assert text.text(ids[:n]) == tokenizer.decode(ids[:n]), n
    assert text.anchor > 0 or isinstance(tokenizer, Reversed)


def test_greedy_token_is_the_top_alternative():
    events = run_all(make_run(), [BOS, 3], temperature=0, max_new_tokens=8, stop_at_eos=False)
    for e in events[:-1]:
        assert e["alts"][0][0] == e["id"]


def test_generation_stops_at_eos_unless_told_not_to():
    eos_model = CachedMean(eos_bias=100.0)  # eos is always the most likely token
    events = run_all(make_run(eos_model), [BOS], temperature=0, max_new_tokens=10)
    assert events[-1]["reason"] == "eos" and events[-1]["ids"] == [EOS]
    assert events[0]["text"] == ""  # eos decodes to nothing
    events = run_all(make_run(CachedMean(eos_bias=100.0)), [BOS], temperature=0, max_new_tokens=10, stop_at_eos=False)
    assert events[-1]["reason"] == "length" and events[-1]["n_tokens"] == 10


def test_should_stop_cancels_between_tokens(monkeypatch):
    monkeypatch.setattr(generation, "STOP_CHECK_EVERY", 0.0)  # ask before every token
    seen = []
    stream = generate(
        make_run(),
        [BOS],
        SamplingSettings(max_new_tokens=100, stop_at_eos=False),
        should_stop=lambda: len(seen) >= 3,
    )
    for event in stream:
        seen.append(event)
    assert seen[-1]["reason"] == "cancelled" and seen[-1]["n_tokens"] == 3


def test_should_stop_is_asked_first_and_then_only_now_and_then(monkeypatch):
    monkeypatch.setattr(generation, "STOP_CHECK_EVERY", 1e9)  # no second check in this test
    calls = []

    def cancelled_at_once() -> bool:
        calls.append(1)
        return True

    events = run_all_with_stop(cancelled_at_once)
    assert events[-1]["reason"] == "cancelled" and events[-1]["n_tokens"] == 0
    calls.clear()
    events = run_all_with_stop(lambda: bool(calls.append(1)))  # never stops
    assert events[-1]["n_tokens"] == 200 and len(calls) == 1


def run_all_with_stop(should_stop) -> list[dict]:
    settings = SamplingSettings(max_new_tokens=200, stop_at_eos=False)
    return list(generate(make_run(), [BOS], settings, should_stop=should_stop))


def test_an_empty_prompt_is_refused():
    with pytest.raises(ValueError, match="at least one token"):
        run_all(make_run(), [])


# -- the shipped KV-cache run, through its worker ---------------------------------------

GQA = PROJECT_ROOT / "models" / "kv_variant" / "trained" / "gqa_atto" / "model.pth"


@pytest.mark.skipif(not GQA.is_file(), reason="models/kv_variant/trained/gqa_atto is not trained yet")
def test_shipped_kv_run_gives_the_same_greedy_tokens_with_and_without_cache(pool):
    client = pool.client(find_experiment(PROJECT_ROOT / "models", "kv_variant"))
    info = client.request("info", run="gqa_atto")
    assert info["takes_cache_len"]
    # A prompt that nearly fills the context: the window slides (and the cache is refilled)
    # after 20 of the 40 new tokens, without paying for a context's worth of recomputes.
    text = "Once upon a time, a little fox found a red ball in the garden. " * 40
    prompt = client.request("encode", run="gqa_atto", texts=[text])[0][: info["max_seq_len"] - 20]
    settings = {"temperature": 0, "max_new_tokens": 40, "stop_at_eos": False}
    cached = client.request("generate", run="gqa_atto", prompt_ids=prompt, settings=settings)
    plain = client.request("generate", run="gqa_atto", prompt_ids=prompt, settings=settings, use_cache=False)
    assert cached[-1]["used_cache"] and not plain[-1]["used_cache"]
    assert cached[-1]["ids"] == plain[-1]["ids"]
    assert cached[-1]["n_tokens"] == settings["max_new_tokens"]
