"""Judged battles without a person: what ``sandbox judge`` and the page's judge section call.

`run_judged_battles` generates battles between chosen runs and has the judge rate each one
(``sandbox judge``); `judge_unjudged` has the judge rate battles people already voted on, so
that people and judge can be compared on the same battles. The leaderboard built from all
these verdicts is `sandbox.arena.board`'s.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.arena.battle import BattleError, draw_matchup, play, with_seed
from sandbox.arena.judge import DEFAULT_RUBRIC, Judge, JudgeError, judge_status
from sandbox.arena.store import ArenaStore, StoreError
from sandbox.playground.settings import SamplingSettings

Progress = Callable[[int, int, str], None]  # (done, total, one sentence about the last step)
MAX_JUDGED_BATTLES = 10_000


# -- judged battles ------------------------------------------------------------------------


@dataclass
class JudgedSummary:
    """What a judged run did: battles made, verdicts, failures (one sentence each)."""

    requested: int
    battles: int = 0  # generated (stored, or waiting in the store's pending queue)
    judged: int = 0  # judge verdicts recorded ("unparsed" included)
    verdicts: Counter = field(default_factory=Counter)  # "a", "b", "tie", "both_bad", "unparsed"
    failures: list[str] = field(default_factory=list)
    pending: int = 0  # writes the store could not make yet
    battle_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "requested": self.requested,
            "battles": self.battles,
            "judged": self.judged,
            "verdicts": dict(self.verdicts),
            "failures": list(self.failures),
            "pending": self.pending,
            "battle_ids": list(self.battle_ids),
        }

    def lines(self) -> list[str]:
        """A few lines for a terminal."""
        v = self.verdicts
        out = [
            f"{self.battles} of {self.requested} battles generated, {self.judged} judged: "
            f"{v['a'] + v['b']} with a winner, {v['tie']} ties, {v['both_bad']} both bad, {v['unparsed']} unparsed."
        ]
        out += [f"failed: {f}" for f in self.failures]
        if self.pending:
            out.append(f"{self.pending} write(s) could not be saved yet and are lost when this process ends.")
        return out


def schedule(run_ids: Sequence[str], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` pairs of runs, every pair equally often: rounds of all pairs, each round shuffled.

    A balanced design gives every rating about the same precision.
    """
    pairs = list(itertools.combinations(sorted(set(run_ids)), 2))
    if not pairs:
        raise ValueError("Judged battles need at least two different runs.")
    rng = random.Random(f"arena-schedule-{seed}")
    out: list[tuple[str, str]] = []
    while len(out) < n:
        round_ = pairs[:]
        rng.shuffle(round_)
        out += round_
    return out[:n]


