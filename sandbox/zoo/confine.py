"""The one rule for files: nothing outside its allowed folder is read, links resolved.

Everything the app or the CLI reads (configs, logs, READMEs, weights, code for the code
diff, data files) goes through :func:`confine` first.
"""

from __future__ import annotations

import os
from pathlib import Path


def inside(path: Path | str, base: Path | str) -> bool:
    """True when ``path`` (links resolved) lies under ``base`` (a folder already resolved)."""
    # Strings, not pathlib: discovery and every config and log read of 500 runs come here.
    real, root = os.path.realpath(path), os.fspath(base)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


class OutsideError(ValueError):
    """A file that is (or is reached through) a link to somewhere outside its allowed folder."""


def confine(path: Path, base: Path, shown: str, where: str = "the models directory") -> Path:
    """``path`` if, with every link resolved, it lies inside ``base``; else raises OutsideError.

    The one rule for files: everything the app or the CLI reads (configs, logs, READMEs,
    weights, code for the code diff, data files) goes through here first. ``shown`` names
    the file in the sentence (a path relative to ``base``, never a server path).
    """
    if not inside(path, os.path.realpath(base)):
        raise OutsideError(f"{shown} is a link to a file outside {where}; it is not read.")
    return path
