"""Commands that run models through their workers: eval and generate."""

from __future__ import annotations

import argparse
import sys

from sandbox.cli.common import (
    make_pool,
    models_dir_option,
    run_of,
    sampling_options,
    text_table,
    timeout_option,
)
from sandbox.settings import models_dir


def stable_text(text: str) -> str:
    """``text`` without a trailing U+FFFD: a multi-byte character whose last bytes are still to come."""
    return text.rstrip("\ufffd")


def cmd_generate(args: argparse.Namespace) -> int:
    """Continue a prompt with one run; the text goes to stdout as it is generated."""
    import os

    from sandbox.errors import WorkerError
    from sandbox.playground.columns import column_events
    from sandbox.playground.prompts import cap_max_new_tokens
    from sandbox.playground.settings import SamplingSettings

    found = run_of(args)
    if found is None:
        return 2
    exp, run = found
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
    pool = make_pool(args)
    printed = ""
    events = column_events(pool.client(exp), run.name, args.prompt, settings)
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
                text = stable_text(event["text"])
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
    from sandbox.evaluation import report as evaluation_report
    from sandbox.evaluation import results, tables
    from sandbox.evaluation.data import BUNDLED_LABEL, load_documents, sample_documents
    from sandbox.evaluation.formats import DataSourceError
    from sandbox.evaluation.parallel import evaluate_runs
    from sandbox.settings import ray_address
    from sandbox.worker.backends import workers_device

    try:
        if min(args.k) < 1:
            raise ValueError(f"every k must be at least 1, not {min(args.k)}")
        if args.reference is not None and args.reference not in args.runs:
            raise ValueError(f"the reference run {args.reference} is not one of --runs")
        docs = sample_documents(load_documents(args.data), args.docs if args.docs > 0 else None, args.seed)
        settings = results.EvalSettings(
            kmax=max(args.k), overlap=args.overlap, batch_size=args.batch_size,
            autocast=args.autocast, device=workers_device(ray_address(getattr(args, "ray", None)), args.device),
        )
    except (DataSourceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def progress(run_id: str, done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{run_id}: {done}/{total} windows", end="\n" if done == total else "", file=sys.stderr)

    pool = make_pool(args)
    try:
        report = evaluate_runs(  # experiments side by side on a Ray cluster
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
        print(text_table(text.drop(columns="error").to_dict("records"), [c for c in text.columns if c != "error"]))
        paired = report.paired(args.k, args.reference)
        if paired:
            print(f"\nPaired differences against {paired[0]['reference']} (95 % bootstrap over documents):")
        for row in paired:
            if row["verdict"] and (row["metric"] == "bits_per_byte" or row["metric"] == "loss"):
                print(f"  {row['verdict']}")
        for note in [n for n in [evaluation_report.multiple_note(paired)] if n] + report.notes():
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


def setup_generate(p: argparse.ArgumentParser) -> None:
    models_dir_option(p)
    p.add_argument("--run", required=True, help="EXPERIMENT/RUN")
    p.add_argument("--prompt", default="", help="text to continue (empty: start from bos)")
    sampling_options(p)
    timeout_option(p)


def setup_eval(p: argparse.ArgumentParser) -> None:
    from sandbox.evaluation.results import DEFAULT_KS

    models_dir_option(p)
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
    timeout_option(p)
    p.add_argument("--reference", default=None, metavar="EXP/RUN", help="run the others are compared with (default: the first)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
