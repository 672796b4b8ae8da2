"""The Evaluation page's selection (runs, k list, documents, seed) and its URL form.

A link is a request from anyone: values are checked with `sandbox.querystate` and anything
invalid is ignored with a warning sentence for the page to show.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from sandbox import querystate as qs
from sandbox.evaluation import DEFAULT_KS, EvalSettings

K_CHOICES = (1, 2, 3, 5, 10, 20, 50, 100)
STANDARD_BATCH = 8  # the page's default batch size (windows per forward pass)
MAX_DOCS = 5000
MAX_SEED = 2**31 - 1
QUERY_KEYS = ("runs", "k", "docs", "seed")


@dataclass
class EvalSelection:
    """What to evaluate: which runs, which k, how many documents, which sample."""

    runs: list[str] = field(default_factory=list)
    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS))
    docs: int = 100
    seed: int = 0


def from_query(
    params: Mapping[str, list[str] | str], run_ids: list[str], flagged: Collection[str] = ()
) -> tuple[EvalSelection, list[str]]:
    """The selection a link asks for, and a warning per value that was ignored.

    Without runs in the link, two runs are picked, never one of ``flagged`` (`sandbox.sanity`).
    """
    default = EvalSelection()
    runs, warnings = qs.parse_choices(params.get("runs"), run_ids, what="run", why="there is no such run here")
    if "runs" not in params:
        runs = qs.default_runs(run_ids, 2, skip=flagged)
    k_raw, k_warn = qs.parse_choices(
        params.get("k"), [str(k) for k in K_CHOICES], what="k",
        why=f"k must be one of {', '.join(map(str, K_CHOICES))}",
    )
    warnings += k_warn
    docs, w_docs = qs.parse_number(params.get("docs"), 1, MAX_DOCS, default.docs, what="number of documents")
    seed, w_seed = qs.parse_number(params.get("seed"), 0, MAX_SEED, default.seed, what="seed")
    warnings += [w for w in (w_docs, w_seed) if w]
    for name, value in (("number of documents", docs), ("seed", seed)):
        if value != int(value):
            warnings.append(f"Ignored the {name} {qs.shown(value)} from the link: it must be a whole number.")
    ks = sorted(int(k) for k in k_raw) if "k" in params and k_raw else default.ks
    return (
        EvalSelection(
            runs=runs,
            ks=ks,
            docs=int(docs) if docs == int(docs) else default.docs,
            seed=int(seed) if seed == int(seed) else default.seed,
        ),
        warnings,
    )


def to_query(selection: EvalSelection) -> dict[str, list[str]]:
    """The URL parameters of a selection (repeated keys for the lists)."""
    return {
        "runs": list(selection.runs),
        "k": [str(k) for k in selection.ks],
        "docs": [str(selection.docs)],
        "seed": [str(selection.seed)],
    }


def standard_settings(device: str) -> EvalSettings:
    """The page's default method (k up to the largest default k, disjoint windows): what the
    compare card's "evaluate both" uses too, so both find each other's results in the cache."""
    return EvalSettings(kmax=max(DEFAULT_KS), overlap=0, batch_size=STANDARD_BATCH, autocast=None, device=device)
