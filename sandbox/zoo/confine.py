"""The one rule for files: nothing outside its allowed folder is read, links resolved.

Everything the app or the CLI reads (configs, logs, READMEs, weights, code for the code
diff, data files) goes through :func:`confine` first.
"""

from __future__ import annotations

from pathlib import Path


def inside(path: Path, base: Path) -> bool:
    """True when ``path`` (links resolved) lies under ``base``."""
    try:
        path.resolve().relative_to(base)
    except ValueError:
        return False
    return True


class OutsideError(ValueError):
    """A file that is (or is reached through) a link to somewhere outside its allowed folder."""


def confine(path: Path, base: Path, shown: str, where: str = "the models directory") -> Path:
    """``path`` if, with every link resolved, it lies inside ``base``; else raises OutsideError.

    The one rule for files: everything the app or the CLI reads (configs, logs, READMEs,
    weights, code for the code diff, data files) goes through here first. ``shown`` names
    the file in the sentence (a path relative to ``base``, never a server path).
    """
    if not inside(path, Path(base).resolve()):
        raise OutsideError(f"{shown} is a link to a file outside {where}; it is not read.")
    return path
