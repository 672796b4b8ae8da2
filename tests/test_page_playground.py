"""AppTest of the Playground: several runs streamed side by side, errors, the URL, history."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
import toyzoo

from sandbox.playground.tokens_html import PROMPT_STYLE
from sandbox.settings import PROJECT_ROOT

PAGE = "pages/playground.py"
SHIPPED = ("template/gpt2_atto", "kv_variant/gqa_atto")


def _plain(html: str) -> str:
    """Text of an html element, without the dimmed prompt shown before a continuation."""
    html = re.sub(rf'<span style="{PROMPT_STYLE}">.*?</span>', "", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", "", html))


def column_texts(at) -> dict[str, str]:
    """The text in each result column, by run id (the header is the column's first html)."""
    texts = {}
    for col in at.columns:
        htmls = [h.value for h in col.html]
        if len(htmls) >= 2 and "border-left" in htmls[0]:
            run = _plain(htmls[0])
            texts.setdefault(run, _plain(htmls[1]).strip())
    return texts


def _md_plain(text: str) -> str:
    """Markdown source without its backslash escapes (what a person reads)."""
    return re.sub(r"\\(.)", r"\1", str(text))


def all_text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [w.value for w in at.warning] + [e.value for e in at.error] + [i.value for i in at.info]
    return "\n".join(_md_plain(p) for p in parts)


def open_playground(app_at, models: Path, query: dict | None = None):
    at = app_at(models)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def generate(at, runs: list[str], prompt: str = "the cat sat", max_new_tokens: int = 40):
    at.multiselect(key="pg_runs").set_value(runs).run()
    at.text_area(key="pg_prompt").set_value(prompt)
    at.number_input(key="pg_max_new_tokens").set_value(max_new_tokens)
    at.checkbox(key="pg_eos").set_value(False)  # every column writes all its tokens
    at.button(key="pg_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_two_runs_from_different_experiments_stream_side_by_side(app_at, toy_models):
    at = open_playground(app_at, toy_models)
    generate(at, ["toy_a/run1", "toy_b/cached"])
    texts = column_texts(at)
    assert set(texts) >= {"toy_a/run1", "toy_b/cached"}
    assert texts["toy_a/run1"] and texts["toy_b/cached"]
    assert texts["toy_a/run1"] != texts["toy_b/cached"]
    stats = [c.value for c in at.caption if "first token" in c.value]
    assert len(stats) == 2 and all("tok/s" in s for s in stats)
    # The generation is in the history, exportable as Markdown, and the state is in the URL.
    assert any("History (1)" in s.value for s in at.subheader)
    assert at.get("download_button")
    assert at.query_params["runs"] == ["toy_a/run1", "toy_b/cached"]
    assert at.query_params["prompt"] in ("the cat sat", ["the cat sat"])


@pytest.mark.skipif(
    not all((PROJECT_ROOT / "models" / r.split("/")[0] / "trained" / r.split("/")[1] / "model.pth").is_file() for r in SHIPPED),
    reason="the shipped runs template/gpt2_atto and kv_variant/gqa_atto are not both trained yet",
)
def test_shipped_runs_stream_side_by_side(app_at):
    at = open_playground(app_at, PROJECT_ROOT / "models")
    generate(at, list(SHIPPED), prompt="Once upon a time", max_new_tokens=30)
    texts = column_texts(at)
    assert all(texts.get(r) for r in SHIPPED), texts


def test_a_failing_worker_shows_in_its_column_and_the_other_goes_on(app_at, tmp_path):
    toyzoo.make_toy_a(tmp_path)
    broken = toyzoo.make_toy_b(tmp_path)
    (broken / "CRASH").write_text("")  # its worker exits on the first forward pass
    at = open_playground(app_at, tmp_path)
    generate(at, ["toy_a/run1", "toy_b/cached"])
    texts = column_texts(at)
    assert texts["toy_a/run1"]
    errors = [e.value for e in at.error]
    assert any("toy_b/cached" in e and "exited with status 3" in e for e in errors), errors


def test_two_runs_of_one_experiment_get_a_worker_each(app_at, tmp_path):
    from pages import common

    toyzoo.make_toy_a(tmp_path, runs=("run1", "run2"))
    at = open_playground(app_at, tmp_path)
    generate(at, ["toy_a/run1", "toy_a/run2"])
    texts = column_texts(at)
    assert texts["toy_a/run1"] and texts["toy_a/run2"] and texts["toy_a/run1"] != texts["toy_a/run2"]
    assert common.worker_pool().live_workers() == 1 and common.lane_pool(1).live_workers() == 1


def test_bad_input_empty_and_too_long_prompts_get_notices(app_at, toy_models):
    at = open_playground(app_at, toy_models)
    generate(at, ["toy_a/run1"], prompt="")
    assert "Empty prompt: the model starts from the bos token alone." in all_text(at)
    assert column_texts(at)["toy_a/run1"]
    generate(at, ["toy_a/run1"], prompt="Abc " * 30)  # 121 tokens > context 64; 'A' is not in its alphabet
    text = all_text(at)
    assert "longer than this model's context of 64" in text and "'A' (U+0041)" in text
    assert column_texts(at)["toy_a/run1"]


def test_state_comes_from_the_url_and_bad_values_are_warned_about(app_at, toy_models):
    query = {"run": ["toy_b/cached", "../../../etc/passwd"], "prompt": "a fox", "t": "9", "n": "50000", "tokens": "1"}
    at = open_playground(app_at, toy_models, query)
    warnings = [w.value for w in at.warning]
    assert any("`../../../etc/passwd`" in w for w in warnings)
    assert any("temperature `9`" in w for w in warnings)
    assert any("over the cap" in w for w in warnings)
    assert at.multiselect(key="pg_runs").value == ["toy_b/cached"]
    assert at.text_area(key="pg_prompt").value == "a fox"
    assert at.number_input(key="pg_max_new_tokens").value == 1024
    assert at.toggle(key="pg_tokens").value is True
    at.number_input(key="pg_max_new_tokens").set_value(20)
    at.button(key="pg_go").click().run()
    assert not at.exception
    # Token view: spans with hover titles listing the alternatives, and the legend.
    body = next(h.value for h in at.html if "title=" in h.value and "alternatives" in h.value)
    assert body.count("<span") >= 2
    assert any("Probability of the chosen token" in h.value for h in at.html)


def test_prompt_tokens_view_shows_pieces_ids_and_unrepresentable_characters(app_at, toy_models):
    at = open_playground(app_at, toy_models, {"run": ["toy_a/run1", "toy_b/cached"], "prompt": "Hi there"})
    at.toggle(key="pg_split").set_value(True).run()
    assert not at.exception
    assert any(s.value == "How each tokenizer reads the prompt" for s in at.subheader)
    views = [h.value for h in at.html if "⟨bos⟩" in h.value]
    assert len(views) == 2  # one per run, bos labelled
    for view in views:  # bos + 8 characters, each with its id under it (space is id 26)
        assert "token 8:" in view and "token 9:" not in view and ">26<" in view
    assert sum("Cannot represent: 'H' (U+0048)" in _md_plain(w.value) for w in at.warning) == 2


def test_a_generate_click_survives_a_rerun_that_interrupts_its_run(app_at, toy_models, monkeypatch):
    """Under load, another rerun (a widget, a second session's traffic) can interrupt the run
    that saw the click before its columns started: the click must still generate, once."""
    import streamlit as st

    from pages import common

    real = common.client_in_lane
    calls = {"n": 0}

    def interrupted_once(run_id, lane, *session):
        calls["n"] += 1
        if calls["n"] == 1:
            st.rerun()  # a rerun arriving right after the click's run began (the button reads False then)
        return real(run_id, lane, *session)

    monkeypatch.setattr(common, "client_in_lane", interrupted_once)
    at = open_playground(app_at, toy_models)
    generate(at, ["toy_a/run1"])
    assert calls["n"] >= 2
    assert column_texts(at).get("toy_a/run1"), "the click was lost"
    assert any("History (1)" in s.value for s in at.subheader)
    at.run()  # the click is consumed: another run does not generate again
    assert any("History (1)" in s.value for s in at.subheader)


def test_stop_cancels_a_generate_click_not_yet_started(app_at, toy_models):
    at = open_playground(app_at, toy_models)
    at.multiselect(key="pg_runs").set_value(["toy_a/run1"]).run()
    at.button(key="pg_go").click()
    at.button(key="pg_stop").click().run()  # both in one run: Stop comes after
    assert not at.exception
    assert not any("History" in s.value for s in at.subheader)
    at.run()
    assert not any("History" in s.value for s in at.subheader)
