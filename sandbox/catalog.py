"""The runs table: one row per run with what a researcher compares first.

Everything here is read from files without importing experiment code: configs from JSON,
parameter counts from the weights (``torch.load(weights_only=True)`` reads plain tensors
only), final losses from the training log. Results are cached by file size and mtime.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sandbox.discovery import OutsideError, Run, discover

_PARAM_CACHE: dict[tuple[str, int, int], int] = {}

COLUMNS = [
    "run_id", "experiment", "run", "parameters", "tokenizer", "vocab", "context",
    "final_train_loss", "final_val_loss", "status", "problems",
]


def count_parameters(run: Run) -> int | None:
    """Elements in the saved state dict, tensors that share storage (tied weights) once."""
    size, mtime = run.weights_stamp()
    if size < 0:
        return None
    key = (str(run.weights), size, mtime)
    if key not in _PARAM_CACHE:
        state = torch.load(run.checked("model.pth"), map_location="cpu", weights_only=True)
        seen: set[tuple[int, int]] = set()
        total = 0
        for tensor in state.values():
            if not isinstance(tensor, torch.Tensor):
                continue
            ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
            if ident in seen:
                continue
            seen.add(ident)
            total += tensor.numel()
        _PARAM_CACHE[key] = total
    return _PARAM_CACHE[key]


def final_losses(run: Run) -> tuple[float | None, float | None]:
    """Last finite train and validation loss of the run's log (None when absent)."""
    from sandbox import logs

    if not run.log_path.is_file():
        return None, None
    log = run.log()
    return log.last_finite(logs.TRAIN_LOSS), log.last_finite(logs.VAL_LOSS)


def run_row(run: Run, findings: list[dict] | None = None) -> dict:
    """One row of the runs table; problems never raise, they fill the ``problems`` column.

    ``findings`` are the doctor's findings for the run's experiment, as dicts. Status: "broken"
    (an error), "suspect" (loads, but its loss on the bundled corpus is worse than uniform or
    far from its log: the doctor's sanity warnings, else a verdict recorded by an earlier
    doctor run or evaluation, `sandbox.sanity`), else "ok".
    """
    from sandbox import sanity

    problems: list[str] = []

    def problem(sentence: str) -> None:  # the doctor may have said it already: say it once
        if sentence not in problems:
            problems.append(sentence)

    for f in findings or []:
        if f["run"] in (None, run.name) and f["severity"] == "error":
            problem(f["sentence"])
    suspect = [f["sentence"] for f in findings or [] if f["run"] == run.name and f["rule"] == "sanity"]
    suspect = suspect or sanity.recorded_flags(run)
    row = {"run_id": run.id, "experiment": run.experiment, "run": run.name}
    try:
        cfg = run.model_config()
    except OutsideError as exc:
        cfg = {}
        problem(str(exc))
    except ValueError as exc:
        cfg = {}
        problem(f"trained/{run.name}/{exc}.")
    row.update(tokenizer=cfg.get("tokenizer"), vocab=cfg.get("vocab_len"), context=cfg.get("max_seq_len"))
    try:
        row["parameters"] = count_parameters(run)
    except OutsideError as exc:
        row["parameters"] = None
        problem(str(exc))
    except Exception as exc:  # noqa: BLE001 — a corrupt weights file is a problem to show, not a crash
        row["parameters"] = None
        problem(f"trained/{run.name}/model.pth cannot be read ({type(exc).__name__}).")
    try:
        row["final_train_loss"], row["final_val_loss"] = final_losses(run)
    except Exception as exc:  # noqa: BLE001 — same for a log the reader cannot parse
        row["final_train_loss"] = row["final_val_loss"] = None
        problem(f"trained/{run.name}/log_data.csv cannot be read ({type(exc).__name__}).")
    else:
        log = run.log() if run.log_path.is_file() else None  # cached: parsed once per change
        if log is not None and log.error:  # a binary or unreadable log: nothing of it is used
            problem(log.error.replace(log.label, f"trained/{run.name}/log_data.csv", 1))
    row["status"] = "broken" if problems else "suspect" if suspect else "ok"
    row["problems"] = problems + suspect
    return row


def runs_table(models_dir: Path | str | None = None, findings: dict | None = None) -> list[dict]:
    """Rows for every run under ``models_dir``; ``findings`` maps experiment -> finding dicts."""
    findings = findings or {}
    return [run_row(run, findings.get(exp.name)) for exp in discover(models_dir) for run in exp.runs]


def config_diff(configs: dict[str, dict]) -> list[dict]:
    """Rows ``{"key", <run_id>: value, ...}`` for the keys whose values differ between runs.

    A key missing from a run counts as different (shown as None). Keys in sorted order.
    """
    keys = sorted(set().union(*configs.values())) if configs else []
    rows = []
    for key in keys:
        values = {run_id: cfg.get(key) for run_id, cfg in configs.items()}
        present = [key in cfg for cfg in configs.values()]
        if len({repr(v) for v in values.values()}) > 1 or not all(present):
            rows.append({"key": key, **values})
    return rows


def tokens_seen(run: Run) -> tuple[float | None, str]:
    """Tokens the run trained on: the log's own column if any, else computed from its configs.

    Returns (value, how): how is "logged", "computed: <detail>" or a reason it is unknown.
    """
    from sandbox import logs
    from sandbox.curves import tokens_per_step

    if not run.log_path.is_file():
        return None, "no log"
    log = run.log()
    if log.rows == 0:
        return None, "empty log"
    logged = log.last_finite(logs.TOKENS_SEEN)
    if logged is not None:
        return logged, "logged"
    per_step, how = tokens_per_step(run)
    if per_step is None:
        return None, how
    return float(log.columns[logs.STEP][-1]) * per_step, f"computed: {how}"
