"""The Playground: one prompt through several runs, every column streamed side by side.

Owns the sampling settings (`settings`: the dataclass workers receive, its ranges, defaults
and how it is described; no torch), what a prompt becomes for each run (`prompts`), the
stream behind one column and its state (`columns`), the threads that poll several streams
at once (`multistream`), the session's history and its Markdown export (`transcript`) and
the HTML views of generated tokens (`tokens_html`). It talks to workers only through the
clients it is given and may import `sandbox.zoo` and the base modules; never Streamlit,
never torch (the sampling kernels are `sandbox.worker.sampling`).
"""
