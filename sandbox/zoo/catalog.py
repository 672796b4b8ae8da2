"""The runs table: one row per run with what a researcher compares first.

Everything here is read from files without importing experiment code or starting a worker:
configs from JSON, final losses from the training log, and what only a loaded model can
tell (its parameter count, whether it loads and runs a forward pass) from what the last
load of the run found, remembered per run fingerprint (`sandbox.zoo.doctor.known_findings`,
`sandbox.zoo.accounting.cached_breakdown`). Until a worker has loaded a run, its parameters
are unknown (None), never estimated from the weights file: a state_dict also holds buffers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sandbox.zoo import kinds
from sandbox.zoo.accounting import config_number, count_parameters, training_budget
from sandbox.zoo.confine import OutsideError
from sandbox.zoo.discovery import Run, discover

# Status right after the run: with the budget columns the table is wider than a screen, and
# whether a run is broken is what a person looks for first.
COLUMNS = [
    "run_id", "experiment", "run", "status", "kind", "parameters", "tokenizer", "vocab", "context",
    "final_train_loss", "final_val_loss", "steps", "tokens_trained", "train_flops", "checked", "problems",
]

# What "checked" says of a run: how far the sandbox got with it as it is now.
CHECKED_FILES = "files only"  # static checks; no worker has loaded this code + config + weights
CHECKED_LOADED = "forward pass"  # a worker loaded it and ran a forward pass
CHECKED_FAILED = "failed to load"


def run_status(row: Mapping) -> str:
    """The one status of a run, the same in `sandbox list` and the Models table.

    "broken" when a contract error is known (from its files, or from the last load of the
    run as it is now); "suspect" when it loads but its loss looks untrained or far from its
    log (``flags``, `sandbox.zoo.sanity`); else "ok". A new status is one more rule here,
    checked before "ok".
    """
    if row.get("problems"):
        return "broken"
    if row.get("flags"):
        return "suspect"
    return "ok"


def final_losses(run: Run) -> tuple[float | None, float | None]:
    """Last finite train and validation loss of the run's log (None when absent)."""
    from sandbox.zoo import logs

    if not run.log_path.is_file():
        return None, None
    log = run.log()
    return log.last_finite(logs.TRAIN_LOSS), log.last_finite(logs.VAL_LOSS)


def run_row(run: Run, findings: list[dict] | None = None, load: dict | None = None) -> dict:
    """One row of the runs table; problems never raise, they fill the ``problems`` column.

    ``findings`` are the doctor's findings for the run's experiment, as dicts; ``load`` is
    what the last load of this run found (`sandbox.zoo.doctor.cached_load`), None if never loaded.
    Sanity warnings (the doctor's, else a verdict recorded by an earlier doctor run or
    evaluation, `sandbox.zoo.sanity`) are the row's ``flags``; see :func:`run_status`.
    """
    from sandbox.zoo import sanity

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
        problem(f"{run.where}{exc}.")
    vocab, context = (config_number(cfg, what) for what in ("vocab", "context"))
    row.update(
        kind=kinds.get(run.kind).LABEL,
        tokenizer=kinds.get(run.kind).tokenizer_label(run, cfg),
        vocab=int(vocab[1]) if vocab else None,
        context=int(context[1]) if context else None,
    )
    row["parameters"] = count_parameters(run)  # a weights file linked out: the doctor's "files" finding
    try:
        row["final_train_loss"], row["final_val_loss"] = final_losses(run)
    except Exception as exc:  # noqa: BLE001 — a log the reader cannot parse is a problem to show
        row["final_train_loss"] = row["final_val_loss"] = None
        problem(f"{run.shown(run.log_path)} cannot be read ({type(exc).__name__}).")
    else:
        log = run.log() if run.log_path.is_file() else None  # cached: parsed once per change
        if log is not None and log.error:  # a binary or unreadable log: nothing of it is used
            problem(log.error.replace(log.label, run.shown(run.log_path), 1))
        else:
            row.update(training_budget(run))  # steps, tokens and FLOPs trained
    row["problems"] = problems
    row["flags"] = suspect
    row["status"] = run_status(row)
    row["problems"] = problems + suspect  # shown together; the status says which kind
    if load is None:
        row["checked"] = CHECKED_FILES
    else:
        row["checked"] = CHECKED_LOADED if load.get("info") else CHECKED_FAILED
    return row


def runs_table(models_dir: Path | str | None = None, known: Mapping | None = None) -> list[dict]:
    """Rows for every run under ``models_dir``, without starting a worker.

    ``known`` maps experiment name -> ``(findings as dicts, load records by run name)``, as
    :func:`known_by_experiment` makes them (computed here when not given): the Models page
    and `sandbox list` both pass through here, so a run has one status in both.
    """
    experiments = discover(models_dir)
    known = known if known is not None else known_by_experiment(experiments)
    rows = []
    for exp in experiments:
        findings, loads = known.get(exp.name, ([], {}))
        rows += [run_row(run, findings, loads.get(run.name)) for run in exp.runs]
    return rows


def table_stamp(experiments) -> tuple:
    """A stamp of everything :func:`runs_table` reads: each run's files (size, mtime), each
    experiment's code fingerprint, and the folders of records that loads, counts and sanity
    checks write. Equal stamps, equal tables: a few thousand stats for 500 runs, where
    building the table reads every config and log."""
    from sandbox.settings import cache_dir
    from sandbox.zoo.logread import file_stamp

    parts: list = [str(cache_dir())]
    for exp in experiments:
        parts.append((exp.name, exp.fingerprint()))
        for run in exp.runs:
            parts.append(tuple(file_stamp(path) for path in dict.fromkeys(run.files().values())))
    for kind in ("params", "loads", "sanity"):  # the records' kinds (`sandbox.zoo.records`)
        parts.append(file_stamp(cache_dir() / kind))
    return tuple(parts)


def known_by_experiment(experiments) -> dict[str, tuple[list[dict], dict[str, dict]]]:
    """``{experiment: (finding dicts, load records by run)}``: the static doctor plus what the
    last load of each run found (`sandbox.zoo.doctor.known_findings`); no worker is started."""
    from sandbox.zoo.doctor import known_findings

    out = {}
    for exp in experiments:
        findings, loads = known_findings(exp)
        out[exp.name] = ([f.as_dict() for f in findings], loads)
    return out


def run_configs(run: Run) -> dict:
    """The run's model config and its training config (keys prefixed ``train.``), as one dict
    for `config_diff`: two runs that differ only in steps or learning rate differ here too."""
    cfg = dict(run.model_config())
    train = run.train_config() or {}
    cfg.update({f"train.{key}": value for key, value in train.items()})
    return cfg


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
