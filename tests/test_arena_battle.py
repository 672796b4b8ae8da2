"""Arena battles: drawing runs and positions, what is shown, reveal after the vote, generation."""

from __future__ import annotations

import pytest
import toyzoo

from sandbox.arena.battle import (
    OPENINGS_SOURCE,
    Battle,
    BattleError,
    Matchup,
    NotRevealed,
    draw_matchup,
    first_sentences,
    new_rater_id,
    parse_prompts,
    play,
    read_prompt_file,
    story_openings,
)
from sandbox.arena.store import ArenaStore, StoreError
from sandbox.playground.columns import column_events
from sandbox.playground.settings import SamplingSettings
from sandbox.worker.pool import WorkerPool
from sandbox.zoo.discovery import find_experiment

POOL = ["exp/one", "exp/two", "other/three", "other/four"]
SETTINGS = SamplingSettings(temperature=0.8, top_k=10, max_new_tokens=12, seed=5)


def make(matchup: Matchup) -> Battle:
    # What position A and position B wrote, as a page or `play` would pass them.
    return Battle.from_texts(matchup, f"wrote {matchup.run_at('A')}", f"wrote {matchup.run_at('B')}", ("fa", "fb"))


def test_positions_are_random_seeded_and_balanced():
    matchups = [draw_matchup(POOL, "Once", SETTINGS, draw_seed=s) for s in range(200)]
    orders = [m.shown_order for m in matchups]
    assert 60 < orders.count("ab") < 140  # both orders occur, about half each
    at_a = {m.run_at("A") for m in matchups}
    assert at_a == set(POOL)  # every run is shown on the left sometimes
    assert all(m.run_a != m.run_b and {m.run_a, m.run_b} <= set(POOL) for m in matchups)
    # The same draw seed sets up the same battle; the seed is what the store records.
    again = draw_matchup(POOL, "Once", SETTINGS, draw_seed=17)
    assert again == draw_matchup(list(reversed(POOL)), "Once", SETTINGS, draw_seed=17)
    assert make(again).record.draw_seed == 17
    assert draw_matchup(POOL, "Once", SETTINGS).draw_seed != draw_matchup(POOL, "Once", SETTINGS).draw_seed


def test_picked_runs_prompt_lists_and_bad_pools():
    picked = [draw_matchup(POOL, "x", SETTINGS, picked=("other/four", "exp/one"), draw_seed=s) for s in range(40)]
    assert all((m.run_a, m.run_b) == ("other/four", "exp/one") for m in picked)
    assert {m.shown_order for m in picked} == {"ab", "ba"}  # positions random for picked runs too
    prompts = ["first", "second", "third"]
    drawn = [draw_matchup(POOL, prompts, SETTINGS, draw_seed=s) for s in range(30)]
    assert {m.prompt for m in drawn} == set(prompts) and drawn[0].source == "prompt list"
    assert drawn[3] == draw_matchup(POOL, prompts, SETTINGS, draw_seed=3)
    with pytest.raises(ValueError, match="at least two runs"):
        draw_matchup(["exp/one", "exp/one"], "x", SETTINGS)
    with pytest.raises(ValueError, match="two different runs"):
        draw_matchup(POOL, "x", SETTINGS, picked=("exp/one", "exp/one"))
    with pytest.raises(ValueError, match="empty"):
        draw_matchup(POOL, [], SETTINGS)


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_the_stored_order_is_what_was_shown(tmp_path, order):
    seed = next(s for s in range(100) if draw_matchup(POOL, "Once", SETTINGS, draw_seed=s).shown_order == order)
    matchup = draw_matchup(POOL, "Once", SETTINGS, draw_seed=seed)
    battle = make(matchup)
    shown = battle.shown()
    record = battle.record
    # The left text is run_a's exactly when the stored order says run_a was shown first.
    left_run = record.run_a if record.shown_order == "ab" else record.run_b
    assert record.shown_order == order
    assert shown.text_a == f"wrote {left_run}" and shown.text_a == (record.text_a if order == "ab" else record.text_b)
    store = ArenaStore(tmp_path / "arena.sqlite3")
    vote = battle.vote(store, "A", rater_id="session-1")  # the person liked the left story
    assert vote.verdict == ("a" if order == "ab" else "b") and vote.shown_order == order
    stored = store.comparisons()[0]
    winner = stored.run_a if stored.verdict == "a" else stored.run_b
    assert winner == left_run == battle.reveal().winner == battle.reveal().run_at_a
    assert store.battle(battle.id).shown_order == order


def test_names_are_revealed_only_after_the_vote(tmp_path):
    battle = make(draw_matchup(POOL, "Once", SETTINGS, draw_seed=3))
    with pytest.raises(NotRevealed):
        battle.reveal()
    assert not any(run in repr(battle) for run in POOL)
    assert not any(run in repr(draw_matchup(POOL, "Once", SETTINGS, draw_seed=3)) for run in POOL)
    with pytest.raises(ValueError, match="a vote is one of"):
        battle.vote(None, "left", "s")
    with pytest.raises(NotRevealed):
        battle.reveal()  # a refused vote reveals nothing
    battle.vote(None, "tie", "s")
    reveal = battle.reveal()
    assert {reveal.run_at_a, reveal.run_at_b} == {battle.record.run_a, battle.record.run_b}
    assert reveal.winner is None and reveal.choice == "tie"
    with pytest.raises(ValueError, match="voted on already"):
        battle.vote(None, "A", "s")
    assert new_rater_id() != new_rater_id() and new_rater_id().startswith("person-")


