"""Command line: `sandbox <command>` (or `python -m sandbox <command>`) does headless what the pages do.

Each command is a function ``cmd_<name>(args) -> int`` (the exit status) and a parser set up
``setup_<name>(parser)``, one module per group of commands (`zoo_cmds`: list, doctor,
params, diff; `run_cmds`: eval, generate; `corpus_cmd`: corpus; `arena_cmds`: judge,
leaderboard; `analysis_cmds`: compare, fit; `synth_cmd`: synth-lab); ``COMMANDS`` here lists
them, so adding one is adding both and a line. The CLI is app side: it starts workers
through `sandbox.worker.backends` (local, or on a Ray cluster with the global ``--ray``) and
never imports torch itself.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from sandbox.cli.analysis_cmds import cmd_compare, cmd_fit, setup_compare, setup_fit
from sandbox.cli.arena_cmds import cmd_judge, cmd_leaderboard, setup_judge, setup_leaderboard
from sandbox.cli.corpus_cmd import cmd_corpus, setup_corpus
from sandbox.cli.run_cmds import cmd_eval, cmd_generate, setup_eval, setup_generate
from sandbox.cli.synth_cmd import cmd_synth_lab, setup_synth_lab
from sandbox.cli.zoo_cmds import (
    cmd_diff,
    cmd_doctor,
    cmd_list,
    cmd_params,
    setup_diff,
    setup_doctor,
    setup_list,
    setup_params,
)
from sandbox.settings import REQUEST_TIMEOUT_ENV, parse_timeout
from sandbox.worker.ray import RayUnavailable

# name -> (help, parser setup, command)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "list": ("list experiments and runs", setup_list, cmd_list),
    "doctor": ("check experiments against the contract", setup_doctor, cmd_doctor),
    "eval": ("top-k accuracy, loss, perplexity, bits/byte of runs", setup_eval, cmd_eval),
    "params": ("parameter and compute accounting of one run", setup_params, cmd_params),
    "diff": ("code diff of two experiments", setup_diff, cmd_diff),
    "generate": ("continue a prompt with one run", setup_generate, cmd_generate),
    "corpus": ("write the bundled corpus as plain files for training", setup_corpus, cmd_corpus),
    "judge": ("blind battles between runs, rated by the LLM judge", setup_judge, cmd_judge),
    "leaderboard": ("the arena's ratings of runs by people and judges", setup_leaderboard, cmd_leaderboard),
    "compare": ("where 2-6 runs differ on the same text, across tokenizers", setup_compare, cmd_compare),
    "fit": ("scaling laws per group of runs and compute multipliers", setup_fit, cmd_fit),
    "synth-lab": ("write a synthetic lab of N runs (configs and logs) for benchmarks", setup_synth_lab, cmd_synth_lab),
}


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command in ``COMMANDS``."""
    parser = argparse.ArgumentParser(prog="sandbox", description="micro-GPT sandbox, headless.")
    parser.add_argument(
        "--ray", default=None, metavar="ADDRESS|auto",
        help="run the workers as actors on the Ray cluster at ADDRESS (HOST:PORT of its head), or "
        "auto: the one this machine belongs to (default: $SANDBOX_RAY_ADDRESS, else local processes; "
        "needs pip install -r requirements-ray.txt)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, setup, func) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=func.__doc__)
        setup(p)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command (``argv`` defaults to the command line); returns its exit status.

    The entry point of the ``sandbox`` console script and of ``python -m sandbox``.
    """
    args = build_parser().parse_args(argv)
    if getattr(args, "timeout", None) is None and os.environ.get(REQUEST_TIMEOUT_ENV, "").strip():
        try:  # said here, once: the app logs it and goes on with the default
            args.timeout = parse_timeout(os.environ[REQUEST_TIMEOUT_ENV])
        except ValueError as exc:
            print(f"error: {REQUEST_TIMEOUT_ENV}: {exc}", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except RayUnavailable as exc:  # asked for Ray, and it cannot serve: one sentence, no traceback
        print(f"error: {exc}" + (f" {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2
