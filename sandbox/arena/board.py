"""The leaderboard: ratings per group of raters, agreement, text, JSON, CSV and PNG.

`leaderboard` fits the ratings of one group of raters (people, one judge, or everyone
combined); `report` gathers every group plus the agreement between people and each judge
(``sandbox leaderboard [--json]``). Tables export as CSV, and `leaderboard_figure` (ratings
with their intervals above the win-rate matrix) as PNG through `sandbox.figures.export`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from sandbox.arena.ratings import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_PRIOR,
    Agreement,
    Ratings,
    agreement,
    games_from,
    rate,
)
from sandbox.arena.standing import games_per_pair, provisional_note, standings
from sandbox.arena.store import ArenaStore, Comparison, StoreError

PEOPLE = "people"
COMBINED = "combined"
JUDGE_PREFIX = "judge:"


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
        """One row per run, best first: rank, run, rating, low, high, votes, wins, losses, ties, both_bad,
        win_rate, provisional (`sandbox.arena.standing`: under MIN_VOTES votes, no rank, listed last)."""
        columns = ["rank", "run", "rating", "low", "high", "votes", "wins", "losses", "ties", "both_bad", "win_rate",
                   "provisional"]
        return pd.DataFrame(standings(self.ratings), columns=columns)  # provisional runs last, unranked

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
    provisional = [n for n in [provisional_note(standings(ratings))] if n]
    return Leaderboard(kind, ratings, [*ratings.notes, *provisional, *version_notes(rows)])


def pair_counts(store: ArenaStore) -> dict[frozenset, int]:
    """Votes per pair of runs (every rater), for drawing the pair that met the fewest times.
    A store that cannot be read counts nothing: battles are then drawn at random, and the
    sections that read the store say in their own sentence what went wrong."""
    try:
        return games_per_pair(games_from(store.comparisons()))
    except StoreError:
        return {}


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
        "method": method_sentence(n_boot),
    }


def method_sentence(n_boot: int = DEFAULT_BOOTSTRAP) -> str:
    """How the ratings are made, in one sentence (under every leaderboard)."""
    return (
        "Bradley–Terry maximum likelihood (Newton), ties and 'both bad' as half a win each, "
        f"a prior of {DEFAULT_PRIOR:g} virtual tied game per run; Elo scale (400·log10 odds), "
        f"mean 1000; 95 % percentile bootstrap over battles ({n_boot} resamples)."
    )


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
        rank = "provisional" if row.get("provisional") else str(row["rank"])
        rows.append((rank, row["run"], f"{row['rating']:.0f}", interval, str(row["votes"]), record, wr))
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
    from sandbox.figures.export import to_csv

    return to_csv(board.table())


def win_rates_csv(board: Leaderboard) -> bytes:
    """The win-rate matrix (long form: run, opponent, win_rate, games) as CSV."""
    from sandbox.figures.export import to_csv

    return to_csv(board.win_rates())


def ratings_chart(board: Leaderboard) -> alt.Chart:
    """Each run's rating (a dot in its colour) with its 95 % interval, best at the top."""
    from sandbox.figures.colors import color_scale

    data = board.table()
    data["interval"] = [
        "" if pd.isna(lo) else f"[{lo:.0f}, {hi:.0f}]" for lo, hi in zip(data["low"], data["high"], strict=True)
    ]
    order = list(data["run"])
    y = alt.Y("run:N", sort=order, title=None, axis=alt.Axis(labelLimit=400))  # whole run ids
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
    # A step per row, not a fixed height: Streamlit 1.67 squeezes a layered chart's fixed
    # height on a discrete axis into one line (the exported PNG was fine).
    return (bars + dots).properties(title=title, width=420, height=alt.Step(28))


def win_rate_chart(board: Leaderboard) -> alt.Chart:
    """The win-rate matrix as a heatmap: row run's share of wins against the column run."""
    data = board.win_rates()
    data["label"] = [f"{100 * w:.0f} % · {g}" for w, g in zip(data["win_rate"], data["games"], strict=True)]
    order = list(board.table()["run"])
    base = alt.Chart(data).encode(
        x=alt.X("opponent:N", sort=order, title="against", axis=alt.Axis(labelAngle=-30, labelLimit=400, labelOverlap=False)),
        y=alt.Y("run:N", sort=order, title=None, axis=alt.Axis(labelLimit=400)),
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
    title = f"{board.label}: win rate of the row against the column (ties half) · games"
    return (cells + text).properties(title=title, width=alt.Step(80), height=alt.Step(60))  # steps: see ratings_chart


def leaderboard_figure(board: Leaderboard) -> alt.VConcatChart:
    """Ratings above the win-rate matrix, one picture for `sandbox.figures.export.to_png`."""
    from sandbox.figures.tables import stack

    return stack(ratings_chart(board), win_rate_chart(board))
