"""Playground: one prompt through several runs side by side, every column streamed at once.

Widgets and layout only. The columns' streams run in threads (`sandbox.playground.multistream`); this
script's single loop polls them and redraws each column's placeholder ~15 times a second.
Stop (or any rerun) arrives as an exception at the next st.* call; the loop's ``finally``
stops the threads, which close their worker streams and so cancel the generations.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from html import escape

import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx

from pages import common
from sandbox.errors import UnknownRunError, WorkerError
from sandbox.figures.colors import run_color
from sandbox.playground import tokens_html, transcript
from sandbox.playground.columns import (
    DRAW_EVERY,
    ColumnState,
    assign_lanes,
    column_events,
    error_summary,
    redraw_interval,
)
from sandbox.playground.multistream import MultiStream, live_streams
from sandbox.playground.prompts import PreparedPrompt, describe_chars, prepare_prompt
from sandbox.playground.settings import (
    LABELS,
    OVERRIDABLE,
    RANGES,
    SamplingSettings,
    describe_settings,
)
from sandbox.text import md_escape
from sandbox.urlstate import playground as url

common.require_access()

POLL = 0.05  # longest wait for a stream message; keeps Stop responsive
CLOSE_WAIT = 3.0  # how long a rerun waits for an interrupted generation to record its columns
FIELDS = ("temperature", "top_k", "top_p", "min_p", "max_new_tokens", "seed")

st.title("Playground")
st.caption("One prompt, several runs, side by side. Each column streams from its own worker.")

run_ids = common.model_run_ids()
common.logs_only_caption()
if not run_ids:
    st.info("No trained runs in the models directory.")
    st.stop()


# -- state: the link (first visit), else what this session had ------------------------------
def _seed_widgets(state: url.PlaygroundState) -> None:
    """Put ``state`` into the widgets' keys (widgets forget their values when a page is left)."""
    ss = st.session_state
    ss["pg_runs"] = [r for r in state.runs if r in run_ids]
    ss["pg_prompt"] = state.prompt
    for name in FIELDS:
        ss[f"pg_{name}"] = getattr(state.settings, name)
    ss["pg_eos"] = state.settings.stop_at_eos
    ss["pg_tokens"] = state.token_view
    ss["pg_split"] = state.prompt_view
    for run, override in state.overrides.items():
        ss[f"pg_own::{run}"] = True
        for name, value in override.items():
            ss[f"pg_ov::{run}::{name}"] = value


if "pg_state" not in st.session_state:
    params = {key: st.query_params.get_all(key) for key in st.query_params}
    first, warnings = url.from_query(params, run_ids, common.flagged_runs() if not url.names_runs(params) else ())
    st.session_state["pg_state"] = first
    st.session_state["pg_url_warnings"] = warnings
if "pg_runs" not in st.session_state:
    _seed_widgets(st.session_state["pg_state"])
for warning in st.session_state.get("pg_url_warnings", []):
    st.warning(warning)


# -- controls ---------------------------------------------------------------------------------
def _range(name: str) -> dict:
    lo, hi, integer = RANGES[name]
    return {"min_value": int(lo), "max_value": int(hi)} if integer else {"min_value": float(lo), "max_value": float(hi)}


def sampling_inputs(prefix: str, names: tuple[str, ...]) -> None:
    """One input per sampling field in ``names``, keyed ``{prefix}{name}``."""
    cols = st.columns(len(names))
    helps = {
        "temperature": "0 = greedy (always the most likely token).",
        "top_k": "Keep exactly the k most likely tokens; 0 = off.",
        "top_p": "Keep the smallest set of tokens whose probability reaches p; 1 = off.",
        "min_p": "Keep tokens at least min-p times as likely as the most likely one; 0 = off.",
        "max_new_tokens": f"At most {RANGES['max_new_tokens'][1]}.",
        "seed": "Same seed, same settings: same text.",
    }
    for col, name in zip(cols, names, strict=True):
        label = LABELS[name].capitalize()
        key = f"{prefix}{name}"
        if name in ("temperature", "top_p", "min_p"):
            col.slider(label, step=0.01, key=key, help=helps[name], **_range(name))
        else:
            col.number_input(label, step=1, key=key, help=helps[name], **_range(name))


