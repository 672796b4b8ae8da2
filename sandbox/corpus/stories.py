"""The bundled corpus: procedurally generated children's stories.

The sandbox ships no data set, yet it needs text to train the zoo's tokenizers and models
and to evaluate any experiment offline. This module generates short stories (characters,
places, objects, feelings, quoted dialogue) from a seed with ``random.Random`` only, so the
same seed gives the same text on every machine and Python version.

Word variety matters: a byte-level BPE must be able to learn a few thousand merges from
it, so character and town names are built from syllables and many stories mention
invented plants and creatures. A small share of non-ASCII text ("Zoë", "café", an em
dash, a rare emoji) makes lossy tokenizers visible.
"""

from __future__ import annotations

import functools
import hashlib
import random

from sandbox.corpus.words import (
    ACCENTED_NAMES,
    ACTIVITIES,
    ADJECTIVES,
    ADVERBS,
    ANIMALS,
    CODAS,
    COLORS,
    COMPOUND_HEADS,
    COMPOUND_TAILS,
    EMOJI,
    FEELINGS,
    FOODS,
    KIDS,
    NAME_ENDINGS,
    NUMBERS,
    OBJECTS,
    ONSETS,
    PLACES,
    TIMES,
    TOWN_ENDINGS,
    VERBS,
    VOWELS,
)

# Bump whenever the generator's output changes: fingerprints (and caches keyed on them)
# then change with it.
CORPUS_VERSION = 1
BUNDLED_SEED = 1337  # the seed of the bundled corpus (the sandbox's own zoo is trained on it)

# About 4 MB of text in all; ~5% of it is the validation split.
BUNDLED_STORIES = 6000
VALIDATION_SHARE = 0.05


