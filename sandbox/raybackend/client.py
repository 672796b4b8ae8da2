"""The app's side of the Ray backend: the same worker API as `sandbox.loader`, on Ray actors.

`RayWorkerClient` is a `sandbox.loader.WorkerClient` whose worker is a Ray actor
(`sandbox.raybackend.actor.ExperimentActor`) somewhere on the cluster instead of a local
process: the same ``request`` / ``stream`` / ``close`` / ``retire``, the same queueing of
requests, the same slots of a `WorkerLimiter`, and the same exceptions with the same sentences
(the actor runs the worker process through `WorkerClient` on its node, so a crash or a
timeout there is worded there, with the worker's own last words).

What the app adds around it:

* **Its own deadlines.** Every call to the actor has one: the worker's timeout plus
  `GRACE`, so the node's sentence comes first and an actor that stops answering (a node
  lost, a process stopped) is killed with ``ray.kill`` and replaced on the next request.
* **A died actor** (``RayActorError``) is reported as `WorkerCrashed` and replaced on the
  next request; one that died between requests is replaced before the request (a ping).
* **Files.** The experiment's files (`files.manifest`) reach the actor as a Ray
  ``working_dir`` package, or by path with ``SANDBOX_RAY_SHARED_FS=1``; the actor checks them
  by content before its worker starts. A client whose experiment files changed since its
  actor started (new weights) replaces the actor before the next request.

Requests and results travel between the app and the actors as pickled Python objects (Ray's
own transport): the cluster must be one the app trusts, and it must trust the app.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.discovery import Experiment
from sandbox.loader import CANCEL_WAIT, NEXT_STARTS_FRESH, START_TIMEOUT, WorkerClient, WorkerPool
from sandbox.protocol import (
    RequestFailed,
    WorkerBusy,
    WorkerCrashed,
    WorkerError,
    WorkerTimeout,
    strip_paths,
)
from sandbox.raybackend.actor import ExperimentActor
from sandbox.raybackend.files import (
    Manifest,
    content_fingerprint,
    manifest,
    sandbox_fingerprint,
    stage,
)

log = logging.getLogger(__name__)

ADDRESS_ENV = "SANDBOX_RAY_ADDRESS"
SHARED_FS_ENV = "SANDBOX_RAY_SHARED_FS"
GPUS_ENV = "SANDBOX_RAY_GPUS_PER_ACTOR"
CPUS_ENV = "SANDBOX_RAY_CPUS_PER_ACTOR"
MAX_UPLOAD_ENV = "SANDBOX_RAY_MAX_UPLOAD_MB"
INSTALL_SENTENCE = "Ray workers need the optional ray package: pip install -r requirements-ray.txt."

GRACE = 15.0  # the app waits this much longer than the worker's own timeout
PULL_WAIT = 0.5  # an actor holds a pull this long for a stream's first item
PING_TIMEOUT = 10.0  # the check before a request that the actor still answers ...
PING_AFTER_IDLE = 2.0  # ... made when it has been idle this long (back-to-back requests skip it)


class RayUnavailable(WorkerError):
    """The Ray cluster cannot serve this: ray not installed, cluster unreachable or refusing,
    or an experiment it cannot take (too large to send, a stale copy, other sandbox code)."""


# -- settings ----------------------------------------------------------------------------------


def _number(env: str, default: float) -> float:
    """A positive number from the environment; an unusable value is logged and the default used
    (as `sandbox.settings.request_timeout` does: a typo must not take the app down)."""
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        log.warning("%s must be a number above 0, not %r; using %g", env, raw, default)
        return default
    return value


@dataclass(frozen=True)
class RaySettings:
    """How the app uses the cluster (each from its ``SANDBOX_RAY_*`` variable)."""

    address: str  # "auto", "HOST:PORT" (the head's GCS port) or "ray://HOST:10001"
    shared_fs: bool = False  # the models directory is at the same path on every node
    gpus_per_actor: float = 0.25  # asked for when the cluster has GPUs (a fraction shares one)
    cpus_per_actor: float = 1.0
    max_upload_mb: float = 200.0  # an experiment larger than this is not sent

    @classmethod
    def from_env(cls, address: str) -> RaySettings:
        return cls(
            address=address,
            shared_fs=os.environ.get(SHARED_FS_ENV, "").strip().lower() in {"1", "true", "yes", "on"},
            gpus_per_actor=_number(GPUS_ENV, 0.25),
            cpus_per_actor=_number(CPUS_ENV, 1.0),
            max_upload_mb=_number(MAX_UPLOAD_ENV, 200.0),
        )


# -- the connection ----------------------------------------------------------------------------


def require_ray() -> Any:
    """The ``ray`` module, or `RayUnavailable` with the one sentence that says how to get it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(INSTALL_SENTENCE) from None
    return ray


