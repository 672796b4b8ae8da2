"""Arena: blind battles between runs, voted on by people (and an LLM judge); the leaderboard.

Widgets and layout only: battles, the judge, the ratings and the store are `sandbox.arena`'s.
Blindness: which run is at A or B lives only in this session's state on the server. The
page, its widget keys and its URL speak of positions until the vote is stored; both sides
wear one neutral colour; a failed side's sentence has the run names taken out.
"""

from __future__ import annotations

import secrets as random_source
import time
from html import escape

import streamlit as st

from pages import common
from sandbox.app.admission import Refused
from sandbox.arena import board as boards
from sandbox.arena.battle import (
    CHOICE_LABELS,
    CHOICES,
    OPENINGS_SOURCE,
    POSITIONS,
    BattleError,
    new_rater_id,
    story_openings,
)
from sandbox.arena.headless import MAX_JUDGED_BATTLES, judge_unjudged, run_judged_battles, unjudged
from sandbox.arena.judge import DEFAULT_RUBRIC, MAX_RUBRIC_CHARS, Judge, judge_config, judge_status
from sandbox.arena.live import HIDDEN_COLOR, LiveBattle, new_matchup, reveal_sentence
from sandbox.arena.store import StoreError
from sandbox.errors import UnknownRunError
from sandbox.figures import export
from sandbox.figures.colors import run_color
from sandbox.playground import tokens_html
from sandbox.playground.columns import DRAW_EVERY
from sandbox.playground.multistream import MultiStream
from sandbox.playground.settings import DEFAULT_SETTINGS, RANGES, SamplingSettings
from sandbox.text import md_escape
from sandbox.urlstate import arena as url

common.require_access()

POLL = 0.05  # longest wait for a stream message; keeps a rerun responsive
MAX_PROMPT_CHARS = 4000
REQUEST = "ar_new_requested"  # a click on New battle, kept until a generation takes it
OWN, OPENINGS = "own", "openings"

st.title("Arena")
st.caption(
    "Two runs continue the same prompt with the same settings and seed, shown as A and B in "
    "random places. Vote for the better story; the names appear after your vote."
)


@st.cache_data(show_spinner=False)
def openings() -> list[str]:
    return story_openings()


@st.cache_data(show_spinner=False, max_entries=32)
def cached_board(kind: str, counts: tuple) -> boards.Leaderboard:
    """The leaderboard of ``kind``, refitted only when the store's counts change."""
    return boards.leaderboard(common.arena_store(), kind)


def judge_secrets() -> dict:
    """`.streamlit/secrets.toml` as a dict; empty when there is none."""
    try:
        return st.secrets.to_dict()
    except FileNotFoundError:  # Streamlit's "no secrets file" (or an unreadable one)
        return {}


run_ids = common.model_run_ids()
common.logs_only_caption()
if len(run_ids) < 2:
    st.info("The arena needs at least two trained runs in the models directory.")
    st.stop()
try:
    store = common.arena_store()
except StoreError as exc:
    common.show_error(exc)
    st.stop()

ss = st.session_state
if "ar_state" not in ss:
    params = {key: st.query_params.get_all(key) for key in st.query_params}
    first, ss["ar_url_warnings"] = url.from_query(params, run_ids)
    flagged = common.flagged_runs()
    ss["ar_pool"] = first.pool or [r for r in run_ids if r not in flagged]
    ss["ar_view"] = first.view
    ss["ar_state"] = True
ss.setdefault("ar_rater", new_rater_id())  # anonymous: one random id per browser session
for name in ("temperature", "top_k", "top_p", "min_p", "max_new_tokens", "seed", "stop_at_eos"):
    ss.setdefault(f"ar_{name}", getattr(DEFAULT_SETTINGS, name))
for warning in ss.get("ar_url_warnings", []):
    st.warning(warning)


# -- the sidebar: pool, prompts, sampling (shown on every section, so widgets keep their values)
def _range(name: str) -> dict:
    lo, hi, integer = RANGES[name]
    return {"min_value": int(lo), "max_value": int(hi)} if integer else {"min_value": float(lo), "max_value": float(hi)}


