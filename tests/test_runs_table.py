"""The Loss curves runs table: its values, sort and filter, and that a changed file is re-read."""

from __future__ import annotations

import numpy as np
import pytest

from sandbox.curves import prepare, runtable
from sandbox.zoo import discovery, logread, logs, synthetic


@pytest.fixture
def lab(tmp_path):
    logread.clear_cache()
    runtable.clear_cache()
    planned = synthetic.write_lab(tmp_path, runs=60, rows=40)
    runs = discovery.all_runs(tmp_path)
    return planned, runs, runtable.runs_table(runs)


def test_rows_hold_the_losses_status_and_differing_config_keys(lab):
    planned, runs, table = lab
    assert len(table) == 60
    assert {"dim", "n_layers", "learning_rate", "tokenizer", "seed"} <= set(table.columns)
    assert "max_seq_len" not in table  # the same for every run: not a column
    by_id = table.set_index("run")
    for p, run in zip(planned, runs, strict=True):
        row = by_id.loc[p.id]
        expected = "diverged" if p.diverges else "training" if p.growing else "ok"
        assert row["status"] == expected, p.id
        val = run.log().columns[logs.VAL_LOSS]
        finite = val[np.isfinite(val)]
        assert row["best val loss"] == finite.min() and row["final val loss"] == finite[-1]
        assert row["smoothed val loss"] == pytest.approx(prepare.smooth(finite, runtable.SMOOTHING)[-1])
        assert np.isnan(row["parameters"])  # no worker has counted it: blank, never a guess


def test_sort_puts_the_best_first_and_blanks_last(lab):
    _, _, table = lab
    for col in ("best val loss", "final val loss", "smoothed val loss", "tokens seen"):
        ordered = runtable.sort_table(table, col)[col].to_numpy()
        finite = ordered[~np.isnan(ordered)]
        assert (np.diff(finite) >= 0).all() and not np.isnan(ordered[: finite.size]).any()
    desc = runtable.sort_table(table, "best val loss", descending=True)["best val loss"].to_numpy()
    assert desc[0] == np.nanmax(desc)
    status = list(runtable.sort_table(table, "status")["status"])
    assert status == sorted(status, key=runtable.STATUS_ORDER.__getitem__)


def test_filter_by_regex_and_config_values(lab):
    _, _, table = lab
    hits, warning = runtable.filter_table(table, r"r00[0-4]\d")
    assert warning is None and sorted(hits["run"]) == [f"lab_a/r{i:04d}" for i in range(50)]
    hits, _ = runtable.filter_table(table, "dim=128")
    assert set(hits["dim"]) == {"128"} and len(hits) == 20
    hits, _ = runtable.filter_table(table, "", {"dim": ["64", "256"], "tokenizer": ["char"]})
    assert set(hits["dim"]) == {"64", "256"} and set(hits["tokenizer"]) == {"char"}
    hits, warning = runtable.filter_table(table, "r00(")
    assert warning and "plain text" in warning and hits.empty
    assert len(runtable.filter_table(table, "   ")[0]) == 60


def test_a_changed_log_is_read_again(lab):
    _, runs, table = lab
    run = runs[0]
    text = run.log_path.read_text().splitlines()
    cells = text[-1].split(",")
    cells[4] = "0.5"  # Validation Loss of the last row
    run.log_path.write_text("\n".join([*text[:-1], ",".join(cells)]) + "\n")
    again = runtable.runs_table(runs).set_index("run")
    assert again.loc[run.id, "final val loss"] == 0.5
    assert again.loc[run.id, "best val loss"] == 0.5