_CONNECT = threading.Lock()


def _first_line(exc: BaseException, limit: int = 200) -> str:
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
                f"The app could not join the Ray cluster at {address} ({_first_line(exc)}).",
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


def _actor_class(ray: Any) -> Any:
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = ray.remote(ExperimentActor)
    return _ACTOR_CLASS


def _upload(directory: Path, *, include_parent_dir: bool) -> str:
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


def _sandbox_uri() -> str:
    """The sandbox package itself (half a megabyte): the actors run the app's own code.

    Not remembered between actors: a cluster restarted since has lost it, and checking is
    what `_upload` does anyway (an unchanged package is not sent twice).
    """
    return _upload(Path(__file__).resolve().parent.parent, include_parent_dir=True)


def _mb(size: float) -> str:
    return f"{size / 1e6:,.0f} MB" if size >= 10e6 else f"{size / 1e6:.2g} MB"


def _death_cause(exc: BaseException) -> str:
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


def actor_resources(settings: RaySettings, device: str | None, cluster_gpus: float) -> dict:
    """What an actor asks Ray for: its CPUs, and a (fraction of a) GPU when the cluster has GPUs
    and no other device is asked for (``device``, else ``$SANDBOX_DEVICE``)."""
    options: dict[str, Any] = {"num_cpus": settings.cpus_per_actor}
    wanted = device or os.environ.get("SANDBOX_DEVICE")
    if (wanted is None or wanted.startswith("cuda")) and cluster_gpus > 0:
        options["num_gpus"] = settings.gpus_per_actor
    return options


_KINDS: dict[str, type[WorkerError]] = {
    cls.__name__: cls for cls in (RequestFailed, WorkerCrashed, WorkerTimeout, WorkerBusy, RayUnavailable)
}


# -- one experiment's worker -------------------------------------------------------------------


