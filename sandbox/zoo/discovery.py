"""Find experiments and their trained runs under a models directory.

An experiment is a folder ``models/<experiment>/`` (see EXPERIMENT_CONTRACT.md); a run is a
folder ``trained/<run>/`` inside it. Runs are named ``"<experiment>/<run>"`` everywhere in the
sandbox. Requests name runs by that id and :func:`find_run` looks the id up in what discovery
found: no request ever builds a filesystem path.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.errors import UnknownRunError
from sandbox.settings import models_dir as default_models_dir
from sandbox.zoo import kinds
from sandbox.zoo.confine import OutsideError, confine, inside
from sandbox.zoo.jsonfile import read_json_object  # noqa: F401 — kept importable from here

# Folders inside models/ that are never experiments.
_SKIP_PREFIXES = (".", "_")
# The files of a template run folder that the sandbox reads (EXPERIMENT_CONTRACT.md, layout).
RUN_FILES = tuple(kinds.template.ROLES.values())


@dataclass(frozen=True)
class Run:
    """One trained run of an experiment: its folder, and the kind of codebase that wrote it.

    The run's files are the kind's (`sandbox.zoo.kinds`): ``trained/<name>/model.pth`` and
    its JSON files for the template, ``<out_dir>/ckpt.pt`` for nanoGPT, ``config.json`` and
    ``model.safetensors`` for Hugging Face.
    """

    experiment: str
    name: str
    dir: Path
    kind: str = "template"
    root: Path | None = None  # the experiment folder (default: two levels above the run)

    @property
    def id(self) -> str:
        return f"{self.experiment}/{self.name}"

    @property
    def experiment_root(self) -> Path:
        return self.root if self.root is not None else self.dir.parent.parent

    @property
    def has_model(self) -> bool:
        """False for a run that is training logs alone (TensorBoard events, ``metrics.csv``):
        it has curves, and nothing to evaluate, sample or compare."""
        return kinds.has_model(self.kind)

    def files(self) -> dict[str, Path]:
        """The run's files by role (``weights``, ``model_config``, ``train_config``, ``log``,
        ``readme``) as its kind keeps them; a file may not exist."""
        return kinds.get(self.kind).files(self)

    def file(self, role: str) -> Path:
        """The run's file of ``role`` (see :meth:`files`)."""
        return self.files()[role]

    @property
    def weights(self) -> Path:
        return self.file("weights")

    @property
    def model_config_path(self) -> Path:
        return self.file("model_config")

    @property
    def train_config_path(self) -> Path:
        return self.file("train_config")

    @property
    def log_path(self) -> Path:
        return self.file("log")

    @property
    def readme_path(self) -> Path:
        return self.file("readme")

    @property
    def models_root(self) -> Path:
        """The models directory this run was found in (the experiment folder's parent)."""
        return self.experiment_root.parent

    @property
    def where(self) -> str:
        """The run's folder as a prefix of the sentences about its files: ``trained/<run>/``,
        ``out-char/``, or nothing for a run that is its experiment's folder."""
        shown = self.shown(self.dir)
        return "" if shown in (".", "") else f"{shown}/"

    def shown(self, path: Path) -> str:
        """``path`` as a person knows it: relative to the experiment folder."""
        if path.is_relative_to(self.experiment_root):
            return path.relative_to(self.experiment_root).as_posix()
        return path.name

    def checked(self, name: str) -> Path:
        """The run's file ``name`` (relative to its folder), for reading; raises `OutsideError`
        (a ValueError) when it is a link to a file outside the models directory. Every reader
        of a run file uses it."""
        path = self.dir / name
        return confine(path, self.models_root, self.shown(path))

    def refused_files(self) -> list[str]:
        """One sentence per file of the run that is a link out of the models directory."""
        refused = []
        for path in dict.fromkeys(self.files().values()):
            try:
                confine(path, self.models_root, self.shown(path))
            except OutsideError as exc:
                refused.append(str(exc))
        return refused

    def model_config(self) -> dict:
        """The model's settings as saved (``model_config.json``, nanoGPT's ``model_args``, a
        Hugging Face ``config.json``); raises ``ValueError`` naming the file if unreadable."""
        return kinds.get(self.kind).model_config(self)

    def train_config(self) -> dict | None:
        """The training settings as saved, or None when the run has none."""
        return kinds.get(self.kind).train_config(self)

    def readme(self) -> str | None:
        """The run's README.md as text (None when it has none); a link out raises `OutsideError`."""
        path = self.readme_path
        if not path.is_file():
            return None
        return confine(path, self.models_root, self.shown(path)).read_text(encoding="utf-8", errors="replace")

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
    kind: str = "template"

    @property
    def kind_label(self) -> str:
        """The codebase as a person names it ("templateGPT", "nanoGPT", ...)."""
        return kinds.get(self.kind).LABEL

    def fingerprint(self) -> str:
        """A short hash of the experiment's Python files (paths, sizes, mtimes).

        Cheap enough to compute on every page run; it changes whenever code is edited, so
        cached workers built from older code are not reused.
        """
        h = hashlib.sha1()
        for path in sorted(self._code_files(), key=lambda p: p.parts):
            try:
                st = path.stat()
            except OSError:
                continue
            h.update(f"{path.relative_to(self.root)}:{st.st_size}:{st.st_mtime_ns};".encode())
        return h.hexdigest()[:12]


    def _code_files(self) -> list[Path]:
        """The experiment's ``.py`` files, ``trained/`` folders left out without being walked
        (a lab of hundreds of runs would otherwise cost thousands of listings per run)."""
        found = []
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if d != "trained"]
            found += [Path(folder, name) for name in files if name.endswith(".py")]
        return found


def _kind_of(path: Path):
    """The kind of the folder ``path`` (`sandbox.zoo.kinds`), or None when it is no experiment."""
    if not path.is_dir() or path.name.startswith(_SKIP_PREFIXES):
        return None
    return kinds.kind_of(path)


def _is_experiment_dir(path: Path) -> bool:
    return _kind_of(path) is not None


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
        exp = experiment_at(path, base)
        if exp is not None:
            experiments.append(exp)
    return experiments


def experiment_at(path: Path, base: Path) -> Experiment | None:
    """The experiment in the folder ``path`` of the models directory ``base`` (resolved), with
    its runs; None when it is no experiment of any kind or a link out of ``base``."""
    kind = _kind_of(path)
    if kind is None or not inside(path, base):
        return None
    runs = tuple(
        Run(experiment=path.name, name=name, dir=run_dir, kind=kind.NAME, root=path)
        for name, run_dir in kind.run_folders(path)
        if inside(run_dir, base)
    )
    return Experiment(name=path.name, root=path, runs=runs, kind=kind.NAME)


def _dir_stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (-1, -1, -1)
    # A folder's link count moves when a subfolder comes or goes, even within one mtime tick.
    return (st.st_mtime_ns, st.st_ino, st.st_nlink)


def tree_stamp(models_dir: Path | str | None = None) -> tuple:
    """A cheap stamp of what :func:`discover` finds: the models folder, each experiment folder
    and its ``trained/`` folder (a couple of stats per experiment, not per run). It changes
    when an experiment or a run folder is added, removed or renamed, so a discovery kept under
    it is current (500 runs: discovery takes about 15 ms, the stamp well under 1 ms)."""
    base = default_models_dir(models_dir)
    parts: list = [str(base), _dir_stamp(base)]
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError:
        return tuple(parts)
    for entry in entries:
        path = Path(entry.path)
        parts.append((entry.name, _dir_stamp(path), _dir_stamp(path / "trained")))
    return tuple(parts)


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
