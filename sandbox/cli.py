"""Command line: `python -m sandbox <command>` does headless what the pages do.

Each command is a function ``cmd_<name>(args) -> int`` (the exit status) and a parser set up
in ``COMMANDS``; adding one is adding both.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from sandbox import catalog
from sandbox.doctor import check_experiment
from sandbox.settings import models_dir


def _pool(args: argparse.Namespace):
    from sandbox.loader import WorkerPool

    return WorkerPool(max_workers=4, device=getattr(args, "device", None))


def _table(rows: list[dict], columns: list[str]) -> str:
    """A plain aligned text table."""
    cells = [[("" if r.get(c) is None else f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r[c])) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    """Experiments and runs with parameters, tokenizer, vocab, context, losses, status."""
    from sandbox.discovery import discover

    base = models_dir(args.models_dir)
    findings = {exp.name: [f.as_dict() for f in check_experiment(exp, quick=True)[0]] for exp in discover(base)}
    rows = catalog.runs_table(base, findings)
    if args.json:
        experiments = sorted({r["experiment"] for r in rows} | set(findings))
        print(json.dumps({"models_dir": str(base), "experiments": experiments, "runs": rows}, indent=2))
    else:
        cols = ["experiment", "run", "parameters", "tokenizer", "vocab", "context", "final_train_loss", "final_val_loss", "status"]
        print(_table(rows, cols))
        for row in rows:
            for problem in row["problems"]:
                print(f"  ! {row['run_id']}: {problem}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check every experiment against the contract; exit 1 when any error is found."""
    from sandbox.discovery import discover

    base = models_dir(args.models_dir)
    pool = None if args.quick else _pool(args)
    errors = 0
    try:
        experiments = discover(base)
        if not experiments:
            print(f"No experiments under {base}.")
        for exp in experiments:
            findings, infos = check_experiment(exp, pool, quick=args.quick)
            bad = [f for f in findings if f.severity == "error"]
            errors += len(bad)
            print(f"{exp.name}: {'ok' if not bad else f'{len(bad)} problem(s)'}")
            for run in exp.runs:
                if run.name in infos:
                    info = infos[run.name]
                    print(f"  {run.name}: loads, {info['n_params']:,} parameters, vocab {info['vocab_size']}, forward ok")
            for f in findings:
                where = f"{f.run}: " if f.run else ""
                print(f"  [{f.severity}] {where}{f.sentence} (rule: {f.rule}, file: {f.file})")
                if f.hint:
                    print(f"      fix: {f.hint}")
    finally:
        if pool is not None:
            pool.close_all()
    return 1 if errors else 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default=None, help="models directory (default: models/ or $SANDBOX_MODELS_DIR)")


def _setup_list(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _setup_doctor(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--quick", action="store_true", help="static checks only (no worker, no forward pass)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")


# name -> (help, parser setup, command)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "list": ("list experiments and runs", _setup_list, cmd_list),
    "doctor": ("check experiments against the contract", _setup_doctor, cmd_doctor),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="micro-GPT sandbox, headless.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, setup, func) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=func.__doc__)
        setup(p)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
