"""Coverage of the evaluation's paired 95 % intervals, by simulation on skewed documents.

A population of 100,000 documents (`sandbox.evaluation.coverage.skewed_population`:
lognormal lengths, a quarter of them hard, 4x the loss per byte, and where the two runs
differ most); the true difference in bits per byte is that of the population's totals.
Each trial draws N documents and asks whether the interval holds the truth, for the plain
percentile bootstrap (the method before) and the studentized one (the default now), on the
same samples. Printed: coverage ± its binomial standard error, per N and method.

    python bench/coverage.py [--trials 1000] [--resamples 2000] [--docs 10 30 100]
"""

from __future__ import annotations

import argparse
import time

from sandbox.evaluation import coverage


def main() -> None:
    """Print the coverage table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--docs", type=int, nargs="+", default=[10, 30, 100])
    ap.add_argument("--hard-share", type=float, default=0.25)
    args = ap.parse_args()
    pop = coverage.skewed_population(hard_share=args.hard_share)
    print(f"true difference {pop.truth:+.4f} bits/byte; {args.trials} trials, {args.resamples} resamples; nominal 0.95")
    print(f"{'documents':>9}  {'percentile':>14}  {'studentized':>14}  seconds")
    for n in args.docs:
        start = time.perf_counter()
        cells = []
        for method in ("percentile", "studentized"):
            share, se = coverage.coverage(pop, n, args.trials, method=method, n_resamples=args.resamples)
            cells.append(f"{share:.3f} ± {se:.3f}")
        print(f"{n:>9}  {cells[0]:>14}  {cells[1]:>14}  {time.perf_counter() - start:7.1f}", flush=True)


if __name__ == "__main__":
    main()
