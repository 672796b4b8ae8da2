"""The arena's records: a battle, a verdict on it, a vote joined with its runs, a pending write.

Plain frozen dataclasses that check their own values; `sandbox.arena.store` writes and reads
them (and re-exports them, so callers import from either).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

RATER_KINDS = ("person", "judge")
VERDICTS = ("a", "b", "tie", "both_bad", "unparsed")
ORDERS = ("ab", "ba", "both")


def new_id() -> str:
    """A random row id (hex), unique without asking the database."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class BattleRecord:
    """One battle: the same prompt, settings and seed through two runs."""

    id: str
    prompt: str
    settings: dict  # the sampling settings (SamplingSettings.as_dict()), seed included
    seed: int  # the sampling seed both runs used
    draw_seed: int  # the seed that drew the pair and the positions
    shown_order: str  # "ab": run_a shown as A (left); "ba": run_b shown as A
    run_a: str
    fingerprint_a: str
    text_a: str
    run_b: str
    fingerprint_b: str
    text_b: str
    source: str = ""  # where the prompt came from ("story openings", "user", a file name)
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.shown_order not in ("ab", "ba"):
            raise ValueError(f"shown_order must be 'ab' or 'ba', not {self.shown_order!r}")
        if self.run_a == self.run_b:
            raise ValueError("a battle needs two different runs")


@dataclass(frozen=True)
class VoteRecord:
    """One verdict on a battle, by a person or a judge (terms: `sandbox.arena.store`)."""

    id: str
    battle_id: str
    rater_kind: str  # "person" or "judge"
    rater_id: str  # an anonymous session id, or the judge's model name
    verdict: str  # "a", "b", "tie", "both_bad" or "unparsed" (judge answers only)
    shown_order: str  # "ab", "ba" or "both"
    rubric: str | None = None  # judge votes: the rubric the judge was given
    raw: str | None = None  # judge votes: JSON with both orders' raw answers
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.rater_kind not in RATER_KINDS:
            raise ValueError(
                f"rater_kind must be one of {', '.join(RATER_KINDS)}, not {self.rater_kind!r}"
            )
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}")
        if self.shown_order not in ORDERS:
            raise ValueError(
                f"shown_order must be one of {', '.join(ORDERS)}, not {self.shown_order!r}"
            )
        if not self.rater_id:
            raise ValueError("a vote needs a rater id")


@dataclass(frozen=True)
class Comparison:
    """A vote joined with its battle's runs: what the ratings need."""

    vote_id: str
    battle_id: str
    rater_kind: str
    rater_id: str
    run_a: str
    run_b: str
    verdict: str
    fingerprint_a: str
    fingerprint_b: str
    created: float


@dataclass(frozen=True)
class PendingWrite:
    """A write that failed and waits in memory for `ArenaStore.retry`."""

    kind: str  # "battle" or "vote"
    record: BattleRecord | VoteRecord
    error: str  # the sentence of the last failure
    battle: BattleRecord | None = None  # a vote's battle, written with it (the file may have been lost)
