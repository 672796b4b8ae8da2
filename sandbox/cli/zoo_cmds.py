"""Commands about what is on disk and whether it follows the contract: list, doctor, params, diff."""

from __future__ import annotations

import argparse
import json
import math
import sys

from sandbox.cli.common import make_pool, models_dir_option, run_of, text_table, timeout_option
from sandbox.evaluation.checkup import check_experiment
from sandbox.settings import models_dir
from sandbox.zoo import accounting, catalog


def cmd_list(args: argparse.Namespace) -> int:
    """Experiments and runs with parameters, tokenizer, vocab, context, losses, status.

    Parameters and load problems are those found the last time a worker loaded each run
    (`doctor`, `params`, `eval` or the Models page do); ``--load`` loads every run first.
    """
    from sandbox.zoo.discovery import discover, refused_links

    base = models_dir(args.models_dir)
    if args.load:
        pool = make_pool(args)
        try:
            for exp in discover(base):
                check_experiment(exp, pool)  # remembers what each load found
        finally:
            pool.close_all()
    known = catalog.known_by_experiment(discover(base))
    rows = catalog.runs_table(base, known)
    if args.json:
        experiments = sorted({r["experiment"] for r in rows} | set(known))
        refused = refused_links(base)
        print(json.dumps({"models_dir": str(base), "experiments": experiments, "runs": rows, "refused": refused}, indent=2))
    else:
        cols = ["experiment", "run", "kind", "parameters", "tokenizer", "vocab", "context", "final_train_loss", "final_val_loss", "status", "checked"]
        print(text_table(rows, cols))
        for row in rows:
            for problem in row["problems"]:
                print(f"  ! {row['run_id']}: {problem}")
        for sentence in refused_links(base):
            print(f"  ! {sentence}")
        logs_only = {run.id for exp in discover(base) for run in exp.runs if not run.has_model}
        unknown = [r["run_id"] for r in rows if r["parameters"] is None and r["run_id"] not in logs_only]
        if unknown:
            print(
                f"Parameters of {len(unknown)} run(s) are counted when a worker loads them: "
                "`list --load` (or `doctor`) loads every run."
            )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check every experiment against the contract; exit 1 when any error is found."""
    from sandbox.zoo.discovery import discover, refused_links

    base = models_dir(args.models_dir)
    pool = None if args.quick else make_pool(args)
    errors = 0
    try:
        experiments = discover(base)
        if not experiments:
            print(f"No experiments under {base}.")
        for sentence in refused_links(base):
            if sentence.split(" ", 1)[0].count("/") == 0:  # run folders: under their experiment
                print(f"[warning] {sentence}")
        for exp in experiments:
            findings, infos = check_experiment(exp, pool, quick=args.quick)
            bad = [f for f in findings if f.severity == "error"]
            errors += len(bad)
            print(f"{exp.name}: {'ok' if not bad else f'{len(bad)} problem(s)'}")
            for run in exp.runs:
                if run.name in infos:
                    info = infos[run.name]
                    probe = info.get("probe_loss")
                    scored = "" if probe is None else f", loss {probe:,.3f} nats/token on the probe text (uniform: {math.log(info['vocab_size']):.3f})"
                    print(f"  {run.name}: loads, {info['n_params']:,} parameters, vocab {info['vocab_size']}, forward ok{scored}")
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
    from sandbox.errors import WorkerError

    found = run_of(args)
    if found is None:
        return 2
    exp, run = found
    pool = make_pool(args)
    try:
        breakdown = pool.client(exp).request("params", run=run.name)
    except WorkerError as exc:
        print(f"error: {run.id}: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return 1
    finally:
        pool.close_all()
    accounting.store_breakdown(run, breakdown)  # the Models table and `list` show this count from now on
    tokens, how = accounting.tokens_seen(run)
    figures = accounting.summary(breakdown, run.model_config(), tokens)
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
    print(f"  {accounting.FORMULA}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """File-by-file code diff of experiment B against experiment A."""
    from sandbox.errors import UnknownRunError
    from sandbox.zoo.codediff import diff_experiments
    from sandbox.zoo.discovery import find_experiment

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


def setup_list(p: argparse.ArgumentParser) -> None:
    models_dir_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--load", action="store_true", help="load every run in its worker first (counts parameters)")
    p.add_argument("--device", default=None, help="with --load: cpu, cuda or mps (default: the best present)")


def setup_doctor(p: argparse.ArgumentParser) -> None:
    models_dir_option(p)
    p.add_argument("--quick", action="store_true", help="static checks only (no worker, no forward pass)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")
    timeout_option(p)


def setup_params(p: argparse.ArgumentParser) -> None:
    models_dir_option(p)
    p.add_argument("--run", required=True, help="EXPERIMENT/RUN")
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default=None)
    timeout_option(p)


def setup_diff(p: argparse.ArgumentParser) -> None:
    models_dir_option(p)
    p.add_argument("a", help="base experiment")
    p.add_argument("b", help="experiment to compare with the base")
