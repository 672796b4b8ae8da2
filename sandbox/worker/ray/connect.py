"""The app's connection to the Ray cluster: joining it as a driver, pushing packages of files,
and the actor class. The only module (with `client`) that imports ``ray``, always lazily.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

from sandbox.settings import PACKAGE_PARENT
from sandbox.worker.protocol import strip_paths
from sandbox.worker.ray.actor import ExperimentActor
from sandbox.worker.ray.settings import INSTALL_SENTENCE, RayUnavailable

log = logging.getLogger(__name__)


def require_ray() -> Any:
    """The ``ray`` module, or `RayUnavailable` with the one sentence that says how to get it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(INSTALL_SENTENCE) from None
    return ray


_CONNECT = threading.Lock()


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's text, without server paths, cut to ``limit`` characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = strip_paths(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def connect(address: str) -> Any:
    """Join the cluster at ``address`` as its driver (once per process); returns ``ray``.

    A failure is a `RayUnavailable` sentence; an authentication failure says where the
    token goes.
    """
    ray = require_ray()
    with _CONNECT:
        if ray.is_initialized():
            return ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if why := _unreachable(address):
            # Ray itself retries an address where nothing listens for minutes.
            raise RayUnavailable(
                f"The app could not join the Ray cluster at {address}: nothing answers there ({why}).",
                hint="Check that `ray start --head` runs there and that the address and port are right.",
            )
        try:
            ray.init(address=address, namespace="sandbox", log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:  # noqa: BLE001 — Ray raises many kinds here; each becomes a sentence
            detail = "".join(traceback.format_exception(exc))
            # Ray wraps a refused token in a connection error; its text names the cause.
            auth = isinstance(exc, ray.exceptions.AuthenticationError) or any(
                word in detail for word in ("Unauthenticated", "AuthToken", "AuthenticationError")
            )
            hint = (
                "The cluster uses token authentication: give the app its token in RAY_AUTH_TOKEN, or "
                "in the file ~/.ray/auth_token (print it on the head node with `ray get-auth-token`)."
                if auth
                else "Check that `ray start --head` runs there and that the address and port are right."
            )
            raise RayUnavailable(
                f"The app could not join the Ray cluster at {address} ({first_line(exc)}).",
                hint=hint,
                detail=detail[-4000:],
            ) from None
    return ray


def _unreachable(address: str) -> str | None:
    """Why nothing answers at a ``HOST:PORT`` (or ``ray://HOST:PORT``) address; None when
    something does, or for ``auto``, which Ray resolves itself."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


_ACTOR_CLASS: Any = None


def actor_class(ray: Any) -> Any:
    """`ExperimentActor` as a Ray actor class (made once per process)."""
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = ray.remote(ExperimentActor)
    return _ACTOR_CLASS


def upload(directory: Path, *, include_parent_dir: bool) -> str:
    """Put a folder into the cluster as a Ray package; returns its ``gcs://`` URI.

    Ray takes local paths only in ``ray.init``'s own runtime_env; a per-actor one needs a URI,
    so the folder is packed and pushed the way ``ray.init`` does it (content-addressed: an
    unchanged folder is not sent twice). ``.gitignore`` files are not obeyed: what travels is
    chosen by `files.manifest`.
    """
    from ray._private.runtime_env import packaging

    uri = packaging.get_uri_for_directory(str(directory), include_gitignore=False, excludes=["__pycache__"])
    with tempfile.TemporaryDirectory(prefix="sandbox-ray-pack-") as scratch:
        packaging.upload_package_if_needed(
            uri, scratch, str(directory), include_gitignore=False,
            include_parent_dir=include_parent_dir, excludes=["__pycache__"],
        )  # fmt: skip
    return uri


def sandbox_uri() -> str:
    """The sandbox package itself (half a megabyte): the actors run the app's own code.

    Not remembered between actors: a cluster restarted since has lost it, and checking is
    what `upload` does anyway (an unchanged package is not sent twice).
    """
    return upload(PACKAGE_PARENT / "sandbox", include_parent_dir=True)


def mb(size: float) -> str:
    """A size in bytes as megabytes, as a sentence gives it."""
    return f"{size / 1e6:,.0f} MB" if size >= 10e6 else f"{size / 1e6:.2g} MB"


def death_cause(exc: BaseException) -> str:
    """Why Ray says an actor died, in a few words (the whole text goes to the log)."""
    text = str(exc)
    lower = text.lower()
    if "ray.kill" in text:
        return "its Ray actor was killed"
    if "out of memory" in lower or "outofmemory" in lower or "oom" in lower.split():
        return "its Ray actor ran out of memory"
    if "node" in lower and ("died" in lower or "dead" in lower) and "worker process" not in lower:
        return "the Ray node it ran on died"
    return "its Ray actor died"


def ray_if_connected() -> Any:
    """``ray`` when this process is connected to a cluster (closing after a shutdown is a no-op)."""
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def forwarded_env() -> dict[str, str]:
    """Settings of the app that apply to its workers wherever they run."""
    return {k: os.environ[k] for k in ("SANDBOX_DEVICE",) if os.environ.get(k)}