def test_a_vote_the_store_cannot_write_is_kept_and_revealed(tmp_path, monkeypatch):
    import sqlite3

    store = ArenaStore(tmp_path / "arena.sqlite3", busy_timeout=0.1)
    battle = make(draw_matchup(POOL, "Once", SETTINGS, draw_seed=8))
    blocker = sqlite3.connect(tmp_path / "arena.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="busy"):
            battle.vote(store, "B", "session-2")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert [p.kind for p in store.pending()] == ["battle", "vote"]
    assert battle.reveal().choice == "B"
    assert store.retry() == 2 and store.votes()[0].battle_id == battle.id


def test_story_openings_are_deterministic_first_sentences():
    openings = story_openings()
    assert len(openings) > 100 and openings == story_openings()
    assert len(set(openings)) == len(openings)
    assert all(o[-1] in ".!?\"'" and "\n" not in o for o in openings)
    assert sum(map(len, story_openings(sentences=2))) > sum(map(len, openings))
    assert first_sentences('He ran. "Stop!" she said. Then.', 2) == 'He ran. "Stop!"'
    assert first_sentences("no end at all", 1) == "no end at all"
    assert OPENINGS_SOURCE == "story openings"


def test_prompt_lists_are_checked(tmp_path):
    assert parse_prompts("  one \n\n two\n") == ["one", "two"]
    with pytest.raises(ValueError, match="holds no prompt"):
        parse_prompts("\n \n", "p.txt")
    with pytest.raises(ValueError, match="Prompt 2 of p.txt is 5,000 characters"):
        parse_prompts("ok\n" + "x" * 5000, "p.txt")
    f = tmp_path / "prompts.txt"
    f.write_text("Once upon a time\nThe dragon said\n", encoding="utf-8")
    assert read_prompt_file(f) == ["Once upon a time", "The dragon said"]
    with pytest.raises(ValueError, match="does not exist") as err:
        read_prompt_file(tmp_path / "missing.txt")
    assert str(tmp_path) not in str(err.value)
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="not UTF-8"):
        read_prompt_file(tmp_path / "bin.txt")


def _reference(pool: WorkerPool, models, run_id: str, prompt: str) -> str:
    experiment, name = run_id.split("/")
    events = list(column_events(pool.client(find_experiment(models, experiment)), name, prompt, SETTINGS))
    return [e for e in events if "text" in e][-1]["text"]


def test_play_generates_both_with_the_same_settings_through_the_workers(toy_models, pool):
    matchup = draw_matchup(["toy_a/run1", "toy_b/cached"], "the fox", SETTINGS, draw_seed=4)
    battle = play(pool, toy_models, matchup, timeout=180)
    shown = battle.shown()
    # Each position shows exactly what the Playground gives its run for these settings.
    assert shown.text_a == _reference(pool, toy_models, matchup.run_at("A"), "the fox")
    assert shown.text_b == _reference(pool, toy_models, matchup.run_at("B"), "the fox")
    assert shown.text_a and shown.text_b
    record = battle.record
    assert record.settings == SETTINGS.as_dict() and record.seed == SETTINGS.seed
    assert record.fingerprint_a and record.fingerprint_b and record.fingerprint_a != record.fingerprint_b


def test_two_runs_of_one_experiment_use_a_lane(tmp_path):
    toyzoo.make_toy_a(tmp_path, runs=("run1", "run2"))
    main, lane = WorkerPool(device="cpu", timeout=120), None
    try:
        lane = WorkerPool(device="cpu", timeout=120, limiter=main.limiter)
        matchup = draw_matchup(["toy_a/run1", "toy_a/run2"], "a cat", SETTINGS, draw_seed=1)
        battle = play(main, tmp_path, matchup, lane_pool=lane, timeout=180)
        assert main.live_workers() == 1 and lane.live_workers() == 1
        assert battle.record.text_a != battle.record.text_b  # different weights, same seed
    finally:
        main.close_all()
        if lane is not None:
            lane.close_all()


def test_a_failing_side_is_named_by_position_not_run(toy_models, pool):
    matchup = Matchup("toy_a/run1", "toy_b/missing", "ab", 1, "x", SETTINGS)
    with pytest.raises(Exception, match="no run called"):
        play(pool, toy_models, matchup)  # unknown run: refused before any generation
    matchup = draw_matchup(["toy_a/run1", "toy_b/cached"], "x", SamplingSettings(max_new_tokens=3), draw_seed=2)
    with pytest.raises(BattleError, match="not ready within"):
        play(pool, toy_models, matchup, timeout=0.001)
