"""AppTest of the Evaluation page (shipped runs end to end; toy runs for errors and links)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import toyzoo

from sandbox.urlstate import evaluation

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p.parent.parent.parent.name + "/" + p.parent.name for p in (ROOT / "models").glob("*/trained/*/model.pth"))


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch, tmp_path):
    """A fresh result cache per test: every evaluation here really runs."""
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))


def _open(app_at, models: Path, query: dict | None = None):
    at = app_at(models)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception, at.exception
    return at


def _evaluate(at, runs: list[str], docs: int):
    at.multiselect(key="ev_runs").set_value(runs)
    at.number_input(key="ev_docs").set_value(docs)
    at.run()
    at.button(key="ev_go").click().run()
    assert not at.exception, at.exception
    return at


def _results_table(at):
    return next(df.value for df in at.dataframe if "bits_per_byte" in df.value.columns)


@pytest.mark.skipif(len(SHIPPED) < 2, reason="needs two trained shipped runs under models/")
def test_two_shipped_runs_end_to_end(app_at):
    from pages import common

    at = _open(app_at, ROOT / "models")
    at = _evaluate(at, SHIPPED[:2], docs=4)
    table = _results_table(at).set_index("run")
    assert list(table.index) == SHIPPED[:2]
    for run in SHIPPED[:2]:
        for column in ("top1", "top5", "top10", "loss", "perplexity", "bits_per_byte"):
            assert math.isfinite(float(table.loc[run, column])), (run, column)
        assert 0 < table.loc[run, "top1"] <= table.loc[run, "top10"] <= 1
        assert table.loc[run, "error"] == ""
    assert at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")
    common.worker_pool().close_all()


def test_toy_runs_error_row_and_link_warnings(app_at, tmp_path):
    from pages import common

    models = tmp_path / "models"
    toyzoo.make_toy_a(models)
    toyzoo.make_toy_b(models)
    broken = toyzoo.make_toy_b(models, name="broken_b")
    (broken / "modules/model.py").write_text("def oops(:\n")
    query = {"runs": ["toy_a/run1", "../../etc/passwd"], "k": ["1", "7"], "docs": "3", "seed": "abc"}
    at = _open(app_at, models, query)
    warnings = " ".join(w.value for w in at.warning)
    assert "passwd" in warnings and "`7`" in warnings and "`abc`" in warnings
    assert at.multiselect(key="ev_runs").value == ["toy_a/run1"]
    assert at.multiselect(key="ev_ks").value == [1]
    assert at.number_input(key="ev_docs").value == 3
    at = _evaluate(at, ["toy_a/run1", "broken_b/cached", "toy_b/cached"], docs=3)
    table = _results_table(at).set_index("run")
    assert list(table.index) == ["toy_a/run1", "broken_b/cached", "toy_b/cached"]
    for run in ("toy_a/run1", "toy_b/cached"):
        assert math.isfinite(float(table.loc[run, "loss"])) and math.isfinite(float(table.loc[run, "bits_per_byte"]))
    assert "syntax error on line 1" in table.loc["broken_b/cached", "error"]
    assert any("broken_b/cached" in e.value for e in at.error)
    # Results stay in the session: changing a widget redraws without recomputing.
    at.selectbox(key="ev_doc").set_value(1).run()
    assert not at.exception
    assert _results_table(at).set_index("run").loc["toy_a/run1", "loss"] == table.loc["toy_a/run1", "loss"]
    assert at.query_params["runs"] == ["toy_a/run1", "broken_b/cached", "toy_b/cached"]
    # Per-token tables (one per healthy run) and the A-vs-B heat map were drawn.
    assert sum("<table" in h.proto.body for h in at.get("html")) == 2
    assert any("A is better on" in c.value for c in at.caption)
    common.worker_pool().close_all()


def test_a_huge_perplexity_is_shown_in_scientific_notation(app_at, tmp_path):
    """A run sure of the wrong token has a perplexity near 1e35: not a 36-digit number."""
    import json
    import re

    from test_evaluation import make_fixed

    from pages import common

    models = tmp_path / "models"
    make_fixed(models)
    at = _open(app_at, models)
    at = _evaluate(at, ["fixed/awful", "fixed/peaked"], docs=3)
    grid = next(df for df in at.dataframe if "bits_per_byte" in df.value.columns)
    shown = grid.value.set_index("run")
    # Streamlit's grid cannot format numbers this large (it shows raw digits with an error
    # mark): the column is text in scientific notation.
    assert re.fullmatch(r"5\.\d{4}e\+34", shown.loc["fixed/awful", "perplexity"])
    assert re.fullmatch(r"\d\.\d{4}", shown.loc["fixed/peaked", "perplexity"])
    formats = {name: column.get("type_config", {}).get("format") for name, column in json.loads(grid.proto.columns).items()}
    assert formats["loss"] == "%.4f" and shown["loss"].dtype.kind == "f"  # ordinary columns stay numbers
    intervals = list(grid.value["perplexity 95% CI"])
    assert "e+" in intervals[0] and len(intervals[0]) < 40, intervals
    common.worker_pool().close_all()


def test_query_round_trip():
    sel = evaluation.EvalSelection(runs=["a/b"], ks=[1, 10], docs=25, seed=3)
    back, warnings = evaluation.from_query(evaluation.to_query(sel), ["a/b"])
    assert back == sel and warnings == []
    back, warnings = evaluation.from_query({"docs": ["2.5"], "seed": ["-1"]}, ["a/b"])
    assert (back.docs, back.seed) == (100, 0) and len(warnings) == 2


def test_data_source_round_trips_through_the_link():
    files = ["a.txt", "sub/b.jsonl"]
    for data in ("bundled", "file:sub/b.jsonl", "upload"):
        sel = evaluation.EvalSelection(runs=["a/b"], data=data)
        back, warnings = evaluation.from_query(evaluation.to_query(sel), ["a/b"], data_files=files)
        assert back.data == data and warnings == [], (data, warnings)
    spec = "hf:roneneldan/TinyStories:validation"
    back, warnings = evaluation.from_query({"data": [spec]}, ["a/b"], hf_available=True)
    assert back.data == spec and not warnings
    for bad, why in (
        ("file:../../etc/passwd", "not a file in the data folder"),
        ("/etc/passwd", "not a data source"),
        ("hf:x:y:z:w", "not a data source"),
        ("hf:a/b;rm -rf:train", "not a data source"),
        (spec, "datasets"),  # a valid spec, but this server cannot load Hugging Face data
    ):
        back, warnings = evaluation.from_query({"data": [bad]}, ["a/b"], data_files=files)
        assert back.data == "bundled", bad
        assert len(warnings) == 1 and why in warnings[0], (bad, warnings)


def test_the_link_carries_and_restores_the_data_source(app_at, toy_models, tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    (data_dir / "sub").mkdir(parents=True)
    (data_dir / "a.txt").write_text("one\n\ntwo\n\nthree\n")
    (data_dir / "sub" / "b.jsonl").write_text('{"text": "x"}\n{"text": "y"}\n')
    monkeypatch.setenv("SANDBOX_DATA_DIR", str(data_dir))
    at = _open(app_at, toy_models, {"data": "file:sub/b.jsonl"})
    assert not at.warning, [w.value for w in at.warning]
    assert at.radio(key="ev_source").value == "Data folder"
    assert at.selectbox(key="ev_file").value == "sub/b.jsonl"
    assert any("2 documents in the source" in c.value for c in at.caption)
    at.selectbox(key="ev_file").set_value("a.txt").run()
    assert at.query_params["data"] in ("file:a.txt", ["file:a.txt"])
    at.radio(key="ev_source").set_value("Upload a file").run()
    assert at.query_params["data"] in ("upload", ["upload"])
    assert any("cannot be part of a link" in c.value for c in at.caption)  # said, not silently dropped
    at.radio(key="ev_source").set_value("Bundled corpus (validation)").run()
    assert at.query_params["data"] in ("bundled", ["bundled"])
    # Opened from a link made with an upload: the upload is asked for again.
    at = _open(app_at, toy_models, {"data": "upload"})
    assert at.radio(key="ev_source").value == "Upload a file"
    assert any("upload it again" in i.value for i in at.info)
    # A file that is not offered: one warning, the bundled corpus instead.
    at = _open(app_at, toy_models, {"data": "file:../../../etc/passwd"})
    assert any("not a file in the data folder" in w.value for w in at.warning)
    assert at.radio(key="ev_source").value == "Bundled corpus (validation)"


def test_view_helpers_escape_and_line_up():
    import numpy as np

    from sandbox.evaluation import views

    grid = views.char_grid("ab\ncdef", width=3)
    assert list(grid["char"]) == ["a", "b", "↵", "c", "d", "e", "f"]
    assert list(zip(grid["row"], grid["col"], strict=True)) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
    frame = views.heatmap_frame("ab\ncdef", np.arange(7.0), np.ones(7))
    assert list(frame["a_minus_b"]) == [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert views.char_heatmap(frame, "x/a", "x/b").to_dict()  # a valid Vega-Lite spec
    details = {
        "ids": [9, 1, 2],
        "pieces": ["", "<b>", "ok"],
        "rank": np.array([0, 3]),
        "top_ids": np.array([[1, 2], [1, 2]]),
        "top_probs": np.array([[0.6, 0.3], [0.5, 0.2]]),
        "top_pieces": [["<b>", "ok"], ["<b>", "ok"]],
    }
    html = views.topk_table_html(details, k=2, n_positions=5)
    assert "<b>" not in html and "&lt;b&gt;" in html  # model text is escaped
    assert html.count("<tr>") == 2 + 1  # two positions and the header
    assert html.count(views.MISS) == 1  # position 1: rank 3 is not in the top 2


def test_cli_eval_prints_the_page_numbers(toy_models, capsys, monkeypatch, tmp_path):
    import json

    from sandbox import cli

    argv = ["eval", "--models-dir", str(toy_models), "--runs", "toy_a/run1", "toy_b/cached", "--docs", "3",
            "--k", "1", "5", "--device", "cpu"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "toy_a/run1" in text and "toy_b/cached" in text and "bits_per_byte" in text
    assert cli.main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = {row["run"]: row for row in payload["summary"]}
    assert set(rows) == {"toy_a/run1", "toy_b/cached"}
    assert all(row["cached"] for row in rows.values())  # the second time comes from the cache
    # The text table shows the same loss as the JSON, to its 4 decimals.
    assert f"{rows['toy_a/run1']['loss']:.4f}" in text
    assert cli.main(["eval", "--models-dir", str(toy_models), "--runs", "nope/x", "--docs", "2"]) == 1
    assert "no run called 'nope/x'" in capsys.readouterr().err
