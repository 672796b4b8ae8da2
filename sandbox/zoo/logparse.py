"""Parse the bytes of a training log into a `sandbox.zoo.logs.RunLog`; never raises.

Experiments write different headers (EXPERIMENT_CONTRACT.md, fact 8): every column is mapped
to a canonical metric (`sandbox.zoo.logs.canonical_name`) or kept under its own name. Logs
are read while runs still write them: every problem becomes a plain sentence naming the
file, in ``RunLog.notes``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sandbox.zoo import logformats
from sandbox.zoo.logs import STEP, RunLog, canonical_name

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


def _quote(text: str, limit: int = 30) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(text)


# ---------------------------------------------------------------------------------------
# Parsing


_SNIFF_BYTES = 65536  # how much of a log is looked at to tell text from binary
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r")


def _is_text(data: bytes) -> bool:
    """True for a CSV a logger could have written: UTF-8 text, not a binary file.

    A NUL byte, a header line that is not UTF-8, or many bytes that are neither UTF-8
    nor printable mean binary (a compressed or copied-over file, UTF-16). A single
    undecodable cell is not binary: the rest of the log is still used.
    """
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample:
        return False
    # Counted in C, not per character in Python (that took 3 ms a log, 1.5 s for 500 logs):
    # a byte below 32 is always a whole character in UTF-8, so control characters are bytes.
    odd = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if sample.isascii():  # the usual log: nothing to decode
        return odd <= max(4, len(sample) // 10)
    header = sample.split(b"\n", 1)[0]
    try:
        header.decode("utf-8")
    except UnicodeDecodeError:
        return len(header) == len(sample)  # a header cut by the sample's end is judged below
    text = sample.decode("utf-8", errors="replace")
    odd += text.count("\ufffd")
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

    The rows of one step are merged column by column: each column keeps the last value logged
    for that step (Lightning's ``metrics.csv`` writes a step's train and validation losses on
    separate rows). A column logged twice for a step with different values (a resumed run) keeps
    the last, and that is said.
    """
    step = columns[STEP]
    good = np.flatnonzero(np.isfinite(step))
    if good.size < step.size:
        notes.append(f"{step.size - good.size} row(s) of {label} have no usable step; they were skipped.")
    rows = good[np.argsort(step[good], kind="stable")]
    ordered = step[rows]
    new_group = np.r_[True, ordered[1:] != ordered[:-1]] if rows.size else np.zeros(0, bool)
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], rows.size] - 1  # each step's last row
    index = np.arange(rows.size)
    merged: dict[str, np.ndarray] = {STEP: ordered[starts]}
    kept: dict[str, np.ndarray] = {}
    relogged = np.zeros(starts.size, dtype=int)
    for name, values in columns.items():
        if name == STEP:
            continue
        vals = values[rows]
        mask = nonfinite[name][rows] if name in nonfinite else np.zeros(rows.size, dtype=bool)
        logged = ~np.isnan(vals) | mask
        if starts.size:
            last = np.maximum.reduceat(np.where(logged, index, -1), starts)
            # Logged twice with different values (Lightning repeats "epoch" on every row alike).
            finite = logged & np.isfinite(vals)
            low = np.minimum.reduceat(np.where(finite, vals, np.inf), starts)
            high = np.maximum.reduceat(np.where(finite, vals, -np.inf), starts)
            relogged = np.maximum(relogged, (high > low).astype(int))
        else:
            last = np.zeros(0, dtype=int)
        pick = np.where(last >= 0, last, ends)
        merged[name] = vals[pick]
        if mask[pick].any():
            kept[name] = mask[pick]
    repeated = int((relogged > 0).sum())
    if repeated:
        notes.append(
            f"{label} logs {repeated} step(s) more than once (the run was probably resumed); "
            "the last value logged for each step is used."
        )
    return merged, kept


def parse_log(data: bytes, label: str = "log_data.csv") -> RunLog:
    """Parse the bytes of a log (``label`` names it in notes). Never raises."""
    notes: list[str] = []
    if not data or data.isspace():
        notes.append(f"{label} is empty (the run has not logged anything yet).")
        return RunLog(None, label, (-1, -1), notes=tuple(notes))
    if not _is_text(data):  # before anything else: no raw bytes and no "incomplete line" note
        sentence = f"{label} is not a text CSV file."
        return RunLog(None, label, (-1, -1), notes=(sentence,), error=sentence)
    fmt = logformats.sniff(data[:_SNIFF_BYTES])
    if fmt == logformats.TRAINER_STATE:  # JSON: a line break means nothing
        try:
            return from_table(logformats.trainer_state_table(data, label), label, notes)
        except ValueError as exc:
            return RunLog(None, label, (-1, -1), notes=(str(exc),), error=str(exc))
    data = _drop_partial_last_line(data, label, notes)
    if fmt == logformats.PRINTED:
        text = data.decode("utf-8", errors="replace")
        return from_table(logformats.printed_table(text), label, notes)
    try:
        if not data.isascii():  # ASCII is UTF-8; checking is much cheaper than decoding
            data.decode("utf-8")
    except UnicodeDecodeError:
        # Arrow decodes a bad row strictly before its handler sees it (and prints the
        # error to stderr): give it text in which every undecodable byte is U+FFFD.
        data = data.decode("utf-8", errors="replace").encode("utf-8")
        notes.append(f"{label} has bytes that are not UTF-8 text; they are shown as \ufffd.")
    table = _parse_table(data, label, notes)
    if table is None:
        return RunLog(None, label, (-1, -1), notes=tuple(notes), error=notes[-1])
    return from_table(table, label, notes)


def from_table(table: pa.Table, label: str, notes: list[str]) -> RunLog:
    """The RunLog of a table read from any format: canonical names, floats, ordered steps."""
    columns, nonfinite, headers = _normalize(table, label, notes)
    if table.num_rows == 0:
        notes.append(f"{label} has a header but no rows yet.")
    return RunLog(None, label, (-1, -1), columns, nonfinite, tuple(notes), headers)