picked = st.multiselect(
    "Runs (1–4, from any experiments)",
    run_ids,
    key="pg_runs",
    max_selections=url.MAX_RUNS,
    placeholder="Choose runs to compare",
)
prompt = st.text_area(
    "Prompt",
    key="pg_prompt",
    max_chars=url.MAX_PROMPT_CHARS,
    height=100,
    help="Empty: the models start from their bos token. Longer than a model's context: cut from the left.",
)
with st.expander("Sampling (shared by all columns)", expanded=True):
    sampling_inputs("pg_", FIELDS)
    st.checkbox("Stop at end-of-text (eos)", key="pg_eos")

overrides: dict[str, dict] = {}
if picked:
    with st.expander("Per-run settings (optional overrides)"):
        for run in picked:
            if st.toggle(f"Own settings for {md_escape(run)}", key=f"pg_own::{run}"):
                for name in OVERRIDABLE:
                    st.session_state.setdefault(f"pg_ov::{run}::{name}", st.session_state[f"pg_{name}"])
                sampling_inputs(f"pg_ov::{run}::", OVERRIDABLE)
                overrides[run] = {name: st.session_state[f"pg_ov::{run}::{name}"] for name in OVERRIDABLE}

views = st.columns(2)
token_view = views[0].toggle(
    "Token view", key="pg_tokens", help="Token boundaries coloured by probability; hover for the top-5 alternatives."
)
prompt_view = views[1].toggle(
    "Prompt tokens", key="pg_split", help="How each run's tokenizer splits the prompt, and what it cannot represent."
)

ss = st.session_state
settings = SamplingSettings(
    temperature=float(ss["pg_temperature"]),
    top_k=int(ss["pg_top_k"]),
    top_p=float(ss["pg_top_p"]),
    min_p=float(ss["pg_min_p"]),
    max_new_tokens=int(ss["pg_max_new_tokens"]),
    seed=int(ss["pg_seed"]),
    stop_at_eos=bool(ss["pg_eos"]),
)
state = url.PlaygroundState(list(picked), prompt, settings, overrides, token_view, prompt_view)
ss["pg_state"] = state

# Mirror the state in the URL (keeping parameters other pages or Streamlit own).
common.sync_query_params(url.to_query(state), url.QUERY_KEYS)

# A click is a request kept in the session until a generation takes it (see `generate`):
# a button's value is True for one run only, and under load that run can be interrupted by
# another rerun before its columns start, which lost the click. Stop withdraws a request.
REQUEST = "pg_generate_requested"


def _request_generation() -> None:
    st.session_state[REQUEST] = True


def _withdraw_request() -> None:
    st.session_state.pop(REQUEST, None)


buttons = st.columns([1, 1, 4])
buttons[0].button(
    "Generate", type="primary", disabled=not picked, icon=":material/play_arrow:", key="pg_go",
    on_click=_request_generation,
)  # fmt: skip
buttons[1].button(
    "Stop", key="pg_stop", icon=":material/stop:", help="Stop every column (the workers cancel their generation).",
    on_click=_withdraw_request,
)  # fmt: skip
go = bool(ss.get(REQUEST))
status = st.empty()


# -- the prompt as each tokenizer reads it -----------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=128)
def tokenized(run_id: str, stamp: tuple, fingerprint: str, text: str) -> dict:
    """`prepare_prompt` for one run (cached until the run's weights or code change)."""
    client, run = common.client_for(run_id)
    return prepare_prompt(client, run.name, text).as_dict()


def draw_prompt_split(runs: list[str], text: str) -> None:
    st.subheader("How each tokenizer reads the prompt")
    cols = st.columns(len(runs))
    for col, run_id in zip(cols, runs, strict=True):
        with col:
            st.html(_header(run_id))
            try:
                exp, run = common.lookup(run_id)
                prepared = PreparedPrompt.from_dict(tokenized(run_id, run.weights_stamp(), exp.fingerprint(), text))
            except (WorkerError, UnknownRunError) as exc:
                common.show_error(exc, run_id)
                continue
            st.caption(f"{len(prepared.ids)} tokens the model sees" + (f" ({prepared.dropped} cut)" if prepared.dropped else ""))
            specials = {prepared.bos_id: "⟨bos⟩"} if prepared.bos_id is not None else {}
            st.html(tokens_html.prompt_tokens_html(prepared.ids, prepared.pieces, specials))
            if prepared.bad_chars:
                st.warning(md_escape(f"Cannot represent: {describe_chars(prepared.bad_chars)}"))
                st.html(tokens_html.marked_text_html(text, prepared.bad_chars))
                st.caption("What the tokenizer makes of it:")
                st.html(tokens_html.plain_html(prepared.roundtrip))