class RayWorkerClient(WorkerClient):
    """A `WorkerClient` whose worker is a Ray actor; one actor per experiment, never shared."""

    def __init__(
        self,
        root: Path | str,
        device: str | None = None,
        *,
        settings: RaySettings,
        timeout: float | None = None,
        start_timeout: float = START_TIMEOUT,
        wait_timeout: float = 600.0,
        limiter: Any = None,
    ):
        super().__init__(
            root, device, timeout=timeout, start_timeout=start_timeout, wait_timeout=wait_timeout, limiter=limiter
        )
        self.settings = settings
        self.wanted_device = device  # kept: a replacement actor may land on another node
        self.actor_pid: int | None = None
        self.node: str | None = None
        self.start_seconds: float | None = None  # last start: actor placed, files checked, worker up
        self.grace = GRACE
        self.ping_timeout = PING_TIMEOUT
        self.ping_after_idle = PING_AFTER_IDLE
        self._actor: Any = None
        self._snapshot: str | None = None  # `Manifest.stamp` of the files the actor was given

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def alive(self) -> bool:
        return self._actor is not None

    @property
    def actor(self) -> Any:
        """The Ray actor handle (None while no actor runs): for tests and diagnostics."""
        return self._actor

    # -- lifecycle -----------------------------------------------------------------------

    def _manifest(self) -> Manifest:
        try:
            return manifest(self.root)
        except OSError as exc:
            raise RayUnavailable(
                f"The files of {self.name} could not be read to send them to the Ray cluster "
                f"({exc.strerror or type(exc).__name__})."
            ) from None

    def _start(self) -> None:
        """Start an actor for this experiment (its slot is already taken) and wait for its hello."""
        ray = connect(self.settings.address)
        m = self._manifest()
        if m.left_out:
            log.info("%s: links out of the models directory are not sent to the cluster: %s", self.name, ", ".join(m.left_out))
        runtime_env: dict[str, Any] = {"env_vars": _forwarded_env()}
        shared_root = str(self.root) if self.settings.shared_fs else None
        try:
            files = content_fingerprint(m)
            runtime_env["py_modules"] = [_sandbox_uri()]
            if shared_root is None:
                runtime_env["working_dir"] = self._ship(m)
        except RayUnavailable:
            raise
        except OSError as exc:
            raise RayUnavailable(
                f"The files of {self.name} could not be read to send them to the Ray cluster "
                f"({exc.strerror or type(exc).__name__})."
            ) from None
        except (RuntimeError, ValueError, ray.exceptions.RayError) as exc:
            raise RayUnavailable(
                f"The files of {self.name} could not be sent to the Ray cluster ({_first_line(exc)}).",
                detail="".join(traceback.format_exception(exc))[-4000:],
            ) from None
        t0 = time.monotonic()
        try:
            self._actor = _actor_class(ray).options(
                runtime_env=runtime_env, max_concurrency=2, max_restarts=0, **self._resources(ray)
            ).remote(self.name, shared_root, self.wanted_device, self.timeout, self.start_timeout)
        except (ValueError, ray.exceptions.RayError) as exc:  # settings Ray refuses, a lost cluster
            raise RayUnavailable(
                f"The Ray cluster did not take the worker of {self.name} ({_first_line(exc)}).",
                detail="".join(traceback.format_exception(exc))[-4000:],
            ) from None
        self._snapshot = m.stamp
        self.starts += 1
        reply = self._get(self._actor.hello.remote(sandbox_fingerprint(), files, [e.rel for e in m.entries]), self.start_timeout + self.grace, "starting the worker")
        if not reply["ok"] and reply["error"]["kind"] in ("stale code", "stale files", "missing"):
            self._kill()
            raise self._refusal(reply["error"]["kind"])
        hello = self._result(reply, "hello")
        self.start_seconds = time.monotonic() - t0
        self.pid, self.device = hello["pid"], hello["device"]
        self.actor_pid, self.node = hello["actor_pid"], hello["node"]
        log.info("worker of %s: Ray actor on %s (pid %s), device %s, started in %.1f s",
                 self.name, self.node, self.actor_pid, self.device, self.start_seconds)  # fmt: skip

    def _ship(self, m: Manifest) -> str:
        """Pack exactly the listed files and push them to the cluster (size-limited)."""
        limit = self.settings.max_upload_mb * 1e6
        if m.size > limit:
            parts = ", ".join(f"{rel} {_mb(size)}" for rel, size in m.largest())
            raise RayUnavailable(
                f"{self.name} is {_mb(m.size)} ({parts}); at most {_mb(limit)} are sent to the "
                "Ray cluster, so its worker did not start there.",
                hint=f"Raise {MAX_UPLOAD_ENV}, or put the models directory on a filesystem every node "
                f"mounts at the same path and set {SHARED_FS_ENV}=1.",
            )
        staged = stage(m, self.name)
        try:
            return _upload(staged, include_parent_dir=False)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def _resources(self, ray: Any) -> dict:
        return actor_resources(self.settings, self.wanted_device, ray.cluster_resources().get("GPU", 0))

    def _refusal(self, kind: str) -> RayUnavailable:
        if kind == "stale code":
            return RayUnavailable(
                f"The Ray cluster runs another version of the sandbox's code than this app, so the "
                f"worker of {self.name} was not used.",
                hint="Install the same version of the sandbox on the cluster's nodes (a copy at the "
                "app's own path on a node is imported before the one the app sends).",
            )
        if kind == "missing":
            return RayUnavailable(
                f"{self.name} is not at the same path on the Ray node, so its worker could not "
                f"start there ({SHARED_FS_ENV} is set).",
                hint=f"Mount the models directory at the same path on every node, or unset {SHARED_FS_ENV}.",
            )
        return RayUnavailable(
            f"The copy of {self.name} on the Ray cluster differs from the models directory "
            "(a file changed while it was sent, or the shared folder differs there), so it was not used.",
            hint=NEXT_STARTS_FRESH if not self.settings.shared_fs else
            "Check that every node sees the models directory at the same path with the same files.",
        )  # fmt: skip

    def close(self) -> None:
        """Stop the worker: politely (its process), then the actor; frees the slot."""
        actor, self._actor = self._actor, None
        if actor is not None:
            ray = _ray_if_connected()
            if ray is not None:
                with contextlib.suppress(ray.exceptions.RayError, ValueError):
                    ray.get(actor.shutdown.remote(), timeout=5)
                with contextlib.suppress(ray.exceptions.RayError, ValueError):
                    ray.kill(actor, no_restart=True)
        self._free_slot()

    def _kill(self) -> None:
        actor, self._actor = self._actor, None
        if actor is not None:
            ray = _ray_if_connected()
            if ray is not None:
                with contextlib.suppress(ray.exceptions.RayError, ValueError):
                    ray.kill(actor, no_restart=True)
        self._free_slot()

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """`WorkerClient._turn`, plus: an actor whose files changed, or that no longer answers,
        is replaced before the request runs."""
        starts = self.starts
        with super()._turn():
            if self.starts == starts and (why := self._why_replace()):
                log.info("replacing the Ray worker of %s: %s", self.name, why)
                self._kill()
                try:
                    if self.limiter is not None:
                        self.limiter.acquire(self, self.timeout)
                    self._start()
                except BaseException:
                    self._kill()
                    raise
            yield

    def _why_replace(self) -> str | None:
        if self._manifest().stamp != self._snapshot:
            return "its files changed"
        if time.monotonic() - self.last_used < self.ping_after_idle:
            return None  # it answered a moment ago (a death since then is reported as a crash)
        ray = require_ray()
        try:
            ray.get(self._actor.ping.remote(), timeout=self.ping_timeout)
        except ray.exceptions.RayError as exc:
            return f"its actor did not answer ({type(exc).__name__})"
        return None

    # -- calls ---------------------------------------------------------------------------

    def _get(self, ref: Any, timeout: float, what: str) -> Any:
        """``ray.get`` with a deadline; every Ray failure becomes the worker error it means."""
        ray = require_ray()
        errors = ray.exceptions
        try:
            return ray.get(ref, timeout=timeout)
        except errors.GetTimeoutError:
            self._kill()
            message = f"The worker of {self.name} did not answer within {timeout:.0f} s while {what}; it was stopped."
            log.warning("%s (Ray actor on %s, pid %s)", message, self.node, self.actor_pid)
            hint = NEXT_STARTS_FRESH
            if what == "starting the worker":
                asked = self._resources(ray)
                what_free = f"{asked['num_cpus']:g} CPU" + (f" and {asked['num_gpus']:g} GPU" if "num_gpus" in asked else "")
                hint = (f"No node of the Ray cluster may have had {what_free} free for it, or setting up "
                        f"its files took longer. {NEXT_STARTS_FRESH}")  # fmt: skip
            raise WorkerTimeout(message, hint=hint) from None
        except errors.RuntimeEnvSetupError as exc:
            self._kill()
            log.warning("worker of %s: Ray could not set up its files:\n%s", self.name, exc)
            raise WorkerCrashed(
                f"The worker of {self.name} could not start on the Ray cluster: its files could not "
                "be set up there.", hint=NEXT_STARTS_FRESH, detail=str(exc)[-4000:],
            ) from None  # fmt: skip
        except errors.RayActorError as exc:
            self._kill()
            message = f"The worker of {self.name} stopped while {what}: {_death_cause(exc)}."
            log.warning("%s\n%s", message, exc)
            raise WorkerCrashed(message, hint=NEXT_STARTS_FRESH, detail=str(exc)[-4000:]) from None
        except errors.RayError as exc:
            self._kill()
            message = f"The worker of {self.name} failed on the Ray cluster while {what} ({_first_line(exc)})."
            log.warning("%s\n%s", message, exc)
            raise WorkerCrashed(message, hint=NEXT_STARTS_FRESH, detail=str(exc)[-4000:]) from None

    def _result(self, reply: dict, op: str) -> Any:
        """The result of a reply, or its error raised as the same class and sentence."""
        if reply["ok"]:
            return reply["result"]
        error = reply["error"]
        exc = _KINDS.get(error.get("kind", ""), RequestFailed)(
            error.get("message") or "the request failed",
            rule=error.get("rule", ""), file=error.get("file", ""),
            hint=error.get("hint", ""), detail=error.get("detail", ""),
        )  # fmt: skip
        if isinstance(exc, (WorkerCrashed, WorkerTimeout)):
            self._kill()  # its worker is gone: the next request gets a fresh actor
        detail = f"\n{exc.detail}" if exc.detail else ""
        log.warning("worker of %s (Ray): %r failed: %s%s", self.name, op, exc, detail)
        raise exc

    def request(self, op: str, *, timeout: float | None = None, **args: Any) -> Any:
        """Run one request and return its result (raises a `WorkerError` subclass on failure)."""
        with self._turn():
            limit = timeout or self.timeout
            reply = self._get(self._actor.request.remote(op, args, limit), limit + self.grace, f"answering {op!r}")
            return self._result(reply, op)

    def stream(self, op: str, *, timeout: float | None = None, **args: Any) -> Iterator[Any]:
        """Yield the items of a streaming request; closing the iterator cancels it in the actor."""
        with self._turn():
            limit = timeout or self.timeout
            what = f"streaming {op!r}"
            actor = self._actor
            opened = self._result(
                self._get(actor.open_stream.remote(op, args, limit, PULL_WAIT), limit + self.grace, what), op
            )
            sid, reply = opened["sid"], opened
            finished = False
            try:
                last_item = time.monotonic()
                while True:
                    if reply["end"] is not None:
                        finished = True
                        yield from reply["items"]  # made before the end (or the error): made right
                        self._result(reply["end"], op)
                        return
                    now = time.monotonic()
                    if not reply["items"] and now - last_item > limit + self.grace:
                        self._kill()  # the actor answers but its worker's own timeout never came
                        raise WorkerTimeout(
                            f"The worker of {self.name} did not answer within {limit + self.grace:.0f} s "
                            f"while {what}; it was stopped.", hint=NEXT_STARTS_FRESH,
                        )  # fmt: skip
                    # The next pull goes out before the caller handles these items.
                    pending = actor.pull.remote(sid, PULL_WAIT)
                    if reply["items"]:
                        last_item = now
                        yield from reply["items"]
                    reply = self._get(pending, limit + self.grace, what)
            except (WorkerCrashed, WorkerTimeout):
                finished = True
                raise
            finally:
                if not finished and self._actor is actor:
                    self._cancel(sid)

    def _cancel(self, sid: int) -> None:
        """End stream ``sid`` in the actor (its worker is told); stop the actor if it won't end."""
        ray = require_ray()
        wait = min(CANCEL_WAIT, self.timeout)
        try:
            ended = ray.get(self._actor.cancel.remote(sid, wait), timeout=wait + self.grace)
        except ray.exceptions.RayError:
            ended = False
        if not ended:
            self._kill()


