"""One run's evaluation result, the settings that shape it, and how a failed run is said."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sandbox.evaluation import metrics

EVAL_VERSION = 1  # bump when the method changes: older cache entries are then ignored
DEFAULT_KS = (1, 5, 10)


Progress = Callable[[str, int, int], None]  # (run id, windows done, windows in all)


class EvaluationCancelled(Exception):
    """The cancel flag was raised; the worker streams were closed (and so cancelled)."""


@dataclass(frozen=True)
class EvalSettings:
    """Everything besides the run and the data that can change the numbers."""

    kmax: int = 10  # top-k hits are kept for every k in 1..kmax
    overlap: int = 0  # tokens of already-scored context each later window carries (0: disjoint)
    batch_size: int | None = None  # windows per forward pass (capped by max_batch_size)
    autocast: str | None = None  # "bf16" / "fp16" on CUDA; ignored elsewhere
    device: str = "auto"  # the pool's device, for the cache key

    def __post_init__(self) -> None:
        if self.kmax < 1:
            raise ValueError(f"kmax must be at least 1, not {self.kmax}")
        if self.overlap < 0:
            raise ValueError(f"overlap must be >= 0, not {self.overlap}")
        if self.autocast not in (None, "bf16", "fp16"):
            raise ValueError(f"autocast must be bf16, fp16 or None, not {self.autocast!r}")


# -- results ---------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One run's evaluation, or the error that stopped it."""

    run_id: str
    info: dict = field(default_factory=dict)
    sums: metrics.DocSums | None = None
    positions: dict[str, np.ndarray] | None = None  # count, nll, hits per position in the window
    n_chars: int = 0
    changed_chars: int = 0  # characters the tokenizer's round trip did not give back
    windows: int = 0
    seconds: float = 0.0
    cached: bool = False
    error: dict | None = None  # {"message", "hint"}; tracebacks go to the server log only
    warnings: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # sanity sentences (`sandbox.zoo.sanity`), made afresh
    budget: dict = field(default_factory=dict)  # steps, tokens, FLOPs trained (`accounting.training_budget`), made afresh
    byte_losses: str | None = None  # every document's per-byte losses, packed (`sandbox.evaluation.bytelosses`)

    @property
    def ok(self) -> bool:
        return self.error is None and self.sums is not None

    @property
    def tokens(self) -> int:
        return int(self.sums.tokens.sum()) if self.sums is not None else 0

    def document_byte_losses(self) -> list[np.ndarray] | None:
        """Each document's per-byte losses (nats, float32), or None when not kept (an older
        entry, an error row) or not matching the documents' bytes."""
        if self.byte_losses is None or self.sums is None:
            return None
        from sandbox.evaluation.bytelosses import unpack_documents

        try:
            return unpack_documents(self.byte_losses, self.sums.bytes)
        except ValueError:
            return None

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "info": self.info,
            "sums": self.sums.to_dict() if self.sums is not None else None,
            "positions": {k: v.tolist() for k, v in self.positions.items()} if self.positions else None,
            "n_chars": self.n_chars,
            "changed_chars": self.changed_chars,
            "windows": self.windows,
            "seconds": self.seconds,
            "error": self.error,
            "byte_losses": self.byte_losses,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        pos = data.get("positions")
        return cls(
            run_id=data["run_id"],
            info=data.get("info") or {},
            sums=metrics.DocSums.from_dict(data["sums"]) if data.get("sums") else None,
            positions={k: np.asarray(v) for k, v in pos.items()} if pos else None,
            n_chars=int(data.get("n_chars", 0)),
            changed_chars=int(data.get("changed_chars", 0)),
            windows=int(data.get("windows", 0)),
            seconds=float(data.get("seconds", 0.0)),
            error=data.get("error"),
            byte_losses=data.get("byte_losses") if isinstance(data.get("byte_losses"), str) else None,
        )


def error_row(exc: BaseException) -> dict:
    """What a run's error row shows (and its JSON export holds): a sentence and a fix hint.

    Never the worker's traceback: it names server paths, and `sandbox.worker.client` has logged it.
    """
    return {"message": str(exc), "hint": getattr(exc, "hint", "")}