def _header(run_id: str) -> str:
    return (
        f'<div style="border-left:6px solid {run_color(run_id)};padding:2px 8px;font-weight:600">'
        f"{escape(run_id)}</div>"
    )


# -- the result columns -----------------------------------------------------------------------
def _specials(column: ColumnState) -> dict[int, str]:
    info = column.info or {}
    return {int(info[k]): f"⟨{k[:-3]}⟩" for k in ("bos_id", "eos_id", "pad_id") if info.get(k) is not None}


def make_slots(columns: dict[str, ColumnState]) -> dict[str, dict]:
    """One header and three placeholders (notices, text, numbers) per column."""
    slots = {}
    for col, (run_id, column) in zip(st.columns(len(columns)), columns.items(), strict=True):
        with col:
            st.html(_header(run_id))
            own = describe_settings(column.settings, state.settings) if column.settings != state.settings else ""
            if own:
                st.caption(f"Own settings: {own}")
            slots[run_id] = {"notices": st.empty(), "body": st.empty(), "stats": st.empty()}
    return slots


def draw(slot: dict, column: ColumnState, tokens_on: bool, prompt: str, waiting: int = 0) -> None:
    """Redraw one column from its state (only st.* calls: safe in the script thread)."""
    if column.notices:
        with slot["notices"].container():
            for notice in column.notices:
                (st.warning if notice.level == "warning" else st.info)(md_escape(notice.text))
    if column.error is not None:
        with slot["body"].container():
            err = column.error
            common.show_error(WorkerError(err["message"], hint=err.get("hint", "")), column.run_id)
            if column.text:
                st.html(tokens_html.plain_html(column.text))
    elif column.status == "starting" and not column.tokens:
        queued = f" ({waiting} request(s) ahead in its queue)" if waiting else ""
        slot["body"].caption(f"Starting the worker and loading the run…{queued}")
    elif tokens_on:
        slot["body"].html(tokens_html.tokens_html(column.tokens, _specials(column), prompt))
    else:
        slot["body"].html(tokens_html.plain_html(column.text, prompt))
    slot["stats"].caption(column.stats_line())


def generate(state: url.PlaygroundState, slots: dict[str, dict], columns: dict[str, ColumnState]) -> None:
    """Stream every column at once; on any exit (end, Stop, rerun) cancel and record."""
    clients, jobs = {}, {}
    session = common.session_id()
    try:
        for run_id, lane in zip(state.runs, assign_lanes(state.runs), strict=True):
            try:
                client, run = common.client_in_lane(run_id, lane, session)
            except UnknownRunError as exc:  # the run was deleted since the list was drawn
                columns[run_id].error = error_summary(exc)
                columns[run_id].ended = True
                continue
            clients[run_id] = client = client.for_session(session)
            jobs[run_id] = partial(column_events, client, run.name, state.prompt, columns[run_id].settings)
    except Exception:
        # A real failure withdraws the click (it would fail again on every run); a rerun or
        # stop (not an Exception) leaves it for the next run.
        _withdraw_request()
        raise
    # Made before the loop on purpose: see the ``finally`` below.
    record = {"prompt": state.prompt, "columns": columns, "open": True}
    st.session_state["pg_last"] = record
    history = st.session_state.setdefault("pg_history", [])
    # Taken: this click has its generation. The last session-state access before the
    # streams start, so a rerun arriving at any earlier one leaves the click for the next run.
    st.session_state.pop(REQUEST, None)
    streams = MultiStream(jobs).start()
    started = time.perf_counter()
    dirty, next_draw, next_status = set(columns), dict.fromkeys(columns, 0.0), 0.0
    interrupted = True
    try:
        while not streams.finished:
            for message in streams.poll(POLL):
                columns[message.key].apply(message)
                dirty.add(message.key)
            now = time.perf_counter()
            for run_id in [r for r in dirty if now >= next_draw[r]]:
                column = columns[run_id]
                waiting = clients[run_id].ahead() if run_id in clients else 0
                draw(slots[run_id], column, state.token_view, state.prompt, waiting)
                dirty.discard(run_id)
                next_draw[run_id] = now + redraw_interval(column.n_tokens, state.token_view, live_streams())
            if now >= next_status:  # also the st.* call that lets a Stop in, however quiet
                running = sum(not c.ended for c in columns.values())
                status.caption(f"Generating… {now - started:.1f} s, {running} column(s) still writing")
                next_status = now + DRAW_EVERY
        for run_id in dirty:
            draw(slots[run_id], columns[run_id], state.token_view, state.prompt)
        interrupted = False
    finally:
        # Reached on completion, on Stop and on any rerun. After a stop, Streamlit raises
        # again at every st.* call AND every st.session_state access, and with fast reruns
        # the page's next run may already be going: so only plain objects put in the
        # session state before the loop are touched here, and `open` tells that next run
        # when they are final.
        streams.stop()
        for column in columns.values():
            column.mark_stopped()
        entry = transcript.make_entry(state.prompt, state.settings, [c.summary() for c in columns.values()])
        transcript.add_entry(history, entry)
        record["open"] = False
        streams.join(timeout=2.0)
        if interrupted:
            show_stopped(slots, columns, state.token_view, state.prompt)


