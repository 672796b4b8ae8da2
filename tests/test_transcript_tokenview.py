"""History export as Markdown, and the HTML token views (escaping above all)."""

from __future__ import annotations

import re
from datetime import datetime

from sandbox import text as sandbox_text
from sandbox.playground import tokens_html, transcript
from sandbox.playground.settings import SamplingSettings

BASE = SamplingSettings(temperature=0.8, top_k=40, max_new_tokens=50, seed=1)


def _column(run: str, text: str, **kw) -> dict:
    return {
        "run": run,
        "settings": {**BASE.as_dict(), **kw.pop("settings", {})},
        "text": text,
        "n_tokens": 12,
        "status": "done",
        "reason": "length",
        "ttft": 0.05,
        "tokens_per_second": 150.0,
        "used_cache": True,
        "notices": kw.pop("notices", []),
        "error": kw.pop("error", None),
    }


def test_history_markdown_has_prompt_settings_and_every_column():
    entry = transcript.make_entry(
        "Once upon a time",
        BASE,
        [
            _column("template/gpt2_atto", "there was a fox."),
            _column("kv_variant/gqa_atto", "a cat sat.", settings={"temperature": 0.2}, notices=["Cannot represent 'ë'"]),
        ],
        when=datetime(2025, 1, 2, 3, 4, 5),
    )
    md = transcript.history_markdown([entry])
    assert md.startswith("# Playground history\n")
    assert "## Generation 1 — 2025-01-02T03:04:05" in md
    assert "```text\nOnce upon a time\n```" in md
    assert "**Settings:** temperature 0.8 · top-k 40" in md
    assert "### template/gpt2\\_atto" in md and "### kv\\_variant/gqa\\_atto" in md
    assert "```text\nthere was a fox.\n```" in md and "```text\na cat sat.\n```" in md
    assert "**Own settings:** temperature 0.2" in md and md.count("Own settings") == 1
    assert "> Cannot represent 'ë'" in md
    assert "*first token 0.05 s · 150 tok/s · 12 tokens · length*" in md


def test_model_output_cannot_break_out_of_its_code_block():
    nasty = "ok\n```\n# Injected heading\n````\n<script>alert(1)</script>"
    md = transcript.entry_markdown(transcript.make_entry("p", BASE, [_column("a/b", nasty)]))
    fence = "`" * 5  # longer than the longest backtick run (4) in the text
    assert f"{fence}text\n{nasty}\n{fence}" in md
    # Outside the fences, no line of the output starts a heading of its own.
    outside = re.sub(r"`{5}text\n.*?\n`{5}", "", md, flags=re.S)
    assert "Injected" not in outside


def test_errors_and_notices_are_one_escaped_line():
    col = _column("a/b", "", error={"message": "boom\n# not a heading [x](y)"}, notices=["*bold* <b>"])
    md = transcript.entry_markdown(transcript.make_entry("p", BASE, [col]))
    assert "**Error:** boom \\# not a heading \\[x\\](y)" in md
    assert "> \\*bold\\* \\<b\\>" in md


def test_history_keeps_the_newest_entries():
    history: list[dict] = []
    for i in range(7):
        transcript.add_entry(history, {"n": i}, limit=5)
    assert [e["n"] for e in history] == [2, 3, 4, 5, 6]
    assert "No generations yet." in transcript.history_markdown([])


# -- token views ------------------------------------------------------------------------

EVENTS = [
    {"id": 5, "piece": "<script>", "prob": 0.9, "alts": [(5, "<script>", 0.9), (6, '"q"', 0.05)]},
    {"id": 7, "piece": "\n", "prob": 0.02, "alts": [(8, "x", 0.5), (7, "\n", 0.02)]},
    {"id": 99, "piece": "", "prob": 0.3, "alts": [(99, "", 0.3)]},
]


def test_tokens_html_escapes_model_output_everywhere():
    html = tokens_html.tokens_html(EVENTS, {99: "⟨eos⟩"})
    assert "<script>" not in html and "&lt;script&gt;" in html
    # Quotes inside title attributes are escaped, so no attribute can be closed early.
    titles = re.findall(r'title="([^"]*)"', html)
    assert len(titles) == 3 and "&#x27;&quot;q&quot;&#x27;" in titles[0]
    assert "⟨eos⟩" in html and "↵\n" in html


def test_token_title_lists_the_alternatives_with_probabilities():
    title = tokens_html.token_title(EVENTS[1])
    assert "p = 2.0%" in title
    assert "1. 'x'  50.0%" in title and "2. '\\n'  2.0%" in title


def test_colours_go_from_red_to_green_and_the_legend_shows_them():
    hues = [int(tokens_html.prob_color(p).split("(")[1].split(",")[0]) for p in (0, 0.1, 0.5, 1.0)]
    assert hues == sorted(hues) and hues[0] == 0 and hues[-1] == 120
    legend = tokens_html.legend_html()
    assert all(tokens_html.prob_color(p) in legend for p in tokens_html.LEGEND_STEPS)


def test_prompt_views_escape_and_mark():
    html = tokens_html.prompt_tokens_html([1, 2], ["<b>", "&"], {1: "⟨bos⟩"})
    assert "⟨bos⟩" in html and "&amp;" in html and "<b>" not in html
    marked = tokens_html.marked_text_html("a<ë>", ["ë"])
    assert marked.count("<mark") == 1 and "&lt;" in marked and "U+00EB" in marked
    assert tokens_html.plain_html("") .endswith("&nbsp;</div>")
    assert "&lt;i&gt;" in tokens_html.plain_html("<i>")


def test_the_prompt_is_shown_dimmed_and_escaped_before_the_continuation():
    html = tokens_html.plain_html(" and more", prompt="<b>Once</b>")
    assert f'<span style="{tokens_html.PROMPT_STYLE}">&lt;b&gt;Once&lt;/b&gt;</span> and more' in html
    long = tokens_html.tokens_html(EVENTS[:1], prompt="x" * 500)
    assert "…" + "x" * tokens_html.PROMPT_TAIL + "</span>" in long and "x" * (tokens_html.PROMPT_TAIL + 1) not in long


def test_md_escape_keeps_quoted_input_literal():
    assert sandbox_text.md_escape("'$' and '*' (U+002A) [x](y)") == "'\\$' and '\\*' (U+002A) \\[x\\](y)"