with st.sidebar:
    pool = st.multiselect("Pool of runs", run_ids, key="ar_pool", help="Each battle draws two of these; pick exactly two to pit them against each other.")
    source = st.radio(
        "Prompts", [OPENINGS, OWN], key="ar_source",
        format_func={OPENINGS: "Story openings (bundled corpus)", OWN: "My own prompt"}.get,
    )  # fmt: skip
    own_prompt = st.text_area("Your prompt", key="ar_prompt", max_chars=MAX_PROMPT_CHARS) if source == OWN else ""
    with st.expander("Sampling (the same for both sides)"):
        for name in ("temperature", "top_p", "min_p"):
            st.slider(name.replace("_", "-"), step=0.01, key=f"ar_{name}", **_range(name))
        for name in ("top_k", "max_new_tokens", "seed"):
            st.number_input(name.replace("_", " "), step=1, key=f"ar_{name}", **_range(name))
        fresh_seed = st.checkbox("A new seed for each battle", value=True, key="ar_fresh_seed")
        st.checkbox("Stop at end-of-text (eos)", key="ar_stop_at_eos")

settings = SamplingSettings(
    temperature=float(ss["ar_temperature"]), top_k=int(ss["ar_top_k"]), top_p=float(ss["ar_top_p"]),
    min_p=float(ss["ar_min_p"]), max_new_tokens=int(ss["ar_max_new_tokens"]), seed=int(ss["ar_seed"]),
    stop_at_eos=bool(ss["ar_stop_at_eos"]),
)  # fmt: skip
prompts = openings() if source == OPENINGS else own_prompt
prompt_source = OPENINGS_SOURCE if source == OPENINGS else "user"
problem = None
if len(pool) < 2:
    problem = "Choose at least two runs for the pool (sidebar)."
elif source == OWN and not own_prompt.strip():
    problem = "Write a prompt (sidebar), or use the story openings."

view = st.radio("Section", list(url.VIEWS), key="ar_view", format_func=url.VIEWS.get, horizontal=True, label_visibility="collapsed")
common.sync_query_params(url.to_query(url.ArenaState(list(pool), view)), url.QUERY_KEYS)


# -- a battle -------------------------------------------------------------------------------------
def _request() -> None:
    ss[REQUEST] = True


def _vote(choice: str) -> None:
    """A vote button's callback: store the vote (kept for retry if the store fails), reveal.

    A visitor votes once on a battle's content and a bounded number of times in all
    (`common.vote_ledger`); a refused vote is not stored and reveals nothing.
    """
    battle, live = ss.get("ar_battle"), ss.get("ar_live")
    if battle is None or battle.voted or live is None:
        return  # a second click, or a vote for a battle that is gone
    ledger, keys = common.vote_ledger(), common.client_keys()
    ss["ar_vote_refused"] = ledger.refusal(keys, live.matchup.content)
    if ss["ar_vote_refused"]:
        return
    try:
        battle.vote(store, choice, ss["ar_rater"])
        ss["ar_store_error"] = None
    except StoreError as exc:
        ss["ar_store_error"] = str(exc)
    ledger.record(keys, live.matchup.content)


def _header(position: str, revealed: str | None) -> str:
    color = run_color(revealed) if revealed else HIDDEN_COLOR
    name = f" · {escape(revealed)}" if revealed else ""
    return f'<div style="border-left:6px solid {color};padding:2px 8px;font-weight:600;font-size:1.2rem">{position}{name}</div>'


def draw_columns(live: LiveBattle, names: dict[str, str] | None = None) -> dict[str, dict]:
    """Two columns, A left and B right, each a header and placeholders for its text and stats."""
    slots = {}
    for col, position in zip(st.columns(2), POSITIONS, strict=True):
        with col:
            st.html(_header(position, (names or {}).get(position)))
            slots[position] = {"body": st.empty(), "stats": st.empty()}
            fill(slots[position], live, position)
    return slots


def fill(slot: dict, live: LiveBattle, position: str) -> None:
    column = live.columns[position]
    sentence = live.error(position)
    if sentence is not None:
        slot["body"].error(md_escape(f"Story {position} could not be generated: {sentence}"))
    elif column.status == "starting" and not column.text:
        slot["body"].caption("Starting the worker and loading the run…")
    else:
        slot["body"].html(tokens_html.plain_html(column.text, live.matchup.prompt))
    slot["stats"].caption(f"{column.n_tokens} tokens · {column.status}")


def play_live(live: LiveBattle, slots: dict[str, dict], status) -> None:
    """Stream both sides at once into their slots; on any exit the streams are stopped."""
    lane = common.lane_pool(1)  # two runs of one experiment write at once, each with a worker
    streams = MultiStream(live.jobs(common.worker_pool(), common.models_dir(), lane)).start()
    started, next_draw = time.perf_counter(), 0.0
    try:
        while not streams.finished:
            for message in streams.poll(POLL):
                live.apply(message)
            now = time.perf_counter()
            if now >= next_draw:  # also the st.* call that lets a rerun in
                for position in POSITIONS:
                    fill(slots[position], live, position)
                status.caption(f"Writing both stories… {now - started:.1f} s")
                next_draw = now + DRAW_EVERY
        for position in POSITIONS:
            fill(slots[position], live, position)
        status.empty()
    finally:
        streams.stop()
        live.stop()
        streams.join(timeout=2.0)


