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
from collections.abc import Iterable, Mapping
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
    # TensorBoard tags and Lightning's columns too: "train/loss", "Loss/train", "train_loss_step",
    # "eval/loss" (a Trainer's), "loss/val", "val_loss_epoch".
    TRAIN_LOSS: ("trainloss", "loss", "trainingloss", "losstrain", "losstraining", "trainlossstep"),
    VAL_LOSS: ("validationloss", "valloss", "validloss", "evalloss", "devloss", "testloss", "lossval",
               "lossvalid", "lossvalidation", "losseval", "lossdev", "vallossepoch", "validationlossepoch",
               "evallossepoch"),
    PERPLEXITY: ("perplexity", "ppl", "valperplexity", "validationperplexity", "valppl"),
    LEARNING_RATE: ("learningrate", "lr", "trainlearningrate", "trainlr"),
    GRAD_NORM: ("norm", "gradnorm", "gradientnorm", "gnorm", "totalnorm", "traingradnorm"),
    TOKENS_PER_SECOND: ("tokenspersecond", "tokenspersec", "tokpersec", "tokenss", "toks", "tps"),
    TIME_ELAPSED: ("timeelapsed", "elapsed", "elapsedtime", "time", "times", "walltime", "wallclock"),
    TOKENS_SEEN: ("tokensseen", "tokens", "tokensprocessed", "totaltokens", "numtokens", "ntokens", "numinputtokensseen",
                    "trainnuminputtokensseen"),
}
_CANONICAL = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}

# Metrics in the order a picker should offer them; unknown columns follow, as logged.
CANONICAL_METRICS = (
    TRAIN_LOSS, VAL_LOSS, PERPLEXITY, LEARNING_RATE, GRAD_NORM, TOKENS_PER_SECOND,
    TIME_ELAPSED, TOKENS_SEEN,
)  # fmt: skip




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
