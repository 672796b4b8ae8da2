"""The Ray backend's settings (each from its ``SANDBOX_RAY_*`` variable), its own error class,
and what an actor asks the cluster for. Imports neither ray nor torch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from sandbox.errors import WorkerError
from sandbox.settings import RAY_ADDRESS_ENV

log = logging.getLogger(__name__)

ADDRESS_ENV = RAY_ADDRESS_ENV  # read by `sandbox.settings.ray_address` too
SHARED_FS_ENV = "SANDBOX_RAY_SHARED_FS"
GPUS_ENV = "SANDBOX_RAY_GPUS_PER_ACTOR"
CPUS_ENV = "SANDBOX_RAY_CPUS_PER_ACTOR"
MAX_UPLOAD_ENV = "SANDBOX_RAY_MAX_UPLOAD_MB"
INSTALL_SENTENCE = "Ray workers need the optional ray package: pip install -r requirements-ray.txt."


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
        """The settings for the cluster at ``address``, the rest from the environment."""
        return cls(
            address=address,
            shared_fs=os.environ.get(SHARED_FS_ENV, "").strip().lower() in {"1", "true", "yes", "on"},
            gpus_per_actor=_number(GPUS_ENV, 0.25),
            cpus_per_actor=_number(CPUS_ENV, 1.0),
            max_upload_mb=_number(MAX_UPLOAD_ENV, 200.0),
        )


def actor_resources(settings: RaySettings, device: str | None, cluster_gpus: float) -> dict:
    """What an actor asks Ray for: its CPUs, and a (fraction of a) GPU when the cluster has GPUs
    and no other device is asked for (``device``, else ``$SANDBOX_DEVICE``)."""
    options: dict[str, Any] = {"num_cpus": settings.cpus_per_actor}
    wanted = device or os.environ.get("SANDBOX_DEVICE")
    if (wanted is None or wanted.startswith("cuda")) and cluster_gpus > 0:
        options["num_gpus"] = settings.gpus_per_actor
    return options
