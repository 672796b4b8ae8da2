"""AppTest: the Compare page's four views, their URL state and the passage click-through."""

from __future__ import annotations

import comparezoo
import pytest

RUNS = ["toy_a/r1", "toy_pieces/r1"]


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SANDBOX_DEVICE", "cpu")
    return comparezoo.make_compare_zoo(tmp_path / "models")


def open_view(app_at, zoo, **params):
    at = app_at(zoo)
    for key, value in {"runs": RUNS, "docs": "8", **params}.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    return at


def charts(at) -> int:
    return len(at.get("vega_lite_chart")) + len(at.get("arrow_vega_lite_chart"))


def score(at):
    """Press "Score them" (the runs are not evaluated on the sample yet)."""
    assert any("Not scored on these 8 documents yet" in i.value for i in at.info)
    at.button(key="cmp_score").click().run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "cmp_score"]  # scored and cached


def test_text_view_colours_each_character_by_the_best_run_with_a_hover_per_run(app_at, zoo):
    at = open_view(app_at, zoo, view="text")
    score(at)
    html = [h.proto.body for h in at.get("html")]
    text_box = next(h for h in html if "white-space:pre-wrap" in h)
    assert "toy_a/r1: " in text_box and "toy_pieces/r1: " in text_box  # each run in the hover
    assert " rank " in text_box and "p=" in text_box
    assert "rgba(" in text_box  # characters coloured by their winner
    assert charts(at) == 1  # the document's who-wins bars
    # The reference colouring: blue/orange against the reference run, kept in the URL.
    at.radio(key="cmp_colour").set_value("reference").run()
    assert not at.exception
    legend = next(h.proto.body for h in at.get("html") if "better" in h.proto.body)
    assert "toy_pieces/r1 better" in legend and "than toy_a/r1" in legend
    assert at.query_params["colour"] == "reference"
    assert at.query_params["ref"] == "toy_a/r1"


def test_corpus_view_ranks_passages_and_opens_one_in_the_text_view(app_at, zoo):
    at = open_view(app_at, zoo, view="corpus")
    score(at)
    words = " ".join(m.value for m in at.markdown)
    assert "Against toy_a/r1, toy_pieces/r1 wins most often on" in words
    assert charts(at) == 2  # the histogram of per-byte differences and the wins
    opens = [b for b in at.button if b.key and b.key.startswith("cmp_open_")]
    assert len(opens) >= 3
    opens[0].click().run()
    assert not at.exception
    assert at.query_params["view"] == "text"
    start, end = map(int, at.query_params["span"].split("-"))
    assert end > start
    text_box = next(h.proto.body for h in at.get("html") if "white-space:pre-wrap" in h.proto.body)
    assert "outline:2px solid" in text_box  # the passage is outlined


def test_matched_view_reads_losses_at_the_largest_common_point_and_a_chosen_one(app_at, zoo):
    at = open_view(app_at, zoo, view="matched")
    frames = at.dataframe
    assert frames, "no matched table"
    table = frames[0].value
    assert set(table["axis"]) == {"tokens", "FLOPs"}
    assert table["reached"].all()
    assert charts(at) >= 1
    at.number_input(key="cmp_at_tokens").set_value(5_000.0).run()
    assert not at.exception
    assert at.query_params["at_tokens"] == "5000"
    assert (at.dataframe[0].value.query("axis == 'tokens'")["at"] == 5_000.0).all()


def test_scaling_view_fits_each_group_and_reports_the_multiplier(app_at, zoo):
    at = open_view(app_at, zoo, view="scaling")
    sentence = " ".join(m.value for m in at.markdown)
    assert "toy_a needs 7.59× the compute of toy_pieces" in sentence.replace("\\", "")
    assert charts(at) == 1
    fits = at.dataframe[0].value
    assert list(fits["group"]) == ["toy_a", "toy_pieces"]
    # Grouping by a config key that does not split the runs leaves one group: no multiplier.
    at.selectbox(key="cmp_group").set_value("tokenizer").run()
    assert not at.exception
    assert at.query_params["group"] == "tokenizer"
    assert set(at.dataframe[0].value["group"]) == {"tokenizer=char", "tokenizer=pieces"}
    at.toggle(key="cmp_curves").set_value(True).run()
    assert not at.exception
    assert at.query_params["curves"] == "1"


def test_scaling_view_warns_under_three_points(app_at, zoo):
    for run in ("r2", "r3"):
        (zoo / "toy_pieces" / "trained" / run / "log_data.csv").unlink()
    at = open_view(app_at, zoo, view="scaling")
    warnings = " ".join(w.value for w in at.warning)
    assert "Only 2 point(s) at distinct x in group toy_pieces" in warnings


def test_hostile_link_values_are_ignored_with_a_sentence(app_at, zoo):
    at = open_view(app_at, zoo, view="sideways", span="9-3", loss="lots", runs=[*RUNS, "../etc/passwd"])
    warnings = " ".join(w.value for w in at.warning)
    assert "sideways" in warnings and "passage" in warnings and "target loss" in warnings
    assert "no such run" in warnings
    assert at.query_params["view"] == "text"
