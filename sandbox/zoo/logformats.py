"""Training logs that are not CSV, turned into a table of columns for `sandbox.zoo.logparse`.

Two formats besides the template's ``log_data.csv``:

- **printed lines** (nanoGPT's ``train.py`` stdout, saved by whoever ran it):
  ``iter N: loss X, time Tms, mfu M%`` each ``log_interval`` iterations (the loss of one
  batch: the train loss) and ``step N: train loss X, val loss Y`` at each evaluation (losses
  averaged over ``eval_iters`` batches: the validation loss, and the train loss measured the
  same way, kept as "eval train loss"). Other lines are left alone.
- **nanochat's printed lines** (``scripts/base_train.py``, ``chat_sft.py``): ``step 00012/00100
  (1.2%) | loss: X | lrm: L | dt: Tms | tok/sec: N | bf16_mfu: M | epoch: E | total time: Tm``
  (``loss`` is its debiased running mean of the train loss: the train loss) and ``Step 00100 |
  Validation bpb: B`` (kept as "validation bpb": bits per byte, not a loss), ``CORE metric``;
  every ``name: number`` field of such a line is a column.
- **Hugging Face ``trainer_state.json``**: ``log_history`` entries (``loss``, ``eval_loss``,
  ``learning_rate``, ``grad_norm``, ``epoch``, ... at ``step``); entries of one step are one
  row; the closing summary (``train_runtime``, the run's mean ``train_loss``) is no point of
  a curve and is left out.

Each returns an Arrow table whose column names are headers as a person would read them;
`sandbox.zoo.logs.canonical_name` maps them like CSV headers.
"""

from __future__ import annotations

import json
import re

import pyarrow as pa

PRINTED = "printed"
TRAINER_STATE = "trainer_state"
CSV = "csv"

_NUMBER = r"([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|nan|inf|infinity))"
_ITER = re.compile(
    rf"^iter {_NUMBER}: loss {_NUMBER}(?:, time {_NUMBER} ?ms)?(?:, mfu {_NUMBER}%)?", re.M | re.I
)
_EVAL = re.compile(rf"^step {_NUMBER}: train loss {_NUMBER}, val loss {_NUMBER}", re.M | re.I)
_PIPED = re.compile(r"^step (\d+)(?:/\d+)?(?: \([^)]*\))? \| (.+)$", re.M | re.I)
_FIELD = re.compile(r"^\s*([^:|]+?):\s*([-+]?[0-9][0-9,]*\.?[0-9]*(?:[eE][-+]?[0-9]+)?|nan|inf)\s*(ms|m|s|%)?\s*$", re.I)
# nanochat's field names as a person reads them (the unit its f-string writes, where it has one).
_PIPED_NAMES = {
    "loss": "train loss", "dt": "iteration time (ms)", "tok/sec": "tokens/s", "mfu": "mfu (%)",
    "bf16_mfu": "mfu (%)", "lrm": "lr multiplier", "total time": "total time (min)",
    "validation bpb": "validation bpb", "validation loss": "validation loss", "eta": "eta (min)",
}
_LIMIT_ENTRIES = 5_000_000  # log_history entries read at most (a trainer logs far fewer)


def sniff(sample: bytes) -> str:
    """Which format the start of a log is in: `TRAINER_STATE`, `PRINTED` or `CSV`."""
    head = sample.lstrip()[:1]
    if head == b"{":
        return TRAINER_STATE
    text = sample.decode("utf-8", errors="replace")
    if _ITER.search(text) or _EVAL.search(text) or _PIPED.search(text):
        return PRINTED
    return CSV


def _table(rows: dict[float, dict[str, float]], order: list[str]) -> pa.Table:
    steps = sorted(rows)
    columns = {"step": pa.array(steps, pa.float64())}
    for name in order:
        columns[name] = pa.array([rows[s].get(name) for s in steps], pa.float64())
    return pa.table(columns)


def printed_table(text: str) -> pa.Table:
    """The iterations and evaluations printed by a nanoGPT-style ``train.py``."""
    rows: dict[float, dict[str, float]] = {}
    for m in _ITER.finditer(text):
        row = rows.setdefault(float(m.group(1)), {})
        row["train loss"] = float(m.group(2))
        if m.group(3) is not None:
            row["iteration time (ms)"] = float(m.group(3))
        if m.group(4) is not None:
            row["mfu (%)"] = float(m.group(4))
    for m in _EVAL.finditer(text):
        row = rows.setdefault(float(m.group(1)), {})
        row["eval train loss"] = float(m.group(2))
        row["validation loss"] = float(m.group(3))
    extra = _piped_rows(text, rows)
    order = ["train loss", "validation loss", "eval train loss", "iteration time (ms)", "mfu (%)", *extra]
    return _table(rows, [c for c in dict.fromkeys(order) if any(c in r for r in rows.values())])


def _piped_rows(text: str, rows: dict[float, dict[str, float]]) -> list[str]:
    """nanochat's ``step N | name: value | ...`` lines into ``rows``; the names met, in order."""
    names: dict[str, None] = {}
    for m in _PIPED.finditer(text):
        row = rows.setdefault(float(m.group(1)), {})
        for part in m.group(2).split("|"):
            field = _FIELD.match(part)
            if field is None:
                continue
            key = field.group(1).strip()
            name = _PIPED_NAMES.get(key.lower(), key)
            row[name] = float(field.group(2).replace(",", ""))
            names[name] = None
    return list(names)


def trainer_state_table(data: bytes, label: str) -> pa.Table:
    """``log_history`` of a Hugging Face ``trainer_state.json``; ``ValueError`` with one
    sentence when the file is not one."""
    try:
        state = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{label} is not valid JSON ({type(exc).__name__}); it is not plotted.") from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise ValueError(f"{label} has no log_history list; it is not plotted.")
    rows: dict[float, dict[str, float]] = {}
    order: dict[str, None] = {}
    for entry in history[:_LIMIT_ENTRIES]:
        if not isinstance(entry, dict) or "train_runtime" in entry:
            continue
        step = entry.get("step")
        if not isinstance(step, int | float) or isinstance(step, bool):
            continue
        row = rows.setdefault(float(step), {})
        for key, value in entry.items():
            if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                row[str(key)] = float(value)
                order[str(key)] = None
    return _table(rows, list(order))
