"""Read training logs (``log_data.csv``) into one normalized table.

Experiments write different headers (EXPERIMENT_CONTRACT.md, fact 8), so every column is
mapped to a canonical metric name when it is a known one ("Norm" -> "grad norm") and kept
under its own name otherwise. Logs are read while runs are still writing them, so nothing
here raises on a bad file: every problem becomes a plain sentence naming the file, returned
with the data in ``RunLog.notes``.

A log is parsed once per (path, size, mtime_ns): re-reading an unchanged file is a stat.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

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

# Text a logger writes for a non-finite float (Python, numpy, torch, JavaScript).
_NONFINITE_WORDS = frozenset(
    {"nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}
)

# A number written as the repr of its container: `tensor(0.0100)` (a learning rate logged
# straight from a tensor), `tensor(2.5, device='cuda:0')`, `np.float64(3.1)`, `Array(1., dtype=float32)`.
# Only these wrappers and a single number-like first argument are unwrapped: other text stays text.
_REPR_NUMBER = re.compile(
    r"^(?:(?:torch\.)?tensor|(?:np|numpy)\.(?:float|int)\d*|(?:float|int)\d+|(?:Device)?[Aa]rray)"
    r"\(\s*([-+]?[0-9a-zA-Z.+-]+)\s*(?:,[^()]*)?\)$"
)

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


def _label(path: Path) -> str:
    """``<experiment>/trained/<run>/log_data.csv``: the file as the person knows it."""
    return "/".join(path.parts[-4:])


def _quote(text: str, limit: int = 30) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(text)


# ---------------------------------------------------------------------------------------
# Parsing


_SNIFF_BYTES = 65536  # how much of a log is looked at to tell text from binary


def _is_text(data: bytes) -> bool:
    """True for a CSV a logger could have written: UTF-8 text, not a binary file.

    A NUL byte, a header line that is not UTF-8, or many bytes that are neither UTF-8
    nor printable mean binary (a compressed or copied-over file, UTF-16). A single
    undecodable cell is not binary: the rest of the log is still used.
    """
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample:
        return False
    header = sample.split(b"\n", 1)[0]
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return len(header) == len(sample)  # a header cut by the sample's end is judged below
    text = sample.decode("utf-8", errors="replace")
    odd = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\n\r"))
    return odd <= max(4, len(text) // 10)


def _drop_partial_last_line(data: bytes, label: str, notes: list[str]) -> bytes:
    """A run that is still training may be half-way through writing its last line.

    Rows end with a newline; a last line without one is skipped (it will be read complete
    on the next change of the file). Truncating "1.2345" to "1" is worse than a late row.
    """
    if data.endswith((b"\n", b"\r")):
        return data
    cut = data.rfind(b"\n")
    if cut < 0:
        return data  # header only, written without a line end: nothing to lose
    notes.append(
        f"The last line of {label} is incomplete (the run is probably still writing it); "
        "it was skipped."
    )
    return data[: cut + 1]


def _parse_table(data: bytes, label: str, notes: list[str]) -> pa.Table | None:
    bad_rows: list[str] = []

    def skip_bad_row(row) -> str:  # called by Arrow for a row with the wrong field count
        bad_rows.append(row.text)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=skip_bad_row),
            # Only an empty cell is "not logged": a written "nan" is a diverged value.
            convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        notes.append(f"{label} cannot be read as CSV ({exc}); it is not plotted.")
        return None
    if bad_rows:
        notes.append(
            f"{len(bad_rows)} line(s) of {label} have the wrong number of fields "
            f"(first: {_quote(bad_rows[0])}); they were skipped."
        )
    return table


def _column_values(
    column: pa.ChunkedArray, header: str, label: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(float values, logged non-finite mask) of one column, or None if it is not numeric."""
    kind = column.type
    if pa.types.is_null(kind):  # nothing logged in this column yet
        return np.full(len(column), np.nan), np.zeros(len(column), dtype=bool)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        nonfinite = ~np.isfinite(values)
        if column.null_count:  # empty cells were read as null: not logged, not diverged
            nonfinite &= pc.is_valid(column).to_numpy(zero_copy_only=False)
        return values, nonfinite
    # Text (or dates) in the column: numbers among other cells, or not a metric at all.
    if pa.types.is_binary(kind):  # Arrow's type for text that is not valid UTF-8 (rare)
        notes.append(f"Column {_quote(header)} of {label} is not valid UTF-8 text.")
        cells = [None if b is None else b.decode("utf-8", "replace") for b in column.to_pylist()]
        texts = pd.Series(cells, dtype=object)
    else:
        texts = pd.Series(pc.cast(column, pa.string()).to_pandas(), dtype=object)
    texts = texts.str.strip()
    texts = texts.str.replace(_REPR_NUMBER, r"\1", regex=True)
    present = texts.notna() & (texts != "")
    values = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=float, copy=True)
    nonfinite = present.to_numpy() & texts.str.lower().isin(_NONFINITE_WORDS).to_numpy()
    negative = texts.str.startswith("-").to_numpy(dtype=bool, na_value=False)
    infinite = texts.str.lower().str.contains("inf").to_numpy(dtype=bool, na_value=False)
    values[nonfinite] = np.where(infinite, np.where(negative, -np.inf, np.inf), np.nan)[nonfinite]
    bad = present.to_numpy() & np.isnan(values) & ~nonfinite
    if not present.any() or bad.sum() > present.sum() / 2:
        notes.append(f"Column {_quote(header)} of {label} is not numeric; it is not plotted.")
        return None
    if bad.any():
        example = texts[bad].iloc[0]
        notes.append(
            f"{int(bad.sum())} cell(s) of column {_quote(header)} in {label} are not numbers "
            f"(first: {_quote(example)}); they were left out."
        )
    return values, nonfinite


