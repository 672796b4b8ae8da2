"""Loss curves: training logs turned into comparable curves, charts and a live view.

Owns the x axes (`axes`: step, time, tokens, training FLOPs), the preparation of a view from
parsed logs (`prepare`: trimming, smoothing (`smoothing`), downsampling, the robust y range), what makes
runs' losses comparable or not (`fairness`: tokenizers, training data, bits per byte), the
per-metric summary (`summary`), the Altair charts (`charts`), the log watcher that makes the
page live (`livewatch`) and the memoized view the page draws (`view`). It may import
`sandbox.zoo`, `sandbox.figures`, `sandbox.evaluation` (tokens per byte from cached
evaluations) and the base modules; never Streamlit, never torch.
"""
