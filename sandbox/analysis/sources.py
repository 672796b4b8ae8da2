"""What the analyses read, gathered from disk for the Compare page and the CLI (no worker).

- training curves per run on a tokens-seen or training-FLOPs axis, from the logs and the
  parameter counts a worker stored (`run_curves`);
- one point per run for the scaling fits, grouped by experiment or a config key, or each
  group's lower envelope of whole curves (`scaling_points`, `fit_scaling`);
- the per-byte losses cached with evaluations of several runs on the same documents
  (`cached_byte_losses`): a run not scored on them yet is named, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sandbox.analysis import multiplier, scaling
from sandbox.evaluation.cache import cache_key, load_cached
from sandbox.evaluation.data import data_fingerprint
from sandbox.evaluation.results import EvalSettings
from sandbox.zoo import accounting, logs
from sandbox.zoo.discovery import Run

AXES = {"tokens": "tokens seen", "flops": "training FLOPs (estimated)"}
FIT_AXES = {"compute": "training compute (FLOPs)", "params": "non-embedding parameters"}
EXPERIMENT = "experiment"  # the default group: each experiment is one group


# -- curves -----------------------------------------------------------------------------------


def run_curves(runs: Sequence[Run], axis: str = "tokens") -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """``{run id: (x, validation loss)}`` on ``axis`` ("tokens" or "flops"), and one sentence per
    run that cannot be placed. Tokens seen come from the log, else step × tokens per step
    of the run's configs; FLOPs are tokens × the run's training FLOPs per token (it needs
    the run's parameters counted by a worker once)."""
    if axis not in AXES:
        raise ValueError(f"axis must be one of {', '.join(AXES)}, not {axis!r}")
    out, notes = {}, []
    for run in runs:
        if not run.log_path.is_file():
            notes.append(f"{run.id}: no training log.")
            continue
        log = run.log()
        loss = log.columns.get(logs.VAL_LOSS)
        if loss is None or not np.isfinite(loss).any():
            notes.append(f"{run.id}: its log has no validation loss.")
            continue
        x = log.columns.get(logs.TOKENS_SEEN)
        if x is None or np.isnan(x).all():
            per_step, how = accounting.tokens_per_step(run)
            if per_step is None:
                notes.append(f"{run.id}: tokens seen unknown ({how}).")
                continue
            x = log.columns[logs.STEP] * per_step
        if axis == "flops":
            per_token, how = accounting.flops_per_token(run)
            if per_token is None:
                notes.append(f"{run.id}: training FLOPs unknown ({how}).")
                continue
            x = x * per_token
        out[run.id] = (np.asarray(x, dtype=np.float64), np.asarray(loss, dtype=np.float64))
    return out, notes


# -- scaling fits -----------------------------------------------------------------------------


def group_keys(runs: Sequence[Run]) -> list[str]:
    """Keys a fit can group by: "experiment", then every model-config key whose value differs
    between runs and is a plain value (a name or a number)."""
    values: dict[str, set] = {}
    for run in runs:
        try:
            cfg = run.model_config()
        except ValueError:
            continue
        for key, value in cfg.items():
            if isinstance(value, (str, int, float, bool)) and key != "device":
                values.setdefault(str(key), set()).add(value)
    return [EXPERIMENT, *sorted(k for k, v in values.items() if len(v) > 1)]


def group_of(run: Run, key: str) -> str:
    """The group of ``run`` under ``key`` (its experiment, or ``key=value`` of its config)."""
    if key == EXPERIMENT:
        return run.experiment
    try:
        value = run.model_config().get(key)
    except ValueError:
        value = None
    return f"{key}={value}" if value is not None else f"{key} unknown"


def scaling_points(runs: Sequence[Run], *, axis: str = "compute", group_by: str = EXPERIMENT) -> tuple[pd.DataFrame, list[str]]:
    """One row per run (run, group, x, loss: final validation loss) and a sentence per run
    left out (no log, parameters not counted yet, tokens seen unknown)."""
    if axis not in FIT_AXES:
        raise ValueError(f"axis must be one of {', '.join(FIT_AXES)}, not {axis!r}")
    rows, notes = [], []
    for run in runs:
        figures = accounting.run_figures(run, accounting.cached_breakdown(run))
        x = figures["train_compute"] if axis == "compute" else figures["non_embedding"]
        loss = figures["final_val_loss"]
        if loss is None:
            notes.append(f"{run.id}: no validation loss in its log.")
        elif x is None:
            why = "its parameters are not counted yet (Load every run on the Models page)"
            if axis == "compute" and figures["non_embedding"] is not None:
                why = f"tokens seen unknown ({figures['tokens_seen_source']})"
            notes.append(f"{run.id}: left out, {why}.")
        else:
            rows.append({"run": run.id, "group": group_of(run, group_by), "x": float(x), "loss": float(loss)})
    return pd.DataFrame(rows, columns=["run", "group", "x", "loss"]), notes


def envelope_points(runs: Sequence[Run], *, group_by: str = EXPERIMENT) -> tuple[pd.DataFrame, list[str]]:
    """Each group's lower envelope of its runs' whole loss-vs-FLOPs curves (the compute
    frontier), as rows (run, group, x, loss) like :func:`scaling_points`."""
    curves, notes = run_curves(runs, "flops")
    by_id = {run.id: run for run in runs}
    frames = []
    groups: dict[str, dict] = {}
    for run_id, curve in curves.items():
        groups.setdefault(group_of(by_id[run_id], group_by), {})[run_id] = curve
    for name, members in groups.items():
        env = multiplier.lower_envelope(members)
        frames.append(pd.DataFrame({"run": env["run"], "group": name, "x": env["x"], "loss": env["loss"]}))
    columns = ["run", "group", "x", "loss"]
    return (pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)), notes


