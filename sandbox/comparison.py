"""Fair comparison: what two runs differ in and what each cost, as one card.

The card puts side by side what differs (config keys, changed files), the price
(parameters, compute) and the outcome (final and best validation loss, evaluation
bits-per-byte when an evaluation of the run is cached). It renders as Markdown and, through
`sandbox.figures`, as one PNG.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from sandbox import compute, logs
from sandbox.catalog import config_diff, tokens_seen
from sandbox.codediff import diff_experiments
from sandbox.discovery import Experiment, Run
from sandbox.settings import cache_dir


def loss_outcome(run: Run) -> dict:
    """Final and best (lowest finite) validation loss of a run's log, with the best step."""
    out = {"final_val_loss": None, "best_val_loss": None, "best_step": None}
    if not run.log_path.is_file():
        return out
    log = logs.read_log(run.log_path)
    values = log.columns.get(logs.VAL_LOSS)
    if values is None or not np.isfinite(values).any():
        return out
    best = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
    out["final_val_loss"] = log.last_finite(logs.VAL_LOSS)
    out["best_val_loss"] = float(values[best])
    out["best_step"] = float(log.columns[logs.STEP][best])
    return out


def run_figures(run: Run, breakdown: dict) -> dict:
    """Parameters, compute and loss outcome of one run (``breakdown`` from the worker)."""
    cfg = run.model_config()
    seen, how = tokens_seen(run)
    figures = compute.summary(breakdown, cfg, seen)
    return {
        "run_id": run.id,
        "experiment": run.experiment,
        "parameters": breakdown["total"],
        "non_embedding": breakdown["non_embedding"],
        "embedding": breakdown["embedding"],
        "train_flops_per_token": figures["train_flops_per_token"],
        "train_compute": figures["train_compute"],
        "tokens_seen": seen,
        "tokens_seen_source": how,
        **loss_outcome(run),
    }


def scaling_points(rows: list[dict]) -> pd.DataFrame:
    """One row per run for the scaling scatter (from :func:`run_figures` rows)."""
    cols = ["run_id", "experiment", "non_embedding", "train_compute", "final_val_loss", "best_val_loss"]
    return pd.DataFrame(rows, columns=cols)


def summary_card(
    run_a: Run,
    run_b: Run,
    exp_a: Experiment,
    exp_b: Experiment,
    figures_a: dict,
    figures_b: dict,
    bpb: dict[str, float] | None = None,
) -> dict:
    """Everything the card shows, as plain data (the page and the exports render it)."""
    cfg_a, cfg_b = run_a.model_config(), run_b.model_config()
    differing = config_diff({run_a.id: cfg_a, run_b.id: cfg_b})
    if exp_a.root == exp_b.root:
        changed_files: list[str] = []
        code_note = "same experiment code"
    else:
        diffs = diff_experiments(exp_a, exp_b)
        changed_files = [f"{d.path} ({d.status}{f', +{d.added} -{d.removed}' if d.status == 'changed' else ''})" for d in diffs if d.status != "unchanged"]
        code_note = f"{len(changed_files)} of {len(diffs)} model-code files differ"
    bpb = bpb or {}
    rows = [
        ("parameters", figures_a["parameters"], figures_b["parameters"], "count"),
        ("non-embedding parameters", figures_a["non_embedding"], figures_b["non_embedding"], "count"),
        ("training FLOPs / token", figures_a["train_flops_per_token"], figures_b["train_flops_per_token"], "flops"),
        ("training compute (FLOPs)", figures_a["train_compute"], figures_b["train_compute"], "flops"),
        ("final validation loss", figures_a["final_val_loss"], figures_b["final_val_loss"], "loss"),
        ("best validation loss", figures_a["best_val_loss"], figures_b["best_val_loss"], "loss"),
        ("eval bits per byte", bpb.get(run_a.id), bpb.get(run_b.id), "loss"),
    ]
    return {
        "a": run_a.id,
        "b": run_b.id,
        "config_diff": differing,
        "changed_files": changed_files,
        "code_note": code_note,
        "rows": [{"metric": m, "a": va, "b": vb, "kind": kind} for m, va, vb, kind in rows],
    }


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "flops":
        return f"{value:.3g}"
    return f"{value:.4f}"


