"""What the CLI and the page call: judged battles without a person, and the leaderboard.

`run_judged_battles` generates battles between chosen runs and has the judge rate each one
(``sandbox judge``); `judge_unjudged` has the judge rate battles people already voted on, so
that people and judge can be compared on the same battles. `leaderboard` fits the ratings
of one group of raters (people, one judge, or everyone combined); `report` gathers every
group plus the agreement between people and each judge (``sandbox leaderboard [--json]``).
Tables export as CSV, and `leaderboard_figure` (ratings with their intervals above the
win-rate matrix) as PNG through `sandbox.export`.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import altair as alt
import numpy as np
import pandas as pd

from sandbox.arena.battle import BattleError, draw_matchup, play, with_seed
from sandbox.arena.judge import DEFAULT_RUBRIC, Judge, JudgeError, judge_status
from sandbox.arena.ratings import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_PRIOR,
    Agreement,
    Ratings,
    agreement,
    games_from,
    rate,
)
from sandbox.arena.store import ArenaStore, Comparison, StoreError

if TYPE_CHECKING:  # a type only: sandbox.sampling imports torch, which the app side avoids
    from sandbox.sampling import SamplingSettings

Progress = Callable[[int, int, str], None]  # (done, total, one sentence about the last step)
MAX_JUDGED_BATTLES = 10_000
PEOPLE = "people"
COMBINED = "combined"
JUDGE_PREFIX = "judge:"


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
    from sandbox.discovery import UnknownRunError, find_run

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
        store.add_vote(vote)
    except StoreError as exc:
        return f"{label}: judged {vote.verdict}; {exc}"
    return f"{label}: judged {vote.verdict}"


def _report(progress: Progress | None, done: int, total: int, sentence: str) -> None:
    if progress is not None:
        progress(done, total, sentence)


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
    model = judge.config.model
    votes = store.votes()
    done = {v.battle_id for v in votes if v.rater_kind == "judge" and v.rater_id == model}
    wanted = {v.battle_id for v in votes if v.rater_kind == "person"} if people_only else None
    todo = [b for b in store.battles() if b.id not in done and (wanted is None or b.id in wanted)]
    if limit is not None:
        todo = todo[: max(0, limit)]
    summary = JudgedSummary(requested=len(todo), battles=len(todo), battle_ids=[b.id for b in todo])
    for i, record in enumerate(todo):
        _report(progress, i + 1, len(todo), _judge_one(judge, store, record, rubric, summary, f"battle {i + 1}"))
    summary.pending = len(store.pending())
    return summary


# -- the leaderboard -----------------------------------------------------------------------


def leaderboard_kinds(store: ArenaStore) -> list[str]:
    """The groups of raters with a leaderboard: ``combined``, ``people``, ``judge:<model>``..."""
    return [COMBINED, PEOPLE, *(JUDGE_PREFIX + m for m in store.judges())]


def kind_label(kind: str) -> str:
    """``people`` → "People", ``judge:m`` → "Judge m", ``combined`` → "People and judges"."""
    if kind == PEOPLE:
        return "People"
    if kind == COMBINED:
        return "People and judges"
    if kind.startswith(JUDGE_PREFIX):
        return f"Judge {kind[len(JUDGE_PREFIX):]}"
    raise ValueError(f"unknown rater group {kind!r}: use people, combined or judge:<model>")


def comparisons_for(store: ArenaStore, kind: str) -> list[Comparison]:
    """The votes of one group of raters, joined with their battles."""
    kind_label(kind)  # checks the name
    if kind == PEOPLE:
        return store.comparisons("person")
    if kind == COMBINED:
        return store.comparisons()
    return store.comparisons("judge", kind[len(JUDGE_PREFIX):])


def version_notes(rows: Sequence[Comparison]) -> list[str]:
    """A sentence per run whose votes were cast on more than one version of its code or weights."""
    prints: dict[str, set[str]] = {}
    for r in rows:
        prints.setdefault(r.run_a, set()).add(r.fingerprint_a)
        prints.setdefault(r.run_b, set()).add(r.fingerprint_b)
    return [
        f"{run}: its votes span {len(fps)} versions of its code or weights (it changed since its first battle)."
        for run, fps in sorted(prints.items())
        if len(fps) > 1
    ]


@dataclass
class Leaderboard:
    """The ratings of one group of raters, ready to show, print or export."""

    kind: str
    ratings: Ratings
    notes: list[str]

    @property
    def label(self) -> str:
        return kind_label(self.kind)

    def table(self) -> pd.DataFrame:
        """One row per run, best first: rank, run, rating, low, high, votes, wins, losses, ties, both_bad, win_rate."""
        columns = ["rank", "run", "rating", "low", "high", "votes", "wins", "losses", "ties", "both_bad", "win_rate"]
        return pd.DataFrame(self.ratings.rows(), columns=columns)

    def win_rates(self) -> pd.DataFrame:
        """The win-rate matrix, long: run, opponent, win_rate (ties half), games; pairs that met only."""
        r = self.ratings
        rows = []
        for i, j in itertools.permutations(range(len(r.players)), 2):
            if r.games[i, j] > 0:
                rows.append({"run": r.players[i], "opponent": r.players[j],
                             "win_rate": float(r.wins[i, j] / r.games[i, j]), "games": int(r.games[i, j])})  # fmt: skip
        return pd.DataFrame(rows, columns=["run", "opponent", "win_rate", "games"])

    def win_rate_matrix(self) -> pd.DataFrame:
        """The win-rate matrix as a square table (rows: run, columns: opponent), best run first."""
        order = list(self.table()["run"])
        r = self.ratings
        idx = [r.players.index(p) for p in order]
        return pd.DataFrame(r.win_rate[np.ix_(idx, idx)], index=order, columns=order)

    def to_dict(self) -> dict:
        """Plain data for ``--json``."""
        r = self.ratings
        return {
            "kind": self.kind,
            "label": self.label,
            "votes": r.n_votes,
            "battles": r.n_battles,
            "unparsed": r.n_unparsed,
            "bootstrap": r.n_boot,
            "prior": r.prior,
            "base_run": r.base_run,
            "ratings": _json_rows(self.table()),
            "win_rates": _json_rows(self.win_rates()),
            "notes": list(self.notes),
        }

    def text(self) -> str:
        """The table for a terminal."""
        return format_board(self.to_dict())


def _json_rows(frame: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]  # fmt: skip


def leaderboard(
    store: ArenaStore,
    kind: str = COMBINED,
    *,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    prior: float = DEFAULT_PRIOR,
    base_run: str | None = None,
) -> Leaderboard:

    """Bradley–Terry ratings (Elo scale, bootstrap intervals) from one group's votes.

    ``kind``: ``"people"``, ``"combined"`` (every vote, people's and judges', one each) or
    ``"judge:<model>"``. ``base_run`` puts that run at 1000 instead of the mean.
    """
    rows = comparisons_for(store, kind)
    ratings = rate(games_from(rows), n_boot=n_boot, seed=seed, prior=prior, base_run=base_run)
    return Leaderboard(kind, ratings, [*ratings.notes, *version_notes(rows)])


def agreements(store: ArenaStore) -> dict[str, Agreement]:
    """People against each judge on the battles both rated: ``{model: Agreement}``."""
    people = games_from(store.comparisons("person"))
    return {m: agreement(people, games_from(store.comparisons("judge", m))) for m in store.judges()}


def report(store: ArenaStore, *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict:
    """Every leaderboard and every agreement as plain data (``sandbox leaderboard --json``)."""
    boards = [leaderboard(store, k, n_boot=n_boot, seed=seed) for k in leaderboard_kinds(store)]
    agree = agreements(store)
    return {
        "counts": store.counts(),
        "leaderboards": [b.to_dict() for b in boards],
        "agreement": {
            m: {"battles": a.n_battles, "pairs": a.n_pairs, "share": a.share, "kappa": a.kappa,
                "sentence": a.sentence(m)}  # fmt: skip
            for m, a in agree.items()
        },
        "method": (
            "Bradley–Terry maximum likelihood (Newton), ties and 'both bad' as half a win each, "
            f"a prior of {DEFAULT_PRIOR:g} virtual tied game per run; Elo scale (400·log10 odds), "
            f"mean 1000; 95 % percentile bootstrap over battles ({n_boot} resamples)."
        ),
    }


def format_board(board: dict) -> str:
    """One leaderboard's data (`Leaderboard.to_dict`) as a table for a terminal."""
    head = f"{board['label']}: {board['votes']} votes on {board['battles']} battles"
    if board["unparsed"]:
        head += f" ({board['unparsed']} unparsed judge answers left out)"
    if not board["ratings"]:
        return head + "\n  no votes yet"
    rows = [("rank", "run", "rating", "95 % interval", "votes", "W-L-T-BB", "win rate")]
    for row in board["ratings"]:
        interval = "" if row["low"] is None else f"[{row['low']:.0f}, {row['high']:.0f}]"
        wr = "" if row["win_rate"] is None else f"{100 * row['win_rate']:.0f} %"
        record = f"{row['wins']}-{row['losses']}-{row['ties']}-{row['both_bad']}"
        rows.append((str(row["rank"]), row["run"], f"{row['rating']:.0f}", interval, str(row["votes"]), record, wr))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join([head, *lines, *(f"  note: {n}" for n in board["notes"])])


