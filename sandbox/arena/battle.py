"""One blind battle: two runs continue the same prompt with the same settings and seed.

`draw_matchup` picks the two runs (drawn from a pool, or given), the prompt (given, or drawn
from a list) and the positions on screen, all from one ``draw_seed`` that is stored with the
battle, so a battle can be set up again exactly. The continuations come from the existing
worker pool through `sandbox.playground.column_events` (the Playground's own stream: info,
prepared prompt, generation events), both at once through `sandbox.playground.multistream`.

A `Battle` shows its two texts by position only ("A" on the left, "B" on the right); its run
names come out through `Battle.reveal` after a vote and not before (its repr hides them too).
Prompts: a person's own, a prompt file (one per line), or by default the story openings of
the bundled corpus's validation split (the first sentence of each document).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sandbox.arena.standing import least_played_pair
from sandbox.arena.store import ArenaStore, BattleRecord, StoreError, VoteRecord, new_id
from sandbox.playground.settings import SamplingSettings

POSITIONS = ("A", "B")
CHOICES = ("A", "B", "tie", "both_bad")  # what a person can answer
CHOICE_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both are bad"}
OPENINGS_SOURCE = "story openings"
USER_SOURCE = "user"
MAX_PROMPT_CHARS = 4000
MAX_PROMPTS = 10_000
MAX_PROMPT_FILE_BYTES = 5_000_000
GENERATION_TIMEOUT = 600.0  # seconds for both continuations of one battle, all told

# The end of a sentence: . ! or ? (and a closing quote), then a space or the end.
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019]?(?=\s|$)")


class BattleError(RuntimeError):
    """A battle could not be set up or played; the message is one sentence."""


class NotRevealed(RuntimeError):
    """`Battle.reveal` before a vote: the names stay hidden."""


# -- prompts ------------------------------------------------------------------------------


def first_sentences(text: str, sentences: int = 1) -> str:
    """The first ``sentences`` sentences of ``text`` (all of it when it has fewer), on one line."""
    text = " ".join(text.split())
    end = 0
    for n, match in enumerate(_SENTENCE_END.finditer(text), start=1):
        end = match.end()
        if n >= sentences:
            break
    return text[:end] if end else text


def story_openings(sentences: int = 1, *, seed: int | None = None) -> list[str]:
    """The default prompts: the first sentence(s) of each validation story of the bundled corpus.

    Deterministic (same list on every machine), in corpus order, duplicates dropped.
    """
    from sandbox.corpus.stories import BUNDLED_SEED
    from sandbox.evaluation.data import load_documents

    docs = load_documents("bundled", split="validation", seed=BUNDLED_SEED if seed is None else seed)
    openings = (first_sentences(d, sentences) for d in docs)
    return list(dict.fromkeys(o for o in openings if o))


def parse_prompts(text: str, name: str = "the prompt list") -> list[str]:
    """Prompts from text, one per non-empty line (surrounding spaces dropped).

    Raises `ValueError` with one sentence for an empty list, too many prompts, or a prompt
    longer than `MAX_PROMPT_CHARS`.
    """
    prompts = [line.strip() for line in text.splitlines()]
    prompts = [p for p in prompts if p]
    if not prompts:
        raise ValueError(f"{name} holds no prompt (one prompt per line).")
    if len(prompts) > MAX_PROMPTS:
        raise ValueError(f"{name} holds {len(prompts):,} prompts; at most {MAX_PROMPTS:,} are read.")
    for n, p in enumerate(prompts, start=1):
        if len(p) > MAX_PROMPT_CHARS:
            raise ValueError(f"Prompt {n} of {name} is {len(p):,} characters long; at most {MAX_PROMPT_CHARS:,}.")
    return prompts


def read_prompt_file(path: str | Path) -> list[str]:
    """The prompts of a UTF-8 text file, one per line (see `parse_prompts`), for the CLI."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_PROMPT_FILE_BYTES:
            raise ValueError(f"{path.name} is {size:,} bytes; a prompt file may hold at most {MAX_PROMPT_FILE_BYTES:,}.")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"The prompt file {path.name} does not exist.") from None
    except UnicodeDecodeError:
        raise ValueError(f"The prompt file {path.name} is not UTF-8 text.") from None
    except OSError as exc:
        raise ValueError(f"The prompt file {path.name} cannot be read ({exc.strerror}).") from None
    return parse_prompts(text, path.name)


