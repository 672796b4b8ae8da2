"""Logs-only runs (TensorBoard event files, Lightning's ``metrics.csv``): nothing to load."""

from __future__ import annotations

from typing import Any

from sandbox.errors import ContractViolation
from sandbox.worker.loaded import LoadedRun
from sandbox.zoo.kinds import logs


def load(run: Any, device: str) -> LoadedRun:
    """Always a `ContractViolation`: such a run is training logs without a model."""
    raise ContractViolation(
        "layout", run.shown(run.log_path), f"{run.id} {logs.NO_MODEL}.",
        "Its curves are on the Loss curves page; evaluate, sample or compare runs that have weights.",
    )