def format_report(data: dict) -> str:
    """`report`'s data as text for a terminal (``sandbox leaderboard``)."""
    counts = data["counts"]
    out = [f"{counts['battles']} battles, {counts['person_votes']} votes by people, {counts['judge_votes']} by judges."]
    for board in data["leaderboards"]:
        out += ["", format_board(board)]
    if data["agreement"]:
        out.append("")
        out += [a["sentence"] for a in data["agreement"].values()]
    out += ["", data["method"]]
    return "\n".join(out)


# -- exports ---------------------------------------------------------------------------------


def leaderboard_csv(board: Leaderboard) -> bytes:
    """The ratings table as CSV (UTF-8)."""
    from sandbox.export import to_csv

    return to_csv(board.table())


def win_rates_csv(board: Leaderboard) -> bytes:
    """The win-rate matrix (long form: run, opponent, win_rate, games) as CSV."""
    from sandbox.export import to_csv

    return to_csv(board.win_rates())


def ratings_chart(board: Leaderboard) -> alt.Chart:
    """Each run's rating (a dot in its colour) with its 95 % interval, best at the top."""
    from sandbox.colors import color_scale

    data = board.table()
    data["interval"] = [
        "" if pd.isna(lo) else f"[{lo:.0f}, {hi:.0f}]" for lo, hi in zip(data["low"], data["high"], strict=True)
    ]
    order = list(data["run"])
    y = alt.Y("run:N", sort=order, title=None)
    base = alt.Chart(data).encode(y=y)
    bars = base.mark_rule(strokeWidth=2, color="#888888").encode(
        x=alt.X("low:Q", title="rating (Elo scale, 95 % interval)", scale=alt.Scale(zero=False)), x2="high:Q"
    )
    dots = base.mark_point(filled=True, size=90).encode(
        x="rating:Q",
        color=alt.Color("run:N", scale=color_scale(order), legend=None),
        tooltip=["run", alt.Tooltip("rating:Q", format=".0f"), "interval", "votes", "wins", "losses", "ties", "both_bad",
                 alt.Tooltip("win_rate:Q", format=".0%")],
    )  # fmt: skip
    title = f"{board.label}: Bradley–Terry ratings ({board.ratings.n_votes} votes)"
    return (bars + dots).properties(title=title, width=420, height=max(60, 28 * len(order)))


