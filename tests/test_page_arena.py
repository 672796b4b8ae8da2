"""AppTest of the Arena page: blind until the vote, the vote stored, the reveal, the
leaderboard, the judge off and on, a vote the store cannot write kept for retry."""

from __future__ import annotations

import re
import sqlite3
from html import unescape

import pytest
from arena_server import KEY, chat, fake_servers

from sandbox.arena.judge import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL
from sandbox.arena.store import ArenaStore
from sandbox.playground.tokens_html import PROMPT_STYLE

PAGE = "pages/arena.py"
RUNS = ("toy_a/run1", "toy_b/cached")
NAMES = ("toy_a", "toy_b", "run1", "cached")  # every part of a run id that could give it away


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A fresh arena database for the test, and no judge unless the test sets one."""
    path = tmp_path / "arena.sqlite3"
    monkeypatch.setenv("SANDBOX_ARENA_DB", str(path))
    for name in (ENV_BASE_URL, ENV_MODEL, ENV_API_KEY):
        monkeypatch.delenv(name, raising=False)
    return path


def shown_text(block) -> str:
    """Everything a visitor can read in ``block``: texts, captions, alerts, HTML, labels."""
    parts = [e.value for kind in ("markdown", "caption", "text", "info", "warning", "error", "success") for e in getattr(block, kind)]
    parts += [unescape(re.sub(r"<[^>]+>", " ", h.value)) for h in block.html]
    parts += [w.label for kind in ("button", "radio", "text_area", "number_input", "checkbox") for w in getattr(block, kind)]
    return "\n".join(re.sub(r"\\(.)", r"\1", str(p)).replace("\u2060", "") for p in parts)  # md_escape undone


def widget_keys(at) -> list[str]:
    return [w.key for kind in ("button", "radio", "multiselect", "text_area", "number_input", "checkbox", "slider") for w in getattr(at, kind) if w.key]


def open_arena(app_at, models, query: dict | None = None):
    at = app_at(models)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def new_battle(at):
    at.number_input(key="ar_max_new_tokens").set_value(12)
    at.checkbox(key="ar_stop_at_eos").set_value(False)  # both sides write all their tokens
    at.button(key="ar_new").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def column_texts(at) -> list[str]:
    """The two stories, A then B (the html after each column's header)."""
    texts = []
    for col in at.main.columns:
        htmls = [h.value for h in col.html]
        if len(htmls) >= 2 and "border-left" in htmls[0]:
            story = re.sub(rf'<span style="{PROMPT_STYLE}">.*?</span>', "", htmls[1], flags=re.S)  # the dimmed prompt
            texts.append(unescape(re.sub(r"<[^>]+>", "", story)).strip())
    return texts


def test_a_blind_battle_reveals_the_names_only_after_the_vote_and_stores_it(app_at, toy_models, db):
    at = open_arena(app_at, toy_models)
    assert at.multiselect(key="ar_pool").value == list(RUNS)  # every run, by default
    new_battle(at)
    stories = column_texts(at)
    assert len(stories) == 2 and all(stories), stories
    before = shown_text(at.main)
    assert "Which story is better?" in before
    # Blind: no run name in the page's main area, its widget keys or the URL.
    assert [n for n in NAMES if n in before] == []
    assert [k for k in widget_keys(at) if any(n in k for n in NAMES)] == []
    assert set(at.query_params) <= {"runs"}  # the URL holds the pool, nothing of the battle
    assert ArenaStore(db).counts()["battles"] == 0  # nothing stored before the vote

    at.button(key="ar_vote_A").click().run()
    assert not at.exception
    store = ArenaStore(db)
    [battle] = store.battles()
    [vote] = store.votes()
    assert (vote.rater_kind, vote.battle_id, vote.rater_id.startswith("person-")) == ("person", battle.id, True)
    # A was on the left: the verdict names the run that was shown there.
    at_a = battle.run_a if battle.shown_order == "ab" else battle.run_b
    at_b = battle.run_b if at_a == battle.run_a else battle.run_a
    assert vote.verdict == ("a" if at_a == battle.run_a else "b")
    text_at = {battle.run_a: battle.text_a, battle.run_b: battle.text_b}
    assert column_texts(at) == [text_at[at_a].strip(), text_at[at_b].strip()]  # A left, B right
    after = shown_text(at.main)
    assert f"A was {at_a}, B was {at_b}. You chose A: {at_a} wins this battle." in after
    assert all(b.key != "ar_vote_B" for b in at.button)  # one vote per battle
    assert at.button(key="ar_new").label == "Next battle"

    # The leaderboard counts it.
    at.radio(key="ar_view").set_value("leaderboard").run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["1", "1", "0"]
    table = at.dataframe[0].value
    assert set(table["run"]) == set(RUNS) and table["votes"].tolist() == [1, 1]
    assert table.iloc[0]["run"] == at_a  # the winner is first
    assert len(at.get("download_button")) == 3
    assert at.query_params["view"] in ("leaderboard", ["leaderboard"])


def test_the_judge_is_off_unless_configured_and_says_how(app_at, toy_models, db):
    at = open_arena(app_at, toy_models, {"view": "judge"})
    text = shown_text(at.main)
    assert "The LLM judge is off" in text and "SANDBOX_JUDGE_BASE_URL" in text and "SANDBOX_JUDGE_MODEL" in text
    assert all(b.key != "ar_judge_go" for b in at.button)


def test_the_judge_rates_new_battles_and_the_key_is_never_shown(app_at, toy_models, db, monkeypatch):
    with fake_servers() as start:
        server = start(lambda body, n: (200, chat("Verdict: A" if n % 2 == 0 else "Verdict: B"), 0.0, {}))
        monkeypatch.setenv(ENV_BASE_URL, server.base_url)
        monkeypatch.setenv(ENV_MODEL, "tiny-judge")
        monkeypatch.setenv(ENV_API_KEY, KEY)
        at = open_arena(app_at, toy_models, {"view": "judge"})
        assert "The LLM judge is tiny-judge at http://127.0.0.1:" in shown_text(at.main)
        at.number_input(key="ar_max_new_tokens").set_value(8)
        at.number_input(key="ar_judge_n").set_value(2)
        at.button(key="ar_judge_go").click().run()
        assert not at.exception, [e.value for e in at.exception]
    store = ArenaStore(db)
    assert store.counts()["battles"] == 2 and store.counts()["judge_votes"] == 2
    # The judge answered "A" first and "B" second: the same run both times, so a verdict.
    assert {v.verdict for v in store.votes()} == {"a"} and len(server.requests) == 4
    assert all(r["auth"] == f"Bearer {KEY}" for r in server.requests)
    text = shown_text(at.main)
    assert "2 of 2 battles generated, 2 judged" in text
    assert KEY not in text and KEY not in repr(at.session_state)
    assert all(KEY not in (v.raw or "") for v in store.votes())


def test_a_vote_the_store_cannot_write_is_kept_and_saved_on_retry(app_at, toy_models, db, monkeypatch):
    at = open_arena(app_at, toy_models)
    new_battle(at)
    real_insert = ArenaStore._insert

    def locked(self, write):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(ArenaStore, "_insert", locked)
    at.button(key="ar_vote_tie").click().run()
    assert not at.exception
    text = shown_text(at.main)
    assert "You chose a tie: Neither run wins this battle." in text  # revealed all the same
    assert "stayed busy with another writer" in text and str(db) not in text
    assert ArenaStore(db).counts()["votes"] == 0
    monkeypatch.setattr(ArenaStore, "_insert", real_insert)
    at.button(key="ar_retry").click().run()
    assert not at.exception
    store = ArenaStore(db)
    assert (store.counts()["battles"], [v.verdict for v in store.votes()]) == (1, ["tie"])
    assert all(b.key != "ar_retry" for b in at.button)


def test_a_link_names_the_pool_and_bad_values_are_ignored(app_at, toy_models, db):
    at = open_arena(app_at, toy_models, {"runs": ["toy_b/cached", "../etc/passwd"], "view": "nowhere"})
    assert at.multiselect(key="ar_pool").value == ["toy_b/cached"]
    warnings = " ".join(w.value for w in at.warning)
    assert "Ignored run" in warnings and "Ignored section" in warnings
    assert "Choose at least two runs" in shown_text(at.main)
    assert at.button(key="ar_new").disabled


def test_an_empty_leaderboard_says_so(app_at, toy_models, db):
    at = open_arena(app_at, toy_models, {"view": "leaderboard"})
    assert "No votes yet" in shown_text(at.main)
    assert [m.value for m in at.metric] == ["0", "0", "0"]


def test_a_judge_run_waits_while_another_session_has_one_going(app_at, toy_models, db, monkeypatch):
    """Reliability II, 4: judge runs spend the owner's key; one at a time in the whole app."""
    from pages import common

    with fake_servers() as start:
        server = start(lambda body, n: (200, chat("Verdict: A"), 0.0, {}))
        monkeypatch.setenv(ENV_BASE_URL, server.base_url)
        monkeypatch.setenv(ENV_MODEL, "tiny-judge")
        at = open_arena(app_at, toy_models, {"view": "judge"})
        runs = common.judge_runs()
        with runs.enter("another-browser-session"):
            at.number_input(key="ar_judge_n").set_value(2)
            at.button(key="ar_judge_go").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert server.requests == [] and ArenaStore(db).counts()["battles"] == 0
        assert f"The server already has {runs.at_once} judge run going, the most at once" in shown_text(at.main)
        assert runs.running() == 0


def test_admission_counts_per_session_and_in_all() -> None:
    from sandbox.app.admission import Admission, Refused

    rule = Admission("judge run", at_once=2, per_session=1)
    with rule.enter("s1"):
        with pytest.raises(Refused, match=r"^This browser session already has 1 judge run going; wait"):
            with rule.enter("s1"):
                pass
        with rule.enter("s2"):
            assert rule.running() == 2 and rule.running("s2") == 1
            with pytest.raises(Refused, match=r"^The server already has 2 judge runs going, the most at once"):
                with rule.enter("s3"):
                    pass
    assert rule.running() == 0
    with pytest.raises(ValueError):
        Admission("x", at_once=0)


def test_without_a_new_seed_a_voter_never_meets_a_revealed_battle_again(app_at, toy_models, db):
    """Reliability II, 6: a fixed seed writes the same two stories for a pair and prompt; after
    one reveal a voter would know the sides of every later battle of that pair."""
    at = open_arena(app_at, toy_models)
    at.radio(key="ar_source").set_value("own").run()
    at.text_area(key="ar_prompt").set_value("the fox and the cat")
    at.checkbox(key="ar_fresh_seed").set_value(False).run()
    new_battle(at)
    at.button(key="ar_vote_A").click().run()
    revealed = set(column_texts(at))
    assert len(revealed) == 2 and "You chose A" in shown_text(at.main)

    at.button(key="ar_new").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not revealed & set(column_texts(at)), "the revealed stories came back, sides known"
    assert all(not b.key.startswith("ar_vote_") for b in at.button)
    assert "You have voted on every battle that these runs, prompts and seed make" in shown_text(at.main)
    assert ArenaStore(db).counts()["person_votes"] == 1


def test_the_vote_ledger_takes_a_content_once_and_a_bounded_number_of_votes() -> None:
    from sandbox.app.votes import VoteLedger

    ledger = VoteLedger(max_votes=2)
    me, same_address = ("session:1", "ip:10.0.0.5"), ("session:2", "ip:10.0.0.5")
    assert ledger.refusal(me, "c1") is None
    ledger.record(me, "c1")
    assert ledger.refusal(me, "c1").startswith("You have voted on this battle already")
    assert ledger.seen(same_address, "c1"), "a new session from the same address gains nothing"
    ledger.record(me, "c2")
    assert ledger.refusal(("session:3",), "c3") is None
    assert ledger.refusal(me, "c3") == "This browser or address has given 2 votes, the most one visitor may give."


@pytest.mark.parametrize("view", ["leaderboard", "judge", "battle"])
def test_a_database_replaced_by_junk_is_one_sentence_on_every_section(app_at, toy_models, db, monkeypatch, view):
    """Reliability II, 7: the file replaced while the app runs; never an exception box."""
    with fake_servers() as start:
        server = start(lambda body, n: (200, chat("Verdict: A"), 0.0, {}))
        monkeypatch.setenv(ENV_BASE_URL, server.base_url)
        monkeypatch.setenv(ENV_MODEL, "tiny-judge")
        at = open_arena(app_at, toy_models)
        junk = db.with_name("junk")
        junk.write_bytes(b"not sqlite " * 1000)
        junk.replace(db)
        at.radio(key="ar_view").set_value(view).run()
        if view == "battle":
            new_battle(at)
            at.button(key="ar_vote_B").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("not a readable arena database" in e.value for e in at.error)