# -- setting a battle up --------------------------------------------------------------------


@dataclass(frozen=True)
class Matchup:
    """A battle before generation: the runs, the prompt, the settings and the positions."""

    run_a: str
    run_b: str
    shown_order: str  # "ab": run_a is shown as A (left); "ba": run_b is
    draw_seed: int
    prompt: str
    settings: SamplingSettings
    source: str = USER_SOURCE

    def __repr__(self) -> str:  # a matchup on its way to the screen must not name its runs
        return f"Matchup(hidden, prompt={self.prompt[:40]!r}, draw_seed={self.draw_seed})"

    @property
    def content(self) -> str:
        """What this battle will show, as one key: two matchups with the same key write the
        same two texts (the same prompt, settings and seed through the same pair of runs),
        whatever the positions. A voter who saw one revealed knows the sides of the other."""
        shown = json.dumps([self.prompt, self.settings.as_dict(), sorted((self.run_a, self.run_b))], sort_keys=True)
        return hashlib.sha256(shown.encode("utf-8", "surrogatepass")).hexdigest()

    def run_at(self, position: str) -> str:
        """The run shown at ``position`` ("A" or "B"): for generation, not for display."""
        if position not in POSITIONS:
            raise ValueError(f"position must be A or B, not {position!r}")
        first = position == "A"
        return self.run_a if (self.shown_order == "ab") == first else self.run_b


def draw_matchup(
    pool: Sequence[str],
    prompt: str | Sequence[str],
    settings: SamplingSettings,
    *,
    picked: tuple[str, str] | None = None,
    draw_seed: int | None = None,
    source: str | None = None,
    played: Mapping[frozenset, int] | None = None,
) -> Matchup:

    """Two runs from ``pool`` (or the ``picked`` two), a prompt, and random positions.

    ``prompt`` is the prompt itself, or a list to draw one from. Everything random comes
    from ``draw_seed`` (a fresh random one when None): the same seed gives the same battle.
    With ``played`` (votes per pair, `sandbox.arena.standing.games_per_pair`), the two are
    drawn among the pairs that met the fewest times. Raises `ValueError` with one sentence for
    a pool of fewer than two runs, or a pick of one run twice.
    """
    seed = secrets.randbits(63) if draw_seed is None else int(draw_seed)
    rng = random.Random(f"arena-battle-{seed}")
    if picked is not None:
        run_a, run_b = picked
        if run_a == run_b:
            raise ValueError("Pick two different runs for a battle.")
    else:
        runs = sorted(set(pool))
        if len(runs) < 2:
            raise ValueError("An arena needs at least two runs in its pool.")
        # ``played`` (games per pair): one of the pairs that met the fewest times (balanced battles)
        run_a, run_b = rng.sample(runs, 2) if played is None else least_played_pair(runs, played, rng)
    shown_order = "ab" if rng.random() < 0.5 else "ba"
    if isinstance(prompt, str):
        text, origin = prompt, source or USER_SOURCE
    else:
        if not prompt:
            raise ValueError("The prompt list is empty.")
        text, origin = prompt[rng.randrange(len(prompt))], source or "prompt list"
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"The prompt is {len(text):,} characters long; at most {MAX_PROMPT_CHARS:,}.")
    return Matchup(run_a, run_b, shown_order, seed, text, settings, origin)


# -- generation -----------------------------------------------------------------------------


