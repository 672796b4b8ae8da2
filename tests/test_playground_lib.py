"""The Playground's library side: lanes, a column's stream and its state, the URL state."""

from __future__ import annotations

import pytest

from sandbox.errors import WorkerCrashed
from sandbox.playground.columns import (
    DRAW_EVERY,
    ColumnState,
    assign_lanes,
    column_events,
    redraw_interval,
)
from sandbox.playground.multistream import Ended, Failed, Message, MultiStream
from sandbox.playground.settings import (
    DEFAULT_SETTINGS,
    MAX_NEW_TOKENS_CAP,
    SamplingSettings,
    describe_settings,
    with_overrides,
)
from sandbox.urlstate.playground import (
    DEFAULT_PROMPT,
    MAX_RUNS,
    PlaygroundState,
    from_query,
    to_query,
)
from sandbox.zoo.discovery import find_experiment

RUNS = ["template/gpt2", "template/llama", "kv_variant/gqa", "other/x", "other/y"]


# -- lanes ------------------------------------------------------------------------------


def test_runs_of_one_experiment_get_separate_lanes():
    assert assign_lanes(["a/1", "b/1", "a/2", "a/3", "b/2"]) == [0, 0, 1, 2, 1]
    assert assign_lanes([]) == []


def test_big_token_views_are_redrawn_less_often():
    assert redraw_interval(1000, token_view=False) == DRAW_EVERY
    assert redraw_interval(5, token_view=True) == DRAW_EVERY
    intervals = [redraw_interval(n, token_view=True) for n in (50, 200, 400, 1024)]
    assert intervals == sorted(intervals) and intervals[-1] == 1.0
    # What a streaming token view sends stays near 150 kB/s per column (300 B a token).
    assert all(n * 300 / redraw_interval(n, True) <= 150_000 + 1 for n in (50, 200, 400))


# -- a column's state -------------------------------------------------------------------


def _token(i: int, text: str) -> dict:
    return {"id": i, "piece": text[-1], "prob": 0.5, "alts": [(i, text[-1], 0.5)], "text": text}


def test_column_state_follows_its_stream_and_times_it():
    col = ColumnState("a/1", DEFAULT_SETTINGS, started_at=10.0)
    assert col.status == "starting"
    col.apply(Message("a/1", {"info": {"bos_id": 1, "eos_id": 2}}, 10.5))
    col.apply(Message("a/1", {"prompt": {"ids": [1], "pieces": [""], "n_tokens": 1, "dropped": 0, "bad_chars": [], "roundtrip": "", "notices": [{"level": "info", "text": "Empty prompt"}]}}, 11.0))
    assert col.status == "generating" and col.startup == 1.0 and col.notices[0].text == "Empty prompt"
    for n, at in enumerate((11.25, 11.5, 11.75, 12.25), start=1):
        col.apply(Message("a/1", _token(n, "abcd"[:n]), at))
    assert col.text == "abcd" and col.n_tokens == 4 and "text" not in col.tokens[0]
    assert col.ttft == 0.25
    assert col.tokens_per_second == 3 / 1.0  # 3 tokens after the first, in 1 s
    col.apply(Message("a/1", {"done": True, "reason": "length", "n_tokens": 4, "used_cache": True}, 12.3))
    col.apply(Message("a/1", Ended(stopped=False), 12.3))
    assert col.status == "done" and col.ended
    line = col.stats_line()
    assert "first token 0.25 s" in line and "3 tok/s" in line and "4 tokens" in line and "loading 1.0 s" in line
    summary = col.summary()
    assert summary["text"] == "abcd" and summary["reason"] == "length" and summary["error"] is None


def test_column_state_records_an_error_and_a_stop():
    col = ColumnState("a/1", DEFAULT_SETTINGS, started_at=0.0)
    col.apply(Message("a/1", Failed(WorkerCrashed("the worker died", hint="retry", detail="tb")), 1.0))
    col.apply(Message("a/1", Ended(stopped=False), 1.0))
    # The sentence and the hint; never the traceback (it goes to the server log).
    assert col.status == "error" and col.error == {"kind": "WorkerCrashed", "message": "the worker died", "hint": "retry"}
    stopped = ColumnState("b/1", DEFAULT_SETTINGS, started_at=0.0)
    stopped.apply(Message("b/1", _token(1, "a"), 1.0))
    stopped.mark_stopped()
    assert stopped.status == "stopped" and stopped.tokens_per_second is None


def test_column_events_prepare_then_stream_the_worker(toy_models, pool):
    client = pool.client(find_experiment(toy_models, "toy_b"))
    settings = SamplingSettings(temperature=0.9, seed=5, max_new_tokens=30, stop_at_eos=False)
    events = list(column_events(client, "cached", "the fox", settings))
    assert events[0]["info"]["takes_cache_len"] is True
    assert events[1]["prompt"]["ids"] == client.request("encode", run="cached", texts=["the fox"])[0]
    direct = client.request("generate", run="cached", prompt_ids=events[1]["prompt"]["ids"], settings=settings.as_dict())
    assert events[-1]["ids"] == direct[-1]["ids"] and len(events) == 2 + 30 + 1
    assert all(len(e["alts"]) == 5 for e in events[2:-1])


