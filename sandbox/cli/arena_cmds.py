"""The arena's commands: judge (judged battles, headless) and leaderboard (the ratings)."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

from sandbox.cli.common import make_pool, models_dir_option, sampling_options, timeout_option
from sandbox.settings import models_dir

SECRETS_FILE = Path(".streamlit") / "secrets.toml"  # the app's, read from the current folder
RATERS = ("all", "people", "judge")


def read_secrets(path: Path = SECRETS_FILE) -> dict:
    """The app's secrets file as a dict (empty when there is none); `ValueError` when unreadable."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path} cannot be read as TOML ({type(exc).__name__}).") from None


def read_rubric(path: str) -> str:
    """A rubric file's text; `ValueError` with one sentence when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"The rubric file {Path(path).name} cannot be read ({getattr(exc, 'strerror', None) or 'not UTF-8 text'}).") from None


def cmd_judge(args: argparse.Namespace) -> int:
    """Generate battles between runs and have the LLM judge rate each, headless: every pair of
    runs equally often, battle i taking prompt i of the file (or of the bundled corpus's
    story openings) and sampling seed --seed + i for both runs. Verdicts go to the arena's
    database, where `sandbox leaderboard` and the Arena page read them."""
    from sandbox.arena.battle import OPENINGS_SOURCE, read_prompt_file, story_openings
    from sandbox.arena.headless import run_judged_battles
    from sandbox.arena.judge import DEFAULT_RUBRIC, Judge, check_rubric, judge_config, judge_status
    from sandbox.arena.store import ArenaStore, StoreError
    from sandbox.playground.settings import SamplingSettings

    try:
        config = judge_config(read_secrets())
        if config is None:
            raise ValueError(judge_status(None))
        prompts = read_prompt_file(args.prompts) if args.prompts else story_openings()
        rubric = check_rubric(read_rubric(args.rubric)) if args.rubric else DEFAULT_RUBRIC
        settings = SamplingSettings(
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
            max_new_tokens=args.max_new_tokens, seed=args.seed,
        )  # fmt: skip
        store = ArenaStore(args.db)
    except (ValueError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(judge_status(config), file=sys.stderr)

    def progress(done: int, total: int, sentence: str) -> None:
        print(f"[{done}/{total}] {sentence}", file=sys.stderr)

    pool = make_pool(args)
    try:
        with Judge(config) as judge:
            summary = run_judged_battles(
                pool, models_dir(args.models_dir), args.runs, prompts, args.n, settings, judge, store, progress,
                seed=args.seed, rubric=rubric, source=Path(args.prompts).name if args.prompts else OPENINGS_SOURCE,
            )  # fmt: skip
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        pool.close_all()
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print("\n".join(summary.lines()))
    return 1 if summary.failures or summary.pending else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Print the arena's leaderboards: Bradley–Terry ratings (Elo scale) with 95 % bootstrap
    intervals, vote counts and win rates, for people, each judge and everyone combined, and
    the agreement between people and each judge."""
    from sandbox.arena.board import JUDGE_PREFIX, PEOPLE, format_report, report
    from sandbox.arena.store import ArenaStore, StoreError

    try:
        data = report(ArenaStore(args.db), n_boot=args.bootstrap, seed=args.seed)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.rater == "people":
        data["leaderboards"] = [b for b in data["leaderboards"] if b["kind"] == PEOPLE]
    elif args.rater == "judge":
        data["leaderboards"] = [b for b in data["leaderboards"] if b["kind"].startswith(JUDGE_PREFIX)]
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else format_report(data))
    return 0


def db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, metavar="FILE", help="the arena database (default: $SANDBOX_ARENA_DB, else .cache/arena/arena.sqlite3)")


def setup_judge(p: argparse.ArgumentParser) -> None:
    """Options of ``sandbox judge``."""
    from sandbox.arena.headless import MAX_JUDGED_BATTLES
    models_dir_option(p)
    p.add_argument("--runs", nargs="+", required=True, metavar="EXP/RUN", help="two or more runs to pit against each other")
    p.add_argument("--prompts", default=None, metavar="FILE", help="UTF-8 text, one prompt per line (default: the bundled corpus's story openings)")
    p.add_argument("--n", type=int, required=True, help=f"number of battles (1 to {MAX_JUDGED_BATTLES:,})")
    p.add_argument("--rubric", default=None, metavar="FILE", help="the judge's rubric (default: the built-in one)")
    sampling_options(p, seed_help="sampling seed of the first battle (then +1 each)")
    timeout_option(p)
    db_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable summary")


def setup_leaderboard(p: argparse.ArgumentParser) -> None:
    """Options of ``sandbox leaderboard``."""
    from sandbox.arena.ratings import DEFAULT_BOOTSTRAP

    p.add_argument("--rater", choices=RATERS, default="all", help="whose votes: people, each judge, or all (adds people and judges combined)")
    p.add_argument("--bootstrap", type=int, default=DEFAULT_BOOTSTRAP, help="bootstrap resamples for the 95 %% intervals (0: none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    db_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