def continuation_events(pool: Any, models_dir: Path | str | None, run_id: str, prompt: str,
                        settings: SamplingSettings) -> Iterator[dict]:
    """The Playground's stream for one run: ``{"info"}``, ``{"prompt"}``, then generation events.

    ``pool`` is a `sandbox.worker.pool.WorkerPool`; the run is looked up among the runs discovered
    under ``models_dir`` (an unknown id raises `UnknownRunError`). Closing the iterator
    cancels the generation in the worker.
    """
    from sandbox.playground.columns import column_events
    from sandbox.zoo.discovery import find_experiment, find_run

    run = find_run(models_dir, run_id)
    client = pool.client(find_experiment(models_dir, run.experiment))
    yield from column_events(client, run.name, prompt, settings)


def battle_jobs(pool: Any, models_dir: Path | str | None, matchup: Matchup,
                lane_pool: Any = None) -> dict[str, Callable[[], Iterator[dict]]]:
    """The two streams of a battle for `sandbox.playground.multistream.MultiStream`, keyed "A" and "B".

    Keys are positions, not names, so a page can fold them into columns without knowing
    which run is which. When both runs belong to one experiment and ``lane_pool`` (a second
    pool sharing the first one's limiter, as the Playground's lanes) is given, the run at B
    gets its own worker there and both write at once; otherwise they take turns.
    """
    same_experiment = matchup.run_a.split("/", 1)[0] == matchup.run_b.split("/", 1)[0]
    jobs = {}
    for position in POSITIONS:
        chosen = lane_pool if (position == "B" and same_experiment and lane_pool is not None) else pool
        run_id = matchup.run_at(position)

        def job(chosen=chosen, run_id=run_id) -> Iterator[dict]:
            return continuation_events(chosen, models_dir, run_id, matchup.prompt, matchup.settings)

        jobs[position] = job
    return jobs


def fingerprints(models_dir: Path | str | None, matchup: Matchup) -> tuple[str, str]:
    """The code-and-weights fingerprints of the matchup's run_a and run_b, as they are now."""
    from sandbox.zoo.discovery import find_run

    return find_run(models_dir, matchup.run_a).fingerprint(), find_run(models_dir, matchup.run_b).fingerprint()


def play(pool: Any, models_dir: Path | str | None, matchup: Matchup, *, lane_pool: Any = None,
         timeout: float = GENERATION_TIMEOUT) -> Battle:
    """Generate both continuations (at once) and return the `Battle`, names still hidden.

    Raises `BattleError` with one sentence when either side fails (the sentence names the
    position, not the run) or takes longer than ``timeout`` seconds.
    """
    from sandbox.playground.multistream import Ended, Failed, MultiStream

    prints = fingerprints(models_dir, matchup)
    texts = {p: "" for p in POSITIONS}
    done: dict[str, dict] = {}
    failures: dict[str, str] = {}
    with MultiStream(battle_jobs(pool, models_dir, matchup, lane_pool)) as streams:
        for message in streams.drain(timeout):
            item = message.item
            if isinstance(item, Failed):
                failures[message.key] = str(item.error) or type(item.error).__name__
            elif isinstance(item, Ended):
                continue
            elif item.get("done"):
                done[message.key] = item
            elif "text" in item:
                texts[message.key] = item["text"]
        finished = streams.finished
    for position in POSITIONS:
        if position in failures:
            raise BattleError(f"Story {position} could not be generated: {failures[position]}")
    if not finished or len(done) < len(POSITIONS):
        raise BattleError(f"The two stories were not ready within {timeout:.0f} s.")
    return Battle.from_texts(matchup, texts["A"], texts["B"], prints)


# -- the battle -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """What a rater sees: the prompt and the two continuations by position, no names."""

    prompt: str
    text_a: str  # shown as A (left)
    text_b: str  # shown as B (right)


@dataclass(frozen=True)
class Reveal:
    """The names behind the positions, after a vote."""

    run_at_a: str
    run_at_b: str
    choice: str  # what the rater answered: "A", "B", "tie" or "both_bad"
    winner: str | None  # the run that won, None for a tie or "both bad"