DRAW_TRIES = 20  # draws of a matchup this visitor has not voted on, before saying so
ALL_SEEN = (
    "You have voted on every battle that these runs, prompts and seed make (without a new seed "
    "each battle, a pair writes the same two stories again): turn on a new seed for each battle "
    "in the sidebar, or change the prompt."
)


def unseen_matchup():
    """A new matchup whose content this visitor has not voted on, or None after `DRAW_TRIES`."""
    ledger, keys = common.vote_ledger(), common.client_keys()
    played = boards.pair_counts(common.arena_store())  # the pairs that met least come first
    for attempt in range(DRAW_TRIES):  # then any pair, should this visitor have seen those
        matchup = new_matchup(pool, prompts, settings, fresh_seed=fresh_seed, source=prompt_source,
                              played=played if attempt < DRAW_TRIES // 2 else None)
        if not ledger.seen(keys, matchup.content):
            return matchup
    return None


def battle_section() -> None:
    if problem:
        st.info(problem)
    battle = ss.get("ar_battle")
    voted = battle is not None and battle.voted
    label = "Next battle" if voted or ss.get("ar_live") else "New battle"
    st.button(label, type="primary", key="ar_new", icon=":material/shuffle:", disabled=bool(problem), on_click=_request)
    status = st.empty()
    if ss.get(REQUEST) and not problem:
        ss.pop(REQUEST, None)
        ss["ar_battle"], ss["ar_error"], ss["ar_store_error"], ss["ar_vote_refused"] = None, None, None, None
        try:
            matchup = unseen_matchup()
            if matchup is None:
                ss["ar_live"] = None
                st.warning(ALL_SEEN, icon=":material/visibility:")
                return
            live = LiveBattle.start(common.models_dir(), matchup)
        except (ValueError, UnknownRunError) as exc:
            st.error(md_escape(str(exc)))
            return
        ss["ar_live"] = live
        st.caption(f"Prompt ({md_escape(live.matchup.source)}):")
        st.text(live.matchup.prompt)
        play_live(live, draw_columns(live), status)
        try:
            ss["ar_battle"] = battle = live.battle()
        except BattleError as exc:
            ss["ar_error"] = str(exc)
    else:
        live = ss.get("ar_live")
        if live is None:
            if not problem:
                st.caption("Press **New battle**: two runs of the pool write a story from the same prompt.")
            return
        names = None
        if battle is not None and battle.voted:
            reveal = battle.reveal()
            names = {"A": reveal.run_at_a, "B": reveal.run_at_b}
        st.caption(f"Prompt ({md_escape(live.matchup.source)}):")
        st.text(live.matchup.prompt)
        if not live.open and battle is None and ss.get("ar_error") is None:
            try:  # interrupted (a rerun during the stream), or a side failed: one sentence
                live.battle()
            except BattleError as exc:
                ss["ar_error"] = str(exc)
        draw_columns(live, names)
    vote_box(ss.get("ar_battle"))


def vote_box(battle) -> None:
    if ss.get("ar_error"):
        st.warning(md_escape(ss["ar_error"]))
    if battle is None:
        return
    if not battle.voted:
        if ss.get("ar_vote_refused"):
            st.warning(md_escape(ss["ar_vote_refused"]), icon=":material/block:")
            return
        st.markdown("**Which story is better?**")
        with st.container(horizontal=True):
            for choice in CHOICES:
                st.button(CHOICE_LABELS[choice], key=f"ar_vote_{choice}", on_click=_vote, args=(choice,))
        return
    st.success(md_escape(reveal_sentence(battle.reveal())), icon=":material/visibility:")
    if ss.get("ar_store_error"):
        st.error(md_escape(ss["ar_store_error"]))
    if store.pending():
        if st.button(f"Retry saving ({len(store.pending())} waiting)", key="ar_retry"):
            store.retry()
            ss["ar_store_error"] = store.last_error
            st.rerun()


# -- the leaderboard --------------------------------------------------------------------------------
def leaderboard_section() -> None:
    counts = store.counts()
    cols = st.columns(3)
    cols[0].metric("Battles", counts["battles"])
    cols[1].metric("Votes by people", counts["person_votes"])
    cols[2].metric("Votes by judges", counts["judge_votes"])
    if counts["votes"] == 0:
        st.info("No votes yet: vote in a battle, or have the judge rate some.")
        return
    kinds = boards.leaderboard_kinds(store)
    kind = st.radio("Raters", kinds, key="ar_board_kind", format_func=boards.kind_label, horizontal=True)
    board = cached_board(kind, tuple(sorted(counts.items())))
    table = board.table()
    if table.empty:
        st.info(f"No votes by {md_escape(board.label.lower())} yet.")
        return
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config={
            "rating": st.column_config.NumberColumn("rating (Elo)", format="%.0f"),
            "low": st.column_config.NumberColumn("95 % low", format="%.0f"),
            "high": st.column_config.NumberColumn("95 % high", format="%.0f"),
            "win_rate": st.column_config.NumberColumn("win rate", format="percent"),
            "provisional": st.column_config.CheckboxColumn(
                "provisional", help="Too few votes to rank: listed last, without a rank."),
        },
    )  # fmt: skip
    for note in board.notes:
        st.caption(md_escape(note))
    common.altair_chart(boards.ratings_chart(board), width="content")
    common.altair_chart(boards.win_rate_chart(board), width="content")
    for model, agreement in boards.agreements(store).items():
        st.caption(md_escape(agreement.sentence(model)))
    name = f"arena-{kind.replace(':', '-').replace('/', '-')}"
    with st.container(horizontal=True):
        st.download_button("Ratings CSV", boards.leaderboard_csv(board), f"{name}-ratings.csv", "text/csv", key="ar_csv", icon=":material/download:")
        st.download_button("Win rates CSV", boards.win_rates_csv(board), f"{name}-win-rates.csv", "text/csv", key="ar_wr_csv", icon=":material/download:")
        st.download_button(
            "PNG", lambda: export.to_png(boards.leaderboard_figure(board)), f"{name}.png", "image/png",
            key="ar_png", on_click="ignore", icon=":material/image:",
        )  # fmt: skip
    st.caption(md_escape(boards.method_sentence()))