def test_two_columns_through_multistream_one_of_them_broken(toy_models, pool):
    good = pool.client(find_experiment(toy_models, "toy_a"))
    settings = SamplingSettings(max_new_tokens=12, stop_at_eos=False)
    cols = {k: ColumnState(k, settings, started_at=0.0) for k in ("good", "bad")}
    jobs = {
        "good": lambda: column_events(good, "run1", "abc", settings),
        "bad": lambda: column_events(good, "no_such_run", "abc", settings),
    }
    with MultiStream(jobs) as streams:
        for msg in streams.drain(120):
            cols[msg.key].apply(msg)
    assert cols["good"].status == "done" and cols["good"].n_tokens == 12 and cols["good"].text
    assert cols["bad"].status == "error" and "no run folder trained/no_such_run" in cols["bad"].error["message"]


# -- URL state --------------------------------------------------------------------------


def test_state_round_trips_through_the_url():
    state = PlaygroundState(
        runs=["template/gpt2", "kv_variant/gqa"],
        prompt="Hello | there & more",
        settings=SamplingSettings(temperature=0.3, top_k=40, top_p=0.9, min_p=0.05, max_new_tokens=200, seed=7, stop_at_eos=False),
        overrides={"kv_variant/gqa": {"temperature": 0.0, "top_k": 5}},
        token_view=True,
        prompt_view=True,
    )
    query = to_query(state)
    params = {k: v if isinstance(v, list) else [v] for k, v in query.items()}
    back, warnings = from_query(params, RUNS)
    assert warnings == []
    assert back == state
    assert back.settings_for("kv_variant/gqa") == with_overrides(state.settings, {"temperature": 0.0, "top_k": 5})
    assert back.settings_for("template/gpt2") == state.settings


def test_defaults_make_an_empty_url():
    from dataclasses import replace

    from sandbox.urlstate.parse import default_runs

    assert to_query(PlaygroundState()) == {}
    state, warnings = from_query({}, RUNS)
    # A link that names no run opens with the default comparison: a run of each of two experiments.
    assert state == replace(PlaygroundState(), runs=state.runs) and warnings == []
    assert list(state.runs) == default_runs(RUNS, 2) and len({r.split("/")[0] for r in state.runs}) == 2
    assert state.prompt == DEFAULT_PROMPT


def test_invalid_url_values_are_ignored_with_a_warning():
    params = {
        "run": ["template/gpt2", "../../etc/passwd", "/abs/path", "nope/x"],
        "t": ["hot"],
        "k": ["2.5"],
        "p": ["0"],
        "minp": ["nan"],
        "seed": ["-1"],
        "eos": ["maybe"],
        "tokens": ["2"],
        "bogus": ["1"],
    }
    state, warnings = from_query(params, RUNS)
    assert state.runs == ["template/gpt2"]
    assert state.settings == DEFAULT_SETTINGS
    text = "\n".join(warnings)
    for needle in ("`../../etc/passwd`", "`/abs/path`", "`nope/x`", "`hot`", "whole number", "`0`", "`nan`", "`-1`", "`maybe`", "`bogus`"):
        assert needle in text, needle
    assert len(warnings) == 11  # 3 runs + t, k, p, minp, seed, eos, tokens + bogus


def test_too_many_tokens_are_capped_and_too_many_runs_cut():
    state, warnings = from_query({"n": ["99999"], "run": RUNS}, RUNS)
    assert state.settings.max_new_tokens == MAX_NEW_TOKENS_CAP
    assert state.runs == RUNS[:MAX_RUNS]
    assert any("cap" in w for w in warnings) and any(f"at most {MAX_RUNS}" in w for w in warnings)


def test_overrides_for_unchosen_runs_or_unknown_fields_are_ignored():
    params = {"run": ["template/gpt2"], "ov": ["kv_variant/gqa|t=0.1", "template/gpt2|t=0.2|n=5|k=x"]}
    state, warnings = from_query(params, RUNS)
    assert state.overrides == {"template/gpt2": {"temperature": 0.2}}
    assert len(warnings) == 3  # the unchosen run, n (not per run), k=x


def test_the_apps_own_parameters_are_not_warned_about():
    _, warnings = from_query({"screenshot": ["1"], "embed": ["true"]}, RUNS)
    assert warnings == []


def test_describe_settings():
    s = SamplingSettings(temperature=0, top_k=0, top_p=1.0, min_p=0.1, max_new_tokens=9, seed=2)
    line = describe_settings(s)
    assert line.startswith("temperature 0 (greedy) · top-k off · top-p off · min-p 0.1")
    assert describe_settings(s, s) == ""
    assert describe_settings(with_overrides(s, {"seed": 3}), s) == "seed 3"


def test_columns_redraw_less_often_when_many_stream_in_the_app() -> None:
    """One session's three columns redraw at the full rate; thirty columns of ten sessions
    share the same total rate (each 10x slower), never slower than once a second."""
    assert redraw_interval(10, token_view=False, streams=3) == DRAW_EVERY
    assert redraw_interval(10, token_view=False, streams=30) == pytest.approx(10 * DRAW_EVERY)
    assert redraw_interval(10, token_view=False, streams=300) == 1.0
    assert redraw_interval(50, token_view=True, streams=30) > redraw_interval(50, token_view=True, streams=1)
