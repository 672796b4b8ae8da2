"""The Arena page's live battle: columns by position, names hidden in errors, the battle to vote on."""

from __future__ import annotations

import pytest

from sandbox.arena.battle import BattleError, Matchup
from sandbox.arena.live import LiveBattle, battle_settings, hide_names, new_matchup, reveal_sentence
from sandbox.errors import WorkerError
from sandbox.playground.columns import ColumnState
from sandbox.playground.multistream import Ended, Failed, Message
from sandbox.playground.settings import SamplingSettings

SETTINGS = SamplingSettings(max_new_tokens=5, seed=7)
PROMPT = {"ids": [1], "pieces": ["Once"], "n_tokens": 1, "dropped": 0, "bad_chars": [], "roundtrip": "Once", "notices": []}


def live_of(order: str = "ba") -> LiveBattle:
    matchup = Matchup("exp_one/run-a", "exp_two/run-b", order, 123, "Once", SETTINGS)
    columns = {p: ColumnState(p, SETTINGS, started_at=0.0) for p in ("A", "B")}
    return LiveBattle(matchup, ("fp-a", "fp-b"), columns)


def feed(live: LiveBattle, position: str, text: str) -> None:
    for n, item in enumerate([{"info": {}}, {"prompt": PROMPT}, {"id": 5, "text": text},
                              {"done": True, "reason": "length", "n_tokens": 1, "seconds": 0.1}]):  # fmt: skip
        live.apply(Message(position, item, float(n)))
    live.apply(Message(position, Ended(stopped=False), 9.0))


def test_the_battle_keeps_what_each_position_wrote():
    live = live_of("ba")  # run_b is shown at A
    feed(live, "A", "from the left")
    feed(live, "B", "from the right")
    live.stop()
    battle = live.battle()
    assert (battle.record.text_b, battle.record.text_a) == ("from the left", "from the right")
    assert (battle.record.fingerprint_a, battle.record.fingerprint_b) == ("fp-a", "fp-b")
    assert battle.shown().text_a == "from the left" and not battle.voted


def test_a_failed_side_is_told_without_any_run_name():
    live = live_of("ab")
    feed(live, "A", "fine")
    live.apply(Message("B", Failed(WorkerError("exp_two/run-b: weights of run-b in exp_two are broken")), 1.0))
    live.stop()
    with pytest.raises(BattleError) as caught:
        live.battle()
    sentence = str(caught.value)
    assert sentence.startswith("Story B could not be generated: the run at B: weights of the run at B in the run at B")
    assert not any(name in sentence for name in ("exp_one", "exp_two", "run-a", "run-b"))


def test_an_interrupted_battle_cannot_be_voted_on():
    live = live_of()
    feed(live, "A", "only one side")
    live.stop()
    assert live.columns["B"].status == "stopped" and not live.complete
    with pytest.raises(BattleError, match="interrupted"):
        live.battle()


def test_hide_names_replaces_whole_names_only():
    matchup = Matchup("tiny/run1", "tiny/run10", "ab", 1, "p", SETTINGS)
    assert hide_names("tiny/run10 and run1, not run100", matchup) == "the run at B and the run at A, not run100"


def test_fresh_seeds_come_from_the_draw_and_stay_in_range():
    assert battle_settings(SETTINGS, 2**40 + 5, fresh_seed=False) is SETTINGS
    fresh = battle_settings(SETTINGS, 2**40 + 5, fresh_seed=True)
    assert fresh.seed != SETTINGS.seed and 0 <= fresh.seed <= 2**31 - 1
    assert fresh.temperature == SETTINGS.temperature
    one = new_matchup(["x/a", "y/b", "z/c"], ["p1", "p2"], SETTINGS)
    assert one.settings.seed == one.draw_seed % 2**31 and one.prompt in ("p1", "p2")


def test_the_reveal_sentence():
    from sandbox.arena.battle import Reveal

    assert reveal_sentence(Reveal("x/a", "y/b", "B", "y/b")) == "A was x/a, B was y/b. You chose B: y/b wins this battle."
    assert reveal_sentence(Reveal("x/a", "y/b", "both_bad", None)).endswith("You chose both bad: Neither run wins this battle.")
