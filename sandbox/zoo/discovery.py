"""Find experiments and their trained runs under a models directory.

An experiment is a folder ``models/<experiment>/`` (see EXPERIMENT_CONTRACT.md); a run is a
folder ``trained/<run>/`` inside it. Runs are named ``"<experiment>/<run>"`` everywhere in the
sandbox. Requests name runs by that id and :func:`find_run` looks the id up in what discovery
found: no request ever builds a filesystem path.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.errors import UnknownRunError
from sandbox.settings import models_dir as default_models_dir
from sandbox.zoo.confine import OutsideError, confine, inside

# Folders inside models/ that are never experiments.
_SKIP_PREFIXES = (".", "_")
# The files of a run folder that the sandbox reads (EXPERIMENT_CONTRACT.md, layout).
RUN_FILES = ("model.pth", "model_config.json", "train_config.json", "log_data.csv", "README.md")


@dataclass(frozen=True)
class Run:
    """One trained run: ``<experiment>/trained/<name>/``."""

    experiment: str
    name: str
    dir: Path

    @property
    def id(self) -> str:
        return f"{self.experiment}/{self.name}"

    @property
    def experiment_root(self) -> Path:
        return self.dir.parent.parent

    @property
    def weights(self) -> Path:
        return self.dir / "model.pth"

    @property
    def model_config_path(self) -> Path:
        return self.dir / "model_config.json"

    @property
    def train_config_path(self) -> Path:
        return self.dir / "train_config.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "log_data.csv"

    @property
    def readme_path(self) -> Path:
        return self.dir / "README.md"

    @property
    def models_root(self) -> Path:
        """The models directory this run was found in (``<models>/<experiment>/trained/<run>``)."""
        return self.dir.parents[2]

    def checked(self, name: str) -> Path:
        """The run's file ``name``, for reading; raises `OutsideError` (a ValueError) when it
        is a link to a file outside the models directory. Every reader of a run file uses it."""
        return confine(self.dir / name, self.models_root, f"trained/{self.name}/{name}")

    def refused_files(self) -> list[str]:
        """One sentence per file of the run that is a link out of the models directory."""
        refused = []
        for name in RUN_FILES:
            try:
                self.checked(name)
            except OutsideError as exc:
                refused.append(str(exc))
        return refused

    def model_config(self) -> dict:
        """The saved ModelConfig fields; raises ``ValueError`` naming the file if unreadable."""
        return read_json_object(self.checked("model_config.json"))

    def train_config(self) -> dict | None:
        """The saved TrainConfig fields, or None when the run has none."""
        if not self.train_config_path.is_file():
            return None
        return read_json_object(self.checked("train_config.json"))

    def readme(self) -> str | None:
        """The run's README.md as text (None when it has none); a link out raises `OutsideError`."""
        if not self.readme_path.is_file():
            return None
        return self.checked("README.md").read_text(encoding="utf-8", errors="replace")

    def log(self):
        """The parsed training log (`sandbox.zoo.logs.RunLog`, cached by the file's size and mtime).

        A log that is a link out of the models directory is not read: its RunLog is empty
        and its note says why.
        """
        from sandbox.zoo import logread

        return logread.read_log(self.log_path, within=self.models_root)

    def fingerprint(self) -> str:
        """The experiment's code fingerprint + the weights' and model_config.json's size and mtime.

        Changes whenever any of them does (the config shapes the model as much as the code):
        the key of everything cached about a run's model (evaluation results, parameter
        counts, what its last load found).
        """
        size, mtime = self.weights_stamp()
        try:
            st = self.model_config_path.stat()
            config = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            config = "-1:-1"
        return f"{Experiment(self.experiment, self.experiment_root).fingerprint()}:{size}:{mtime}:{config}"

    def weights_stamp(self) -> tuple[int, int]:
        """(size, mtime_ns) of the weights file: part of every cache key for this run."""
        try:
            st = self.weights.stat()
        except OSError:
            return (-1, -1)
        return (st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Experiment:
    """One experiment folder and the runs found in it."""

    name: str
    root: Path
    runs: tuple[Run, ...] = field(default_factory=tuple)

    def fingerprint(self) -> str:
        """A short hash of the experiment's Python files (paths, sizes, mtimes).

        Cheap enough to compute on every page run; it changes whenever code is edited, so
        cached workers built from older code are not reused.
        """
        h = hashlib.sha1()
        for path in sorted(self.root.rglob("*.py")):
            if "trained" in path.relative_to(self.root).parts:
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            h.update(f"{path.relative_to(self.root)}:{st.st_size}:{st.st_mtime_ns};".encode())
        return h.hexdigest()[:12]


def read_json_object(path: Path) -> dict:
    """Read a JSON file that must hold an object; errors name the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} must hold a JSON object, not {type(data).__name__}")
    return data


def _is_experiment_dir(path: Path) -> bool:
    if not path.is_dir() or path.name.startswith(_SKIP_PREFIXES):
        return False
    return any((path / marker).exists() for marker in ("config.py", "modules", "trained"))


def discover(models_dir: Path | str | None = None) -> list[Experiment]:
    """All experiments under ``models_dir`` (sorted by name), each with its runs.

    Symbolic links that point outside the models directory are ignored, so a request can
    never reach a folder the person who started the app did not put there
    (:func:`refused_links` names them, for the doctor and the CLI).
    """
    base = default_models_dir(models_dir)
    if not base.is_dir():
        return []
    experiments = []
    for path in sorted(base.iterdir(), key=lambda p: p.name):
        if not _is_experiment_dir(path) or not inside(path, base):
            continue
        runs = []
        trained = path / "trained"
        if trained.is_dir():
            for run_dir in sorted(trained.iterdir(), key=lambda p: p.name):
                if run_dir.is_dir() and not run_dir.name.startswith(_SKIP_PREFIXES) and inside(
                    run_dir, base
                ):
                    runs.append(Run(experiment=path.name, name=run_dir.name, dir=run_dir))
        experiments.append(Experiment(name=path.name, root=path, runs=tuple(runs)))
    return experiments


def refused_links(models_dir: Path | str | None = None) -> list[str]:
    """One sentence per experiment or run folder that :func:`discover` leaves out because it
    is a link to a folder outside the models directory (paths relative to that directory)."""
    base = default_models_dir(models_dir)
    if not base.is_dir():
        return []
    refused = []
    for path in sorted(base.iterdir(), key=lambda p: p.name):
        if not _is_experiment_dir(path):
            continue
        if not inside(path, base):
            refused.append(_folder_refusal(path.name))
            continue
        refused += [f"{path.name}/{sentence}" for sentence in refused_run_folders(path, base)]
    return refused


def refused_run_folders(root: Path, base: Path) -> list[str]:
    """Sentences for the run folders of the experiment at ``root`` that are links out of ``base``."""
    trained = root / "trained"
    if not trained.is_dir():
        return []
    return [
        _folder_refusal(f"trained/{run_dir.name}")
        for run_dir in sorted(trained.iterdir(), key=lambda p: p.name)
        if run_dir.is_dir() and not run_dir.name.startswith(_SKIP_PREFIXES) and not inside(run_dir, base)
    ]


def _folder_refusal(shown: str) -> str:
    return f"{shown} is a link to a folder outside the models directory; it is not listed."


def all_runs(models_dir: Path | str | None = None) -> list[Run]:
    """Every run of every experiment, in a stable order."""
    return [run for exp in discover(models_dir) for run in exp.runs]


def find_experiment(models_dir: Path | str | None, name: str) -> Experiment:
    """The experiment called ``name``; raises ``UnknownRunError`` if discovery did not find it."""
    for exp in discover(models_dir):
        if exp.name == name:
            return exp
    raise UnknownRunError(f"no experiment called {name!r} in the models directory")


def lookup(models_dir: Path | str | None, run_id: str) -> tuple[Experiment, Run]:
    """The experiment and the run whose id is ``run_id`` (``"<experiment>/<run>"``), from one
    discovery: the one way a run id chosen from a list or read from a link becomes a run.

    Raises `UnknownRunError`, whose message is one sentence fit to show as is, for an id that
    discovery did not find (a typo, a run deleted since the list was drawn, a hostile link).
    """
    for exp in discover(models_dir):
        for run in exp.runs:
            if run.id == run_id:
                return exp, run
    raise UnknownRunError(f"no run called {run_id!r} in the models directory")


def find_run(models_dir: Path | str | None, run_id: str) -> Run:
    """The run whose id is ``run_id``, looked up among discovered runs (see :func:`lookup`)."""
    return lookup(models_dir, run_id)[1]
