"""The doctor's live check: load each run in its experiment's worker, one forward pass, a probe.

The contract's rules checked from files are `sandbox.zoo.doctor`; this part needs a worker
(given as a client or a pool): each run is loaded the way the contract says
(`sandbox.worker.host`), runs one short forward pass, then scores a short fixed text
(`sandbox.zoo.sanity.probe_documents`, scored as an evaluation scores it) and is flagged
when its loss is worse than uniform guessing or far from its logged validation loss. What
each load found is remembered per run fingerprint (`sandbox.zoo.doctor.store_load`), so
the Models table and `sandbox list` show it without loading anything again.
"""

from __future__ import annotations

from sandbox.errors import WorkerError
from sandbox.zoo import sanity
from sandbox.zoo.discovery import Experiment, Run
from sandbox.zoo.doctor import HINTS, Finding, static_findings, store_load


def load_run(exp: Experiment, run: Run, client) -> tuple[list[Finding], dict | None]:
    """Load one run in the experiment's worker (config, tokenizer, model, weights, one forward
    pass, the sanity probe); returns its findings and its info (None when it does not load).

    What it found is remembered for the run's current code, config and weights (see
    :func:`known_findings`), and so is its parameter count.
    """
    from sandbox.zoo.accounting import remember_loaded

    out: list[Finding] = []
    try:
        info = client.request("info", run=run.name)
    except WorkerError as exc:
        rule = exc.rule or "worker"
        out.append(Finding(exp.name, run.name, rule, exc.file or exp.name, str(exc), exc.hint or HINTS.get(rule, "")))
        info = None
    if info is not None:
        remember_loaded(run, info)
        out.extend(_probe(exp, run, client, info))
        if info.get("pad_outside_model"):
            out.append(
                Finding(
                    exp.name,
                    run.name,
                    "special ids",
                    f"tokenizers/{info.get('tokenizer')}/tokenizer.py",
                    f"pad id {info['pad_id']} lies outside the model's output "
                    f"({info['vocab_size']} logits); the sandbox never feeds it.",
                    "Nothing to do: noted because a loop that pads batches would crash on it.",
                    "warning",
                )
            )
    store_load(run, out, info)
    return out, info


def dynamic_findings(exp: Experiment, client) -> tuple[list[Finding], dict[str, dict]]:
    """Load each run in the experiment's worker; returns findings and each loaded run's info."""
    out, infos = [], {}
    for run in exp.runs:
        findings, info = load_run(exp, run, client)
        out += findings
        if info is not None:
            infos[run.name] = info
    return out, infos


def _probe(exp: Experiment, run: Run, client, info: dict) -> list[Finding]:
    """Score the probe text; a warning per sanity flag (the verdict is recorded for the pages).

    Adds ``probe_loss`` to ``info``.
    """
    from sandbox.evaluation.run import probe_loss

    rel = f"trained/{run.name}/model.pth"
    try:
        loss = probe_loss(client, run.name, sanity.probe_documents(), int(info["max_seq_len"]))
    except WorkerError as exc:
        rule = exc.rule or "worker"
        return [Finding(exp.name, run.name, rule, exc.file or rel, f"Scoring a short text failed: {exc}",
                        exc.hint or HINTS.get(rule, ""))]
    except RuntimeError as exc:  # a stream that ended early: the worker's output was short
        return [Finding(exp.name, run.name, "worker", rel, f"Scoring a short text failed: {exc}.", HINTS["worker"])]
    info["probe_loss"] = loss
    flags = sanity.check(run, loss, info.get("vocab_size"), on_bundled=True, where="on the doctor's probe text")
    sanity.record(run, flags, loss, "doctor")
    return [Finding(exp.name, run.name, "sanity", rel, flag, HINTS["sanity"], "warning") for flag in flags]


def check_experiment(exp: Experiment, pool=None, quick: bool = False) -> tuple[list[Finding], dict[str, dict]]:
    """All findings for one experiment (static, then dynamic unless ``quick`` or static errors)."""
    findings = static_findings(exp)
    infos: dict[str, dict] = {}
    blocking = any(f.severity == "error" and f.run is None for f in findings)
    if quick or blocking or pool is None or not exp.runs:
        return findings, infos
    broken_runs = {f.run for f in findings if f.severity == "error" and f.run}
    # Runs that are training logs alone have nothing to load.
    healthy = Experiment(exp.name, exp.root, tuple(r for r in exp.runs if r.name not in broken_runs and r.has_model))
    if not healthy.runs:
        return findings, infos
    dyn, infos = dynamic_findings(healthy, pool.client(exp))
    return findings + dyn, infos
