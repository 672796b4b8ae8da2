"""The doctor: every rule of the experiment contract, checked, each failure one sentence.

Here are the static checks (files present, Python that compiles, JSON that parses, config
keys that ModelConfig declares, weights files that are complete torch.save files): they need
no worker and run in the app's process without importing any experiment code. Here too is
what the last load of each run found, remembered per run fingerprint (:func:`known_findings`),
so that the Models table and `sandbox list` show it without starting a worker. The dynamic
check, which loads each run in its worker, runs one short forward pass and scores a probe
text, is `sandbox.evaluation.checkup`.
"""

from __future__ import annotations

import ast
import json
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox.zoo import kinds, records
from sandbox.zoo.codediff import linked_code_files
from sandbox.zoo.confine import OutsideError, confine
from sandbox.zoo.discovery import Experiment, Run, refused_run_folders
from sandbox.zoo.pins import torch_pin

# Hints for findings whose rule is known but whose sentence came from elsewhere.
HINTS = {
    "layout": "Follow the layout in EXPERIMENT_CONTRACT.md: config.py, modules/model.py, tokenizers/, trained/<run>/.",
    "config": "Make config.py import cleanly and define a dataclass ModelConfig whose fields match model_config.json.",
    "run files": "Each run folder needs model.pth and model_config.json (train_config.json, log_data.csv, README.md optional).",
    "weights": "Save the weights with torch.save(model.state_dict(), 'model.pth') from the same code version.",
    "tokenizer": "tokenizers/<cfg.tokenizer>/tokenizer.py must define get_tokenizer(size).",
    "tokenizer data": "Ship the tokenizer model files; they are opened relative to the experiment root.",
    "special ids": "bos and eos must be rows of the model's embedding; pad may lie outside (it is never fed).",
    "model": "modules/model.py must define class Model(cfg).",
    "forward": "model(input_ids) must return (logits, None) with logits (batch, seq, vocab).",
    "worker": "The worker process failed; the server log has its last output.",
    "sanity": "Check that model.pth was saved after training, by this version of the code (a fresh "
    "Model(cfg) scores about ln vocab or worse), then evaluate it on the bundled corpus.",
    "files": "Copy the file or folder into the models directory instead of linking to it: nothing outside it is read.",
    "dependencies": "Compare with the experiment's own environment before trusting a small difference, or run the "
    "sandbox in a virtualenv with the torch it asks for (pip install torch==VERSION after make run's install).",
}


@dataclass(frozen=True)
class Finding:
    """One problem: where, which rule, what is wrong, how to fix it."""

    experiment: str
    run: str | None
    rule: str
    file: str
    sentence: str
    hint: str = ""
    severity: str = "error"  # "error" stops the run from loading; "warning" does not

    def as_dict(self) -> dict:
        return asdict(self)


def _compile_error(path: Path, rel: str) -> str | None:
    try:
        ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    except SyntaxError as exc:
        return f"{rel} has a syntax error on line {exc.lineno}: {exc.msg}."
    except (OSError, UnicodeDecodeError) as exc:
        return f"{rel} cannot be read ({exc})."
    return None


def weights_problem(path: Path, rel: str) -> str | None:
    """One sentence when ``path`` is not a complete torch.save file, else None.

    Read without torch and without unpickling anything: the zip container torch.save writes
    must have its central directory (at the very end of the file, so a truncated copy has
    none), a ``data.pkl`` record, and every record inside the file. The legacy format (a bare
    pickle stream) is only recognised here; loading it checks the rest.
    """
    truncated = f"{rel} is truncated or corrupt: it is not a complete torch.save file."
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as exc:
        return f"{rel} cannot be read ({exc.strerror or exc})."
    if size == 0:
        return f"{rel} is empty."
    if head == b"PK":
        try:
            with zipfile.ZipFile(path) as archive:
                records = archive.infolist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            return truncated
        if not any(r.filename == "data.pkl" or r.filename.endswith("/data.pkl") for r in records):
            return f"{rel} is a zip file but not one written by torch.save (it has no data.pkl)."
        if any(r.header_offset + r.compress_size > size for r in records):
            return truncated
        return None
    if head[:1] == b"\x80":  # a pickle's PROTO opcode: torch.save's legacy format
        return None
    return f"{rel} is not a torch.save file."


