"""sandbox.curves.prepare: TensorBoard smoothing, downsampling, x axes, trimming and the summary."""

from __future__ import annotations

import json
from dataclasses import replace

import logzoo  # noqa: E402
import numpy as np
import pandas as pd
import pytest

from sandbox.curves import axes, prepare
from sandbox.curves.axes import XAxis  # noqa: E402
from sandbox.curves.prepare import CurveSettings
from sandbox.zoo import accounting, discovery, logread


def tensorboard_smooth(values, weight):
    """TensorBoard's loop, transcribed: the reference the vectorised version must equal."""
    last, num_accum, out = 0.0, 0, []
    for v in values:
        if not np.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        num_accum += 1
        out.append(last / (1 - weight**num_accum))
    return np.array(out)


def test_smoothing_matches_hand_computed_tensorboard_values():
    # w = 0.5 on [1, 2, 3]: last = 0.5, 1.25, 2.125; debias = 0.5, 0.75, 0.875.
    np.testing.assert_allclose(prepare.smooth([1.0, 2.0, 3.0], 0.5), [1.0, 1.25 / 0.75, 2.125 / 0.875])
    # w = 0.6 on [1, 2, nan, 4]: the NaN is passed through and does not count.
    out = prepare.smooth([1.0, 2.0, np.nan, 4.0], 0.6)
    assert np.isnan(out[2])
    np.testing.assert_allclose(out[[0, 1, 3]], [1.0, 1.625, 2.8367346938775513])


def test_smoothing_equals_the_tensorboard_loop_with_gaps_and_infinities():
    rng = np.random.default_rng(7)
    values = rng.normal(3, 1, 500)
    values[[10, 11, 200]] = np.nan
    values[[50, 300]] = [np.inf, -np.inf]
    for weight in (0.0, 0.3, 0.6, 0.9, 0.99):
        expected = tensorboard_smooth(values, weight)
        got = prepare.smooth(values, weight)
        np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)
    assert prepare.smooth(values, 0.0) is not values  # a copy, never the log's own array


@pytest.mark.parametrize("weight", [1e-6, 0.01, 0.6, 0.99, 0.999])
def test_smoothing_long_series_crosses_blocks_exactly(weight):
    # 20,000 values: with small weights the numpy EMA works in many blocks (w**-k would
    # overflow over one), and the carry between them must not show.
    rng = np.random.default_rng(11)
    values = np.abs(rng.normal(3, 1, 20_000)) + 0.1
    values[rng.random(values.size) < 0.01] = np.nan
    expected = pd.Series(values).ewm(alpha=1 - weight, adjust=True, ignore_na=True).mean().to_numpy()
    got = prepare.smooth(values, weight)
    finite = np.isfinite(values)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-10)
    assert np.isnan(got[~finite]).all()


def test_downsampling_keeps_endpoints_and_extremes_and_caps_the_size():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, 100_000)
    values[12_345], values[77_777] = 50.0, -50.0  # one spike each way
    keep = prepare.downsample_mask(values, 2000)
    assert keep.sum() <= 2000
    assert keep[0] and keep[-1]
    assert keep[12_345] and keep[77_777]
    kept = values[keep]
    assert kept.max() == values.max() and kept.min() == values.min()


def test_downsampling_keeps_the_start_of_a_nan_stretch_and_short_series():
    values = np.linspace(5, 1, 10_000)
    values[4000:6000] = np.nan
    values[8000] = np.inf
    keep = prepare.downsample_mask(values, 500)
    assert keep[4000] and keep[8000]  # the gaps stay gaps
    assert not keep[4001]
    assert keep.sum() <= 500 + 2
    assert prepare.downsample_mask(np.array([1.0, np.nan, 3.0]), 500).all()
    assert prepare.downsample_mask(np.full(5000, np.nan), 100).sum() <= 3  # no extremes to keep


def test_points_per_series_shares_a_budget():
    assert prepare.points_per_series(1) == prepare.MAX_POINTS
    assert prepare.points_per_series(100) == prepare.TOTAL_POINTS // 100
    assert prepare.points_per_series(10_000) == prepare.MIN_POINTS


@pytest.fixture
def zoo(tmp_path):
    logzoo.make_zoo(tmp_path)
    runs = {run.id: run for run in discovery.all_runs(tmp_path)}
    logread.clear_cache()
    return runs, logread.read_logs({rid: run.log_path for rid, run in runs.items()})


