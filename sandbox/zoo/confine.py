"""The one rule for files: nothing outside its allowed folder is read, links resolved.

Everything the app or the CLI reads (configs, logs, READMEs, weights, code for the code
diff, data files) goes through :func:`confine` first.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path


def inside(path: Path | str, base: Path | str) -> bool:
    """True when ``path`` (links resolved) lies under ``base`` (a folder already resolved)."""
    # Strings, not pathlib: discovery and every config and log read of 500 runs come here.
    real, root = os.path.realpath(path), os.fspath(base)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def real_folder(base: Path | str) -> str:
    """``base`` with its links resolved, kept while the folder itself is unchanged.

    Every config and log read checks its file against the models directory: resolving the
    directory each time was a third of that check. The key is the folder's own lstat and,
    for a link, its target (a link re-pointed elsewhere is a new key); the file's own path
    is resolved on every read.
    """
    text = os.fspath(base)
    try:
        st = os.lstat(text)
    except OSError:
        return os.path.realpath(text)
    target = os.readlink(text) if stat.S_ISLNK(st.st_mode) else ""
    return _resolved(text, target, st.st_ino, st.st_dev, st.st_ctime_ns)


@functools.lru_cache(maxsize=256)
def _resolved(text: str, target: str, ino: int, dev: int, ctime_ns: int) -> str:
    return os.path.realpath(text)


class OutsideError(ValueError):
    """A file that is (or is reached through) a link to somewhere outside its allowed folder."""


def confine(path: Path, base: Path, shown: str, where: str = "the models directory") -> Path:
    """``path`` if, with every link resolved, it lies inside ``base``; else raises OutsideError.

    The one rule for files: everything the app or the CLI reads (configs, logs, READMEs,
    weights, code for the code diff, data files) goes through here first. ``shown`` names
    the file in the sentence (a path relative to ``base``, never a server path).
    """
    if not inside(path, real_folder(base)):
        raise OutsideError(f"{shown} is a link to a file outside {where}; it is not read.")
    return path
