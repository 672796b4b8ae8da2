"""Bad input for the Playground: empty, too long, unrepresentable characters, too many tokens."""

from __future__ import annotations

from sandbox.playground.prompts import (
    PreparedPrompt,
    build_prompt,
    cap_max_new_tokens,
    cut_to_context,
    prepare_prompt,
    unrepresentable,
)
from sandbox.playground.settings import MAX_NEW_TOKENS_CAP
from sandbox.zoo.discovery import find_experiment


def test_max_new_tokens_is_capped_with_a_notice():
    assert cap_max_new_tokens(50) == (50, None)
    assert cap_max_new_tokens(MAX_NEW_TOKENS_CAP) == (MAX_NEW_TOKENS_CAP, None)
    n, notice = cap_max_new_tokens(MAX_NEW_TOKENS_CAP * 10)
    assert n == MAX_NEW_TOKENS_CAP and notice.level == "warning" and str(MAX_NEW_TOKENS_CAP) in notice.text
    n, notice = cap_max_new_tokens(0)
    assert n == 1 and notice is not None


def test_cut_to_context_keeps_the_end():
    assert cut_to_context([1, 2, 3], 5) == ([1, 2, 3], 0)
    assert cut_to_context([1, 2, 3, 4, 5, 6, 7], 4) == ([4, 5, 6, 7], 3)


def test_unrepresentable_characters_same_length():
    # A lossy tokenizer that turns characters outside its alphabet into spaces.
    assert unrepresentable("Zoë — ok", "Zo    ok") == ["ë", "—"]
    assert unrepresentable("plain", "plain") == []


def test_unrepresentable_characters_different_length():
    # A tokenizer that drops what it cannot encode.
    assert unrepresentable("a😀b€c", "abc") == ["😀", "€"]
    assert unrepresentable("abc", "") == ["a", "b", "c"]


def test_empty_prompt_starts_from_bos():
    p = build_prompt("", [7], "", bos_id=7, max_seq_len=16, pieces=[""])
    assert p.ids == [7] and p.dropped == 0
    assert any("bos" in n.text for n in p.notices)
    # A tokenizer that returns nothing for an empty text still gets bos.
    p = build_prompt("", [], "", bos_id=7, max_seq_len=16, pieces=[])
    assert p.ids == [7] and p.pieces == [""]


def test_long_prompt_is_cut_from_the_left_with_a_notice():
    ids = [99] + list(range(20))
    p = build_prompt("x" * 20, ids, "x" * 20, bos_id=99, max_seq_len=8, pieces=[str(i) for i in ids])
    assert p.ids == ids[-8:] and p.dropped == len(ids) - 8 and p.n_tokens == len(ids)
    assert p.pieces == [str(i) for i in ids[-8:]]
    cut = [n for n in p.notices if "cut" in n.text]
    assert len(cut) == 1 and cut[0].level == "warning" and "context of 8" in cut[0].text


def test_prepared_prompt_round_trips_through_a_dict():
    p = build_prompt("Hé", [5, 1, 2], "H ", bos_id=5, max_seq_len=8, pieces=["", "H", " "])
    assert PreparedPrompt.from_dict(p.as_dict()) == p
    assert p.bad_chars == ["é"] and p.notices[0].level == "warning"


def test_prepare_prompt_asks_the_worker(toy_models, pool):
    client = pool.client(find_experiment(toy_models, "toy_a"))  # lowercase alphabet, context 64
    p = prepare_prompt(client, "run1", "Hello, World!")
    assert p.ids[0] == 33 and len(p.ids) == 14  # bos + 13 characters
    assert p.bad_chars == ["H", "W"]
    assert p.roundtrip == " ello,  orld!"
    assert p.pieces[1:3] == [" ", "e"]
    empty = prepare_prompt(client, "run1", "")
    assert empty.ids == [33] and empty.notices[0].level == "info"
    long = prepare_prompt(client, "run1", "ab" * 50)
    assert len(long.ids) == 64 and long.dropped == 101 - 64 and long.ids[0] != 33
