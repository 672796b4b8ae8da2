"""Fair comparison: what two runs differ in and what each cost, as one card.

The card puts side by side what differs (config keys, changed files), the price
(parameters, compute) and the outcome (final and best validation loss, and evaluation
bits per byte). Evaluation figures are only ever compared when both runs were evaluated on
the same text with the same settings (`sandbox.evaluation.cache.common_evaluation`): the card then names
that text and gives the paired difference with its 95 % interval; otherwise it says "not
evaluated on the same text" and what each run was evaluated on. Sanity flags of either run
(`sandbox.zoo.sanity`) are part of the card. It renders as Markdown and, through
`sandbox.figures.tables`, as one PNG (the text's name is a row of the table, so both carry it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sandbox.evaluation import intervals, metrics
from sandbox.evaluation.cache import text_name
from sandbox.evaluation.report import verdict
from sandbox.zoo import accounting, sanity
from sandbox.zoo.catalog import config_diff
from sandbox.zoo.codediff import diff_experiments
from sandbox.zoo.discovery import Experiment, Run

NOT_SAME_TEXT = "not evaluated on the same text"


def evaluation_part(run_a: Run, run_b: Run, shared, texts: dict[str, list[str]] | None = None) -> dict:
    """What the card says about evaluations: on which text, bits per byte, the paired verdict.

    ``shared`` is a `sandbox.evaluation.report.Report` of both runs on the same text and settings (or None);
    ``texts`` says what each run was evaluated on otherwise (`sandbox.evaluation.cache.evaluated_texts`).
    """
    ok = shared is not None and all(r.ok for r in shared.results) and {r.run_id for r in shared.results} >= {run_a.id, run_b.id}
    if not ok:
        texts = texts or {}
        said = {r.id: (texts.get(r.id) or ["never evaluated"])[0] for r in (run_a, run_b)}
        return {"same": False, "text": None, "texts": said, "bpb": {}, "paired": None, "verdict": None,
                "flags": [], "notes": []}
    res = {r.run_id: r for r in shared.results}
    bpb = {rid: metrics.metrics(res[rid].sums, [1])["bits_per_byte"] for rid in (run_a.id, run_b.id)}
    iv = metrics.paired_intervals(res[run_a.id].sums, res[run_b.id].sums, [1])["bits_per_byte"]
    pair, digits = (iv.difference, iv.lo, iv.hi), intervals.decimals_for(iv.noise)
    text = text_name(shared.data["documents"], shared.data["source"], shared.data["fingerprint"])
    return {
        "same": True, "text": text, "texts": {run_a.id: text, run_b.id: text}, "bpb": bpb,
        "paired": pair, "digits": digits, "verdict": verdict(run_b.id, run_a.id, "bits_per_byte", *pair, digits=digits),
        "flags": [f for rid in (run_a.id, run_b.id) for f in res[rid].flags],
        "notes": [n for n in [shared.small_sample_note()] if n],
    }


def summary_card(
    run_a: Run,
    run_b: Run,
    exp_a: Experiment,
    exp_b: Experiment,
    figures_a: dict,
    figures_b: dict,
    shared=None,
    texts: dict[str, list[str]] | None = None,
) -> dict:
    """Everything the card shows, as plain data (the page and the exports render it).

    ``shared``: both runs' evaluation on the same text and settings, if any; ``texts``: what
    each was evaluated on (see `evaluation_part`).
    """
    cfg_a, cfg_b = run_a.model_config(), run_b.model_config()
    differing = config_diff({run_a.id: cfg_a, run_b.id: cfg_b})
    if exp_a.root == exp_b.root:
        changed_files: list[str] = []
        code_note = "same experiment code"
    else:
        diffs = diff_experiments(exp_a, exp_b)
        changed_files = [f"{d.path} ({d.status}{f', +{d.added} -{d.removed}' if d.status == 'changed' else ''})" for d in diffs if d.status != "unchanged"]
        code_note = f"{len(changed_files)} of {len(diffs)} model-code files differ"
    ev = evaluation_part(run_a, run_b, shared, texts)
    bpb = ev["bpb"]
    if ev["same"]:
        diff, lo, hi = ev["paired"]
        d = ev["digits"]
        bpb_delta = f"{diff:+.{d}f} [{lo:+.{d}f}, {hi:+.{d}f}]"
    else:
        bpb_delta = "–"
    rows = [
        ("parameters", figures_a["parameters"], figures_b["parameters"], "count"),
        ("non-embedding parameters", figures_a["non_embedding"], figures_b["non_embedding"], "count"),
        ("training FLOPs / token", figures_a["train_flops_per_token"], figures_b["train_flops_per_token"], "flops"),
        ("training compute (FLOPs)", figures_a["train_compute"], figures_b["train_compute"], "flops"),
        ("final validation loss", figures_a["final_val_loss"], figures_b["final_val_loss"], "loss"),
        ("best validation loss", figures_a["best_val_loss"], figures_b["best_val_loss"], "loss"),
    ]
    flags = list(dict.fromkeys(ev["flags"] + sanity.recorded_flags(run_a) + sanity.recorded_flags(run_b)))
    return {
        "a": run_a.id,
        "b": run_b.id,
        "config_diff": differing,
        "changed_files": changed_files,
        "code_note": code_note,
        "rows": [{"metric": m, "a": va, "b": vb, "kind": kind} for m, va, vb, kind in rows] + [
            {"metric": "evaluated on", "a": ev["texts"][run_a.id], "b": ev["texts"][run_b.id], "kind": "text",
             "delta": "same text and settings" if ev["same"] else NOT_SAME_TEXT},
            {"metric": "eval bits per byte", "a": bpb.get(run_a.id), "b": bpb.get(run_b.id), "kind": "loss",
             "delta": bpb_delta},
        ],
        "evaluation": ev,
        "flags": flags,
    }


def _fmt(value, kind: str) -> str:
    if kind == "text":
        return str(value)
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
            {"metric": r["metric"], card["a"]: _fmt(r["a"], r["kind"]), card["b"]: _fmt(r["b"], r["kind"]),
             "B − A": r["delta"] if "delta" in r else _delta(r["a"], r["b"], r["kind"])}
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
    ev = card.get("evaluation") or {}
    if ev.get("same"):
        lines += ["", f"**Evaluation:** {ev['text']}, the same settings for both."]
        lines += [f"**Verdict (paired, 95 % interval):** {ev['verdict']}."] if ev.get("verdict") else []
        lines += [f"_{note}_" for note in ev.get("notes", [])]
    elif ev:
        lines += ["", f"**Evaluation:** {NOT_SAME_TEXT} ({card['a']}: {ev['texts'][card['a']]}; "
                  f"{card['b']}: {ev['texts'][card['b']]}): no evaluation figure compares them."]
    lines += [f"**Check:** {flag}" for flag in card.get("flags", [])]
    lines += ["", f"**Code:** {card['code_note']}."]
    lines += [f"- `{f}`" for f in card["changed_files"]]
    if card["config_diff"]:
        lines += ["", "**Config keys that differ:**"]
        lines += [f"- `{r['key']}`: {r[card['a']]!r} → {r[card['b']]!r}" for r in card["config_diff"]]
    else:
        lines += ["", "**Config:** identical."]
    lines += ["", f"_Compute: {accounting.FORMULA}._"]
    return "\n".join(lines) + "\n"
