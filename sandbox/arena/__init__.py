"""The arena: blind pairwise battles between runs, rated by people and by an LLM judge.

This package owns the arena's database (`store`: battles and votes in one SQLite file in WAL
mode), setting up and generating battles through the existing worker pool (`battle`), the
LLM judge over an OpenAI-compatible chat-completions endpoint (`judge`, via httpx),
Bradley–Terry ratings with bootstrap intervals and rater agreement (`ratings`), judged
battles without a person (`headless`) and the leaderboard's tables, text, charts and
exports (`board`). It may import `sandbox.playground` (sampling settings, the column stream,
multistream), `sandbox.evaluation.data` (the story openings), `sandbox.zoo`, `sandbox.figures`
and the base modules, plus numpy, pandas, altair and httpx; never Streamlit, never torch and
never the worker side (generation happens in the worker processes; callers pass the pool).
"""
