"""Where things live: the models directory, the cache directory, the project root.

The models directory is the only place experiments are loaded from. It is chosen by the
person who starts the app (``--models-dir`` or ``SANDBOX_MODELS_DIR``), never by a request.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS_DIR = PROJECT_ROOT / "models"


def models_dir(override: str | os.PathLike | None = None) -> Path:
    """The models directory: ``override``, else ``$SANDBOX_MODELS_DIR``, else ``models/``."""
    chosen = override or os.environ.get("SANDBOX_MODELS_DIR") or DEFAULT_MODELS_DIR
    return Path(chosen).expanduser().resolve()


def cache_dir() -> Path:
    """Writable cache folder (``$SANDBOX_CACHE_DIR`` or ``.cache/`` in the project)."""
    path = Path(os.environ.get("SANDBOX_CACHE_DIR") or PROJECT_ROOT / ".cache").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def parse_app_args(argv: list[str]) -> Path:
    """The models directory from the app's own arguments (``streamlit run app.py -- --models-dir D``).

    Unknown arguments are ignored so that Streamlit's and pytest's own flags pass through.
    """
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--models-dir", default=None)
    args, _ = parser.parse_known_args(argv)
    return models_dir(args.models_dir)
