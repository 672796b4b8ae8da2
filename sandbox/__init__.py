"""micro-GPT sandbox: compare small GPT experiments side by side.

A plain library (no Streamlit imports): discovery of experiments, the contract check
("doctor"), isolated per-experiment worker processes, log reading, metrics, sampling.
The Streamlit pages and the CLI (`python -m sandbox`) are thin layers over it.
"""
