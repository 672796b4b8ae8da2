"""`sandbox compare` (where runs differ on a corpus) and `sandbox fit` (scaling laws and compute
multipliers): the Compare page's numbers, headless."""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

from sandbox.cli.common import make_pool, models_dir_option, text_table, timeout_option
from sandbox.settings import models_dir

MAX_RUNS = 6


def cmd_compare(args: argparse.Namespace) -> int:
    """Score 2–6 runs on the same documents (cached evaluations are reused), spread each
    token's loss over its bytes, and print each run's share of bytes predicted best, then, for
    each run against the reference, the passages and documents ranked by the difference in
    bits per byte and the words it is most often better or worse on."""
    from sandbox.analysis import corpusdiff, wins
    from sandbox.evaluation import results
    from sandbox.evaluation import run as evaluation_run
    from sandbox.evaluation.data import BUNDLED_LABEL, load_documents, sample_documents
    from sandbox.evaluation.formats import DataSourceError
    from sandbox.worker.pool import probe_device

    try:
        if not 2 <= len(args.runs) <= MAX_RUNS or len(set(args.runs)) != len(args.runs):
            raise ValueError(f"--runs needs 2 to {MAX_RUNS} different runs")
        reference = args.reference or args.runs[0]
        if reference not in args.runs:
            raise ValueError(f"the reference run {reference} is not one of --runs")
        docs = sample_documents(load_documents(args.data), args.docs if args.docs > 0 else None, args.seed)
        # The Evaluation and Compare pages' standard method, so that all three share the cache.
        settings = results.EvalSettings(kmax=max(results.DEFAULT_KS), batch_size=8, device=probe_device(args.device))
    except (DataSourceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pool = make_pool(args)
    try:
        report = evaluation_run.evaluate(
            pool, args.runs, docs, settings, models_dir=models_dir(args.models_dir),
            data_label=BUNDLED_LABEL if args.data == "bundled" else args.data, use_cache=not args.no_cache,
        )  # fmt: skip
    finally:
        pool.close_all()
    failed = [r for r in report.results if not r.ok]
    for r in failed:
        print(f"error: {r.run_id}: {r.error['message']}", file=sys.stderr)
    if failed:
        return 1
    per_run = {r.run_id: r.document_byte_losses() for r in report.results}
    joined = {run: np.concatenate(v) if v else np.zeros(0) for run, v in per_run.items()}
    won = wins.who_wins(joined)
    bpb = {r.run_id: float(r.sums.nll.sum() / np.log(2) / max(int(r.sums.bytes.sum()), 1)) for r in report.results}
    comparisons = []
    for other in (r for r in args.runs if r != reference):
        ranking = corpusdiff.rank_passages(docs, per_run, runs=(reference, other), window_bytes=args.window, top=args.top)
        stats = corpusdiff.word_stats(docs, per_run[reference], per_run[other])
        comparisons.append({"run": other, "ranking": ranking, "words": stats,
                            "sentence": corpusdiff.word_sentence(stats, reference, other)})  # fmt: skip
    if args.json:
        print(json.dumps({
            "data": report.data, "reference": reference, "bits_per_byte": bpb, "wins": won.to_dict(),
            "comparisons": [{"run": c["run"], "sentence": c["sentence"], **c["ranking"].to_dict(),
                             "words": c["words"].to_dict()} for c in comparisons],
        }, indent=2))  # fmt: skip
        return 0
    print(f"{len(docs)} documents of {report.data['source']} ({report.data['bytes']:,} bytes), seed {args.seed}")
    rows = [{"run": run, "bits_per_byte": bpb[run], "bytes_won": won.share[run]} for run in args.runs]
    print(text_table(rows, ["run", "bits_per_byte", "bytes_won"]))
    print(f"ties: {won.tie_share:.1%} of {won.counted:,} bytes")
    for c in comparisons:
        print(f"\n{c['run']} − {reference}, bits per byte (positive: {c['run']} worse). {c['sentence']}")
        for _, row in c["ranking"].passages.iterrows():
            print(f"  {row['diff']:+.3f}  doc {row['doc']}: {row['text'][:100]!r}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit L = E + A·C^(−α) per group of runs (final validation loss against training compute
    or non-embedding parameters, or each group's lower envelope of whole curves), with
    bootstrap intervals; with --base and --variant, the compute multiplier at a loss."""
    from sandbox.analysis import sources
    from sandbox.zoo.discovery import all_runs

    runs = all_runs(models_dir(args.models_dir))
    keys = sources.group_keys(runs)
    if args.group_by not in keys:
        print(f"error: --group-by {args.group_by}: use one of {', '.join(keys)}", file=sys.stderr)
        return 2
    try:
        result = sources.fit_scaling(runs, axis=args.axis, group_by=args.group_by, curves=args.curves,
                                     base=args.base, variant=args.variant, loss=args.loss, n_boot=args.boot)  # fmt: skip
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print("\n".join(fit_text(result)))
    return 0


def fit_text(result) -> list[str]:
    """`fit`'s text output: each group's law with its intervals (a missing one said, never
    "[nan, nan]"), the multiplier's sentence, the notes."""
    lines = []
    for fit in result.fits.values():
        law = fit.law.formula() if fit.law else "no fit"
        lines.append(f"{fit.group}: {fit.n_points} points, {law}")
        for name, (lo, hi) in fit.intervals.items() if fit.law else ():
            shown = f"[{lo:.4g}, {hi:.4g}] ({fit.confidence:.0%})" if math.isfinite(lo) and math.isfinite(hi) else "no interval"
            lines.append(f"  {name}: {shown}")
        lines += [f"  note: {note}" for note in fit.notes]
    if result.multiplier is not None:
        lines.append(result.multiplier.sentence)
        lines += [f"note: {note}" for note in result.multiplier.notes]
    return lines + [f"note: {note}" for note in result.notes]


def setup_compare(p: argparse.ArgumentParser) -> None:
    models_dir_option(p)
    p.add_argument("--runs", nargs="+", required=True, metavar="EXP/RUN", help=f"2 to {MAX_RUNS} runs, any tokenizers")
    p.add_argument("--data", default="bundled", help="bundled (validation split), a .txt/.jsonl/.parquet path, or hf:...")
    p.add_argument("--docs", type=int, default=100, help="documents to sample (0 or less: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the document sample")
    p.add_argument("--reference", default=None, metavar="EXP/RUN", help="run the others are compared with (default: the first)")
    p.add_argument("--window", type=int, default=256, help="passage length in bytes")
    p.add_argument("--top", type=int, default=10, help="passages listed per run")
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")
    p.add_argument("--no-cache", action="store_true", help="recompute even when a cached result exists")
    timeout_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def setup_fit(p: argparse.ArgumentParser) -> None:
    from sandbox.analysis.sources import EXPERIMENT, FIT_AXES

    models_dir_option(p)
    p.add_argument("--group-by", default=EXPERIMENT, metavar="KEY", help="experiment (default) or a model-config key")
    p.add_argument("--axis", choices=list(FIT_AXES), default="compute", help="training compute or non-embedding parameters")
    p.add_argument("--curves", action="store_true", help="fit each group's lower envelope of whole training curves (compute)")
    p.add_argument("--base", default=None, metavar="GROUP", help="the multiplier's base group")
    p.add_argument("--variant", default=None, metavar="GROUP", help="the multiplier's variant group")
    p.add_argument("--loss", type=float, default=None, help="the multiplier's loss L* (default: the lowest both reached)")
    p.add_argument("--boot", type=int, default=400, help="bootstrap resamples per fit")
    p.add_argument("--json", action="store_true", help="machine-readable output")
