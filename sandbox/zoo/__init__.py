"""What is on disk: experiments, runs, logs, costs and what is known about them, with no worker.

Owns discovery of experiments and runs (and the one run lookup), the one rule for files
(`confine`: nothing outside the models directory is read), training logs (`logs`,
`logparse`, `logread`), the accounting of parameters, tokens and FLOPs with the one table
of config-key aliases (`accounting`), the records kept per run fingerprint (`records`),
the runs table (`catalog`), the code diff (`codediff`), the contract's rules checked from
files (`doctor`) and the sanity rules (`sanity`). It never imports torch, Streamlit or
experiment code and never starts a worker: it may import `sandbox.settings`,
`sandbox.errors`, `sandbox.text`, `sandbox.numfmt` and `sandbox.corpus`, nothing above.
"""
