"""Analyses across runs that no single run's page shows: pure functions from numbers to numbers.

This package owns the comparisons of issue 18: scaling-law fits and compute multipliers
(:mod:`~sandbox.analysis.scaling`), losses at matched tokens or FLOPs and estimated bits per
byte (:mod:`~sandbox.analysis.matched`), per-byte losses that line runs with different
tokenizers up on the same text and what they show across a corpus
(:mod:`~sandbox.analysis.bytes`), and the Altair charts of all three
(:mod:`~sandbox.analysis.charts`). It may import numpy, pandas, altair and the pure helpers of
``sandbox`` (metrics, colors, export); never Streamlit, torch or the worker machinery. Callers
(pages, the CLI) fetch what a worker computes and hand plain arrays in, which keeps every
function here testable without a model.
"""
