"""Scoring runs on the same text through their workers, and everything built on those scores.

Owns the method (`windows`, `run`: every token scored once, logits from the inference path
alone), its results and their disk cache (`results`, `cache`), the reports, tables and
paired verdicts (`report`, `tables`, `metrics`), one document in detail (`details`), the
charts and HTML of results (`views`), the evaluation text and its limits (`data`,
`formats`), tokens per byte from cached results (`tokenrate`), the two-run comparison card
(`card`) and the doctor's live check that loads and probes each run (`checkup`). It talks
to workers only through a `WorkerClient`/`WorkerPool` it is given (never importing the
worker side) and may import `sandbox.zoo`, `sandbox.figures`, `sandbox.corpus` and the
base modules; never Streamlit, never torch.
"""
