"""The results of several runs on the same documents: summary, notes, sanity flags, paired verdicts.

Verdicts between runs are paired differences (`Report.paired`): both runs scored the same
documents, so one bootstrap over documents resamples both (`metrics.paired_bootstrap`).
Every result is also checked for sanity (`sandbox.zoo.sanity`): a loss worse than uniform
guessing, or far from the run's logged validation loss on the same data, is flagged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sandbox.errors import UnknownRunError
from sandbox.evaluation import intervals, metrics
from sandbox.evaluation.results import EVAL_VERSION, EvalSettings, RunResult
from sandbox.evaluation.tables import summary_table
from sandbox.zoo import accounting, sanity
from sandbox.zoo.discovery import find_run

SMALL_SAMPLE = 30  # fewer documents than this: intervals (and so verdicts) mean little


# -- several runs ----------------------------------------------------------------------------


@dataclass
class Report:
    """The results of several runs on the same documents, and how they were obtained."""

    results: list[RunResult]
    settings: EvalSettings
    data: dict  # source, documents, fingerprint, bytes, chars

    def result(self, run_id: str) -> RunResult:
        return next(r for r in self.results if r.run_id == run_id)

    @property
    def on_bundled(self) -> bool:
        """True when the text is (a sample of) the bundled corpus's validation split."""
        from sandbox.evaluation.data import BUNDLED_LABEL

        return self.data.get("source") == BUNDLED_LABEL

    def summary(self, ks: list[int], *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
        """One row per run: bits/byte, loss, perplexity, top-k with 95 % intervals, speed."""
        return summary_table(self.results, ks, n_resamples=n_resamples, seed=seed)

    def check_sanity(self, models_dir: Path | str | None, *, record: bool = False) -> None:
        """Fill each result's ``flags`` (`sandbox.zoo.sanity`) and training ``budget``; with ``record``, remember verdicts
        made on the bundled corpus so that default choices can leave flagged runs out."""
        where = "on the bundled corpus" if self.on_bundled else f"on {self.data.get('source') or 'this text'}"
        for r in self.results:
            if not r.ok:
                continue
            try:
                run = find_run(models_dir, r.run_id)
            except UnknownRunError:
                continue
            loss = float(r.sums.nll.sum() / r.sums.tokens.sum()) if r.sums.tokens.sum() else math.nan
            r.flags = sanity.check(run, loss, r.info.get("vocab_size"), on_bundled=self.on_bundled, where=where)
            r.budget = accounting.training_budget(run)
            if record and self.on_bundled and math.isfinite(loss):
                sanity.record(run, r.flags, loss, "evaluation")

    def same_tokens(self) -> bool:
        """True when every run cut the text into the same tokens, as far as can be told: same
        tokenizer name, same number of outputs, same token count in every document. Only then
        do per-token metrics (loss, perplexity, top-k) compare."""
        ok = [r for r in self.results if r.ok]
        return all(same_cut(ok[0], r) for r in ok[1:])

    def small_sample_note(self) -> str | None:
        """A sentence when there are too few documents for intervals to mean much."""
        n = int(self.data.get("documents") or 0)
        if 0 < n < SMALL_SAMPLE:
            return (f"Intervals from {n} documents mean little: evaluate at least {SMALL_SAMPLE} documents "
                    "before trusting a verdict.")
        return None

    def notes(self) -> list[str]:
        """Sentences to show under the results: a small sample, tokenizers that differ."""
        out = [note] if (note := self.small_sample_note()) else []
        if not self.same_tokens():
            cuts = "; ".join(
                f"{r.run_id}: {r.info.get('tokenizer') or '?'}, {r.info.get('vocab_size') or '?'} outputs, "
                f"{r.tokens:,} tokens" for r in self.results if r.ok
            )
            out.append(
                "Loss, perplexity and top-k accuracy are per token, and these runs cut the text into "
                f"tokens differently ({cuts}): those are not comparable across tokenizers. Bits per byte is."
            )
        starts = {r.run_id: r.info.get("start") for r in self.results if r.ok and r.info.get("start")}
        if len(set(starts.values())) > 1:  # codebases without a bos token: each says what it uses
            out.append(
                "A document's first token is predicted from a start token, each run's own: "
                + "; ".join(f"{rid}: {start}" for rid, start in starts.items()) + "."
            )
        return out

    def paired(self, ks: list[int], reference: str | None = None, *, n_resamples: int = 2000, seed: int = 0) -> list[dict]:
        """Paired differences (run − reference) of every metric, with 95 % intervals and verdicts.

        ``reference`` defaults to the first run that succeeded. Per-token metrics are marked not
        comparable (and get no verdict) when the runs' tokenizers differ (`same_tokens`).
        Intervals are studentized (`metrics.paired_intervals`); each row also carries its
        p-value, the Holm-adjusted one over the runs compared on that metric (a difference is
        called clear only when that is under 5 %), the ends' Monte Carlo ``noise`` and the
        ``decimals`` that noise allows.
        """
        ok = [r for r in self.results if r.ok]
        if len(ok) < 2:
            return []
        ref = next((r for r in ok if r.run_id == reference), ok[0])
        rows = []
        for r in ok:
            if r is ref:
                continue
            try:
                diffs = metrics.paired_intervals(ref.sums, r.sums, list(ks), n_resamples=n_resamples, seed=seed)
            except ValueError:
                continue  # not the same documents: nothing to pair
            for name, iv in diffs.items():
                fair = same_cut(ref, r) or not metrics.per_token(name)
                rows.append({
                    "reference": ref.run_id, "run": r.run_id, "metric": name,
                    "difference": iv.difference, "lo": iv.lo, "hi": iv.hi, "comparable": fair,
                    "p": iv.p_value, "noise": iv.noise,
                    "decimals": intervals.decimals_for(iv.noise),  # of the raw difference (top-k: a fraction)
                })
        for name in {row["metric"] for row in rows}:
            family = [row for row in rows if row["metric"] == name and row["comparable"]]
            for row, adjusted in zip(family, intervals.holm([row["p"] for row in family]), strict=True):
                row["p_holm"], row["compared"] = adjusted, len(family)
        budgets = {r.run_id: r.budget for r in ok}
        for row in rows:
            gap = accounting.budget_gap(budgets[row["reference"]], budgets[row["run"]])
            row["budget"] = f"{row['run']} and {row['reference']}: {gap}" if gap else None
            row["verdict"] = verdict(row["run"], row["reference"], row["metric"], row["difference"], row["lo"],
                                     row["hi"], digits=max(0, row["decimals"] - 2 * row["metric"].startswith("top")), p_holm=row.get("p_holm"),
                                     compared=row.get("compared", 1)) if row["comparable"] else None
            if row["verdict"] and gap:
                row["verdict"] += f" — but {gap}; Compare → Matched compute sets them side by side at equal tokens and FLOPs"
        return rows

    def to_json(self, ks: list[int], *, n_resamples: int = 1000, seed: int = 0, reference: str | None = None) -> str:
        """Everything: settings, data, the summary rows, paired differences, notes, flags and
        each run's raw sums."""
        table = self.summary(ks, n_resamples=n_resamples, seed=seed)
        paired = self.paired(ks, reference, n_resamples=n_resamples, seed=seed)
        payload = {
            "method_version": EVAL_VERSION,
            "settings": asdict(self.settings),
            "data": self.data,
            "ks": list(ks),
            "summary": json.loads(table.to_json(orient="records")),
            "reference": paired[0]["reference"] if paired else None,
            "paired": [{k: _finite_or_none(v) for k, v in row.items()} for row in paired],
            "notes": self.notes(),
            "flags": {r.run_id: r.flags for r in self.results if r.flags},
            "runs": [r.to_dict() for r in self.results],
        }
        return json.dumps(payload, indent=1)


def same_cut(a: RunResult, b: RunResult) -> bool:
    """True when two results cut the text into the same tokens, as far as can be told."""
    return (a.info.get("tokenizer"), a.info.get("vocab_size")) == (b.info.get("tokenizer"), b.info.get("vocab_size")) and (
        np.array_equal(a.sums.tokens, b.sums.tokens)
    )


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN: a non-finite float becomes null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


# How a paired difference is said: (words, scale, digits); top-k differences are in points.
_SAID = {"bits_per_byte": ("bits/byte", 1.0, 3), "loss": ("nats/token", 1.0, 3), "perplexity": ("perplexity", 1.0, 2)}


def verdict(run: str, reference: str, metric: str, diff: float, lo: float, hi: float, *, digits: int | None = None,
            p_holm: float | None = None, compared: int = 1, alpha: float = 0.05) -> str | None:
    """One sentence on a paired difference ``run − reference`` of ``metric`` and its interval.

    "B is better than A by 0.036 bits/byte [0.021, 0.050]" when the 95 % interval excludes 0
    (the interval given as the winner's advantage), "B vs A: no clear difference in ..." when
    it spans 0, or when it does not but the Holm-adjusted p-value ``p_holm`` over ``compared``
    runs is not under ``alpha`` (said so). ``digits``: decimals (of the unit said), e.g. from
    the Monte Carlo noise; None for the metric's usual ones. None for metrics without a better
    direction (tokens per byte).
    """
    lower = metrics.lower_is_better(metric)
    if lower is None or not all(map(math.isfinite, (diff, lo, hi))):
        return None
    if metric.startswith("top"):
        unit, scale, usual = f"points of top-{metric[3:]} accuracy", 100.0, 1
    else:
        unit, scale, usual = _SAID[metric]
    digits = usual if digits is None else digits
    held_back = compared > 1 and p_holm is not None and math.isfinite(p_holm) and p_holm >= alpha
    if lo <= 0 <= hi or held_back:
        what = "top-" + metric[3:] + " accuracy" if metric.startswith("top") else metric.replace("_", " ")
        why = f", after a Holm correction for {compared} comparisons" if held_back and not lo <= 0 <= hi else ""
        return (f"{run} vs {reference}: no clear difference in {what} "
                f"({diff * scale:+.{digits}f} [{lo * scale:+.{digits}f}, {hi * scale:+.{digits}f}]{why})")
    sign = -1.0 if lower else 1.0  # turns run − reference into the run's advantage
    adv, a, b = diff * sign * scale, *sorted((lo * sign * scale, hi * sign * scale))
    if a > 0:
        return f"{run} is better than {reference} by {adv:.{digits}f} {unit} [{a:.{digits}f}, {b:.{digits}f}]"
    return f"{reference} is better than {run} by {-adv:.{digits}f} {unit} [{-b:.{digits}f}, {-a:.{digits}f}]"


def multiple_note(paired: list[dict], metric: str = "bits_per_byte") -> str | None:
    """A sentence when several verdicts on ``metric`` are shown at once (Holm-corrected)."""
    n = max((row.get("compared", 1) for row in paired if row["metric"] == metric), default=1)
    if n < 2:
        return None
    return (f"{n} runs are compared with {paired[0]['reference']} at once: a difference is called clear only when "
            "its Holm-adjusted p-value is under 5 % (the intervals shown are each run's own 95 % interval).")