def _normalize(table: pa.Table, label: str, notes: list[str]) -> tuple[dict, dict, dict]:
    """Rename to canonical names, coerce to floats, order by step, drop repeated steps."""
    columns: dict[str, np.ndarray] = {}
    nonfinite: dict[str, np.ndarray] = {}
    headers: dict[str, str] = {}
    for index, raw in enumerate(table.column_names):
        header = raw.strip() or f"column {index + 1}"
        name = canonical_name(header) or header
        if name in columns:  # e.g. both "Norm" and "Grad Norm": keep the second as logged
            notes.append(
                f"{label} has two columns for {name!r}; {_quote(header)} is shown under its own name."
            )
            name = header if header not in columns else f"{header} ({index + 1})"
        parsed = _column_values(table.column(index), header, label, notes)
        if parsed is None:
            continue
        columns[name], mask = parsed
        headers[name] = header
        if mask.any():
            nonfinite[name] = mask

    rows = table.num_rows
    if STEP not in columns:
        if rows:
            notes.append(f"{label} has no Step column; row numbers are used as steps.")
        columns[STEP] = np.arange(rows, dtype=float)
    nonfinite.pop(STEP, None)
    step = columns[STEP]
    columns = {STEP: step, **{k: v for k, v in columns.items() if k != STEP}}
    if not np.all(np.diff(step) > 0):  # the usual log is already in order, once per step
        columns, nonfinite = _order_steps(columns, nonfinite, label, notes)
    for name, mask in nonfinite.items():
        first = columns[STEP][mask][0]
        notes.append(
            f"{_quote(headers[name])} in {label} is not a finite number (NaN or inf) at "
            f"{int(mask.sum())} step(s), first at step {first:g}: the run probably diverged "
            "there (drawn as a gap, marked in red)."
        )
    return columns, nonfinite, headers


