"""The per-metric summary of curves: final and best value, rank, divergence, from the full logs."""

from __future__ import annotations

import numpy as np
import pandas as pd

# ---------------------------------------------------------------------------------------
# Summary table

_LOWER_IS_BETTER = ("loss", "perplexity", "ppl", "error", "bpb", "bpc")
_HIGHER_IS_BETTER = ("accuracy", "acc", "tokens/s", "throughput", "score")


def goal(metric: str) -> str | None:
    """"min" or "max" when a metric has a better direction, else None (e.g. learning rate)."""
    name = metric.lower()
    if any(word in name for word in _LOWER_IS_BETTER):
        return "min"
    if any(word in name for word in _HIGHER_IS_BETTER):
        return "max"
    return None


SUMMARY_COLUMNS = ["run", "final", "best", "best step", "rank", "final step", "diverged at step", "points"]


def summary_row(run: str, metric: str, step: np.ndarray, value: np.ndarray) -> dict:
    """Final, best (by the metric's direction) and divergence of one full series."""
    finite = np.isfinite(value)
    direction = goal(metric)
    best = best_step = np.nan
    if direction is not None and finite.any():
        masked = value if finite.all() else np.where(finite, value, np.inf if direction == "min" else -np.inf)
        i = int(np.argmin(masked) if direction == "min" else np.argmax(masked))
        best, best_step = value[i], step[i]
    return {
        "run": run,
        "metric": metric,
        "final": value[-1],
        "best": best,
        "best step": best_step,
        "final step": step[-1],
        "diverged at step": np.nan if finite.all() else step[~finite][0],
        "points": int(value.size),
    }


def summary_tables(rows: list[dict], run_ids: list[str], metrics: list[str]) -> dict[str, pd.DataFrame]:
    """Per metric, one row per run, best first; "final" is the last value logged, even NaN/inf."""
    if not rows:
        return {}
    table = pd.DataFrame(rows)
    up = table["metric"].map(goal) == "max"
    # Rank by the best value, in each metric's own direction (higher is better: negate).
    table["rank"] = (
        table["best"].where(~up, -table["best"]).groupby(table["metric"]).rank(method="min").astype("Int64")
    )
    table["run"] = pd.Categorical(table["run"], categories=run_ids)
    out = {}
    for metric in metrics:
        sub = table[table["metric"] == metric]
        if len(sub):
            sub = sub.sort_values(["rank", "run"], na_position="last")
            out[metric] = sub[SUMMARY_COLUMNS].reset_index(drop=True)
    return out
