"""The synth-lab command: a synthetic lab of N runs (a sweep) written as run folders, for benchmarks."""

from __future__ import annotations

import argparse
import sys

from sandbox.zoo.synthetic import write_lab


def cmd_synth_lab(args: argparse.Namespace) -> int:
    """Write N synthetic runs (configs and training logs, no weights) under DIR: a sweep over
    dim, n_layers, learning_rate and tokenizer, both log headers, some diverging, some still
    growing. Point the app at DIR with --models-dir to try the Loss curves page on a lab."""
    if args.runs < 1 or args.rows < 2:
        print("error: --runs must be at least 1 and --rows at least 2", file=sys.stderr)
        return 2
    try:
        planned = write_lab(args.out, args.runs, args.rows, seed=args.seed)
    except OSError as exc:
        print(f"error: cannot write the lab to {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    experiments = sorted({run.id.split("/")[0] for run in planned})
    print(f"{args.out}: {len(planned):,} runs × {args.rows:,} log rows in {len(experiments)} experiment(s): {', '.join(experiments)}")
    return 0


def setup_synth_lab(p: argparse.ArgumentParser) -> None:
    """Options of ``sandbox synth-lab``."""
    p.add_argument("--out", required=True, metavar="DIR", help="models folder to write the runs into")
    p.add_argument("--runs", type=int, default=60, help="number of runs (default 60)")
    p.add_argument("--rows", type=int, default=1000, help="log rows per run (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