class Battle:
    """A generated battle; names hidden until `vote` has stored a verdict."""

    def __init__(self, record: BattleRecord):
        self.record = record
        self._vote: VoteRecord | None = None
        self._choice: str | None = None

    @classmethod
    def from_texts(cls, matchup: Matchup, shown_a: str, shown_b: str, prints: tuple[str, str]) -> Battle:
        """The battle of ``matchup`` whose positions A and B continued with these texts."""
        if matchup.shown_order == "ab":
            text_a, text_b = shown_a, shown_b
        else:
            text_a, text_b = shown_b, shown_a
        record = BattleRecord(
            id=new_id(), prompt=matchup.prompt, settings=matchup.settings.as_dict(),
            seed=matchup.settings.seed, draw_seed=matchup.draw_seed, shown_order=matchup.shown_order,
            run_a=matchup.run_a, fingerprint_a=prints[0], text_a=text_a,
            run_b=matchup.run_b, fingerprint_b=prints[1], text_b=text_b, source=matchup.source,
        )  # fmt: skip
        return cls(record)

    def __repr__(self) -> str:
        names = "" if self._vote is None else f", {self.record.run_a} vs {self.record.run_b}"
        return f"Battle({self.record.id[:8]}{names}, voted={self.voted})"

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def voted(self) -> bool:
        return self._vote is not None

    def shown(self) -> Shown:
        """The prompt and the two texts in the positions this battle shows them."""
        r = self.record
        if r.shown_order == "ab":
            return Shown(r.prompt, r.text_a, r.text_b)
        return Shown(r.prompt, r.text_b, r.text_a)

    def verdict_for(self, choice: str) -> str:
        """The stored verdict (in run_a / run_b terms) for a rater's ``choice`` by position."""
        if choice not in CHOICES:
            raise ValueError(f"a vote is one of {', '.join(CHOICES)}, not {choice!r}")
        if choice in ("tie", "both_bad"):
            return choice
        shown_first = choice == "A"
        return "a" if (self.record.shown_order == "ab") == shown_first else "b"

    def vote(self, store: ArenaStore | None, choice: str, rater_id: str) -> VoteRecord:
        """Record a person's ``choice`` ("A", "B", "tie", "both_bad"); stores the battle with it.

        After this the names can be revealed, even when the store could not write (its
        `StoreError` is raised after the battle is marked voted: the vote is kept for retry).
        A second vote on the same battle by the same object raises `ValueError`.
        """
        if self._vote is not None:
            raise ValueError("This battle has been voted on already.")
        vote = VoteRecord(
            id=new_id(), battle_id=self.record.id, rater_kind="person", rater_id=rater_id,
            verdict=self.verdict_for(choice), shown_order=self.record.shown_order,
        )  # fmt: skip
        self._vote, self._choice = vote, choice
        if store is not None:
            battle_error: StoreError | None = None
            try:
                store.add_battle(self.record)
            except StoreError as exc:
                battle_error = exc  # kept for retry; the vote must queue up behind it
            store.add_vote(vote, self.record)  # raises StoreError too while the battle is still pending
            if battle_error is not None:
                raise battle_error
        return vote

    def reveal(self) -> Reveal:
        """The runs behind A and B and the winner; raises `NotRevealed` before a vote."""
        if self._vote is None or self._choice is None:
            raise NotRevealed("The names are shown after your vote.")
        r = self.record
        at_a, at_b = (r.run_a, r.run_b) if r.shown_order == "ab" else (r.run_b, r.run_a)
        winner = {"a": r.run_a, "b": r.run_b}.get(self._vote.verdict)
        return Reveal(at_a, at_b, self._choice, winner)


def new_rater_id() -> str:
    """An anonymous id for one browser session's votes (random; says nothing about the person)."""
    return f"person-{secrets.token_hex(6)}"


def with_seed(settings: SamplingSettings, seed: int) -> SamplingSettings:
    """``settings`` with another sampling seed (both runs of a battle share it)."""
    return replace(settings, seed=int(seed))
