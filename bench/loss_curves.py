"""Benchmark: Loss curves page pipeline against plain pandas.read_csv of the same files.

50 synthetic runs × 10,000 rows (both header variants) are written to a temp models
directory. "Cold" is what the page does the first time it shows them with its defaults
(all runs, validation + train loss, x = step): read + normalize every log, build the
curves (x, trim, smoothing, downsampling), build the Altair chart and its full Vega-Lite
spec with the data inline. "Cold" starts from empty caches, Altair's chart layout included; "new
data" is the same with the layout already built (a live page whose logs all changed).
"Repeat" is the same call again with nothing changed (what a live page does every two
seconds). Each timing is the best of interleaved repeats, so that load from other
processes on the machine disturbs both sides alike.

    .venv/bin/python bench/loss_curves.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sandbox.curves import charts
from sandbox.curves import view as lossview
from sandbox.curves.prepare import CurveSettings  # noqa: E402
from sandbox.zoo import discovery, logread

RUNS, ROWS, REPEATS = 50, 10_000, 5
V1 = ["Step", "Time Elapsed", "Tokens Per Second", "Train Loss", "Validation Loss",
      "Perplexity", "Learning Rate", "Norm", "Tokens Seen"]  # fmt: skip
V2 = ["Step", "Learning Rate", "Train Loss", "Validation Loss", "Perplexity", "Time Elapsed"]


def write_zoo(root: Path) -> None:
    """RUNS runs in 5 experiments, alternating the two real header variants."""
    rng = np.random.default_rng(0)
    step = np.arange(ROWS) * 10
    for i in range(RUNS):
        run_dir = root / f"exp{i % 5}" / "trained" / f"run{i:02d}"
        run_dir.mkdir(parents=True)
        (run_dir / "model_config.json").write_text(json.dumps({"max_seq_len": 512}))
        (run_dir / "train_config.json").write_text(json.dumps({"batch_size": 16}))
        loss = 1.5 + 3 * np.exp(-step / (2e4 + 500 * i))
        cols = {
            "Step": step,
            "Time Elapsed": step * 0.05,
            "Tokens Per Second": rng.normal(5e4, 1e3, ROWS),
            "Train Loss": loss + rng.normal(0, 0.05, ROWS),
            "Validation Loss": loss + 0.1,
            "Perplexity": np.exp(loss + 0.1),
            "Learning Rate": np.full(ROWS, 1e-3),
            "Norm": rng.random(ROWS),
            "Tokens Seen": step * 8192,
        }
        header = V1 if i % 2 == 0 else V2
        pd.DataFrame({h: cols[h] for h in header}).to_csv(run_dir / "log_data.csv", index=False)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_zoo(root)
        runs = discovery.all_runs(root)
        paths = [run.log_path for run in runs]
        for path in paths:  # same OS page cache for both sides
            path.read_bytes()
        settings = CurveSettings(runs=tuple(r.id for r in runs))

        def pandas_read() -> None:
            for path in paths:
                pd.read_csv(path)

        def render(smoothing: float = 0.0, layout: bool = True) -> None:
            logread.clear_cache()
            lossview.clear_memo()
            if layout:
                charts.clear_cache()
            view = lossview.build(runs, CurveSettings(runs=settings.runs, smoothing=smoothing))
            assert view.spec["data"]["values"]  # the chart spec, data inline

        times: dict[str, list[float]] = {"pandas": [], "cold": [], "data": [], "smooth": []}
        for _ in range(REPEATS):  # interleaved, so that load on the machine hits all alike
            times["pandas"].append(timed(pandas_read))
            times["cold"].append(timed(render))
            times["data"].append(timed(lambda: render(layout=False)))
            times["smooth"].append(timed(lambda: render(0.6, layout=False)))
        best = {k: min(v) for k, v in times.items()}
        render()
        repeat = min(timed(lambda: lossview.build(runs, settings).spec) for _ in range(20))

        with paths[0].open("a") as f:  # a live run logs one more row
            f.write(f"{ROWS * 10}" + ",1" * (len(V1) - 1) + "\n")
        grown = timed(lambda: lossview.build(runs, settings).spec)

        view = lossview.build(runs, settings)
        base = best["pandas"]
        rows = [
            ("pandas.read_csv of the same files", base, ""),
            ("cold render (read+normalize+downsample+chart spec)", best["cold"], "goal ≤ 1.5×, ≤ 1 s"),
            ("  same, chart layout already built", best["data"], ""),
            ("  same, layout built, smoothing 0.6", best["smooth"], ""),
            ("repeat render from cache", repeat, "goal ≤ 50 ms"),
            ("after one log grew by a row", grown, ""),
        ]
        print(f"{RUNS} runs × {ROWS:,} rows; drawn points {len(view.curves.draw):,} of "
              f"{len(view.curves.full):,}; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs")  # fmt: skip
        for label, seconds, goal in rows:
            ratio = f"{seconds / base:5.2f}× pandas" if label.startswith(("cold", "  same")) else ""
            print(f"{label:<52} {seconds * 1e3:8.2f} ms  {ratio:<14} {goal}")


if __name__ == "__main__":
    main()
