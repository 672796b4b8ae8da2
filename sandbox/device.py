"""Pick the torch device: cuda if available, else mps, else cpu; overridable."""

from __future__ import annotations

import os


def pick_device(override: str | None = None) -> str:
    """``override`` (or ``$SANDBOX_DEVICE``) when given, else the best device present.

    Imports torch lazily so that the app's own process can stay light.
    """
    chosen = override or os.environ.get("SANDBOX_DEVICE")
    if chosen:
        if chosen not in {"cpu", "cuda", "mps"} and not chosen.startswith("cuda:"):
            raise ValueError(f"unknown device {chosen!r}: use cpu, cuda, cuda:N or mps")
        return chosen
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
