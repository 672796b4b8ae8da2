"""micro-GPT sandbox: compare small GPT experiments side by side.

A plain library (no Streamlit imports): discovery of experiments, the contract check
("doctor"), isolated per-experiment worker processes, log reading, metrics, sampling.
The Streamlit pages and the CLI (`python -m sandbox`) are thin layers over it.
"""

import logging

# A library logs, the program that uses it decides where to (the app: the server's log).
logging.getLogger(__name__).addHandler(logging.NullHandler())
