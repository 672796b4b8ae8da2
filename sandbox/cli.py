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


def cmd_params(args: argparse.Namespace) -> int:
    """Parameters (total, embedding, non-embedding, per part) and compute of one run."""
    from sandbox import compute
    from sandbox.discovery import find_experiment, find_run

    base = models_dir(args.models_dir)
    run = find_run(base, args.run)
    pool = _pool(args)
    try:
        breakdown = pool.client(find_experiment(base, run.experiment)).request("params", run=run.name)
    finally:
        pool.close_all()
    tokens, how = catalog.tokens_seen(run)
    figures = compute.summary(breakdown, run.model_config(), tokens)
    if args.json:
        print(json.dumps({"run": run.id, "params": breakdown, "compute": {**figures, "tokens_seen_source": how}}, indent=2))
        return 0
    print(f"{run.id}")
    print(f"  total          {breakdown['total']:>12,}")
    print(f"  embedding      {breakdown['embedding']:>12,}")
    print(f"  non-embedding  {breakdown['non_embedding']:>12,}")
    for part, n in breakdown["parts"].items():
        print(f"    {part:<12} {n:>12,}  ({n / breakdown['total']:.1%})")
    print(f"  tied head: {'yes' if breakdown['tied_head'] else 'no'}")
    for key, label in (("train_flops_per_token", "training FLOPs/token"), ("inference_flops_per_token", "inference FLOPs/token"), ("train_compute", "training compute (FLOPs)")):
        value = figures[key]
        print(f"  {label:<26} {'unknown' if value is None else f'{value:.4g}'}")
    print(f"  tokens seen: {'unknown' if tokens is None else f'{tokens:.4g}'} ({how})")
    print(f"  {compute.FORMULA}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """File-by-file code diff of experiment B against experiment A."""
    from sandbox.codediff import diff_experiments
    from sandbox.discovery import UnknownRunError, find_experiment

    base = models_dir(args.models_dir)
    try:
        a, b = find_experiment(base, args.a), find_experiment(base, args.b)
    except UnknownRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for d in diff_experiments(a, b):
        counts = f" (+{d.added} -{d.removed})" if d.status == "changed" else ""
        print(f"{d.path}: {d.status}{counts}")
    for d in diff_experiments(a, b):
        if d.diff:
            print()
            print(d.diff, end="")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default=None, help="models directory (default: models/ or $SANDBOX_MODELS_DIR)")


def _setup_list(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _setup_doctor(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--quick", action="store_true", help="static checks only (no worker, no forward pass)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")


def _setup_params(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--run", required=True, help="EXPERIMENT/RUN")
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default=None)


def _setup_diff(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("a", help="base experiment")
    p.add_argument("b", help="experiment to compare with the base")


# name -> (help, parser setup, command)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "list": ("list experiments and runs", _setup_list, cmd_list),
    "doctor": ("check experiments against the contract", _setup_doctor, cmd_doctor),
    "params": ("parameter and compute accounting of one run", _setup_params, cmd_params),
    "diff": ("code diff of two experiments", _setup_diff, cmd_diff),
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
