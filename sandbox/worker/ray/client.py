"""One experiment's worker as a Ray actor: the same worker API as `sandbox.worker.client`.

`RayWorkerClient` is a `WorkerClient` whose worker is a Ray actor
(`sandbox.worker.ray.actor.ExperimentActor`) somewhere on the cluster instead of a local
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
import shutil
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandbox.errors import RequestFailed, WorkerBusy, WorkerCrashed, WorkerError, WorkerTimeout
from sandbox.worker.client import CANCEL_WAIT, NEXT_STARTS_FRESH, START_TIMEOUT, WorkerClient
from sandbox.worker.ray.connect import (
    actor_class,
    connect,
    death_cause,
    first_line,
    forwarded_env,
    mb,
    ray_if_connected,
    require_ray,
    sandbox_uri,
    upload,
)
from sandbox.worker.ray.files import (
    Manifest,
    content_fingerprint,
    manifest,
    sandbox_fingerprint,
    stage,
)
from sandbox.worker.ray.settings import (
    MAX_UPLOAD_ENV,
    SHARED_FS_ENV,
    RaySettings,
    RayUnavailable,
    actor_resources,
)

log = logging.getLogger(__name__)

GRACE = 15.0  # the app waits this much longer than the worker's own timeout
PULL_WAIT = 0.5  # an actor holds a pull this long for a stream's first item
PING_TIMEOUT = 10.0  # the check before a request that the actor still answers ...
PING_AFTER_IDLE = 2.0  # ... made when it has been idle this long (back-to-back requests skip it)


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
        runtime_env: dict[str, Any] = {"env_vars": forwarded_env()}
        shared_root = str(self.root) if self.settings.shared_fs else None
        try:
            files = content_fingerprint(m)
            runtime_env["py_modules"] = [sandbox_uri()]
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
                f"The files of {self.name} could not be sent to the Ray cluster ({first_line(exc)}).",
                detail="".join(traceback.format_exception(exc))[-4000:],
            ) from None
        t0 = time.monotonic()
        try:
            self._actor = actor_class(ray).options(
                runtime_env=runtime_env, max_concurrency=2, max_restarts=0, **self._resources(ray)
            ).remote(self.name, shared_root, self.wanted_device, self.timeout, self.start_timeout)
        except (ValueError, ray.exceptions.RayError) as exc:  # settings Ray refuses, a lost cluster
            raise RayUnavailable(
                f"The Ray cluster did not take the worker of {self.name} ({first_line(exc)}).",
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
            parts = ", ".join(f"{rel} {mb(size)}" for rel, size in m.largest())
            raise RayUnavailable(
                f"{self.name} is {mb(m.size)} ({parts}); at most {mb(limit)} are sent to the "
                "Ray cluster, so its worker did not start there.",
                hint=f"Raise {MAX_UPLOAD_ENV}, or put the models directory on a filesystem every node "
                f"mounts at the same path and set {SHARED_FS_ENV}=1.",
            )
        staged = stage(m, self.name)
        try:
            return upload(staged, include_parent_dir=False)
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
            ray = ray_if_connected()
            if ray is not None:
                with contextlib.suppress(ray.exceptions.RayError, ValueError):
                    ray.get(actor.shutdown.remote(), timeout=5)
                with contextlib.suppress(ray.exceptions.RayError, ValueError):
                    ray.kill(actor, no_restart=True)
        self._free_slot()

    def _kill(self) -> None:
        actor, self._actor = self._actor, None
        if actor is not None:
            ray = ray_if_connected()
            if ray is not None:
                with contextlib.suppress(ray.exceptions.RayError, ValueError):
                    ray.kill(actor, no_restart=True)
        self._free_slot()

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        """One request at a time on the actor (its node-side worker client takes them in
        order); an actor not running is started, and one whose files changed, or that no
        longer answers, is replaced before the request runs."""
        if not self._lock.acquire(timeout=self.wait_timeout):
            raise WorkerBusy(f"The worker of {self.name} stayed busy for {self.wait_timeout:.0f} s.")
        with self._state:
            self._in_flight += 1
        try:
            why = "it is not running" if not self.alive else self._why_replace()
            if why:
                if self.alive:
                    log.info("replacing the Ray worker of %s: %s", self.name, why)
                self._kill()
                try:
                    if self.limiter is not None:
                        self.limiter.acquire(self, self.timeout)
                    self._start()
                except BaseException:
                    self._kill()  # never keep a slot for an actor that did not start
                    raise
            yield
        finally:
            with self._state:
                self._in_flight -= 1
            self.last_used = time.monotonic()
            retired = self._retired and not self._in_flight
            self._lock.release()
            if retired:
                self.close()
            if self.limiter is not None:
                self.limiter.notify()

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
            message = f"The worker of {self.name} stopped while {what}: {death_cause(exc)}."
            log.warning("%s\n%s", message, exc)
            raise WorkerCrashed(message, hint=NEXT_STARTS_FRESH, detail=str(exc)[-4000:]) from None
        except errors.RayError as exc:
            self._kill()
            message = f"The worker of {self.name} failed on the Ray cluster while {what} ({first_line(exc)})."
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

    def request(self, op: str, *, timeout: float | None = None, session: str | None = None, **args: Any) -> Any:
        """Run one request and return its result (raises a `WorkerError` subclass on failure).

        ``session`` is accepted for the local client's API; an actor takes requests in order."""
        with self._turn():
            limit = timeout or self.timeout
            reply = self._get(self._actor.request.remote(op, args, limit), limit + self.grace, f"answering {op!r}")
            return self._result(reply, op)

    def stream(self, op: str, *, timeout: float | None = None, session: str | None = None, **args: Any) -> Iterator[Any]:
        """Yield the items of a streaming request; closing the iterator cancels it in the actor
        (``session``: as in `request`)."""
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
