"""Sanity checks beside every number: weights that look untrained, logs that do not match.

Two rules, each one plain sentence wherever a run's numbers appear (Evaluation results, the
compare card, the Models table's status, the doctor):

1. **Worse than uniform guessing.** A model that puts the same probability on each of its
   V outputs has a loss of exactly ln V nats per token; any trained model does far better.
   A loss above ln V means the weights are untrained (a fresh ``Model(cfg)`` often scores
   well above ln V) or do not belong to the code that loads them.
2. **The log does not match the weights.** When a run says it trained on the bundled corpus
   (its train config names the corpus seed, as the sandbox's own zoo does) and it is
   evaluated on that corpus's validation split, the evaluated loss must be near the last
   validation loss of its log. A relative gap of more than ``GAP_LIMIT`` is flagged: the
   evaluation's windows start at each document's bos and carry less context than training
   evaluations do, which costs a few per cent, never a quarter.

A verdict on the bundled corpus (the doctor's probe or an evaluation) is recorded on disk per
run fingerprint (code + weights), so pages can leave flagged runs out of their default choice
without loading anything. Verdicts on other text are shown, not recorded: a trained model can
be worse than uniform on text unlike anything it saw.
"""

from __future__ import annotations

import math

from sandbox.corpus.stories import BUNDLED_SEED, bundled_split
from sandbox.zoo import records
from sandbox.zoo.discovery import Run

UNTRAINED = "weights look untrained or do not match the code"
MISMATCH = "the weights may not be the ones its log describes"
GAP_LIMIT = 0.25  # relative gap between an evaluation and the logged validation loss
TOLERANCE = 1e-3  # nats: float rounding must not flag an exactly uniform model
PROBE_DOCS = 4  # the doctor's probe: the first documents of the bundled validation split...
PROBE_CHARS = 600  # ...each cut to this many characters


def uniform_loss(n_outputs: int) -> float:
    """Loss (nats/token) of guessing uniformly over ``n_outputs`` outputs: ln n."""
    return math.log(n_outputs)


def worse_than_uniform(loss: float | None, n_outputs: int | None) -> bool:
    """True when ``loss`` is above ln(``n_outputs``) (unknown values: False)."""
    if loss is None or math.isnan(loss) or not n_outputs or n_outputs < 2:
        return False
    return loss > uniform_loss(n_outputs) + TOLERANCE  # an infinite loss is worse, too


def uniform_sentence(run_id: str, loss: float, n_outputs: int, where: str) -> str:
    """The rule-1 sentence: ``where`` names the text (e.g. "on the bundled corpus")."""
    return (
        f"{run_id}: loss {loss:,.2f} nats/token {where} is worse than uniform guessing over its "
        f"{n_outputs:,} outputs (ln {n_outputs:,} = {uniform_loss(n_outputs):.2f}): {UNTRAINED}."
    )


def trained_on_bundled(run: Run) -> bool:
    """True when the run's train config names the bundled corpus (its ``corpus_seed``)."""
    try:
        cfg = run.train_config()
    except ValueError:
        return False
    return bool(cfg) and cfg.get("corpus_seed") == BUNDLED_SEED


def logged_val_loss(run: Run) -> float | None:
    """The last finite validation loss of the run's log (None without one)."""
    from sandbox.zoo import logread, logs

    if not run.log_path.is_file():
        return None
    try:
        return logread.read_log(run.log_path).last_finite(logs.VAL_LOSS)
    except (OSError, ValueError):
        return None


def gap_sentence(run_id: str, evaluated: float, logged: float | None) -> str | None:
    """The rule-2 sentence when the evaluated and logged losses are too far apart, else None."""
    if logged is None or not math.isfinite(evaluated) or logged <= 0:
        return None
    gap = (evaluated - logged) / logged
    if abs(gap) <= GAP_LIMIT:
        return None
    side = "above" if gap > 0 else "below"
    return (
        f"{run_id}: evaluated loss {evaluated:,.3f} on the bundled corpus is {abs(gap):.0%} {side} "
        f"its logged final validation loss {logged:.3f} on the same data (more than "
        f"{GAP_LIMIT:.0%}): {MISMATCH}."
    )


def check(run: Run, loss: float | None, n_outputs: int | None, *, on_bundled: bool, where: str) -> list[str]:
    """Every flag for one run's evaluated ``loss``: rule 1 always, rule 2 on the bundled corpus."""
    if loss is None:
        return []
    flags = []
    if worse_than_uniform(loss, n_outputs):
        flags.append(uniform_sentence(run.id, loss, int(n_outputs or 0), where))
    if on_bundled and trained_on_bundled(run) and (gap := gap_sentence(run.id, loss, logged_val_loss(run))):
        flags.append(gap)
    return flags


def probe_documents() -> list[str]:
    """The doctor's fixed probe text: the first documents of the bundled validation split, cut short."""
    return [doc[:PROBE_CHARS] for doc in bundled_split("validation", seed=BUNDLED_SEED)[:PROBE_DOCS]]


# -- verdicts recorded per run fingerprint -------------------------------------------------------


SANITY = "sanity"  # the records' kind (`sandbox.zoo.records`)


def record(run: Run, flags: list[str], loss: float, source: str) -> bool:
    """Remember a verdict on the bundled corpus for the run's current code and weights.

    Returns False (and nothing else) when the cache cannot be written: the verdict is still
    shown where it was made.
    """
    return records.write_record(SANITY, run, {"run_id": run.id, "flags": list(flags), "loss": loss, "source": source})


def recorded_flags(run: Run) -> list[str]:
    """Flags recorded for the run's current code and weights (none recorded: empty)."""
    data = records.read_record(SANITY, run)
    flags = data.get("flags") if isinstance(data, dict) else None
    return [str(f) for f in flags] if isinstance(flags, list) else []


def flagged_run_ids(runs: list[Run]) -> set[str]:
    """Ids of the runs with a recorded flag (what default choices leave out)."""
    return {run.id for run in runs if recorded_flags(run)}
