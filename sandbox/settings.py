"""Where things live (models, cache and data folders) and the settings read from the environment.

The models directory is the only place experiments are loaded from. It is chosen by the
person who starts the app (``--models-dir`` or ``SANDBOX_MODELS_DIR``), never by a request.

Run from its source checkout (installed with ``pip install -e .`` or not), the sandbox keeps
its folders in the checkout: ``models/``, ``.cache/``, ``data/``. An installed copy has no
checkout around it: it looks for ``models/`` and ``data/`` in the current directory and
caches under ``$XDG_CACHE_HOME/micro-gpt-sandbox`` (``~/.cache/micro-gpt-sandbox``).
``SANDBOX_MODELS_DIR``, ``SANDBOX_CACHE_DIR`` and ``SANDBOX_DATA_DIR`` choose any other.
Imports nothing of the sandbox.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

PACKAGE_PARENT = Path(__file__).resolve().parent.parent  # the folder holding the `sandbox` package
PROJECT_ROOT = PACKAGE_PARENT  # the source checkout, when the sandbox runs from one
APP_NAME = "micro-gpt-sandbox"


def in_checkout() -> bool:
    """True when the `sandbox` package is imported from its source checkout (the app's entry
    script sits beside it), False for an installed copy."""
    return (PROJECT_ROOT / "streamlit_app.py").is_file()


def _home() -> Path:
    """Where the default models and data folders are: the checkout, else the current directory."""
    return PROJECT_ROOT if in_checkout() else Path.cwd()


def models_dir(override: str | os.PathLike | None = None) -> Path:
    """The models directory: ``override``, else ``$SANDBOX_MODELS_DIR``, else ``models/`` (of
    the checkout; of the current directory for an installed copy)."""
    chosen = override or os.environ.get("SANDBOX_MODELS_DIR") or _home() / "models"
    return Path(chosen).expanduser().resolve()


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data folder the Evaluation page offers files from: ``override``, else
    ``$SANDBOX_DATA_DIR``, else ``data/`` (of the checkout, or of the current directory)."""
    chosen = override or os.environ.get("SANDBOX_DATA_DIR") or _home() / "data"
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
    """Writable cache folder: ``$SANDBOX_CACHE_DIR``, else ``.cache/`` in the checkout, else
    ``$XDG_CACHE_HOME/micro-gpt-sandbox`` (``~/.cache/...``) for an installed copy."""
    default = PROJECT_ROOT / ".cache"
    if not in_checkout():
        default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / APP_NAME
    path = Path(os.environ.get("SANDBOX_CACHE_DIR") or default).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


RAY_ADDRESS_ENV = "SANDBOX_RAY_ADDRESS"


def ray_address(override: str | None = None) -> str | None:
    """The Ray cluster the workers run on: ``override`` (``--ray``), else
    ``$SANDBOX_RAY_ADDRESS``; None (workers are local processes) when neither is set.

    ``auto`` joins the cluster this machine belongs to; otherwise ``HOST:PORT`` of the head.
    """
    chosen = (override or os.environ.get(RAY_ADDRESS_ENV, "")).strip()
    return chosen or None


def parse_app_ray(argv: list[str]) -> str | None:
    """The Ray address from the app's own arguments (``streamlit run app.py -- --ray auto``),
    else ``$SANDBOX_RAY_ADDRESS`` (see `ray_address`)."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--ray", default=None)
    args, _ = parser.parse_known_args(argv)
    return ray_address(args.ray)


def parse_app_args(argv: list[str]) -> Path:
    """The models directory from the app's own arguments (``streamlit run app.py -- --models-dir D``).

    Unknown arguments are ignored so that Streamlit's and pytest's own flags pass through.
    """
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--models-dir", default=None)
    args, _ = parser.parse_known_args(argv)
    return models_dir(args.models_dir)
