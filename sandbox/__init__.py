"""micro-GPT sandbox: compare small GPT experiments side by side.

A plain library: no Streamlit anywhere in it, torch only in `sandbox.worker`. The Streamlit
pages (`pages/`, `streamlit_app.py`) and the CLI (`sandbox.cli`, the ``sandbox`` command)
are thin layers over it. Its packages, from the bottom up (each may import the ones below it,
never the ones above; `lint-imports` checks it with the contracts in pyproject.toml):

- base modules: `settings` (where things live), `errors` (shared by both sides of the worker
  boundary), `text` (untrusted text shown as text), `numfmt`, and `corpus` (the bundled corpus);
- `zoo`: what is on disk, read without any worker (discovery, logs, accounting, records,
  the runs table, the doctor's rules, sanity);
- `figures`, then `evaluation` and `playground`, then `curves`, `worker` and `app`, then
  `urlstate` and `cli`: the app side, one package per job;
- `worker`: the process boundary. Its app side (`client`, `pool`, `protocol`) is torch-free;
  its worker side runs only in ``python -m sandbox.worker ROOT``, one process per experiment.
"""

import logging

# A library logs, the program that uses it decides where to (the app: the server's log).
logging.getLogger(__name__).addHandler(logging.NullHandler())