@dataclass
class ScalingResult:
    """Fits per group, the points they were made from, and what was left out."""

    points: pd.DataFrame
    fits: dict[str, scaling.ScalingFit]
    notes: list[str] = field(default_factory=list)
    multiplier: scaling.Multiplier | None = None
    left_out: list[str] = field(default_factory=list)  # one sentence per run left out (the notes count them)

    def to_dict(self) -> dict:
        """JSON-able: every group's law with intervals, the multiplier if asked for, notes."""
        return {
            "fits": [fit.to_dict() for fit in self.fits.values()],
            "multiplier": self.multiplier.to_dict() if self.multiplier else None,
            "points": [{k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}
                       for row in self.points.to_dict(orient="records")],  # fmt: skip
            "notes": list(self.notes),
            "left_out": list(self.left_out),
        }


SHOWN_LEFT_OUT = 3  # runs named in the one line that counts those left out


def collapse_left_out(notes: Sequence[str], shown: int = SHOWN_LEFT_OUT) -> list[str]:
    """Per-run sentences of runs left out as one line with a count, naming the first
    ``shown`` (200 lines of "left out" pushed the fits off the screen); one stays as it is."""
    if len(notes) <= 1:
        return list(notes)
    named = "; ".join(n.rstrip(".") for n in notes[:shown])
    more = f"; and {len(notes) - shown} more (the JSON export lists every one)" if len(notes) > shown else ""
    return [f"{len(notes)} runs left out: {named}{more}."]


def fit_scaling(
    runs: Sequence[Run],
    *,
    axis: str = "compute",
    group_by: str = EXPERIMENT,
    curves: bool = False,
    base: str | None = None,
    variant: str | None = None,
    loss: float | None = None,
    n_boot: int = 400,
) -> ScalingResult:
    """Fit L = E + A·x^(−α) per group (final losses, or with ``curves`` each group's lower
    envelope of whole training curves, compute axis only), and the compute multiplier of
    ``variant`` against ``base`` at ``loss`` (default: the lowest loss both reached) when
    both are named groups."""
    if curves and axis != "compute":
        raise ValueError("whole curves give points on the compute axis only")
    points, notes = envelope_points(runs, group_by=group_by) if curves else scaling_points(runs, axis=axis, group_by=group_by)
    fits = scaling.fit_groups(points, x="x", y="loss", group="group", n_boot=n_boot, from_curves=curves) if not points.empty else {}
    result = ScalingResult(points, fits, collapse_left_out(notes), left_out=list(notes))
    if base is not None and variant is not None:
        missing = [g for g in (base, variant) if g not in fits]
        if missing:
            result.notes.append(f"No multiplier: no group {', '.join(missing)} (groups: {', '.join(fits) or 'none'}).")
        else:
            result.multiplier = multiplier.compute_multiplier(fits[base], fits[variant], loss)
    return result


# -- per-byte losses of an evaluation ---------------------------------------------------------


def cached_byte_losses(
    runs: Sequence[Run], docs: list[str], settings: EvalSettings, root: Path | None = None
) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """``{run id: per-byte losses per document}`` from the evaluation cache for exactly
    ``docs`` and ``settings``, and the ids of runs with no such entry (to evaluate first)."""
    data_fp = data_fingerprint(docs)
    found, missing = {}, []
    for run in runs:
        hit = load_cached(cache_key(run.id, run.fingerprint(), data_fp, settings), root)
        values = hit.document_byte_losses() if hit is not None else None
        if values is None or len(values) != len(docs):
            missing.append(run.id)
        else:
            found[run.id] = values
    return found, missing
