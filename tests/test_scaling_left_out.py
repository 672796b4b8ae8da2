"""Scaling fits: the runs left out are one line with a count, not a line each."""

from __future__ import annotations

import toyzoo

from sandbox.analysis import sources
from sandbox.zoo.discovery import discover


def test_many_runs_left_out_are_one_line_with_a_count(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    models = tmp_path / "models"
    names = tuple(f"r{i:02d}" for i in range(12))
    root = toyzoo.make_toy_a(models, runs=names)
    for name in names:
        (root / "trained" / name / "log_data.csv").unlink()  # no validation loss: left out
    runs = [run for exp in discover(models) for run in exp.runs]
    result = sources.fit_scaling(runs, n_boot=10)
    [line] = [n for n in result.notes if "left out" in n]
    assert line.startswith(f"{len(names)} runs left out: toy_a/r00: no validation loss in its log")
    assert line.endswith(f"and {len(names) - sources.SHOWN_LEFT_OUT} more (the JSON export lists every one).")
    assert len(result.left_out) == len(names) and result.to_dict()["left_out"] == result.left_out
    # One run left out keeps its own sentence.
    assert sources.collapse_left_out(result.left_out[:1]) == result.left_out[:1]
    assert sources.collapse_left_out([]) == []
