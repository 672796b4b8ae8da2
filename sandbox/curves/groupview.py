"""The grouped Loss curves view: a built view's runs turned into group lines, ranges and notes.

`sandbox.curves.view.LossView` draws runs one by one, or, with ``settings.group_by``, one
line per group (`sandbox.curves.groups`); this module makes the group view's table, its
robust y range, its summary and the sentences that go with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np
import pandas as pd

from sandbox.curves import fairness, groups
from sandbox.curves.prepare import Curves, CurveSettings
from sandbox.curves.summary import goal
from sandbox.curves.yrange import robust_range
from sandbox.zoo.discovery import Run


class LossView(Protocol):
    """What of `sandbox.curves.view.LossView` the group view reads (that module imports this one)."""

    settings: CurveSettings
    runs: Mapping[str, Run]
    configs: Mapping[str, Mapping[str, object]]
    curves: Curves

    @property
    def group_data(self) -> tuple[pd.DataFrame, dict[str, int]]: ...

MIXED = "mixed"  # the colour of a group whose runs differ in the colour-by key


def group_lines(view: LossView) -> tuple[pd.DataFrame, dict[str, int]]:
    """The groups' lines of a view, with ``label`` ("dim=128 (n=12)") and ``color`` columns.

    Each run contributes its drawn rows (trim, zoom and log axes applied) at full
    resolution, smoothed when smoothing is on.
    """
    s = view.settings
    labels = groups.group_labels(list(view.runs.values()), view.configs, s.group_by)
    series = []
    for one in view.curves.series:
        y = one.smoothed if s.smoothing > 0 else one.log.columns[one.metric][one.rows] * one.factor
        series.append((one.run, one.label or one.metric, one.x[one.rows], y))
    frame, counts = groups.aggregate(series, labels, s.aggregate, s.band, s.log_x)
    frame["label"] = frame["group"].map(lambda g: groups.legend_label(g, counts.get(g, 0)))
    if s.color_by:
        colour: dict[str, set[str]] = {}
        for rid, group in labels.items():
            colour.setdefault(group, set()).add(groups.shown_value(view.configs.get(rid, {}).get(s.color_by)))
        frame["color"] = frame["group"].map(lambda g: next(iter(colour[g])) if len(colour[g]) == 1 else MIXED)
    else:
        frame["color"] = frame["label"]
    return frame, counts


def y_domains(frame: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Per metric, a y range that ignores outliers among the groups' lines (each group weighs the same)."""
    out = {}
    for metric, sub in frame.groupby("metric", sort=False, observed=True):
        lines = [g[["center", "lo", "hi"]].to_numpy().ravel() for _, g in sub.groupby("group", sort=False)]
        domain = robust_range(lines)  # the bands count: a band cut off at the edge would mislead
        if domain is not None:
            out[str(metric)] = domain
    return out


def summary(view: LossView) -> dict[str, pd.DataFrame]:
    """Per metric, one row per group: its runs, the line's final and best value, and its
    tokenizers when the group mixes them (its per-token line then averages numbers that do
    not compare)."""
    frame, counts = view.group_data
    labels = groups.group_labels(list(view.runs.values()), view.configs, view.settings.group_by)
    tokenizers: dict[str, set[str]] = {}
    for rid, group in labels.items():
        tokenizers.setdefault(group, set()).add(fairness.tokenizer_of(view.runs[rid]) or "?")
    out = {}
    for metric, sub in frame.groupby("metric", sort=False, observed=True):
        rows = []
        for group, g in sub.groupby("group", sort=False):
            center = g["center"].to_numpy()
            finite = np.isfinite(center)
            direction = goal(str(metric))
            best = np.nan
            if finite.any() and direction:
                best = np.nanmin(center) if direction == "min" else np.nanmax(center)
            rows.append({
                "group": group, "runs": counts.get(group, 0),
                "final": center[finite][-1] if finite.any() else np.nan, "best": best,
                "runs at the end": int(g["n"].iloc[-1]),
                "tokenizers": "; ".join(sorted(tokenizers.get(group, ()))),
            })  # fmt: skip
        table = pd.DataFrame(rows)
        if goal(str(metric)) is not None:
            table = table.sort_values("best", ascending=goal(str(metric)) == "min", na_position="last")
        if not fairness.is_per_token(str(metric)) or table["tokenizers"].str.contains(";").sum() == 0:
            table = table.drop(columns="tokenizers")
        out[str(metric)] = table.reset_index(drop=True)
    return out


def notes(view: LossView) -> list[str]:
    """How the group lines are made, and which groups mix tokenizers (plain text)."""
    s = view.settings
    said = [
        f"One line per group: the {s.aggregate} of its runs"
        + (f", with a band of {groups.BANDS[s.band]}" if s.band in groups.BANDS and s.band != "none" else "")
        + (" (± 1.96 · std / √n, a normal approximation)" if s.band == "ci95" else "")
        + ". Each run is interpolated onto a common x grid within its own range: a group's line at x "
        "uses only the runs that reach x (n in the tooltip); NaN/inf values are left out."
        + (" Runs are smoothed first." if s.smoothing > 0 else "")
    ]
    for table in summary(view).values():
        if "tokenizers" in table:
            for _, row in table[table["tokenizers"].str.contains(";")].iterrows():
                said.append(
                    f"Group {row['group']} mixes tokenizers ({row['tokenizers']}): its per-token loss "
                    "line averages losses that are not comparable; group by tokenizer too, or use bits per byte."
                )
            break
    return said
