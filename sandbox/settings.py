"""Where things live: the models directory, the cache directory, the project root.

The models directory is the only place experiments are loaded from. It is chosen by the
person who starts the app (``--models-dir`` or ``SANDBOX_MODELS_DIR``), never by a request.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_PARENT = PROJECT_ROOT  # the folder holding the `sandbox` package (a worker imports it from there)
DEFAULT_MODELS_DIR = PROJECT_ROOT / "models"


def models_dir(override: str | os.PathLike | None = None) -> Path:
    """The models directory: ``override``, else ``$SANDBOX_MODELS_DIR``, else ``models/``."""
    chosen = override or os.environ.get("SANDBOX_MODELS_DIR") or DEFAULT_MODELS_DIR
    return Path(chosen).expanduser().resolve()


DEFAULT_REQUEST_TIMEOUT = 120.0  # seconds for one worker request, or one item of a stream
REQUEST_TIMEOUT_ENV = "SANDBOX_REQUEST_TIMEOUT"


def parse_timeout(text: str) -> float:
    """A timeout in seconds from text: a finite number above 0, else ValueError with a sentence."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"a timeout must be a number of seconds, not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"a timeout must be more than 0 seconds, not {text!r}")
    return value


def request_timeout() -> float:
    """Seconds a worker may take for one request (``$SANDBOX_REQUEST_TIMEOUT``, else 120).

    A worker that takes longer is stopped, and the requests queued behind it get a fresh one.
    An unusable value is logged and the default used: a typo must not take the app down.
    """
    raw = os.environ.get(REQUEST_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_REQUEST_TIMEOUT
    try:
        return parse_timeout(raw)
    except ValueError as exc:
        logging.getLogger(__name__).warning(
            "%s: %s; using %.0f s", REQUEST_TIMEOUT_ENV, exc, DEFAULT_REQUEST_TIMEOUT
        )
        return DEFAULT_REQUEST_TIMEOUT


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
