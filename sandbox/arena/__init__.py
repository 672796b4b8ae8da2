"""The arena: blind pairwise battles between runs, rated by people and by an LLM judge.

This package owns the arena's database (`store`: battles and votes in one SQLite file in WAL
mode), setting up and generating battles through the existing worker pool (`battle`), the
LLM judge over an OpenAI-compatible chat-completions endpoint (`judge`, via httpx),
Bradley–Terry ratings with bootstrap intervals and rater agreement (`ratings`), and the
headless functions, tables and charts behind the page and the CLI (`headless`). It may
import the sandbox's plain library (discovery, settings, corpus, playground, prompts,
sampling, multistream, colors, export), numpy, pandas, altair and httpx; never Streamlit and
never torch (generation happens in the worker processes).
"""
