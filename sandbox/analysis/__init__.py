"""Analyses across runs that no single run's page shows: pure functions from numbers to numbers.

This package owns the comparisons of issue 18: saturating power-law fits with bootstrap
intervals (`scaling`), the compute multiplier and the lower envelope of curves
(`multiplier`), losses at matched tokens or FLOPs and estimated bits per byte (`matched`),
who predicts each byte best and the difference to a reference run (`wins`), passages and
words ranked by how much two runs differ across a corpus (`corpusdiff`), and the Altair
charts of all of them (`charts`). Per-byte losses themselves are the evaluation's
(`sandbox.evaluation.bytelosses`, cached with its results). It may import
`sandbox.evaluation`, `sandbox.zoo`, `sandbox.figures` and the base modules; never
Streamlit, torch or the worker machinery. Callers (pages, the CLI) hand plain arrays in,
which keeps every function here testable without a model.
"""