class _Pools:
    """Name pools built once per seed: names recur across stories, like a real corpus."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"pools-{seed}")
        self.names = _unique(rng, _make_name, 6000)
        self.towns = _unique(rng, _make_town, 1500)
        self.compounds = sorted({h + t for h in COMPOUND_HEADS for t in COMPOUND_TAILS})


def _syllable(rng: random.Random) -> str:
    return rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)


def _make_name(rng: random.Random) -> str:
    parts = [_syllable(rng) for _ in range(rng.choice((1, 2, 2, 3)))]
    return ("".join(parts) + rng.choice(NAME_ENDINGS)).capitalize()


def _make_town(rng: random.Random) -> str:
    return (_syllable(rng) + _syllable(rng) + rng.choice(TOWN_ENDINGS)).capitalize()


# Syllable soup can spell words no children's story should contain: skip those names.
_BLOCKED = ("fuck", "fuk", "shit", "cunt", "dick", "cock", "slut", "piss", "tit", "ass", "nig",
            "fag", "rape", "sex", "porn", "crap", "poo", "damn", "kill", "dead", "hell")


def _unique(rng: random.Random, make, count: int) -> list[str]:
    seen: dict[str, None] = {}  # a dict keeps insertion order, unlike a set
    while len(seen) < count:
        word = make(rng)
        if 3 <= len(word) <= 12 and not any(b in word.lower() for b in _BLOCKED):
            seen[word] = None
    return list(seen)


@functools.lru_cache(maxsize=8)
def _pools(seed: int) -> _Pools:
    return _Pools(seed)


def _a(word: str) -> str:
    """'a' or 'an' before ``word``."""
    return ("an " if word[0] in "aeiou" else "a ") + word


_IRREGULAR_PLURALS = {
    "mouse": "mice", "goose": "geese", "sheep": "sheep", "deer": "deer", "moose": "moose",
    "fish": "fish",  # also starfish, jellyfish, goldfish and invented "moonfish"
}


def _plural(word: str) -> str:
    """English plural of the nouns used here ("fox" -> "foxes", "pony" -> "ponies")."""
    for singular, plural in _IRREGULAR_PLURALS.items():
        if word.endswith(singular):  # also covers compounds like "moonfish"
            return word[: len(word) - len(singular)] + plural
    if word.endswith(("s", "x", "sh", "ch")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _before_said(line: str) -> str:
    """A quoted statement ends with a comma before 'said': "I am here," said Tom."""
    return line[:-1] + "," if line.endswith(".") else line


# --- one story ------------------------------------------------------------------------


class _Story:
    """Builds one story from its own ``Random``; every choice comes from ``self.rng``."""

    def __init__(self, rng: random.Random, pools: _Pools) -> None:
        self.rng = rng
        self.pools = pools
        self.hero = self._character()
        self.friend = self._character()
        while self.friend["name"] == self.hero["name"]:
            self.friend = self._character()
        self.town = rng.choice(pools.towns)
        self.place = self._place()
        self.thing = rng.choice(OBJECTS)
        self.thing_adj = rng.choice(ADJECTIVES + COLORS)
        self.marvel = rng.choice(pools.compounds)

    def _character(self) -> dict[str, str]:
        rng = self.rng
        # ~2% of heroes carry an accented name: rare but present, as in real text.
        name = rng.choice(ACCENTED_NAMES) if rng.random() < 0.02 else rng.choice(
            self.pools.names)
        kind = rng.choice(ANIMALS) if rng.random() < 0.6 else rng.choice(KIDS)
        he = {"girl": "she", "boy": "he"}.get(kind) or rng.choice(("he", "she"))
        return {
            "name": name, "he": he, "his": "his" if he == "he" else "her",
            "him": "him" if he == "he" else "her", "kind": kind,
            "adj": rng.choice(ADJECTIVES),
        }

    def _place(self) -> str:
        return "café" if self.rng.random() < 0.01 else self.rng.choice(PLACES)

    def pick(self, options):
        return self.rng.choice(options)

    # Each method returns a list of sentences.
    def opening(self) -> list[str]:
        h, p = self.hero, self.pick
        first = p([
            f"Once upon a time, in the {p(ADJECTIVES)} town of {self.town}, there lived "
            f"{_a(h['adj'])} {h['kind']} named {h['name']}.",
            f"{h['name']} was {_a(h['adj'])} {h['kind']} who lived near the {p(PLACES)} "
            f"in {self.town}.",
            f"In {self.town} there was {_a(h['kind'])} called {h['name']}.",
            f"There once was {_a(h['adj'])} little {h['kind']}. {h['he'].capitalize()} was "
            f"called {h['name']}.",
        ])
        likes = p([
            f"{h['name']} loved {p(ACTIVITIES)} and eating {p(FOODS)}.",
            f"{h['he'].capitalize()} had {_a(self.thing_adj)} {self.thing} that "
            f"{h['he']} carried everywhere.",
            f"Every day {h['he']} liked {p(ACTIVITIES)} with {h['his']} "
            f"{p(ADJECTIVES)} friends.",
            f"{h['his'].capitalize()} favorite color was {p(COLORS)}.",
        ])
        return [first, likes]

    def journey(self) -> list[str]:
        h, f, p = self.hero, self.friend, self.pick
        return [
            p([
                f"{p(TIMES)}, {h['name']} went to the {self.place} with {h['his']} "
                f"friend {f['name']}, {_a(f['adj'])} {f['kind']}.",
                f"{p(TIMES)}, {h['name']} and {f['name']} the {f['kind']} walked "
                f"{p(ADVERBS)} to the {self.place}.",
                f"{p(TIMES)}, {h['name']} decided to visit the {self.place}.",
            ]),
            p([
                f"The sky was {p(COLORS)} and the air smelled of {p(FOODS)}.",
                f"On the way, they saw {p(NUMBERS)} {p(ADJECTIVES)} {_plural(p(ANIMALS))}.",
                f"There they found {_a(self.marvel)}, {_a(p(ADJECTIVES))} little thing "
                f"that glowed {p(COLORS)}.",
                f"{h['he'].capitalize()} felt {p(FEELINGS)} and {p(FEELINGS)}.",
            ]),
        ]

    def dialogue(self) -> list[str]:
        h, f, p = self.hero, self.friend, self.pick
        said = p(("said", "asked", "whispered", "shouted", "laughed", "cried", "replied"))
        line1 = p([
            f"Look at that {p(ADJECTIVES)} {self.thing}!",
            f"Can we {p(VERBS)[0]} the {self.thing} together?",
            f"I feel {p(FEELINGS)} today.",
            f"Do you know where the {p(PLACES)} is?",
            f"What is {_a(self.marvel)}?",
            f"I have never seen anything so {p(ADJECTIVES)}!",
            f"Let's go to the {p(PLACES)} after {p(FOODS)}.",
        ])
        line2 = p([
            "Yes, let's do it!",
            f"I am not sure, {h['name']}.",
            f"Maybe we should ask {p(self.pools.names)} first.",
            f"That sounds {p(ADJECTIVES)} to me.",
            f"Only if we can bring some {p(FOODS)}.",
            "Of course! I will help you.",
        ])
        # An emoji in a very few stories: rare, but a tokenizer has to cope with it.
        if self.rng.random() < 0.005:
            line2 += " " + p(EMOJI)
        return [
            f'"{_before_said(line1)}" {said} {h["name"]}.',
            f'"{_before_said(line2)}" {p(("said", "answered", "replied"))} {f["name"]} '
            f"{p(ADVERBS)}.",
        ]

    def problem(self) -> list[str]:
        h, f, p = self.hero, self.friend, self.pick
        out = [p([
            f"Suddenly, a gust of wind blew the {self.thing} into the {p(PLACES)}.",
            f"But then {h['name']} could not find {h['his']} {self.thing} anywhere.",
            f"Then it started to rain, and {f['name']} felt {p(FEELINGS)}.",
            f"{_a(p(ADJECTIVES)).capitalize()} {p(ANIMALS)} took the {self.thing} and ran away.",
            f"But the path to the {p(PLACES)} was blocked by {p(NUMBERS)} "
            f"{p(ADJECTIVES)} rocks.",
        ])]
        if self.rng.random() < 0.03:  # the em dash, rare like in real children's books
            out.append(f"{h['name']} stopped — something was moving behind the {p(PLACES)}.")
        out.append(f'"What do we do now?" asked {f["name"]}.')
        return out

    def resolution(self) -> list[str]:
        h, f, p = self.hero, self.friend, self.pick
        verb = p(VERBS)[1]
        return [
            p([
                f"{h['name']} thought for a moment and had an idea.",
                f"{h['name']} took a deep breath and tried again.",
                f"Together, {h['name']} and {f['name']} looked {p(ADVERBS)} everywhere.",
            ]),
            f"In the end they {verb} the {self.thing} {p(ADVERBS)}.",
            p([
                f"{h['name']} felt {p(FEELINGS)}, and {f['name']} gave {h['him']} a hug.",
                f"Everyone in {self.town} cheered.",
                f"They shared some {p(FOODS)} and laughed.",
            ]),
        ]

    def ending(self) -> list[str]:
        h, p = self.hero, self.pick
        return [p([
            f"From that day on, {h['name']} always kept {h['his']} {self.thing} safe.",
            f"{h['name']} learned that friends help each other.",
            f"That night, {h['name']} dreamed of {p(COLORS)} {_plural(self.marvel)}.",
            "The end.",
            f"And {h['name']} was never {p(FEELINGS)} about the {self.place} again.",
        ])]

    def build(self) -> str:
        rng = self.rng
        shape = rng.random()
        if shape < 0.2:  # a short one: a few sentences
            paragraphs = [self.opening() + self.journey()[:1] + self.ending()]
        else:
            paragraphs = [self.opening(), self.journey() + self.dialogue()]
            for _ in range(rng.choice((0, 1, 1, 2))):
                paragraphs.append(self.problem() + self.resolution())
                if rng.random() < 0.5:
                    paragraphs.append(self.dialogue())
            paragraphs.append(self.ending())
        return "\n".join(" ".join(sentences) for sentences in paragraphs)


# --- public API -----------------------------------------------------------------------


def generate_stories(n: int, seed: int = 1337) -> list[str]:
    """``n`` stories generated from ``seed``; deterministic and prefix-stable.

    Story ``i`` depends only on ``(seed, i)``, so ``generate_stories(10)`` is a prefix of
    ``generate_stories(100)`` with the same seed.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, not {n}")
    pools = _pools(seed)
    return [_Story(random.Random(f"story-{seed}-{i}"), pools).build() for i in range(n)]