# -- the judge -------------------------------------------------------------------------------------
def judge_section() -> None:
    try:
        config = judge_config(judge_secrets())
    except ValueError as exc:
        st.error(md_escape(str(exc)))
        return
    if config is None:
        st.info(md_escape(judge_status(None)), icon=":material/gavel:")
        return
    st.success(md_escape(judge_status(config)), icon=":material/gavel:")
    rubric = st.text_area("Rubric (stored with every verdict)", value=DEFAULT_RUBRIC, key="ar_rubric", max_chars=MAX_RUBRIC_CHARS, height=140)
    n = st.number_input("Battles", min_value=1, max_value=min(200, MAX_JUDGED_BATTLES), value=10, step=1, key="ar_judge_n")
    todo = len(unjudged(store, config.model))
    cols = st.columns(2)
    go_new = cols[0].button(f"Judge {n} battles", key="ar_judge_go", type="primary", disabled=bool(problem),
                            help="Generate new battles between runs of the pool and have the judge rate each.")  # fmt: skip
    go_people = cols[1].button(f"Judge the {todo} battles people voted on", key="ar_judge_people", disabled=todo == 0,
                               help="So that people and the judge can be compared on the same battles.")  # fmt: skip
    if problem:
        st.info(problem)
    if not (go_new or go_people):
        return
    bar = st.progress(0.0, text="Starting…")

    def progress(done: int, total: int, sentence: str) -> None:
        bar.progress(done / max(total, 1), text=md_escape(f"{done} of {total}: {sentence}"))

    try:
        with common.judge_runs().enter(common.session_id()), Judge(config) as judge:
            if go_new:
                summary = run_judged_battles(
                    common.worker_pool(), common.models_dir(), pool, [prompts] if isinstance(prompts, str) else prompts,
                    int(n), settings, judge, store, progress, seed=random_source.randbits(31), rubric=rubric,
                    lane_pool=common.lane_pool(1), source=prompt_source,
                )  # fmt: skip
            else:
                summary = judge_unjudged(store, judge, rubric=rubric, progress=progress)
    except Refused as exc:
        bar.empty()
        st.warning(md_escape(str(exc)), icon=":material/hourglass_top:")
        return
    except ValueError as exc:
        st.error(md_escape(str(exc)))
        return
    for line in summary.lines():
        st.caption(md_escape(line))


try:
    {"battle": battle_section, "leaderboard": leaderboard_section, "judge": judge_section}[view]()
except StoreError as exc:  # the database file unreadable (replaced, say): one sentence, not a traceback
    common.show_error(exc)