def test_tokens_per_step_from_the_configs(tmp_path):
    run_dir = logzoo.add_run(tmp_path, "e", "r", None, train={"batch_size": 4, "gradient_accumulation_steps": 2})
    run = discovery.Run("e", "r", run_dir)
    per_step, how = accounting.tokens_per_step(run)
    assert per_step == 4 * 2 * 64  # max_seq_len 64 from model_config.json
    assert "batch_size 4" in how and "max_seq_len 64" in how

    (run_dir / "train_config.json").write_text(json.dumps({"batch_size": 8, "seq_len": 32}))
    (run_dir / "model_config.json").write_text(json.dumps({"dim": 16}))
    per_step, how = accounting.tokens_per_step(run)
    assert per_step == 8 * 1 * 32 and "absent, so 1" in how

    (run_dir / "train_config.json").unlink()
    assert accounting.tokens_per_step(run)[0] is None


def test_tokens_axis_is_computed_from_train_config_when_not_logged(zoo):
    runs, parsed = zoo
    settings = CurveSettings(runs=("alpha/v1", "beta/v2", "beta/broken"), metrics=("train loss",), x="tokens")
    result = prepare.prepare(parsed, runs, settings)
    assert set(result.computed) == {"beta/v2"}
    assert "beta/broken" in result.unavailable  # no train_config.json: listed, not faked
    assert "beta/broken" not in set(result.draw["run"].astype(str))
    v2 = result.draw[result.draw["run"] == "beta/v2"]
    np.testing.assert_array_equal(v2["x"], v2["step"] * 4 * 2 * 64)
    v1 = result.draw[result.draw["run"] == "alpha/v1"]
    np.testing.assert_array_equal(v1["x"], v1["step"] * 1024)  # the logged column wins
    assert result.x_title == "Tokens seen (computed)"


def test_time_axis_lists_runs_without_a_time_column(tmp_path):
    logzoo.add_run(tmp_path, "e", "notime", "Step,Train Loss\n0,3\n10,2\n")
    runs = {run.id: run for run in discovery.all_runs(tmp_path)}
    parsed = logread.read_logs({rid: run.log_path for rid, run in runs.items()})
    result = prepare.prepare(parsed, runs, CurveSettings(runs=("e/notime",), metrics=("train loss",), x="time"))
    assert "e/notime" in result.unavailable and result.draw.empty
    assert len(result.summary["train loss"]) == 1  # the table still reports the run


def test_a_new_axis_is_one_entry(monkeypatch, zoo):
    runs, parsed = zoo
    flops = XAxis("flops", "Training FLOPs", "flops", per_step=lambda run: (1e9, "6 × N × tokens"))
    monkeypatch.setitem(axes.X_AXES, "flops", flops)
    result = prepare.prepare(parsed, runs, CurveSettings(runs=("alpha/v1",), metrics=("train loss",), x="flops"))
    np.testing.assert_array_equal(result.draw["x"], result.draw["step"] * 1e9)
    assert result.computed == {"alpha/v1": "6 × N × tokens"}


def test_trim_and_log_axes(zoo):
    runs, parsed = zoo
    base = CurveSettings(runs=("alpha/v1",), metrics=("train loss",))
    full = prepare.prepare(parsed, runs, base).draw
    trimmed = prepare.prepare(parsed, runs, replace(base, trim=20.0)).draw
    assert len(full) == 50 and len(trimmed) == 40
    assert trimmed["step"].min() == 100  # the first 10 of 50 rows are gone
    logged = prepare.prepare(parsed, runs, replace(base, log_x=True))
    assert logged.draw["x"].min() > 0
    assert any("x ≤ 0" in note for note in logged.notes)


def test_diverged_points_are_gaps_with_a_marker(zoo):
    runs, parsed = zoo
    result = prepare.prepare(parsed, runs, CurveSettings(runs=("beta/broken",), metrics=("train loss",)))
    draw = result.draw
    onset = draw[draw["onset"]]
    assert onset["step"].tolist() == [300]
    last_finite = draw[(draw["step"] < 300) & draw["value"].notna()].iloc[-1]["value"]
    assert onset["marker_y"].iloc[0] == pytest.approx(last_finite)
    assert draw[draw["step"] >= 300]["value"].isna().all()  # NaN and inf both become gaps


