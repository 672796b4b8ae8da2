"""The corpus command: the bundled corpus written as plain files for experiments to train from."""

from __future__ import annotations

import argparse
import sys

from sandbox.corpus.files import write_corpus
from sandbox.corpus.stories import BUNDLED_SEED


def cmd_corpus(args: argparse.Namespace) -> int:
    """Write the bundled corpus as DIR/train.txt and DIR/validation.txt (documents separated by
    one blank line) and DIR/corpus.json (seed, counts, sha256): what the experiments' train.py
    and tokenizer trainers read."""
    try:
        manifest = write_corpus(args.out, seed=args.seed)
    except OSError as exc:
        print(f"error: cannot write the corpus to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for split in manifest["splits"].values():
        print(f"{args.out}/{split['file']}: {split['documents']:,} documents (sha256 {split['sha256'][:16]}…)")
    print(f"{args.out}/corpus.json: seed {manifest['seed']}, corpus version {manifest['corpus_version']}")
    return 0


def setup_corpus(p: argparse.ArgumentParser) -> None:
    """Options of ``sandbox corpus``."""
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write train.txt, validation.txt, corpus.json to")
    p.add_argument("--seed", type=int, default=BUNDLED_SEED, help=f"corpus seed (default {BUNDLED_SEED}, the zoo's)")