def win_rate_chart(board: Leaderboard) -> alt.Chart:
    """The win-rate matrix as a heatmap: row run's share of wins against the column run."""
    data = board.win_rates()
    data["label"] = [f"{100 * w:.0f} % · {g}" for w, g in zip(data["win_rate"], data["games"], strict=True)]
    order = list(board.table()["run"])
    base = alt.Chart(data).encode(
        x=alt.X("opponent:N", sort=order, title="against", axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("run:N", sort=order, title=None),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("win_rate:Q", title="win rate", scale=alt.Scale(domain=[0, 1], scheme="blueorange")),
        tooltip=["run", "opponent", alt.Tooltip("win_rate:Q", format=".0%"), "games"],
    )
    # White text on the darkest cells of the scale, black elsewhere.
    dark = "datum.win_rate < 0.2 || datum.win_rate > 0.8"
    text = base.mark_text(fontSize=11).encode(
        text="label:N", color=alt.condition(dark, alt.value("white"), alt.value("black"))
    )
    side = max(80, 60 * len(order))
    title = f"{board.label}: win rate of the row against the column (ties half) · games"
    return (cells + text).properties(title=title, width=side, height=side)


def leaderboard_figure(board: Leaderboard) -> alt.VConcatChart:
    """Ratings above the win-rate matrix, one picture for `sandbox.export.to_png`."""
    from sandbox.figures import stack

    return stack(ratings_chart(board), win_rate_chart(board))