def test_draw_is_capped_but_full_keeps_every_row(tmp_path):
    frame = logzoo.curve_frame(logzoo.V2, rows=10_000)
    logzoo.add_run(tmp_path, "e", "long", frame.to_csv(index=False))
    runs = {run.id: run for run in discovery.all_runs(tmp_path)}
    parsed = logread.read_logs({rid: run.log_path for rid, run in runs.items()})
    settings = CurveSettings(runs=("e/long",), metrics=("train loss", "validation loss"), smoothing=0.6)
    result = prepare.prepare(parsed, runs, settings, max_points=500)
    assert (result.draw.groupby("metric", observed=True).size() <= 500).all()
    full = result.full
    assert len(full) == 20_000 and list(full.columns) == prepare.FULL_COLUMNS
    np.testing.assert_allclose(
        full[full["metric"] == "train loss"]["smoothed"], prepare.smooth(frame["Train Loss"].to_numpy(), 0.6)
    )


def test_summary_final_best_rank_and_divergence(zoo):
    runs, parsed = zoo
    settings = CurveSettings(
        runs=("alpha/v1", "beta/v2", "beta/broken"),
        metrics=("train loss", "tokens/s", "learning rate"),
        trim=50.0,  # the table ignores trimming: it reads the full logs
    )
    tables = prepare.prepare(parsed, runs, settings).summary
    loss = tables["train loss"].set_index("run")
    v1 = parsed["alpha/v1"].columns
    assert loss.loc["alpha/v1", "final"] == pytest.approx(v1["train loss"][-1])
    assert loss.loc["alpha/v1", "best"] == pytest.approx(v1["train loss"].min())
    assert loss.loc["alpha/v1", "best step"] == 490
    assert loss.loc["alpha/v1", "rank"] == 1 and loss.loc["beta/v2", "rank"] == 2
    assert np.isnan(loss.loc["beta/broken", "final"])  # the last value logged: diverged
    assert loss.loc["beta/broken", "diverged at step"] == 300
    assert tables["train loss"]["run"].astype(str).tolist()[0] == "alpha/v1"  # best first
    assert tables["tokens/s"].iloc[0]["best"] == v1["tokens/s"].max()  # higher is better
    assert tables["learning rate"]["rank"].isna().all()  # no better direction


# -- the training-FLOPs axis ------------------------------------------------------------------
FLOPS_MODEL = {"max_seq_len": 64, "dim": 16, "n_layers": 2}
PER_TOKEN = 6 * 1000 + 12 * 2 * 64 * 16  # 6·N + 12·layers·context·dim with N = 1000


def flops_run(tmp_path, monkeypatch, log: str, train: dict | None = None) -> discovery.Run:
    """A run with a stored parameter count (N = 1000 non-embedding), as the Models page leaves it."""
    from sandbox.zoo import accounting

    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    run_dir = logzoo.add_run(tmp_path / "models", "e", "r", log, train=train, model=FLOPS_MODEL)
    run = discovery.Run("e", "r", run_dir)
    assert accounting.store_breakdown(run, {"total": 5000, "non_embedding": 1000, "embedding": 4000, "parts": {}})
    logread.clear_cache()
    return run


def prepare_flops(run: discovery.Run) -> prepare.Curves:
    parsed = logread.read_logs({run.id: run.log_path})
    return prepare.prepare(parsed, {run.id: run}, CurveSettings(runs=(run.id,), metrics=("train loss",), x="flops"))


def test_flops_axis_keeps_a_run_whose_last_row_has_no_tokens(tmp_path, monkeypatch):
    run = flops_run(tmp_path, monkeypatch, "Step,Train Loss,Tokens Seen\n0,3.0,0\n10,2.5,10240\n20,2.2,20480\n30,2.1,\n")
    result = prepare_flops(run)
    assert "e/r" not in result.unavailable
    assert result.draw["x"].tolist() == [0, 10240 * PER_TOKEN, 20480 * PER_TOKEN]  # per row, from its tokens
    assert any("e/r" in note and "1 of 4" in note and "tokens" in note for note in result.notes), result.notes


def test_flops_axis_names_a_run_it_cannot_place(tmp_path, monkeypatch):
    run = flops_run(tmp_path, monkeypatch, "Step,Train Loss,Tokens Seen\n0,3.0,\n10,2.5,\n")
    result = prepare_flops(run)
    assert result.draw.empty
    assert "e/r" in result.unavailable and "tokens" in result.unavailable["e/r"]


def test_flops_axis_from_configs_and_its_title_has_one_qualifier(tmp_path, monkeypatch):
    run = flops_run(tmp_path, monkeypatch, "Step,Train Loss\n0,3.0\n10,2.5\n", train={"batch_size": 4})
    result = prepare_flops(run)
    assert result.draw["x"].tolist() == [0, 10 * 4 * 64 * PER_TOKEN]
    assert "e/r" in result.computed
    assert result.x_title.count("(") == 1 and "estimated" in result.x_title