@functools.lru_cache(maxsize=4)
def _bundled(seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    stories = generate_stories(BUNDLED_STORIES, seed)
    # Choose validation indices with a separate generator; both splits keep story order.
    rng = random.Random(f"split-{seed}")
    n_val = round(len(stories) * VALIDATION_SHARE)
    val_idx = set(rng.sample(range(len(stories)), n_val))
    val = tuple(s for i, s in enumerate(stories) if i in val_idx)
    val_set = set(val)
    # A story identical to a validation one must not leak into train.
    train = tuple(s for i, s in enumerate(stories) if i not in val_idx and s not in val_set)
    return train, val


def bundled_split(split: str = "train", seed: int = 1337) -> list[str]:
    """The documents of the bundled corpus's ``"train"`` or ``"validation"`` split (~95/5).

    Generated once per process and seed (a couple of seconds), then served from memory;
    a new list is returned each time so callers may modify it.
    """
    train, val = _bundled(seed)
    if split == "train":
        return list(train)
    if split in ("validation", "val"):
        return list(val)
    raise ValueError(f"unknown split {split!r}: use 'train' or 'validation'")


def corpus_fingerprint(seed: int = 1337) -> str:
    """A short stable hash of the generator version and seed (a cache key for the corpus)."""
    key = f"bundled-corpus:v{CORPUS_VERSION}:n{BUNDLED_STORIES}:seed{seed}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]