def _order_steps(columns: dict, nonfinite: dict, label: str, notes: list[str]) -> tuple[dict, dict]:
    """Rows sorted by step, without rows lacking a step, and one row per step.

    A resumed run logs some steps again: the last row written for a step wins.
    """
    step = columns[STEP]
    good = np.flatnonzero(np.isfinite(step))
    if good.size < step.size:
        notes.append(f"{step.size - good.size} row(s) of {label} have no usable step; they were skipped.")
    # np.unique on the reversed steps finds each step's last occurrence, sorted by step.
    _, first_from_end = np.unique(step[good][::-1], return_index=True)
    rows = good[good.size - 1 - first_from_end]
    repeated = good.size - rows.size
    if repeated:
        notes.append(
            f"{label} logs {repeated} step(s) more than once (the run was probably resumed); "
            "the last row logged for each step is used."
        )
    columns = {k: v[rows] for k, v in columns.items()}
    nonfinite = {k: m[rows] for k, m in nonfinite.items() if m[rows].any()}
    return columns, nonfinite


def parse_log(data: bytes, label: str = "log_data.csv") -> RunLog:
    """Parse the bytes of a log (``label`` names it in notes). Never raises."""
    notes: list[str] = []
    if not data or data.isspace():
        notes.append(f"{label} is empty (the run has not logged anything yet).")
        return RunLog(None, label, (-1, -1), notes=tuple(notes))
    if not _is_text(data):  # before anything else: no raw bytes and no "incomplete line" note
        sentence = f"{label} is not a text CSV file."
        return RunLog(None, label, (-1, -1), notes=(sentence,), error=sentence)
    data = _drop_partial_last_line(data, label, notes)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        # Arrow decodes a bad row strictly before its handler sees it (and prints the
        # error to stderr): give it text in which every undecodable byte is U+FFFD.
        data = data.decode("utf-8", errors="replace").encode("utf-8")
        notes.append(f"{label} has bytes that are not UTF-8 text; they are shown as \ufffd.")
    table = _parse_table(data, label, notes)
    if table is None:
        return RunLog(None, label, (-1, -1), notes=tuple(notes), error=notes[-1])
    columns, nonfinite, headers = _normalize(table, label, notes)
    if table.num_rows == 0:
        notes.append(f"{label} has a header but no rows yet.")
    return RunLog(None, label, (-1, -1), columns, nonfinite, tuple(notes), headers)


# ---------------------------------------------------------------------------------------
# Cached reading

_CACHE: dict[str, RunLog] = {}
_CACHE_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, or None when it cannot be stat'ed: its cache key."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


def read_log(path: Path | str, within: Path | None = None) -> RunLog:
    """The parsed log at ``path``; parsed again only when its size or mtime changed.

    With ``within`` (the models directory), a log that lies outside it once links are
    resolved is not read: the RunLog is empty and its note says why.
    """
    path = Path(path)
    label = _label(path)
    if within is not None:
        from sandbox.discovery import OutsideError, confine

        try:
            confine(path, within, label.split("/", 1)[-1])
        except OutsideError as exc:
            return RunLog(path, label, (-1, -1), notes=(str(exc),), error=str(exc))
    stamp = file_stamp(path)
    if stamp is None:
        return RunLog(path, label, (-1, -1), notes=(f"{label} does not exist.",))
    key = os.fspath(path)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None and cached.stamp == stamp:
        return cached
    try:
        data = path.read_bytes()
    except OSError as exc:
        sentence = f"{label} cannot be read ({exc.strerror or type(exc).__name__})."
        return RunLog(path, label, stamp, notes=(sentence,), error=sentence)
    log = replace(parse_log(data, label), path=path, stamp=stamp)
    with _CACHE_LOCK:
        _CACHE[key] = log
    return log


def read_logs(paths: Mapping[str, Path], within: Path | None = None) -> dict[str, RunLog]:
    """``{run id: RunLog}`` for ``{run id: log path}``; changed files are parsed in parallel.

    Arrow parses without holding the GIL, so a few threads overlap the files' parsing.
    ``within``: as for :func:`read_log`.
    """
    global _POOL
    if len(paths) < 2:
        return {rid: read_log(p, within) for rid, p in paths.items()}
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
    return dict(zip(paths, _POOL.map(lambda p: read_log(p, within), paths.values()), strict=True))


def clear_cache() -> None:
    """Forget every parsed log (tests; a models directory that was swapped)."""
    with _CACHE_LOCK:
        _CACHE.clear()


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
