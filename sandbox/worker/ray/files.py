"""What of an experiment travels to a Ray cluster, and the fingerprints that prove a copy is current.

Both ends use the same walk (`manifest`): the app over the models directory, the actor over the
copy Ray unpacked on its node (or, on a shared filesystem, over the same folder by path). A file
is listed when a worker may read it: the experiment's code and data (every file not hidden and
not in ``__pycache__``) and, of ``trained/``, each run's ``model.pth`` and ``model_config.json``
only (logs, READMEs and checkpoints are never read by a worker, and a log that grows while a run
trains must not count as a change). A link that leads out of the models directory is left out,
as everywhere in the sandbox: the cluster never receives a file the app would not read.

Nothing here imports Ray or torch: the app computes, the actor checks.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from sandbox.settings import PACKAGE_PARENT

SKIPPED_DIRS = {"__pycache__"}
RUN_FILES_SHIPPED = ("model.pth", "model_config.json")  # what `sandbox.worker.host` reads of a run
_CHUNK = 4 << 20


@dataclass(frozen=True)
class Entry:
    """One listed file: where it is shown (``rel``), where its bytes are, and its stat stamp."""

    rel: str  # POSIX path relative to the experiment root
    path: Path  # the file itself, links resolved
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Manifest:
    """The files a worker of one experiment may read, and the links left out."""

    root: Path
    entries: tuple[Entry, ...]
    left_out: tuple[str, ...]  # links out of the models directory (relative paths)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def stamp(self) -> str:
        """Changes when any listed file is added, removed or rewritten (cheap: stat only)."""
        h = hashlib.sha1()
        for e in self.entries:
            h.update(f"{e.rel}\0{e.size}\0{e.mtime_ns}\n".encode())
        return h.hexdigest()

    def largest(self, n: int = 3) -> list[tuple[str, int]]:
        """The ``n`` top-level entries that take the most bytes (for the too-large sentence)."""
        sizes: dict[str, int] = {}
        for e in self.entries:
            top = e.rel.split("/", 1)[0] + ("/" if "/" in e.rel else "")
            sizes[top] = sizes.get(top, 0) + e.size
        return sorted(sizes.items(), key=lambda kv: -kv[1])[:n]


def manifest(root: Path | str, models_root: Path | str | None = None) -> Manifest:
    """The files of the experiment at ``root`` that a worker may read (see the module docstring).

    ``models_root`` (default: the folder holding ``root``) bounds where links may lead. Only
    links are resolved (the app walks this before every request on a Ray worker: it must be
    cheap), and a folder met twice through links is walked once.
    """
    root = Path(root)
    base = str(Path(models_root).resolve() if models_root is not None else root.parent.resolve())
    entries: list[Entry] = []
    left_out: list[str] = []
    seen: set[str] = set()

    def real_of(path: str, is_link: bool, rel: str) -> str | None:
        """The real path of a child of a real folder; None (and noted) for a link out of ``base``."""
        if not is_link:
            return path
        real = os.path.realpath(path)
        if real == base or real.startswith(base + os.sep):
            return real
        left_out.append(rel)
        return None

    def add_file(real: str, rel: str) -> None:
        try:
            st = os.stat(real)
        except OSError:
            return  # a dangling link, or removed while we looked
        entries.append(Entry(rel, Path(real), st.st_size, st.st_mtime_ns))

    def walk(real_dir: str, rel: str, top: bool) -> None:
        if real_dir in seen:
            return
        seen.add(real_dir)
        with os.scandir(real_dir) as children:
            found = sorted(children, key=lambda c: c.name)
        for child in found:
            if child.name.startswith(".") or child.name in SKIPPED_DIRS:
                continue
            child_rel = f"{rel}/{child.name}" if rel else child.name
            real = real_of(child.path, child.is_symlink(), child_rel)
            if real is None:
                continue
            if os.path.isdir(real):
                if top and child.name == "trained":
                    walk_trained(real, child_rel)
                else:
                    walk(real, child_rel, False)
            elif os.path.isfile(real):
                add_file(real, child_rel)

    def walk_trained(trained: str, rel: str) -> None:
        with os.scandir(trained) as children:
            runs = sorted(children, key=lambda c: c.name)
        for run in runs:
            if run.name.startswith((".", "_")):
                continue  # discovery lists no such run, so no request can name it
            run_real = real_of(run.path, run.is_symlink(), f"{rel}/{run.name}")
            if run_real is None or not os.path.isdir(run_real):
                continue
            for name in RUN_FILES_SHIPPED:
                path = os.path.join(run_real, name)
                real = real_of(path, os.path.islink(path), f"{rel}/{run.name}/{name}")
                if real is not None and os.path.isfile(real):
                    add_file(real, f"{rel}/{run.name}/{name}")

    top = root.resolve()
    if not (str(top) == base or str(top).startswith(base + os.sep)):
        return Manifest(root, (), (".",))
    walk(str(top), "", True)
    return Manifest(root, tuple(sorted(entries, key=lambda e: e.rel)), tuple(left_out))


# (path, size, mtime_ns) -> sha256 of the content: the app hashes a weights file once per version.
_DIGESTS: dict[tuple[str, int, int], str] = {}
_DIGEST_LOCK = threading.Lock()


def file_digest(entry: Entry) -> str:
    """sha256 of one listed file, remembered for as long as its size and mtime stay the same."""
    key = (str(entry.path), entry.size, entry.mtime_ns)
    with _DIGEST_LOCK:
        known = _DIGESTS.get(key)
    if known is not None:
        return known
    h = hashlib.sha256()
    with open(entry.path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    with _DIGEST_LOCK:
        _DIGESTS[key] = digest
    return digest


def content_fingerprint(m: Manifest) -> str:
    """One hash of every listed file's path and bytes: equal on both ends iff the copy is current.

    By content, not by stat: Ray's zip does not keep modification times.
    """
    h = hashlib.sha256()
    for e in m.entries:
        h.update(f"{e.rel}\0{file_digest(e)}\n".encode())
    return h.hexdigest()


def fingerprint_here(root: Path | str, rels: list[str], models_root: Path | str | None = None) -> str | None:
    """`content_fingerprint` of the files ``rels`` (the app's manifest) as found under ``root``
    on this node; None when one is missing or is a link out of the models directory.

    Only the app's files are checked: a file the experiment's own code writes into its folder
    once it runs (a cache, say) is no reason to refuse the copy to the next actor that Ray
    unpacks it for.
    """
    root = Path(root)
    base = os.path.realpath(models_root if models_root is not None else root.parent)
    h = hashlib.sha256()
    for rel in rels:
        real = os.path.realpath(root / rel)
        if not real.startswith(base + os.sep) or not os.path.isfile(real):
            return None
        st = os.stat(real)
        h.update(f"{rel}\0{file_digest(Entry(rel, Path(real), st.st_size, st.st_mtime_ns))}\n".encode())
    return h.hexdigest()


def stage(m: Manifest, name: str) -> Path:
    """A temporary folder ``<tmp>/<name>/…`` of links to exactly the listed files.

    Ray packs a folder it is given (following links); giving it this one instead of the
    experiment root means it packs nothing a worker would not read, whatever ``.gitignore``,
    ``.rayignore`` or stray links the experiment holds. The folder is named after the
    experiment so that the worker's sentences name it. The caller removes the folder.
    """
    top = Path(tempfile.mkdtemp(prefix="sandbox-ray-stage-"))
    for e in m.entries:
        target = top / name / e.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(e.path, target)
    (top / name).mkdir(exist_ok=True)  # an experiment with no listed file still gets its folder
    return top


_CODE: dict[str, str] = {}


def sandbox_fingerprint() -> str:
    """sha256 of the sandbox package's own Python files, as imported in this process.

    The app and each actor compare theirs: a node that imports another version of the
    sandbox (an old checkout at the same path) is refused instead of answering differently.
    """
    package = PACKAGE_PARENT / "sandbox"
    if str(package) not in _CODE:
        h = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):
            if SKIPPED_DIRS & set(path.relative_to(package).parts):
                continue
            h.update(f"{path.relative_to(package).as_posix()}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
        _CODE[str(package)] = h.hexdigest()
    return _CODE[str(package)]