def model_config_fields(config_py: Path) -> set[str] | None:
    """Annotated fields of ``class ModelConfig`` in config.py, read from its syntax tree.

    None when the class cannot be found statically (the dynamic check then decides).
    """
    try:
        tree = ast.parse(config_py.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "ModelConfig":
            if node.bases:
                return None  # inherited fields: leave it to the worker
            return {
                stmt.target.id
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            }
    return None


def static_findings(exp: Experiment) -> list[Finding]:
    """Checks that read files only: the contract's for the template, each other kind's own
    (`sandbox.zoo.kinds`)."""
    pinned = torch_pin(exp.root)
    pin = [Finding(exp.name, None, "dependencies", pinned[0], pinned[1], HINTS["dependencies"], "warning")] if pinned else []
    if exp.kind != "template":
        return pin + [
            Finding(exp.name, run, rule, file, sentence, kinds.get(exp.kind).HINTS.get(rule, ""), severity)
            for run, rule, file, sentence, severity in kinds.get(exp.kind).findings(exp)
        ]
    out: list[Finding] = list(pin)

    def add(run: str | None, rule: str, file: str, sentence: str, severity: str = "error") -> None:
        out.append(Finding(exp.name, run, rule, file, sentence, HINTS.get(rule, ""), severity))

    base = exp.root.parent  # the models directory
    refused_code = set()
    for rel in linked_code_files(exp):
        refused_code.add(rel)
        add(None, "files", rel, f"{rel} is a link to a file outside the models directory; it is not read.")
    try:
        confine(exp.root / "README.md", base, "README.md")
    except OutsideError as exc:  # read for the code diff's guess of the base experiment
        add(None, "files", "README.md", str(exc), "warning")
    for sentence in refused_run_folders(exp.root, base):  # not listed: the other runs still load
        add(None, "files", sentence.split(" ", 1)[0], sentence, "warning")
    for rel, rule in (("config.py", "config"), ("modules/model.py", "model")):
        path = exp.root / rel
        if rel in refused_code:
            continue
        if not path.is_file():
            add(None, "layout", rel, f"{rel} is missing.")
        elif (err := _compile_error(path, rel)) is not None:
            add(None, rule, rel, err)
    if not any((exp.root / p).is_dir() for p in ("tokenizers", "custom_tokenizers")):  # renamed in mid-2024
        add(None, "layout", "tokenizers/", "The tokenizers/ folder is missing.")
    if not exp.runs:
        add(None, "layout", "trained/", "There are no trained runs under trained/.", "warning")
    fields = None if "config.py" in refused_code else model_config_fields(exp.root / "config.py")
    for run in exp.runs:
        out.extend(_run_static(exp, run, fields))
    return out


def _run_static(exp: Experiment, run: Run, fields: set[str] | None) -> list[Finding]:
    out = []
    rel = f"trained/{run.name}"

    def add(rule: str, file: str, sentence: str, severity: str = "error") -> None:
        out.append(Finding(exp.name, run.name, rule, file, sentence, HINTS.get(rule, ""), severity))

    refused = run.refused_files()
    for sentence in refused:
        add("files", sentence.split(" ", 1)[0], sentence)
    if not run.weights.is_file():
        add("weights", f"{rel}/model.pth", f"{rel}/model.pth is missing.")
    elif (problem := weights_problem(run.weights, f"{rel}/model.pth")) is not None:
        add("weights", f"{rel}/model.pth", problem)
    try:
        data = run.model_config()
    except OutsideError:
        data = None  # said above
    except ValueError as exc:
        add("run files", f"{rel}/model_config.json", f"{rel}/{exc}.")
        data = None
    if data is not None and fields is not None:
        unknown = sorted(set(data) - fields)
        if unknown:
            add(
                "config",
                f"{rel}/model_config.json",
                f"{rel}/model_config.json has keys that ModelConfig in config.py does not define: "
                f"{', '.join(unknown)}.",
            )
    if run.train_config_path.is_file() and f"{rel}/train_config.json" not in {f.file for f in out}:
        try:
            json.loads(run.checked("train_config.json").read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            add("run files", f"{rel}/train_config.json", f"{rel}/train_config.json is not valid JSON ({exc}).", "warning")
    return out



# -- what the last load of each run found, remembered on disk --------------------------------
# Keyed by the run's fingerprint (code, config, weights), so pages and commands that must not
# start workers (the Models table, `sandbox list`) show the same findings the doctor's full
# check made, until something the load depends on changes.


LOADS = "loads"  # the records' kind (`sandbox.zoo.records`)


def cached_load(run: Run) -> dict | None:
    """``{"findings": [Finding], "info": dict | None}`` of the last load of this run as it is
    now, or None when it was never loaded so (or the record cannot be read)."""
    data = records.read_record(LOADS, run)
    try:
        return {"findings": [Finding(**f) for f in data["findings"]], "info": data.get("info")}
    except (KeyError, TypeError, AttributeError):
        return None


def store_load(run: Run, findings: list[Finding], info: dict | None) -> bool:
    """Remember what loading ``run`` found; False (and nothing else) when it cannot be written."""
    return records.write_record(LOADS, run, {"findings": [f.as_dict() for f in findings], "info": info})


def known_findings(exp: Experiment) -> tuple[list[Finding], dict[str, dict]]:
    """Everything known about an experiment without starting a worker: the static findings,
    plus what the last load of each run found (for runs loaded with their current code,
    config and weights). Returns the findings and the load records by run name (runs never
    loaded so are absent; see :func:`cached_load`)."""
    findings = static_findings(exp)
    loads: dict[str, dict] = {}
    if any(f.severity == "error" and f.run is None for f in findings):
        return findings, loads  # the experiment itself is broken: older loads say nothing now
    broken_runs = {f.run for f in findings if f.severity == "error" and f.run}
    for run in exp.runs:
        record = None if run.name in broken_runs else cached_load(run)
        if record is not None:
            loads[run.name] = record
            findings += record["findings"]
    return findings, loads
