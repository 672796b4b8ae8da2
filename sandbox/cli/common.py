"""What every command shares: the worker pool (local or Ray), the --timeout and --models-dir options, text tables."""

from __future__ import annotations

import argparse
import sys

from sandbox.errors import UnknownRunError
from sandbox.numfmt import format_number
from sandbox.settings import models_dir
from sandbox.zoo.discovery import Experiment, Run, lookup


def make_pool(args: argparse.Namespace):
    """A worker pool for one command: its --device and --timeout, at most 4 workers; on the
    Ray cluster of the global ``--ray`` (else ``$SANDBOX_RAY_ADDRESS``), joined at once so
    that a cluster that cannot be used is one sentence before any work (`RayUnavailable`,
    which `sandbox.cli.main` prints)."""
    from sandbox.settings import ray_address
    from sandbox.worker import backends

    address = ray_address(getattr(args, "ray", None))
    pool = backends.make_pool(address, max_workers=4, device=getattr(args, "device", None), timeout=getattr(args, "timeout", None))
    if address is not None:
        pool.connect()
        print(backends.pool_label(pool), file=sys.stderr)
    return pool


def seconds(text: str) -> float:
    """argparse type of --timeout: seconds above 0."""
    from sandbox.settings import parse_timeout

    try:
        return parse_timeout(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def timeout_option(p: argparse.ArgumentParser) -> None:
    """The --timeout option of the commands that start workers."""
    p.add_argument(
        "--timeout", type=seconds, default=None, metavar="SECONDS",
        help="longest a worker may take for one request before it is stopped "
        "(default: $SANDBOX_REQUEST_TIMEOUT, else 120)",
    )  # fmt: skip


def sampling_options(p: argparse.ArgumentParser, seed_help: str | None = None) -> None:
    """The sampling options every generating command takes (defaults: the Playground's)."""
    from sandbox.playground.settings import DEFAULT_SETTINGS as D

    p.add_argument("--max-new-tokens", type=int, default=D.max_new_tokens)
    p.add_argument("--seed", type=int, default=D.seed, help=seed_help)
    p.add_argument("--temperature", type=float, default=D.temperature, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=D.top_k, help="0 = off")
    p.add_argument("--top-p", type=float, default=D.top_p, help="1 = off")
    p.add_argument("--min-p", type=float, default=D.min_p, help="0 = off")
    p.add_argument("--device", default=None)


def text_table(rows: list[dict], columns: list[str]) -> str:
    """A plain aligned text table."""
    cells = [[("" if r.get(c) is None else format_number(r[c]) if isinstance(r.get(c), float) else str(r[c])) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def models_dir_option(p: argparse.ArgumentParser) -> None:
    """The --models-dir option every command has."""
    p.add_argument("--models-dir", default=None, help="models directory (default: models/ or $SANDBOX_MODELS_DIR)")


def run_of(args: argparse.Namespace) -> tuple[Experiment, Run] | None:
    """The experiment and run that ``--run`` names (`sandbox.zoo.discovery.lookup`); None,
    with the sentence on stderr, when it names no run (the command then exits with 2)."""
    try:
        return lookup(models_dir(args.models_dir), args.run)
    except UnknownRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
