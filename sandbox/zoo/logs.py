"""Read training logs (``log_data.csv``) into one normalized table.

Experiments write different headers (EXPERIMENT_CONTRACT.md, fact 8), so every column is
mapped to a canonical metric name when it is a known one ("Norm" -> "grad norm") and kept
under its own name otherwise. Logs are read while runs are still writing them, so nothing
here raises on a bad file: every problem becomes a plain sentence naming the file, returned
with the data in ``RunLog.notes``.

A log is parsed once per (path, size, mtime_ns): re-reading an unchanged file is a stat.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

# Canonical metric names and the header spellings seen in the wild. Headers are compared
# after lower-casing and dropping everything that is not a letter or a digit, so
# "Validation Loss", "val_loss" and "val/loss" all meet their entry below.
STEP = "step"
TRAIN_LOSS = "train loss"
VAL_LOSS = "validation loss"
PERPLEXITY = "perplexity"
LEARNING_RATE = "learning rate"
GRAD_NORM = "grad norm"
TOKENS_PER_SECOND = "tokens/s"
TIME_ELAPSED = "time elapsed"
TOKENS_SEEN = "tokens seen"

_ALIASES: dict[str, tuple[str, ...]] = {
    STEP: ("step", "steps", "iter", "iters", "iteration", "iterations", "globalstep"),
    TRAIN_LOSS: ("trainloss", "loss", "trainingloss"),
    VAL_LOSS: ("validationloss", "valloss", "validloss", "evalloss", "devloss", "testloss"),
    PERPLEXITY: ("perplexity", "ppl", "valperplexity", "validationperplexity", "valppl"),
    LEARNING_RATE: ("learningrate", "lr"),
    GRAD_NORM: ("norm", "gradnorm", "gradientnorm", "gnorm", "totalnorm"),
    TOKENS_PER_SECOND: ("tokenspersecond", "tokenspersec", "tokpersec", "tokenss", "toks", "tps"),
    TIME_ELAPSED: ("timeelapsed", "elapsed", "elapsedtime", "time", "times", "walltime", "wallclock"),
    TOKENS_SEEN: ("tokensseen", "tokens", "tokensprocessed", "totaltokens", "numtokens", "ntokens"),
}
_CANONICAL = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}

# Metrics in the order a picker should offer them; unknown columns follow, as logged.
CANONICAL_METRICS = (
    TRAIN_LOSS, VAL_LOSS, PERPLEXITY, LEARNING_RATE, GRAD_NORM, TOKENS_PER_SECOND,
    TIME_ELAPSED, TOKENS_SEEN,
)  # fmt: skip


LONG_COLUMNS = ["run", "metric", "step", "time", "tokens", "value", "diverged"]


def canonical_name(header: str) -> str | None:
    """The canonical metric (or ``"step"``) a header names, or None for an unknown column."""
    return _CANONICAL.get(re.sub(r"[^0-9a-z]", "", header.lower()))


@dataclass(frozen=True)
class RunLog:
    """One parsed log.

    ``columns`` maps ``"step"`` (sorted, unique) and every metric to float arrays of equal
    length. A cell that was never logged is NaN; a logged NaN/inf (a diverged run) is kept
    as is and flagged in ``nonfinite[metric]``, so that it can be drawn as a gap *and*
    marked. Plain numpy arrays: the curves are built from them without pandas overhead.
    """

    path: Path | None
    label: str
    stamp: tuple[int, int]
    columns: Mapping[str, np.ndarray] = field(default_factory=lambda: {STEP: np.zeros(0)})
    nonfinite: Mapping[str, np.ndarray] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # column -> header as logged
    error: str | None = None  # why nothing of the file could be used (a binary file, ...)

    @property
    def metrics(self) -> list[str]:
        return [c for c in self.columns if c != STEP]

    @property
    def rows(self) -> int:
        return len(self.columns[STEP])

    def last_finite(self, metric: str) -> float | None:
        """The last finite value logged for ``metric`` (None when there is none)."""
        values = self.columns.get(metric)
        if values is None:
            return None
        finite = values[np.isfinite(values)]
        return float(finite[-1]) if finite.size else None

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The columns as a DataFrame (step first)."""
        return pd.DataFrame(dict(self.columns))


# ---------------------------------------------------------------------------------------
# The long table


def metric_names(logs: Iterable[RunLog]) -> list[str]:
    """Every metric logged by any of ``logs``: canonical ones first, then others as logged."""
    seen = {m for log in logs for m in log.metrics}
    rest = sorted(seen.difference(CANONICAL_METRICS), key=str.lower)
    return [m for m in CANONICAL_METRICS if m in seen] + rest


def long_table(logs: Mapping[str, RunLog], metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per logged value: run, metric, step, time, tokens, value, diverged.

    ``time`` and ``tokens`` are the run's "time elapsed" and "tokens seen" at that step
    (NaN when the run does not log them) so that any metric can be drawn against them.
    Rows are ordered by run (as given), metric (as given) and step, so every (run, metric)
    series is one contiguous, sorted block. Cells never logged are left out; logged NaN/inf
    values are kept with ``diverged`` set.
    """
    metrics = list(dict.fromkeys(metric_names(logs.values()) if metrics is None else metrics))
    code = {m: i for i, m in enumerate(metrics)}
    run_ids = list(logs)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("run", "metric", "step", "time", "tokens", "value", "diverged")}
    for run_code, rid in enumerate(run_ids):
        log = logs[rid]
        cols = log.columns
        names = [m for m in metrics if m in cols]
        n = log.rows
        if not names or not n:
            continue
        values = np.column_stack([cols[m] for m in names])  # n × k
        flags = np.zeros(values.shape, dtype=bool)
        for j, name in enumerate(names):
            if name in log.nonfinite:
                flags[:, j] = log.nonfinite[name]
        keep = (np.isfinite(values) | flags).T.ravel()  # metric-major: one series per block
        nan = np.full(n, np.nan)
        time = cols.get(TIME_ELAPSED, nan)
        tokens = cols.get(TOKENS_SEEN, nan)
        k = len(names)
        parts["run"].append(np.full(int(keep.sum()), run_code, dtype=np.int32))
        parts["metric"].append(np.repeat([code[m] for m in names], n)[keep])
        parts["step"].append(np.tile(cols[STEP], k)[keep])
        parts["time"].append(np.tile(time, k)[keep])
        parts["tokens"].append(np.tile(tokens, k)[keep])
        parts["value"].append(values.T.ravel()[keep])
        parts["diverged"].append(flags.T.ravel()[keep])
    if not parts["run"]:
        return pd.DataFrame(
            {
                "run": pd.Categorical([], categories=run_ids),
                "metric": pd.Categorical([], categories=metrics),
                **{c: np.array([], dtype=float) for c in ("step", "time", "tokens", "value")},
                "diverged": np.array([], dtype=bool),
            }
        )
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return pd.DataFrame(
        {
            "run": pd.Categorical.from_codes(cat["run"], categories=run_ids),
            "metric": pd.Categorical.from_codes(cat["metric"], categories=metrics),
            "step": cat["step"],
            "time": cat["time"],
            "tokens": cat["tokens"],
            "value": cat["value"],
            "diverged": cat["diverged"],
        }
    )
