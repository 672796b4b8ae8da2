"""The bundled corpus as plain files: what ``sandbox corpus --out DIR`` writes, and how to read it.

Experiments train from files, never from the sandbox (nanoGPT's ``prepare.py`` pattern), so
an experiment cloned as a repository of its own trains on the same text:

- ``DIR/train.txt`` and ``DIR/validation.txt``: the split's documents in their order, UTF-8,
  separated by one blank line (:data:`SEPARATOR`, ``"\\n\\n"``) and ending with a newline. A
  document never holds a blank line and never starts or ends with white space (the writer
  refuses one that would), so splitting the text at ``"\\n\\n"`` gives the documents back
  exactly; the sandbox's own ``.txt`` reader (blank lines between documents) reads them too.
- ``DIR/corpus.json``: the seed, the generator version and, per split, the number of
  documents and the sha256 of the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sandbox.corpus.stories import (
    BUNDLED_SEED,
    BUNDLED_STORIES,
    CORPUS_VERSION,
    bundled_split,
    corpus_fingerprint,
)

SPLITS = ("train", "validation")
SEPARATOR = "\n\n"  # between two documents; never inside one
MANIFEST = "corpus.json"


def as_text(docs: list[str]) -> str:
    """The documents as one file's text; ValueError when one cannot survive the round trip."""
    for i, doc in enumerate(docs):
        if not doc or doc != doc.strip() or SEPARATOR in doc:
            raise ValueError(f"document {i} is empty, starts or ends with white space, or holds a blank line")
    return SEPARATOR.join(docs) + "\n"


def write_corpus(out: Path | str, seed: int = BUNDLED_SEED) -> dict:
    """Write both splits of the bundled corpus of ``seed`` and its manifest under ``out``
    (created if needed); returns the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {}
    for split in SPLITS:
        docs = bundled_split(split, seed=seed)
        data = as_text(docs).encode("utf-8")
        (out / f"{split}.txt").write_bytes(data)
        splits[split] = {"file": f"{split}.txt", "documents": len(docs), "sha256": hashlib.sha256(data).hexdigest()}
    manifest = {
        "corpus": "bundled",
        "seed": seed,
        "corpus_version": CORPUS_VERSION,
        "stories": BUNDLED_STORIES,
        "fingerprint": corpus_fingerprint(seed),
        "separator": SEPARATOR,
        "splits": splits,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
