"""The Playground's sampling settings: the dataclass a worker receives, its ranges and defaults.

No torch here: the app builds and shows settings, the worker (`sandbox.worker.sampling`)
applies them. The ranges are also the page's widget ranges and what a link may ask for
(`sandbox.urlstate.playground`), so a value read from a link always fits its widget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

MAX_NEW_TOKENS_CAP = 1024


@dataclass(frozen=True)
class SamplingSettings:
    """One set of sampling settings, shared by every column of the Playground."""

    temperature: float = 1.0  # 0 = greedy
    top_k: int = 0  # 0 = off; else keep exactly the k most likely tokens
    top_p: float = 1.0  # 1 = off; else the smallest set whose probability reaches p
    min_p: float = 0.0  # 0 = off; else keep tokens with prob >= min_p * max prob
    max_new_tokens: int = 100
    seed: int = 0
    stop_at_eos: bool = True

    def __post_init__(self) -> None:
        if not (self.temperature >= 0):
            raise ValueError("temperature must be >= 0")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if not 0 <= self.min_p <= 1:
            raise ValueError("min_p must be in [0, 1]")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_CAP:
            raise ValueError(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS_CAP}")

    def as_dict(self) -> dict:
        return asdict(self)


# Widget and URL ranges of each sampling field: (lo, hi, is_integer).
RANGES: dict[str, tuple[float, float, bool]] = {
    "temperature": (0.0, 2.0, False),
    "top_k": (0, 1000, True),
    "top_p": (0.01, 1.0, False),
    "min_p": (0.0, 1.0, False),
    "max_new_tokens": (1, MAX_NEW_TOKENS_CAP, True),
    "seed": (0, 2**31 - 1, True),
}
# Fields a run may set for itself; the number of new tokens and eos stay shared.
OVERRIDABLE = ("temperature", "top_k", "top_p", "min_p", "seed")
DEFAULT_SETTINGS = SamplingSettings(temperature=0.8, top_k=0, top_p=0.95, min_p=0.0, max_new_tokens=120, seed=0)


def with_overrides(base: SamplingSettings, override: Mapping[str, float | int]) -> SamplingSettings:
    """``base`` with the overridable fields of ``override`` replaced (others are ignored)."""
    return replace(base, **{k: v for k, v in override.items() if k in OVERRIDABLE})


def format_value(value: float | int) -> str:
    """A setting as written in a link and a description: ints as they are, floats shortest."""
    return str(value) if isinstance(value, int) else f"{value:g}"


LABELS = {
    "temperature": "temperature",
    "top_k": "top-k",
    "top_p": "top-p",
    "min_p": "min-p",
    "max_new_tokens": "max new tokens",
    "seed": "seed",
    "stop_at_eos": "stop at eos",
}


def _shown_value(name: str, value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "temperature" and value == 0:
        return "0 (greedy)"
    if (name in ("top_k", "min_p") and value == 0) or (name == "top_p" and value == 1.0):
        return "off"
    return format_value(value)


def describe_settings(settings: SamplingSettings, base: SamplingSettings | None = None) -> str:
    """Settings in one line (``temperature 0.8 · top-k off · …``); with ``base``, only differences."""
    parts = [
        f"{label} {_shown_value(name, getattr(settings, name))}"
        for name, label in LABELS.items()
        if base is None or getattr(settings, name) != getattr(base, name)
    ]
    return " · ".join(parts)
