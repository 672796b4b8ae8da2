"""Windows over tokenized documents: every target scored exactly once (see `sandbox.evaluation.run`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# -- windows ---------------------------------------------------------------------------------


def plan_windows(n_targets: int, max_len: int, overlap: int = 0) -> np.ndarray:
    """Windows over one document of ``n_targets`` targets (ids ``T[0..n_targets]``, bos first).

    Returns an int array ``(W, 3)`` of ``(start, end, first)``: the window feeds
    ``T[start:end]``, predicts ``T[start+1:end+1]`` and scores its positions ``first..``.
    Together the windows score every target exactly once (see the module docstring).
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, not {max_len}")
    if n_targets <= 0:
        return np.zeros((0, 3), dtype=np.int64)
    if overlap == 0 or n_targets <= max_len:
        start = np.arange(0, n_targets, max_len)
        end = np.minimum(start + max_len, n_targets)
        return np.column_stack([start, end, np.zeros_like(start)])
    if overlap >= max_len:
        raise ValueError(f"overlap ({overlap}) must be smaller than the context ({max_len})")
    step = max_len - overlap  # new targets per later window
    # Targets scored before each later window; the last window may score fewer.
    done = np.arange(max_len, n_targets, step)
    end = np.minimum(done + step, n_targets)
    start = end - max_len
    later = np.column_stack([start, end, done - start])
    return np.vstack([[[0, max_len, 0]], later])


@dataclass
class Windows:
    """All windows of all documents, flattened, with where each came from."""

    inputs: list[list[int]]
    targets: list[list[int]]
    doc: np.ndarray  # (W,) document index
    first: np.ndarray  # (W,) first scored position

    @property
    def scored(self) -> int:
        return int(sum(len(t) for t in self.targets) - self.first.sum())


def make_windows(docs_ids: list[list[int]], max_len: int, overlap: int = 0) -> Windows:
    """Windows for every document (see `plan_windows`)."""
    inputs, targets, doc, first = [], [], [], []
    for d, ids in enumerate(docs_ids):
        for start, end, f in plan_windows(len(ids) - 1, max_len, overlap):
            inputs.append(ids[start:end])
            targets.append(ids[start + 1 : end + 1])
            doc.append(d)
            first.append(f)
    return Windows(inputs, targets, np.asarray(doc, dtype=np.int64), np.asarray(first, dtype=np.int64))