def run_judged_battles(
    pool: Any,
    models_dir: Path | str | None,
    run_ids: Sequence[str],
    prompts: Sequence[str],
    n: int,
    settings: SamplingSettings,
    judge: Judge | None,
    store: ArenaStore,
    progress: Progress | None = None,
    *,
    seed: int = 0,
    rubric: str = DEFAULT_RUBRIC,
    lane_pool: Any = None,
    source: str = "prompt list",
) -> JudgedSummary:
    """Generate ``n`` battles between ``run_ids`` and have ``judge`` rate each; returns a summary.

    Pairs follow `schedule` (all pairs equally often); battle i takes prompt ``i`` of
    ``prompts`` (cycling) and sampling seed ``settings.seed + i``, the same for both runs;
    positions are drawn as for people and stored. A battle whose generation fails is
    skipped; one the judge cannot rate is stored without a verdict; both are listed in
    ``failures``. ``progress(done, n, sentence)`` is called after each battle.

    Raises `ValueError` with one sentence before any work when the judge is off, fewer than
    two runs are given, a run is unknown, there are no prompts or ``n`` is out of range.
    """
    from sandbox.errors import UnknownRunError
    from sandbox.zoo.discovery import find_run

    if judge is None:
        raise ValueError(judge_status(None))
    if not 1 <= n <= MAX_JUDGED_BATTLES:
        raise ValueError(f"The number of battles must be between 1 and {MAX_JUDGED_BATTLES:,}, not {n}.")
    if not prompts:
        raise ValueError("Judged battles need at least one prompt.")
    for run_id in run_ids:
        try:
            find_run(models_dir, run_id)
        except UnknownRunError as exc:
            raise ValueError(f"{exc}.") from None
    pairs = schedule(run_ids, n, seed)
    seeds = random.Random(f"arena-judged-{seed}")
    summary = JudgedSummary(requested=n)
    for i, pair in enumerate(pairs):
        matchup = draw_matchup(
            run_ids, prompts[i % len(prompts)], with_seed(settings, settings.seed + i),
            picked=pair, draw_seed=seeds.getrandbits(63), source=source,
        )  # fmt: skip
        try:
            battle = play(pool, models_dir, matchup, lane_pool=lane_pool)
        except (BattleError, UnknownRunError) as exc:
            summary.failures.append(f"battle {i + 1} ({pair[0]} vs {pair[1]}): {exc}")
            _report(progress, i + 1, n, summary.failures[-1])
            continue
        summary.battles += 1
        summary.battle_ids.append(battle.id)
        saved = True
        try:
            store.add_battle(battle.record)
        except StoreError:
            saved = False  # kept in the store's queue; the judge's vote queues up behind it
        step = _judge_one(judge, store, battle.record, rubric, summary, f"battle {i + 1} ({pair[0]} vs {pair[1]})")
        _report(progress, i + 1, n, step if saved else f"{step} (waiting to be saved)")
    if store.pending():
        store.retry()
    summary.pending = len(store.pending())
    return summary


def _judge_one(judge: Judge, store: ArenaStore, record, rubric: str, summary: JudgedSummary, label: str) -> str:
    """Judge one battle into ``summary``; returns a sentence for progress."""
    try:
        vote = judge.judge_battle(record, None, rubric)
    except JudgeError as exc:
        summary.failures.append(f"{label}: {exc}")
        return f"failed: {summary.failures[-1]}"
    summary.judged += 1
    summary.verdicts[vote.verdict] += 1
    try:
        store.add_vote(vote, record)
    except StoreError as exc:
        return f"{label}: judged {vote.verdict}; {exc}"
    return f"{label}: judged {vote.verdict}"


def _report(progress: Progress | None, done: int, total: int, sentence: str) -> None:
    if progress is not None:
        progress(done, total, sentence)


def unjudged(store: ArenaStore, model: str, *, people_only: bool = True) -> list[str]:
    """Ids of the stored battles judge ``model`` has not rated (by default: those people voted on).

    Reads who voted on what (`ArenaStore.comparisons`), never the votes' stored answers: the
    Judge section asks on every view.
    """
    votes = store.comparisons()
    done = {v.battle_id for v in votes if v.rater_kind == "judge" and v.rater_id == model}
    wanted = {v.battle_id for v in votes if v.rater_kind == "person"} if people_only else None
    return [b.id for b in store.battles() if b.id not in done and (wanted is None or b.id in wanted)]


def judge_unjudged(
    store: ArenaStore,
    judge: Judge | None,
    *,
    rubric: str = DEFAULT_RUBRIC,
    limit: int | None = None,
    people_only: bool = True,
    progress: Progress | None = None,
) -> JudgedSummary:
    """Have ``judge`` rate stored battles it has not rated yet (by default those people voted on).

    This is what makes the people–judge agreement possible: both then rated the same
    battles. Oldest first, at most ``limit``.
    """
    if judge is None:
        raise ValueError(judge_status(None))
    wanted = set(unjudged(store, judge.config.model, people_only=people_only))
    todo = [b for b in store.battles() if b.id in wanted]
    if limit is not None:
        todo = todo[: max(0, limit)]
    summary = JudgedSummary(requested=len(todo), battles=len(todo), battle_ids=[b.id for b in todo])
    for i, record in enumerate(todo):
        _report(progress, i + 1, len(todo), _judge_one(judge, store, record, rubric, summary, f"battle {i + 1}"))
    summary.pending = len(store.pending())
    return summary
