"""Tables of evaluation results: the summary with intervals, accuracy by k, by position, as text."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sandbox.evaluation import metrics
from sandbox.evaluation.results import RunResult
from sandbox.numfmt import format_number


def summary_table(results: list[RunResult], ks: list[int], *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The results table: a row per run, NaN and an ``error`` sentence where a run failed."""
    rows = []
    for r in results:
        row: dict[str, Any] = {"run": r.run_id, "check": "suspect" if r.flags else ""}
        if r.ok:
            point = metrics.metrics(r.sums, list(ks))
            intervals = metrics.bootstrap(r.sums, list(ks), n_resamples=n_resamples, seed=seed)
            for name in metrics.metric_names(list(ks)):
                row[name] = point[name]
                row[f"{name}_lo"], row[f"{name}_hi"] = intervals[name]
            row.update(
                documents=len(r.sums.tokens),
                tokens=r.tokens,
                roundtrip_changed=r.changed_chars / r.n_chars if r.n_chars else 0.0,
                tokens_per_s=r.tokens_per_s,
                parameters=r.info.get("n_params"),
                tokenizer=r.info.get("tokenizer"),
                vocab=r.info.get("vocab_size"),
                cached=r.cached,
                steps=r.budget.get("steps"),  # the training budget, beside every comparison
                tokens_trained=r.budget.get("tokens_trained"),
                train_flops=r.budget.get("train_flops"),
            )
        row["error"] = r.error["message"] if r.error else ""
        rows.append(row)
    columns = ["run", "check", *[c for n in metrics.metric_names(list(ks)) for c in (n, f"{n}_lo", f"{n}_hi")]]
    columns += ["documents", "tokens", "roundtrip_changed", "tokens_per_s", "parameters", "tokenizer", "vocab", "cached",
                "steps", "tokens_trained", "train_flops", "error"]
    return pd.DataFrame(rows).reindex(columns=columns)


def accuracy_by_k(results: list[RunResult], *, n_resamples: int = 300, seed: int = 0) -> pd.DataFrame:
    """Long table (run, k, accuracy, lo, hi) for every k in 1..kmax."""
    frames = []
    for r in results:
        if not r.ok:
            continue
        ks = list(range(1, r.sums.kmax + 1))
        point = metrics.metrics(r.sums, ks)
        ci = metrics.bootstrap(r.sums, ks, n_resamples=n_resamples, seed=seed)
        frames.append(
            pd.DataFrame(
                {
                    "run": r.run_id,
                    "k": ks,
                    "accuracy": [point[f"top{k}"] for k in ks],
                    "lo": [ci[f"top{k}"][0] for k in ks],
                    "hi": [ci[f"top{k}"][1] for k in ks],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "k", "accuracy", "lo", "hi"])


def by_position(results: list[RunResult], ks: list[int]) -> pd.DataFrame:
    """Long table (run, position, tokens, loss, top{k}...) per position in the context window."""
    frames = []
    for r in results:
        if not r.ok or not r.positions:
            continue
        count = r.positions["count"]
        used = count > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            frame = pd.DataFrame({"run": r.run_id, "position": np.flatnonzero(used), "tokens": count[used],
                                  "loss": r.positions["nll"][used] / count[used]})
            for k in ks:
                if k <= r.positions["hits"].shape[1]:
                    frame[f"top{k}"] = r.positions["hits"][used, k - 1] / count[used]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "position", "tokens", "loss"])


def summary_text(table: pd.DataFrame, ks: list[int], digits: int = 4) -> pd.DataFrame:
    """The summary as text cells, "value [lo, hi]", for terminals and plain tables."""

    def cell(row: pd.Series, name: str) -> str:
        value, lo, hi = row.get(name), row.get(f"{name}_lo"), row.get(f"{name}_hi")
        if value is None or pd.isna(value):
            return ""
        return f"{format_number(value, digits)} [{format_number(lo, digits)}, {format_number(hi, digits)}]"

    out = pd.DataFrame({"run": table["run"], "check": table["check"].fillna("")})
    for name in metrics.metric_names(list(ks)):
        out[name] = [cell(row, name) for _, row in table.iterrows()]
    out["roundtrip_changed"] = table["roundtrip_changed"].map(lambda v: "" if pd.isna(v) else f"{v:.2%}")
    out["tokens_per_s"] = table["tokens_per_s"].map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
    out["error"] = table["error"].fillna("")
    return out
