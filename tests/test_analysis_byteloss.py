"""Per-byte losses across tokenizers (sandbox.evaluation.bytelosses), who wins (sandbox.analysis.wins),
where runs differ (sandbox.analysis.corpusdiff)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sandbox.analysis import corpusdiff
from sandbox.analysis import wins as winsmod
from sandbox.evaluation import bytelosses
from sandbox.evaluation.details import decoded_prefix_ends

LN2 = math.log(2.0)


def byte_ends_of(tokens: list[bytes]) -> tuple[str, np.ndarray]:
    """What the app does with a worker's answers: decode every prefix of the tokens (a
    partial character decodes to U+FFFD), cut the prefixes back to whole characters
    (`sandbox.evaluation.decoded_prefix_ends`), then count them in bytes."""
    decoded = b"".join(tokens).decode("utf-8", errors="replace")
    prefixes = [b"".join(tokens[: i + 1]).decode("utf-8", errors="replace") for i in range(len(tokens))]
    return decoded, bytelosses.char_ends_to_byte_ends(decoded, decoded_prefix_ends(prefixes, decoded))


def test_byte_tokenizer_spreads_a_character_over_the_tokens_that_make_it():
    text = "naïve ☕ 😀!"
    raw = text.encode("utf-8")
    tokens = [raw[i : i + 1] for i in range(len(raw))]
    decoded, ends = byte_ends_of(tokens)
    assert decoded == text
    nll = np.random.default_rng(0).uniform(0.1, 5.0, len(tokens))
    values = bytelosses.per_byte_losses(text, nll, ends)
    assert values.size == len(raw)
    assert values.sum() == pytest.approx(nll.sum(), rel=1e-12)
    # ASCII bytes keep their own token's loss.
    assert values[0] == pytest.approx(nll[0])
    # The emoji's four byte tokens: its bytes share their total evenly.
    at = text.index("😀")
    start = len(text[:at].encode("utf-8"))
    np.testing.assert_allclose(values[start : start + 4], nll[start : start + 4].sum() / 4)
    # "ï" is two bytes: the first byte alone completes no character, so its loss joins the second.
    start = 2  # after "na"
    np.testing.assert_allclose(values[start : start + 2], nll[start : start + 2].sum() / 2)


def test_bpe_like_tokens_spread_over_their_bytes_and_a_split_character_joins_its_completer():
    text = "héllo wörld"
    # Byte-level BPE pieces: "h" + first byte of "é"; the rest; " w" + first byte of "ö"; ...
    tokens = [b"h\xc3", b"\xa9llo", b" w\xc3", b"\xb6", b"rld"]
    decoded, ends = byte_ends_of(tokens)
    assert decoded == text
    assert ends.tolist() == [1, 6, 8, 10, 13]
    nll = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    values = bytelosses.per_byte_losses(text, nll, ends)
    expected = [1.0] + [2.0 / 5] * 5 + [3.0 / 2] * 2 + [4.0 / 2] * 2 + [5.0 / 3] * 3
    np.testing.assert_allclose(values, expected)
    assert values.sum() == pytest.approx(15.0)
    # A token that is only the first byte of a character adds none: it shares with the next.
    decoded, ends = byte_ends_of([b"\xc3", b"\xa9t"])
    assert decoded == "ét" and ends.tolist() == [0, 3]
    np.testing.assert_allclose(bytelosses.per_byte_losses("ét", [1.0, 2.0], ends), [1.0, 1.0, 1.0])


def test_lossy_tokenizer_losses_are_carried_onto_the_original_bytes():
    # Characters outside an ASCII alphabet become spaces, one space each.
    text = "Grüße ☕ ok"
    decoded = "".join(c if c.isascii() else " " for c in text)
    tokens = [c.encode() for c in decoded]
    _, ends = byte_ends_of(tokens)
    nll = np.arange(1.0, len(tokens) + 1)
    values = bytelosses.per_byte_losses(text, nll, ends, decoded=decoded)
    raw = text.encode()
    assert values.size == len(raw)
    assert np.nansum(values) == pytest.approx(nll.sum())
    assert not np.isnan(values).any()  # every byte was replaced, none dropped
    # Unchanged characters keep their token's loss.
    assert values[0] == 1.0 and values[1] == 2.0 and values[-1] == nll[-1] and values[-2] == nll[-2]
    # "üß" (4 bytes) were two spaces: the two tokens' loss spread over the four bytes.
    np.testing.assert_allclose(values[2:6], (nll[2] + nll[3]) / 4)


def test_dropped_and_inserted_characters_keep_the_total():
    # The tokenizer dropped "☕" entirely: its bytes have no loss (NaN), the total is kept.
    _, ends = byte_ends_of([b"a", b"b"])
    values = bytelosses.per_byte_losses("a☕b", [1.0, 2.0], ends, decoded="ab")
    assert values[0] == 1.0 and values[-1] == 2.0 and np.isnan(values[1:4]).all()
    assert np.nansum(values) == 3.0
    # The decoding added a character: its loss goes to the byte before it.
    _, ends = byte_ends_of([b"a", b"?", b"b"])
    values = bytelosses.per_byte_losses("ab", [1.0, 2.0, 3.0], ends, decoded="a?b")
    np.testing.assert_allclose(values, [3.0, 3.0])


def test_bytes_to_chars_sums_each_characters_bytes():
    text = "aé☕"
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_allclose(bytelosses.bytes_to_chars(text, values), [1.0, 5.0, 15.0])
    with pytest.raises(ValueError, match="6 bytes"):
        bytelosses.bytes_to_chars(text, values[:5])


def test_pack_round_trips_float32_and_refuses_garbage():
    values = np.array([0.5, np.nan, 3.25, 1e-3])
    packed = bytelosses.pack(values)
    assert isinstance(packed, str) and packed.isascii()
    back = bytelosses.unpack(packed)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, values.astype(np.float32), equal_nan=True)
    # Compact: a long run of similar values compresses well below 4 bytes each.
    assert len(bytelosses.pack(np.full(10_000, 1.5))) < 1000
    with pytest.raises(ValueError, match="packed"):
        bytelosses.unpack("not base64 at all!")


def test_who_wins_on_a_constructed_case():
    per_run = {
        "x": np.array([1.0, 2.0, 3.0, 1.0, np.nan, 5.0]),
        "y": np.array([2.0, 1.0, 3.0, 1.0, 1.0, 4.0]),
        "z": np.array([3.0, 3.0, 0.5, 2.0, 1.0, 4.0]),
    }
    wins = winsmod.who_wins(per_run)
    # x best, y best, z best, x = y tie, x has no value, y = z tie.
    assert wins.winner.tolist() == [0, 1, 2, -1, -1, -1]
    assert wins.counted == 5
    assert wins.share == pytest.approx({"x": 0.2, "y": 0.2, "z": 0.2})
    assert wins.tie_share == pytest.approx(0.4)
    with pytest.raises(ValueError, match="same text"):
        winsmod.who_wins({"x": np.zeros(3), "y": np.zeros(4)})


def test_difference_to_reference_is_in_bits_and_signed():
    per_run = {"ref": np.array([1.0, 2.0, 3.0]), "a": np.array([1.0, 1.0, np.nan]), "b": np.array([2.0, 2.0, 3.0])}
    diff = winsmod.difference_to_reference(per_run, "ref")
    assert list(diff) == ["a", "b"]
    np.testing.assert_allclose(diff["a"], [0.0, -1.0 / LN2, np.nan])
    np.testing.assert_allclose(diff["b"], [1.0 / LN2, 0.0, 0.0])
    with pytest.raises(ValueError, match="reference"):
        winsmod.difference_to_reference(per_run, "nope")


def corpus(seed: int = 0) -> tuple[list[str], dict[str, list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    words = ["the", "model", "naïve", "loss", "token", "über", "data", "☕", "run"]
    docs = [" ".join(rng.choice(words, 260)) for _ in range(5)]
    a, b = [], []
    for text in docs:
        n = len(text.encode())
        base = rng.uniform(0.5, 1.5, n)
        a.append(base)
        b.append(base + rng.normal(0.0, 0.05, n))
    b[3][500:700] += 1.0  # the second run is much worse on one passage of document 3
    return docs, {"first": a, "second": b}


def test_rank_passages_finds_the_passage_where_one_run_is_worse():
    docs, losses = corpus()
    ranking = corpusdiff.rank_passages(docs, losses, window_bytes=128, top=5)
    assert ranking.first == "first" and ranking.second == "second"
    top = ranking.passages.iloc[0]
    assert top["doc"] == 3
    assert 500 <= top["byte_start"] and top["byte_end"] <= 700
    assert top["diff"] == pytest.approx(1.0 / LN2, abs=0.05)
    # The passage's text is whole characters covering its bytes.
    raw = docs[3].encode()
    assert top["text"] == docs[3][top["char_start"] : top["char_end"]]
    assert raw[top["byte_start"] : top["byte_end"]].decode("utf-8", errors="ignore") in top["text"]
    # Passages of one document never overlap.
    for _, rows in ranking.passages.groupby("doc"):
        spans = sorted(zip(rows["byte_start"], rows["byte_end"], strict=True))
        assert all(e0 <= s1 for (_, e0), (s1, _) in zip(spans, spans[1:], strict=False))
    # Documents: document 3 first, with its largest window difference.
    docs_table = ranking.documents
    assert docs_table.iloc[0]["doc"] == 3
    assert docs_table.iloc[0]["largest"] == pytest.approx(1.0 / LN2, abs=0.05)
    n3 = len(raw)
    assert docs_table.iloc[0]["diff"] == pytest.approx(200 / n3 / LN2, abs=0.02)
    assert docs_table.iloc[0]["bpb_first"] == pytest.approx(losses["first"][3].sum() / LN2 / n3)
    # Asked where the first run is worse, that passage is not among the answers.
    other = corpusdiff.rank_passages(docs, losses, window_bytes=128, top=5, order="first_worse")
    assert other.passages["diff"].max() < 0.1
    assert ranking.to_dict()["passages"][0]["doc"] == 3


def test_rank_passages_checks_its_input():
    docs, losses = corpus()
    with pytest.raises(ValueError, match="bytes"):
        corpusdiff.rank_passages(docs, {"a": losses["first"], "b": [v[:-1] for v in losses["second"]]})
    with pytest.raises(ValueError, match="two runs"):
        corpusdiff.rank_passages(docs, {"a": losses["first"]})
    with pytest.raises(ValueError, match="order"):
        corpusdiff.rank_passages(docs, losses, order="sideways")


def test_rank_passages_across_two_tokenizers_on_the_same_text():
    # Run a cuts the text into bytes, run b into two-character pieces; b is bad on "ZZZZ".
    text = "abcdefgh" * 8 + "ZZZZZZZZ" + "abcdefgh" * 8
    byte_tokens = [text[i].encode() for i in range(len(text))]
    pair_tokens = [text[i : i + 2].encode() for i in range(0, len(text), 2)]
    _, ends_a = byte_ends_of(byte_tokens)
    _, ends_b = byte_ends_of(pair_tokens)
    nll_a = np.full(len(byte_tokens), 1.0)
    nll_b = np.full(len(pair_tokens), 2.0)
    nll_b[[i for i, p in enumerate(pair_tokens) if p == b"ZZ"]] = 10.0
    a = bytelosses.per_byte_losses(text, nll_a, ends_a)
    b = bytelosses.per_byte_losses(text, nll_b, ends_b)
    assert a.sum() == pytest.approx(nll_a.sum()) and b.sum() == pytest.approx(nll_b.sum())
    ranking = corpusdiff.rank_passages([text], {"a": [a], "b": [b]}, window_bytes=8, top=1)
    assert ranking.passages.iloc[0]["text"] == "ZZZZZZZZ"


def test_word_stats_names_win_punctuation_loses():
    text = "Yesterday Alice met Bob in Paris, and they talked. Then Alice left in 1999!"
    raw = text.encode()
    a = np.ones(len(raw))
    b = np.ones(len(raw))
    for name in ("Alice", "Bob", "Paris"):
        start = 0
        while (at := text.find(name, start)) >= 0:
            b[at : at + len(name)] -= 0.5  # ASCII text: character index = byte index
            start = at + 1
    for i, c in enumerate(text):
        if c in ",.!":
            b[i] += 0.5
    b[text.index("1999") : text.index("1999") + 4] += 0.25
    stats = corpusdiff.word_stats(text, a, b)
    classes = stats.classes.set_index("class")
    assert classes.loc["names", "count"] == 4 and classes.loc["names", "share_better"] == 1.0
    assert classes.loc["punctuation", "count"] == 3 and classes.loc["punctuation", "share_worse"] == 1.0
    assert classes.loc["digits", "count"] == 1 and classes.loc["digits", "worse"] == 1
    # Sentence-initial capitals are not names ("Yesterday", "Then").
    assert classes.loc["other", "count"] == 9 and classes.loc["other", "better"] == 0
    words = stats.words.set_index("word")
    assert words.loc["Alice", "count"] == 2 and words.loc["Alice", "diff_bpb"] == pytest.approx(-0.5 / LN2)
    assert words.loc["then", "class"] == "other"
    assert list(stats.most_often(True, min_count=2)["word"]) == ["Alice", "in"]
    sentence = corpusdiff.word_sentence(stats, "base", "gqa", min_count=1)
    assert "gqa wins most often on names (100% of 4)" in sentence
    assert "loses most often on punctuation (100% of 3)" in sentence


def test_word_stats_over_several_documents_skip_dropped_bytes():
    texts = ["Hello there.", "a ☕ b"]
    a = [np.ones(12), np.array([1.0, 1.0, np.nan, np.nan, np.nan, 1.0, 1.0])]
    b = [np.zeros(12), np.zeros(7)]
    stats = corpusdiff.word_stats(texts, a, b)
    assert "☕" not in set(stats.words["word"])  # its bytes have no loss in run a
    assert stats.classes["better"].sum() == stats.classes["count"].sum() == 5


def test_word_stats_to_dict_is_json():
    import json

    stats = corpusdiff.word_stats("Then Alice saw Alice. Alice!", np.ones(28), np.zeros(28))
    data = json.loads(json.dumps(stats.to_dict(min_count=2)))
    assert [w["word"] for w in data["most_often_better"]] == ["Alice"]
    assert {c["class"] for c in data["classes"]} == {"names", "other", "punctuation"}


def test_token_of_chars_names_the_token_that_completes_each_character():
    decoded, ends = byte_ends_of([b"h\xc3", b"\xa9llo", b" w\xc3", b"\xb6", b"rld"])
    assert bytelosses.token_of_chars(decoded, ends).tolist() == [0, 1, 1, 1, 1, 2, 2, 3, 4, 4, 4]
    decoded, ends = byte_ends_of([b"\xc3", b"\xa9t"])
    assert bytelosses.token_of_chars(decoded, ends).tolist() == [1, 1]
    assert bytelosses.token_of_chars("abc", [1, 2]).tolist() == [0, 1, -1]
