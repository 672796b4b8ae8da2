"""Pick the torch device: cuda if available, else mps, else cpu; overridable.

Worker side only: it imports torch. ``python -m sandbox.worker.device`` prints the device a
worker would pick, which is how the app learns it without importing torch itself
(`sandbox.worker.pool.probe_device`).
"""

from __future__ import annotations

from sandbox.worker.protocol import requested_device


def pick_device(override: str | None = None) -> str:
    """``override`` (or ``$SANDBOX_DEVICE``) when given, else the best device present."""
    chosen = requested_device(override)
    if chosen:
        return chosen
    import torch  # here, so that a chosen device needs no torch import

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


if __name__ == "__main__":
    print(pick_device())