def _delta(a, b, kind: str) -> str:
    if a is None or b is None or kind == "count" and a == 0:
        return "–"
    if kind == "loss":
        return f"{b - a:+.4f}"
    return f"{(b - a) / a:+.1%}" if a else "–"


def card_table(card: dict) -> pd.DataFrame:
    """The card's figures as a display table: metric, A, B, B − A."""
    return pd.DataFrame(
        [
            {"metric": r["metric"], card["a"]: _fmt(r["a"], r["kind"]), card["b"]: _fmt(r["b"], r["kind"]), "B − A": _delta(r["a"], r["b"], r["kind"])}
            for r in card["rows"]
        ]
    )


def card_markdown(card: dict) -> str:
    """The card as Markdown, for a chat or a paper's notes."""
    table = card_table(card)
    lines = [f"### {card['a']} vs {card['b']}", ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "---|" * len(table.columns))
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    lines += ["", f"**Code:** {card['code_note']}."]
    lines += [f"- `{f}`" for f in card["changed_files"]]
    if card["config_diff"]:
        lines += ["", "**Config keys that differ:**"]
        lines += [f"- `{r['key']}`: {r[card['a']]!r} → {r[card['b']]!r}" for r in card["config_diff"]]
    else:
        lines += ["", "**Config:** identical."]
    lines += ["", f"_Compute: {compute.FORMULA}._"]
    return "\n".join(lines) + "\n"


# -- parameter breakdowns cached on disk ------------------------------------------------------
# Counting parameters needs the run loaded in its worker; pages that only read logs (the
# FLOPs axis of Loss curves) use the last count made for the same code and weights.


def _breakdown_file(run: Run) -> Path:
    key = hashlib.sha1(f"{run.id}|{run.fingerprint()}".encode()).hexdigest()[:20]
    return cache_dir() / "params" / f"{key}.json"


def cached_breakdown(run: Run) -> dict | None:
    """The parameter breakdown stored for this run's current code and weights, if any."""
    try:
        return json.loads(_breakdown_file(run).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def store_breakdown(run: Run, breakdown: dict) -> bool:
    """Remember a breakdown; False (and nothing else) when the cache cannot be written."""
    path = _breakdown_file(run)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(breakdown), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return False
    return True


def remember_loaded(run: Run, info: dict) -> bool:
    """Store the breakdown a worker's ``info`` reply carries (any load of the run counts it).

    False when the reply has none (an older worker) or the cache cannot be written.
    """
    breakdown = info.get("params") if isinstance(info, dict) else None
    return isinstance(breakdown, dict) and store_breakdown(run, breakdown)


def flops_per_step(run: Run) -> tuple[float | None, str]:
    """Estimated training FLOPs per optimizer step: FLOPs/token × tokens/step.

    Tokens per step come from the configs, else from the log's own tokens column.
    """
    from sandbox.curves import tokens_per_step

    breakdown = cached_breakdown(run)
    if breakdown is None:
        return None, "its parameters have not been counted yet (load it once on the Models page)"
    try:
        per_token = compute.training_flops_per_token(int(breakdown["non_embedding"]), run.model_config())
    except ValueError as exc:
        return None, str(exc)
    if per_token is None:
        return None, "its config names no n_layers / dim / max_seq_len"
    per_step, how = tokens_per_step(run)
    if per_step is None:
        frame = logs.read_log(run.log_path).frame
        if logs.TOKENS_SEEN in frame and len(frame) and frame[logs.STEP].iloc[-1] > 0:
            per_step = float(frame[logs.TOKENS_SEEN].iloc[-1] / frame[logs.STEP].iloc[-1])
            how = "logged tokens seen / step"
        else:
            return None, how
    return per_token * per_step, f"({compute.FORMULA}) × tokens/step [{how}]"
