"""The runs table of the Loss curves page: one row per run, to sort, filter and pick from.

A row holds what a sweep is compared by (best, final and smoothed validation loss, tokens
seen, parameters as a worker counted them, the log's status) and the run's config values.
Rows are kept per run and rebuilt only when one of its files changes (size and mtime of
its log, configs and weights), so a table of 500 runs costs a few thousand stats on a
repeat. Nothing here starts a worker.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from sandbox.curves import fairness
from sandbox.curves.groups import differing_keys, run_config, shown_value
from sandbox.zoo import logread, logs
from sandbox.zoo.accounting import count_parameters, tokens_seen
from sandbox.zoo.discovery import Run

SMOOTHING = 0.9  # the "smoothed" column: TensorBoard's EMA weight, the last smoothed value
COLUMNS = [
    "run", "experiment", "status", "best val loss", "final val loss", "smoothed val loss",
    "tokens seen", "parameters", "tokenizer · vocab",
]  # fmt: skip
SORTABLE = ("best val loss", "final val loss", "smoothed val loss", "tokens seen", "parameters", "status", "run")
STATUS_ORDER = {"ok": 0, "training": 1, "diverged": 2, "no log": 3}

_EMA_TAIL = 1000
_ROWS: dict[str, tuple[tuple, dict]] = {}
_CONFIGS: dict[str, tuple[tuple, dict]] = {}
_ROWS_LOCK = threading.Lock()


def _stamp(run: Run) -> tuple:
    """What a row depends on: its files' (size, mtime)."""
    return tuple(
        logread.file_stamp(p) for p in (run.log_path, run.model_config_path, run.train_config_path, run.weights)
    )


def _smoothed_last(values: np.ndarray, weight: float = SMOOTHING) -> float | None:
    """The last value of TensorBoard's debiased EMA over the finite values (None if none)."""
    finite = values[np.isfinite(values)][-_EMA_TAIL:]  # older values weigh below w ** 1000: nothing
    if finite.size == 0:
        return None
    w = weight ** np.arange(finite.size - 1, -1, -1)  # newest weighs 1, then w, w², ...
    return float((w * finite).sum() / w.sum())


def run_row(run: Run) -> dict:
    """One row (see :data:`COLUMNS`) plus the run's config values under ``"config"``."""
    row: dict = {"run": run.id, "experiment": run.experiment, "config": run_config(run)}
    row["tokenizer · vocab"] = fairness.tokenizer_of(run) or ""
    row["parameters"] = count_parameters(run) if run.weights.is_file() else None
    if not run.log_path.is_file():
        row.update({"status": "no log", "best val loss": None, "final val loss": None, "smoothed val loss": None, "tokens seen": None})
        return row
    log = run.log()
    val = log.columns.get(logs.VAL_LOSS, np.zeros(0))
    finite = val[np.isfinite(val)]
    row["best val loss"] = float(finite.min()) if finite.size else None
    row["final val loss"] = float(finite[-1]) if finite.size else None
    row["smoothed val loss"] = _smoothed_last(val)
    row["tokens seen"] = tokens_seen(run)[0]
    diverged = any(bool(flags.any()) for m, flags in log.nonfinite.items() if m in (logs.VAL_LOSS, logs.TRAIN_LOSS))
    growing = any("incomplete" in note for note in log.notes)
    row["status"] = "diverged" if diverged else "training" if growing else "ok"
    return row


def _rows(runs: Sequence[Run]) -> list[dict]:
    """:func:`run_row` of each run, rebuilt only when its run's files changed."""
    return [_kept(_ROWS, run, _stamp(run), run_row) for run in runs]


def _kept(table: dict, run: Run, stamp: object, build) -> object:
    """``table``'s value for ``run``, built again with ``build(run)`` when ``stamp`` changed."""
    key = f"{run.models_root}|{run.id}"
    with _ROWS_LOCK:
        cached = table.get(key)
    if cached is None or cached[0] != stamp:
        cached = (stamp, build(run))
        with _ROWS_LOCK:
            table[key] = cached
    return cached[1]


def run_configs(runs: Sequence[Run]) -> dict[str, dict]:
    """``{run id: scalar config values}`` (`sandbox.curves.groups.run_config`), each read
    again only when the run's config files change."""
    return {
        run.id: _kept(
            _CONFIGS, run,
            (logread.file_stamp(run.model_config_path), logread.file_stamp(run.train_config_path)),
            run_config,
        )  # fmt: skip
        for run in runs
    }


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """The table of ``runs`` (:data:`COLUMNS`, then one column per config key that differs
    between them), each row rebuilt only when its run's files changed."""
    rows = _rows(runs)
    configs = {row["run"]: row["config"] for row in rows}
    keys = differing_keys(configs)
    table = pd.DataFrame([{c: row.get(c) for c in COLUMNS} for row in rows], columns=COLUMNS)
    for key in keys:
        table[key] = [shown_value(configs[rid].get(key)) for rid in table["run"]]
    for col in ("best val loss", "final val loss", "smoothed val loss", "tokens seen", "parameters"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def config_columns(table: pd.DataFrame) -> list[str]:
    """The table's config-key columns (those that differ between its runs)."""
    return [c for c in table.columns if c not in COLUMNS]


def filter_table(
    table: pd.DataFrame, query: str = "", values: Mapping[str, Sequence[str]] | None = None
) -> tuple[pd.DataFrame, str | None]:
    """Rows matching ``query`` and the chosen config ``values``, and a sentence when the query
    is not a valid regular expression (it is then matched as plain text).

    The query is a case-insensitive regular expression searched in the run id, the
    experiment and every config value (as ``key=value``); ``values`` maps a config column to
    the values to keep (an empty choice keeps all).
    """
    mask = pd.Series(True, index=table.index)
    warning = None
    if query.strip():
        text = table["run"].astype(str) + " " + table["experiment"].astype(str) + " " + table["tokenizer · vocab"].astype(str)
        for col in config_columns(table):
            text = text + f" {col}=" + table[col].astype(str)
        try:
            pattern = re.compile(query.strip(), re.IGNORECASE)
        except re.error as exc:
            warning = f"The search is not a valid regular expression ({exc.msg}); it was matched as plain text."
            pattern = re.compile(re.escape(query.strip()), re.IGNORECASE)
        mask &= text.map(lambda s: bool(pattern.search(s)))
    for col, chosen in (values or {}).items():
        if chosen and col in table:
            mask &= table[col].astype(str).isin([str(v) for v in chosen])
    return table[mask], warning


def sort_table(table: pd.DataFrame, by: str, descending: bool = False) -> pd.DataFrame:
    """The table sorted by ``by`` (blanks last; status in the order ok, training, diverged, no log)."""
    if by not in table:
        return table
    key = (lambda s: s.map(STATUS_ORDER)) if by == "status" else None
    return table.sort_values(by, ascending=not descending, na_position="last", key=key, kind="stable")


def clear_cache() -> None:
    """Forget every row (tests, benchmarks)."""
    with _ROWS_LOCK:
        _ROWS.clear()
        _CONFIGS.clear()