def _ray_if_connected() -> Any:
    """``ray`` when this process is connected to a cluster (closing after a shutdown is a no-op)."""
    import sys

    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def _forwarded_env() -> dict[str, str]:
    """Settings of the app that apply to its workers wherever they run."""
    return {k: os.environ[k] for k in ("SANDBOX_DEVICE",) if os.environ.get(k)}


# -- the pool ----------------------------------------------------------------------------------


class RayWorkerPool(WorkerPool):
    """`WorkerPool` with Ray actors: one per (experiment root, code fingerprint, device), capped
    (and least recently used first evicted) by the same `WorkerLimiter`."""

    def __init__(
        self,
        max_workers: int = 4,
        device: str | None = None,
        *,
        settings: RaySettings,
        limiter: Any = None,
        **client_kw: Any,
    ):
        super().__init__(max_workers, device, limiter=limiter, **client_kw)
        self.settings = settings

    def connect(self) -> None:
        """Join the cluster now (the CLI fails fast with the sentence instead of per request)."""
        connect(self.settings.address)

    def client(self, experiment: Experiment) -> RayWorkerClient:
        """The worker handle for ``experiment`` (its actor starts on first use)."""
        key = (str(experiment.root), experiment.fingerprint(), self.device)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                for old_key in [k for k in self._clients if k[0] == key[0]]:
                    self._clients.pop(old_key).retire()
                client = RayWorkerClient(
                    experiment.root, self.device, settings=self.settings, limiter=self.limiter, **self.client_kw
                )
                self._clients[key] = client
            self._clients.move_to_end(key)
            return client


def make_pool(address: str | None = None, **kw: Any) -> WorkerPool:
    """A `RayWorkerPool` when an address is given (or ``$SANDBOX_RAY_ADDRESS`` is set), else
    the local `WorkerPool`; ``kw`` go to either (``max_workers``, ``device``, ``limiter``,
    ``timeout``...). Raises `RayUnavailable` when Ray is asked for and not installed.
    """
    chosen = (address or os.environ.get(ADDRESS_ENV, "")).strip()
    if not chosen:
        return WorkerPool(**kw)
    require_ray()
    return RayWorkerPool(settings=RaySettings.from_env(chosen), **kw)
