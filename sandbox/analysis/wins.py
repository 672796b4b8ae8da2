"""Who predicts each byte best (:func:`who_wins`) and each run's difference to a reference run
in bits (:func:`difference_to_reference`), from the per-byte losses of
`sandbox.evaluation.bytelosses` (one value per byte of the same text for every run, whatever
its tokenizer). What they show across a corpus is `sandbox.analysis.corpusdiff`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sandbox.evaluation.bytelosses import LN2

TIE = -1  # who_wins' index where no run is strictly best (or a run has no value)


# -- who wins, differences --------------------------------------------------------------------


def _stack(per_run: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    runs = [str(r) for r in per_run]
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in per_run.values()]
    if len({a.size for a in arrays}) > 1:
        raise ValueError("per-byte losses of different lengths: the runs were not scored on the same text")
    return runs, np.vstack(arrays) if arrays else np.zeros((0, 0))


@dataclass
class Wins:
    """Which run predicts each byte best, and each run's share of the bytes."""

    runs: list[str]
    winner: np.ndarray  # (n_bytes,) index into runs, TIE (-1) for a tie or a missing value
    share: dict[str, float]  # bytes won / bytes with a value for every run
    tie_share: float  # ties / bytes with a value for every run
    counted: int  # bytes with a value for every run

    def to_dict(self) -> dict:
        return {"runs": self.runs, "share": self.share, "tie_share": self.tie_share, "bytes": self.counted}


def who_wins(per_run: Mapping[str, np.ndarray], *, tol: float = 1e-9) -> Wins:
    """Per byte, the index of the run with the lowest loss; TIE (-1) where the best two lie
    within ``tol`` nats of each other or a run has no value there (NaN). The same works on
    per-character sums (:func:`bytes_to_chars`) for a character view."""
    runs, stack = _stack(per_run)
    n = stack.shape[1] if stack.size else 0
    if len(runs) < 2 or n == 0:
        winner = np.full(n, TIE if len(runs) != 1 else 0, dtype=np.int16)
        return Wins(runs, winner, dict.fromkeys(runs, math.nan), math.nan, 0)
    valid = np.isfinite(stack).all(axis=0)
    filled = np.where(np.isfinite(stack), stack, np.inf)
    order = np.argsort(filled, axis=0, kind="stable")
    best, second = order[0], order[1]
    cols = np.arange(n)
    gap = filled[second, cols] - filled[best, cols]
    winner = np.where(valid & (gap > tol), best, TIE).astype(np.int16)
    counted = int(valid.sum())
    share = {
        run: float(np.count_nonzero(winner == i) / counted) if counted else math.nan for i, run in enumerate(runs)
    }
    ties = float(np.count_nonzero(valid & (winner == TIE)) / counted) if counted else math.nan
    return Wins(runs, winner, share, ties, counted)


def difference_to_reference(per_run: Mapping[str, np.ndarray], reference: str) -> dict[str, np.ndarray]:
    """Per byte, each other run's loss minus the reference's, in **bits** (positive: worse
    than the reference there; NaN where either has no value). Their mean over a text is the
    difference in bits per byte."""
    if reference not in per_run:
        raise ValueError(f"the reference run {reference!r} is not among the runs compared")
    ref = np.asarray(per_run[reference], dtype=np.float64)
    out = {}
    for run, values in per_run.items():
        if run == reference:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.shape != ref.shape:
            raise ValueError("per-byte losses of different lengths: the runs were not scored on the same text")
        out[str(run)] = (values - ref) / LN2
    return out
