"""The bundled corpus: deterministic, big enough, varied, with rare non-ASCII text."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys

import pytest

from sandbox.corpus import files, stories
from sandbox.evaluation.data import load_documents
from sandbox.settings import PACKAGE_PARENT


@pytest.fixture(scope="module")
def splits() -> tuple[list[str], list[str]]:
    return stories.bundled_split("train"), stories.bundled_split("validation")


def test_same_seed_same_text_and_prefix_stable() -> None:
    a = stories.generate_stories(50, seed=7)
    assert a == stories.generate_stories(50, seed=7)
    # Story i depends only on (seed, i): a shorter run is a prefix of a longer one.
    assert stories.generate_stories(20, seed=7) == a[:20]


def test_different_seed_different_text() -> None:
    a = stories.generate_stories(20, seed=1)
    b = stories.generate_stories(20, seed=2)
    assert all(x != y for x, y in zip(a, b, strict=True))


def test_generator_uses_no_global_random_state() -> None:
    import random

    random.seed(0)
    before = random.random()
    random.seed(0)
    stories.generate_stories(5, seed=3)
    assert random.random() == before


def test_negative_count_is_an_error() -> None:
    with pytest.raises(ValueError):
        stories.generate_stories(-1)


def test_size_within_bounds(splits) -> None:
    train, val = splits
    total = sum(len(s.encode("utf-8")) for s in train + val)
    assert 3_000_000 <= total <= 5_000_000
    assert all(100 <= len(s) <= 3000 for s in train + val)


def test_split_is_about_95_5_and_disjoint(splits) -> None:
    train, val = splits
    share = len(val) / (len(train) + len(val))
    assert 0.04 <= share <= 0.06
    assert not set(train) & set(val)


def test_split_is_cached_but_returns_fresh_lists(splits) -> None:
    train, _ = splits
    again = stories.bundled_split("train")
    assert again == train and again is not train
    again.clear()
    assert stories.bundled_split("train") == train


def test_unknown_split_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown split"):
        stories.bundled_split("test")


def test_word_variety_is_rich(splits) -> None:
    train, val = splits
    words = {w.lower() for w in re.findall(r"[^\W\d_]+", "\n".join(train + val))}
    assert len(words) >= 8000


def test_dialogue_and_paragraphs_present(splits) -> None:
    train, _ = splits
    with_quotes = sum(1 for s in train if re.search(r'"[^"\n]+" (said|asked|replied)', s))
    assert with_quotes / len(train) > 0.5
    assert sum(1 for s in train if "\n" in s) / len(train) > 0.5


def test_non_ascii_present_but_rare(splits) -> None:
    train, val = splits
    text = "\n".join(train + val)
    non_ascii = [c for c in text if ord(c) > 127]
    assert {"ë", "é", "—"} <= set(non_ascii)
    assert any(ord(c) > 0xFFFF for c in non_ascii)  # an emoji, outside the BMP
    assert len(non_ascii) / len(text) < 0.005
    stories_with = sum(1 for s in train + val if any(ord(c) > 127 for c in s))
    assert 0 < stories_with / len(train + val) < 0.15


def test_fingerprint_is_short_stable_and_seed_dependent() -> None:
    fp = stories.corpus_fingerprint(1337)
    assert fp == stories.corpus_fingerprint(1337)
    assert re.fullmatch(r"[0-9a-f]{12}", fp)
    assert fp != stories.corpus_fingerprint(1338)


def test_fingerprint_changes_with_version(monkeypatch) -> None:
    fp = stories.corpus_fingerprint(1337)
    monkeypatch.setattr(stories, "CORPUS_VERSION", stories.CORPUS_VERSION + 1)
    assert stories.corpus_fingerprint(1337) != fp


def _digest(docs: list[str]) -> str:
    return hashlib.sha256(json.dumps(docs).encode()).hexdigest()


def test_corpus_files_give_back_the_bundled_splits_and_every_experiment_reads_the_same_documents(tmp_path):
    """`sandbox corpus --out DIR` writes what `bundled_split` gives; each experiment's training
    and tokenizer trainer read exactly those documents back from the files (so retraining
    from the README's commands trains on the same text), without importing the sandbox."""
    out = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "corpus", "--out", str(out)], capture_output=True, text=True,
        cwd=PACKAGE_PARENT, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "corpus.json").read_text())
    assert manifest["seed"] == stories.BUNDLED_SEED and manifest["corpus_version"] == stories.CORPUS_VERSION
    expected = {split: stories.bundled_split(split) for split in files.SPLITS}
    for split, docs in expected.items():
        assert (out / f"{split}.txt").read_text(encoding="utf-8").rstrip("\n").split(files.SEPARATOR) == docs
        assert manifest["splits"][split]["documents"] == len(docs)
        assert manifest["splits"][split]["sha256"] == hashlib.sha256((out / f"{split}.txt").read_bytes()).hexdigest()
    # The Evaluation page's own .txt reader (blank lines between documents) reads the same documents.
    assert load_documents(str(out / "validation.txt")) == expected["validation"]
    readers = {
        "models/template": ("train", ["train", "validation"]),
        "models/kv_variant": ("train", ["train", "validation"]),
        "models/template/tokenizers/bpe": ("train_tokenizer", ["train"]),
        "models/kv_variant/tokenizers/charbpe": ("train_tokenizer", ["train"]),
    }
    for folder, (module, splits) in readers.items():
        code = (
            f"import hashlib, json, sys; from pathlib import Path; import {module} as m; "
            f"print(json.dumps({{s: hashlib.sha256(json.dumps(m.read_split(Path({str(out)!r}), s)).encode()).hexdigest() for s in {splits!r}}})); "
            "print(sorted(n for n in sys.modules if n == 'sandbox' or n.startswith('sandbox.')))"
        )
        # cwd: the script's own folder, first on sys.path as when it is run; no sandbox on the path
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE_PARENT / folder, env=env, timeout=300)
        assert ran.returncode == 0, f"{folder}: {ran.stderr[-2000:]}"
        digests, imported = ran.stdout.strip().splitlines()[-2:]
        assert json.loads(digests) == {s: _digest(expected[s]) for s in splits}, folder
        assert imported == "[]", f"{folder} imported the sandbox: {imported}"


def test_corpus_text_refuses_a_document_that_would_not_come_back():
    assert files.as_text(["one", "two\nlines"]) == "one\n\ntwo\nlines\n"
    for bad in (["a\n\nb"], [" padded"], [""]):
        with pytest.raises(ValueError):
            files.as_text(bad)
