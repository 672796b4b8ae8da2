"""The Compare page's library side: the coloured text and its hover, what is read from disk for
the fits and matched points, the URL state, and the `compare` / `fit` commands."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import comparezoo
import numpy as np
import pytest

from sandbox.analysis import sources, textview
from sandbox.figures.colors import run_color
from sandbox.settings import PROJECT_ROOT
from sandbox.urlstate import compare as url
from sandbox.zoo import accounting
from sandbox.zoo.discovery import all_runs


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    os.environ["SANDBOX_CACHE_DIR"] = str(root / "cache")  # the size records live there
    try:
        yield comparezoo.make_compare_zoo(root / "models"), root / "cache"
    finally:
        os.environ.pop("SANDBOX_CACHE_DIR", None)


# -- the coloured text -------------------------------------------------------------------------


def test_who_wins_colours_on_a_constructed_case():
    per_char = {"e/a": np.array([1.0, 3.0, 2.0, np.nan]), "e/b": np.array([2.0, 1.0, 2.0, 1.0])}
    colours = textview.char_colors(per_char)
    assert colours[0] == textview._hex_rgba(run_color("e/a"), 0.55)
    assert colours[1] == textview._hex_rgba(run_color("e/b"), 0.55)
    assert colours[2] == colours[3] == "transparent"  # a tie; a character without a value


def test_difference_to_a_reference_is_blue_where_better_and_orange_where_worse():
    per_char = {"ref": np.array([2.0, 2.0, 2.0]), "b": np.array([1.0, 2.0, 2.0 + 8 * math.log(2)])}
    colours = textview.char_colors(per_char, mode="reference", reference="ref", other="b")
    assert colours[0].startswith("rgba(31,119,180,")
    assert colours[1] == "transparent"
    assert colours[2] == "rgba(255,127,14,0.85)"  # 8 bits worse: beyond FULL_BITS, full colour
    with pytest.raises(ValueError, match="reference"):
        textview.char_colors(per_char, mode="reference", reference="nope", other="b")


def test_the_text_and_hover_are_escaped():
    text = '<script>alert("x")</script>'
    hover = {'run "q"': ["'<b>' p=1.0%"] * len(text)}
    html = textview.nrun_html(text, ["transparent"] * len(text), hover, mark=(0, 8))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'title="run &quot;q&quot;: &#x27;&lt;b&gt;&#x27; p=1.0%"' in html
    assert "outline:2px solid" in html
    assert "<b>" not in textview.legend_html(["<b>"])


def test_hover_names_the_token_covering_each_character():
    # "ab" + "c": two tokens; the first window has top alternatives for the first token only.
    details = {"ends": [2, 3], "pieces": ["<bos>", "ab", "c"], "nll": np.array([math.log(2), 0.0]),
               "rank": np.array([1, 0]), "top_pieces": [["xy", "ab"]], "top_probs": [[0.6, 0.5]]}  # fmt: skip
    lines = textview.token_hover(details, 4)
    assert lines[0] == lines[1] == "'ab' p=50.0% rank 2 · top: 'xy' 60%, 'ab' 50%"
    assert lines[2] == "'c' p=100.0% rank 1"
    assert lines[3] == "—"  # past the last token


# -- what is read from disk --------------------------------------------------------------------


def test_the_fit_recovers_each_groups_law_and_the_multiplier(zoo):
    models, _ = zoo
    result = sources.fit_scaling(all_runs(models), base="toy_a", variant="toy_pieces", loss=2.0, n_boot=50)
    for group, (e, a, alpha) in comparezoo.LAWS.items():
        law = result.fits[group].law
        assert law.E == pytest.approx(e, abs=1e-3) and law.alpha == pytest.approx(alpha, rel=1e-3)
        assert law.A == pytest.approx(a, rel=1e-2)
    assert result.multiplier.value == pytest.approx((90.0 / 60.0) ** (1 / 0.2), rel=1e-3)
    assert json.loads(json.dumps(result.to_dict()))["multiplier"]["loss"] == 2.0


def test_whole_curves_give_each_group_its_frontier(zoo):
    models, _ = zoo
    result = sources.fit_scaling(all_runs(models), curves=True, n_boot=20)
    points = result.points
    assert set(points["group"]) == {"toy_a", "toy_pieces"}
    for _, rows in points.groupby("group"):
        assert (np.diff(rows["loss"].to_numpy()) < 0).all()  # the frontier only falls
    with pytest.raises(ValueError, match="compute axis"):
        sources.fit_scaling(all_runs(models), axis="params", curves=True)


def test_a_run_without_a_counted_size_is_named_not_guessed(zoo, tmp_path):
    models, _ = zoo
    runs = all_runs(models)
    points, notes = sources.scaling_points(runs, group_by="tokenizer")
    assert set(points["group"]) == {"tokenizer=char", "tokenizer=pieces"}
    os.environ["SANDBOX_CACHE_DIR"] = str(tmp_path)  # an empty cache: no sizes recorded
    try:
        points, notes = sources.scaling_points(runs)
    finally:
        os.environ["SANDBOX_CACHE_DIR"] = str(zoo[1])
    assert points.empty and len(notes) == len(runs)
    assert "not counted yet" in notes[0]


def test_curves_on_the_flops_axis_are_tokens_times_flops_per_token(zoo):
    models, _ = zoo
    runs = [r for r in all_runs(models) if r.id == "toy_a/r2"]
    tokens, _ = sources.run_curves(runs, "tokens")
    flops, _ = sources.run_curves(runs, "flops")
    per_token, _ = accounting.flops_per_token(runs[0])
    np.testing.assert_allclose(flops["toy_a/r2"][0], tokens["toy_a/r2"][0] * per_token)
    assert tokens["toy_a/r2"][0][0] == 10 * 4 * 2 * 64  # step × batch × accumulation × context


# -- the URL -----------------------------------------------------------------------------------


def test_state_round_trips_through_the_url():
    runs = ["e/a", "e/b", "f/c"]
    state = url.CompareState(runs=runs, view="corpus", reference="e/b", other="f/c", colour="reference", docs=12,
                             seed=3, doc=4, span=(10, 90), group="dim", fit_x="params", base="dim=16", variant="dim=32",
                             loss=2.5, at_tokens=1e6, at_flops=2.5e12)  # fmt: skip
    back, warnings = url.from_query(url.to_query(state), runs, group_keys=["experiment", "dim"])
    assert warnings == []
    assert back == state


# -- the commands --------------------------------------------------------------------------------


def sandbox(*args, cache):
    env = {**os.environ, "SANDBOX_CACHE_DIR": str(cache), "SANDBOX_DEVICE": "cpu"}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_ROOT, timeout=600)  # fmt: skip


def test_fit_command_prints_the_laws_and_the_multiplier_as_json(zoo):
    models, cache = zoo
    out = sandbox("fit", "--models-dir", str(models), "--group-by", "experiment", "--base", "toy_a",
                  "--variant", "toy_pieces", "--boot", "40", "--json", cache=cache)  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [f["group"] for f in data["fits"]] == ["toy_a", "toy_pieces"]
    assert data["multiplier"]["multiplier"] == pytest.approx(1.5**5, rel=1e-3)
    bad = sandbox("fit", "--models-dir", str(models), "--group-by", "colour", cache=cache)
    assert bad.returncode == 2 and "use one of experiment" in bad.stderr


def test_compare_command_ranks_passages_and_counts_wins(zoo):
    models, cache = zoo
    out = sandbox("compare", "--models-dir", str(models), "--runs", "toy_a/r1", "toy_pieces/r1", "--docs", "6",
                  "--top", "3", "--json", cache=cache)  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["reference"] == "toy_a/r1"
    assert sum(data["wins"]["share"].values()) + data["wins"]["tie_share"] == pytest.approx(1.0)
    (comparison,) = data["comparisons"]
    assert comparison["run"] == "toy_pieces/r1" and len(comparison["passages"]) == 3
    assert comparison["sentence"].startswith("Against toy_a/r1, toy_pieces/r1 wins most often on")
    bad = sandbox("compare", "--models-dir", str(models), "--runs", "toy_a/r1", cache=cache)
    assert bad.returncode == 2 and "2 to 6 different runs" in bad.stderr
