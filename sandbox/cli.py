"""Command line: `python -m sandbox <command>` does headless what the pages do.

Each command is a function ``cmd_<name>(args) -> int`` (the exit status) and a parser set up
in ``COMMANDS``; adding one is adding both.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable

from sandbox.evaluation.checkup import check_experiment
from sandbox.numfmt import format_number
from sandbox.settings import models_dir
from sandbox.zoo import accounting, catalog


def _pool(args: argparse.Namespace):
    from sandbox.worker.pool import WorkerPool

    return WorkerPool(max_workers=4, device=getattr(args, "device", None), timeout=getattr(args, "timeout", None))


def _seconds(text: str) -> float:
    """argparse type of --timeout: seconds above 0."""
    from sandbox.settings import parse_timeout

    try:
        return parse_timeout(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _timeout_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout", type=_seconds, default=None, metavar="SECONDS",
        help="longest a worker may take for one request before it is stopped "
        "(default: $SANDBOX_REQUEST_TIMEOUT, else 120)",
    )  # fmt: skip


def _table(rows: list[dict], columns: list[str]) -> str:
    """A plain aligned text table."""
    cells = [[("" if r.get(c) is None else format_number(r[c]) if isinstance(r.get(c), float) else str(r[c])) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    """Experiments and runs with parameters, tokenizer, vocab, context, losses, status.

    Parameters and load problems are those found the last time a worker loaded each run
    (`doctor`, `params`, `eval` or the Models page do); ``--load`` loads every run first.
    """
    from sandbox.zoo.discovery import discover, refused_links

    base = models_dir(args.models_dir)
    if args.load:
        pool = _pool(args)
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
        cols = ["experiment", "run", "parameters", "tokenizer", "vocab", "context", "final_train_loss", "final_val_loss", "status", "checked"]
        print(_table(rows, cols))
        for row in rows:
            for problem in row["problems"]:
                print(f"  ! {row['run_id']}: {problem}")
        for sentence in refused_links(base):
            print(f"  ! {sentence}")
        unknown = [r["run_id"] for r in rows if r["parameters"] is None]
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
    pool = None if args.quick else _pool(args)
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
    from sandbox.errors import UnknownRunError, WorkerError
    from sandbox.zoo import accounting as compute
    from sandbox.zoo.accounting import store_breakdown
    from sandbox.zoo.discovery import find_experiment, find_run

    base = models_dir(args.models_dir)
    try:
        run = find_run(base, args.run)
    except UnknownRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pool = _pool(args)
    try:
        breakdown = pool.client(find_experiment(base, run.experiment)).request("params", run=run.name)
    except WorkerError as exc:
        print(f"error: {run.id}: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return 1
    finally:
        pool.close_all()
    store_breakdown(run, breakdown)  # the Models table and `list` show this count from now on
    tokens, how = accounting.tokens_seen(run)
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


def _stable(text: str) -> str:
    """``text`` without a trailing U+FFFD: a multi-byte character whose last bytes are still to come."""
    return text.rstrip("\ufffd")


def cmd_generate(args: argparse.Namespace) -> int:
    """Continue a prompt with one run; the text goes to stdout as it is generated."""
    import os

    from sandbox.errors import UnknownRunError, WorkerError
    from sandbox.playground.columns import column_events
    from sandbox.playground.prompts import cap_max_new_tokens
    from sandbox.playground.settings import SamplingSettings
    from sandbox.zoo.discovery import find_experiment, find_run

    base = models_dir(args.models_dir)
    try:
        run = find_run(base, args.run)
    except UnknownRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    max_new, notice = cap_max_new_tokens(args.max_new_tokens)
    if notice:
        print(f"note: {notice.text}", file=sys.stderr)
    try:
        settings = SamplingSettings(
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            min_p=args.min_p,
            max_new_tokens=max_new,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pool = _pool(args)
    printed = ""
    events = column_events(pool.client(find_experiment(base, run.experiment)), run.name, args.prompt, settings)
    try:
        for event in events:
            if "prompt" in event:
                for n in event["prompt"]["notices"]:
                    print(f"{n['level']}: {n['text']}", file=sys.stderr)
            elif event.get("done"):
                print(
                    f"[{run.id}: {event['n_tokens']} tokens in {event['seconds']:.2f} s, {event['reason']}]",
                    file=sys.stderr,
                )
            elif "text" in event:
                text = _stable(event["text"])
                if text.startswith(printed):
                    sys.stdout.write(text[len(printed) :])
                    sys.stdout.flush()
                    printed = text
        print()
    except WorkerError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time flush
        # of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        events.close()  # cancels the worker's generation if we stopped early (Ctrl-C)
        pool.close_all()
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate runs on the same documents: top-k accuracy, loss, perplexity and bits per byte,
    each with a 95 % bootstrap interval over documents (the numbers of the Evaluation page)."""
    from sandbox.evaluation import results, tables
    from sandbox.evaluation import run as evaluation_run
    from sandbox.evaluation.data import BUNDLED_LABEL, load_documents, sample_documents
    from sandbox.evaluation.formats import DataSourceError
    from sandbox.worker.pool import probe_device

    try:
        if min(args.k) < 1:
            raise ValueError(f"every k must be at least 1, not {min(args.k)}")
        if args.reference is not None and args.reference not in args.runs:
            raise ValueError(f"the reference run {args.reference} is not one of --runs")
        docs = sample_documents(load_documents(args.data), args.docs if args.docs > 0 else None, args.seed)
        settings = results.EvalSettings(
            kmax=max(args.k), overlap=args.overlap, batch_size=args.batch_size,
            autocast=args.autocast, device=probe_device(args.device),
        )
    except (DataSourceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def progress(run_id: str, done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{run_id}: {done}/{total} windows", end="\n" if done == total else "", file=sys.stderr)

    pool = _pool(args)
    try:
        report = evaluation_run.evaluate(
            pool, args.runs, docs, settings, models_dir=models_dir(args.models_dir),
            data_label=BUNDLED_LABEL if args.data == "bundled" else args.data, progress=progress,
            use_cache=not args.no_cache,
        )
    finally:
        pool.close_all()
    if args.json:
        print(report.to_json(args.k, reference=args.reference))
    else:
        print(f"{len(docs)} documents of {report.data['source']} ({report.data['bytes']:,} bytes), seed {args.seed}")
        text = tables.summary_text(report.summary(args.k), args.k)
        print(_table(text.drop(columns="error").to_dict("records"), [c for c in text.columns if c != "error"]))
        paired = report.paired(args.k, args.reference)
        if paired:
            print(f"\nPaired differences against {paired[0]['reference']} (95 % bootstrap over documents):")
        for row in paired:
            if row["verdict"] and (row["metric"] == "bits_per_byte" or row["metric"] == "loss"):
                print(f"  {row['verdict']}")
        for note in report.notes():
            print(f"note: {note}")
        for result in report.results:
            for flag in result.flags:
                print(f"suspect: {flag}")
    for result in report.results:
        for warning in result.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if result.error:
            print(f"error: {result.run_id}: {result.error['message']}", file=sys.stderr)
    return 1 if any(r.error for r in report.results) else 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models-dir", default=None, help="models directory (default: models/ or $SANDBOX_MODELS_DIR)")


def _setup_list(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--load", action="store_true", help="load every run in its worker first (counts parameters)")
    p.add_argument("--device", default=None, help="with --load: cpu, cuda or mps (default: the best present)")


def _setup_doctor(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--quick", action="store_true", help="static checks only (no worker, no forward pass)")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")
    _timeout_option(p)


def _setup_params(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--run", required=True, help="EXPERIMENT/RUN")
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default=None)
    _timeout_option(p)


def _setup_diff(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("a", help="base experiment")
    p.add_argument("b", help="experiment to compare with the base")


def _setup_generate(p: argparse.ArgumentParser) -> None:
    from sandbox.playground.settings import DEFAULT_SETTINGS as D

    _common(p)
    p.add_argument("--run", required=True, help="EXPERIMENT/RUN")
    p.add_argument("--prompt", default="", help="text to continue (empty: start from bos)")
    p.add_argument("--max-new-tokens", type=int, default=D.max_new_tokens)
    p.add_argument("--seed", type=int, default=D.seed)
    p.add_argument("--temperature", type=float, default=D.temperature, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=D.top_k, help="0 = off")
    p.add_argument("--top-p", type=float, default=D.top_p, help="1 = off")
    p.add_argument("--min-p", type=float, default=D.min_p, help="0 = off")
    p.add_argument("--device", default=None)
    _timeout_option(p)


def _setup_eval(p: argparse.ArgumentParser) -> None:
    from sandbox.evaluation.results import DEFAULT_KS

    _common(p)
    p.add_argument("--runs", nargs="+", required=True, metavar="EXP/RUN", help="runs to evaluate")
    p.add_argument("--data", default="bundled", help="bundled (validation split), a .txt/.jsonl/.parquet path, or hf:...")
    p.add_argument("--docs", type=int, default=200, help="documents to sample (0 or less: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the document sample")
    p.add_argument("--k", type=int, nargs="+", default=list(DEFAULT_KS), help="top-k accuracies to report")
    p.add_argument("--overlap", type=int, default=0, help="context tokens carried into each later window")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--autocast", choices=["bf16", "fp16"], default=None, help="on CUDA only")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")
    p.add_argument("--no-cache", action="store_true", help="recompute even when a cached result exists")
    _timeout_option(p)
    p.add_argument("--reference", default=None, metavar="EXP/RUN", help="run the others are compared with (default: the first)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


# name -> (help, parser setup, command)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "list": ("list experiments and runs", _setup_list, cmd_list),
    "doctor": ("check experiments against the contract", _setup_doctor, cmd_doctor),
    "eval": ("top-k accuracy, loss, perplexity, bits/byte of runs", _setup_eval, cmd_eval),
    "params": ("parameter and compute accounting of one run", _setup_params, cmd_params),
    "diff": ("code diff of two experiments", _setup_diff, cmd_diff),
    "generate": ("continue a prompt with one run", _setup_generate, cmd_generate),
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
    import os

    from sandbox.settings import REQUEST_TIMEOUT_ENV, parse_timeout

    args = build_parser().parse_args(argv)
    if getattr(args, "timeout", None) is None and os.environ.get(REQUEST_TIMEOUT_ENV, "").strip():
        try:  # said here, once: the app logs it and goes on with the default
            args.timeout = parse_timeout(os.environ[REQUEST_TIMEOUT_ENV])
        except ValueError as exc:
            print(f"error: {REQUEST_TIMEOUT_ENV}: {exc}", file=sys.stderr)
            return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