def show_stopped(slots: dict[str, dict], columns: dict[str, ColumnState], tokens_on: bool, prompt: str) -> None:
    """Replace "Generating… still writing" and each column's numbers after a Stop or rerun.

    Streamlit's own Stop (the toolbar's) ends the script with no run after it, so what is
    on screen stays; and from then on every st.* call of this script thread raises again.
    Streamlit only checks for a stop on the script thread, so the last update is sent from
    a short helper thread carrying this run's context (the way st.spinner updates itself),
    which ends before the script does.
    """

    def last_update() -> None:
        status.caption("Stopped.")
        for run_id, column in columns.items():
            if column.error is None:  # an error box stays as it was drawn
                body = tokens_html.tokens_html(column.tokens, _specials(column), prompt) if tokens_on else None
                slots[run_id]["body"].html(body or tokens_html.plain_html(column.text, prompt))
            slots[run_id]["stats"].caption(column.stats_line())

    helper = threading.Thread(target=last_update, name="playground-stopped", daemon=True)
    add_script_run_ctx(helper)
    helper.start()
    helper.join(timeout=2.0)


split_box = st.container()
results = st.container()
with results:
    if token_view:
        st.html(tokens_html.legend_html())
    if go and not picked:
        _withdraw_request()  # nothing to generate with (the runs were cleared meanwhile)
    if go and picked:
        ss["pg_url_warnings"] = []
        now = time.perf_counter()
        live = {r: ColumnState(r, state.settings_for(r), started_at=now) for r in picked}
        generate(state, make_slots(live), live)
        status.caption("Done.")
    elif ss.get("pg_last"):
        last = ss["pg_last"]
        # A Stop or rerun during a generation starts this run while the interrupted one is
        # still closing its streams: wait (briefly) for it to record where the columns ended.
        deadline = time.monotonic() + CLOSE_WAIT
        while last["open"] and time.monotonic() < deadline:
            time.sleep(0.05)
        if last["prompt"] != prompt or list(last["columns"]) != picked:
            st.caption("The last generation (the prompt or runs have changed since; press Generate for new ones).")
        stopped = any(c.status == "stopped" for c in last["columns"].values())
        if stopped:
            status.caption("Stopped.")
        slots = make_slots(last["columns"])
        for run_id, column in last["columns"].items():
            draw(slots[run_id], column, token_view, last["prompt"])
    elif picked:
        st.caption("Press **Generate** to see every run continue the prompt side by side.")

if prompt_view and picked:
    with split_box:
        draw_prompt_split(picked, prompt)


# -- history ----------------------------------------------------------------------------------
history = ss.get("pg_history", [])
if history:
    st.divider()
    head = st.columns([3, 1, 1])
    head[0].subheader(f"History ({len(history)})")
    head[1].download_button(
        "Export Markdown",
        transcript.history_markdown(history),
        file_name="playground-history.md",
        mime="text/markdown",
        icon=":material/download:",
    )
    if head[2].button("Clear history"):
        ss["pg_history"] = []
        st.rerun()
    for number, entry in reversed(list(enumerate(history, start=1))):
        base = SamplingSettings(**entry["settings"])
        first_line = " ".join(entry["prompt"].split())[:60] or "(empty prompt)"
        with st.expander(f"{number}. {entry['when']} — {md_escape(first_line)}"):
            st.caption(describe_settings(base))
            for col, column in zip(st.columns(len(entry["columns"])), entry["columns"], strict=True):
                with col:
                    st.html(_header(column["run"]))
                    own = SamplingSettings(**column["settings"])
                    if own != base:
                        st.caption(f"Own settings: {describe_settings(own, base)}")
                    if column.get("error"):
                        st.error(md_escape(column["error"]["message"]))
                    st.html(tokens_html.plain_html(column["text"]))
                    st.caption(f"{column['n_tokens']} tokens · {column['reason']}")
