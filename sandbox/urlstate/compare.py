"""The Compare page's state and its URL form.

Four views: one text through several runs (``view=text``), where runs differ across the
corpus (``corpus``), losses at matched tokens and FLOPs (``matched``) and scaling fits
(``scaling``). Runs are matched against what is on disk, groups against the groups the
chosen key gives, numbers against the widgets' ranges; anything else is ignored with a
warning sentence (`sandbox.urlstate.parse`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sandbox import text
from sandbox.analysis.sources import EXPERIMENT, FIT_AXES
from sandbox.analysis.textview import MODES
from sandbox.urlstate import parse

VIEWS = {"text": "One text", "corpus": "Across the corpus", "matched": "Matched compute", "scaling": "Scaling fits"}
MIN_RUNS, MAX_RUNS = 2, 6
MAX_DOCS = 2000
MAX_SEED = 2**31 - 1
MAX_CHARS = 50_000_000  # a passage's bounds: never more than a source's characters
MAX_LOSS = 100.0
QUERY_KEYS = (
    "runs", "view", "ref", "other", "colour", "docs", "seed", "doc", "span",
    "group", "fitx", "curves", "base", "variant", "loss", "at_tokens", "at_flops",
)  # fmt: skip


@dataclass
class CompareState:
    """Everything the page shows, as a link can carry it (None: the page's default)."""

    runs: list[str]
    view: str = "text"
    reference: str | None = None  # the run the others are compared with (default: the first)
    other: str | None = None  # the run coloured against the reference (default: the second)
    colour: str = "best"  # "best": who wins each character; "reference": other − reference
    docs: int = 100
    seed: int = 0
    doc: int = 0  # the document shown in the text view
    span: tuple[int, int] | None = None  # a passage (characters) outlined in it
    group: str = EXPERIMENT
    fit_x: str = "compute"
    curves: bool = False
    base: str | None = None
    variant: str | None = None
    loss: float | None = None  # the multiplier's target loss (None: the lowest both reached)
    at_tokens: float | None = None  # matched points (None: the largest common one)
    at_flops: float | None = None


def _optional_number(raw: parse.Raw, lo: float, hi: float, what: str) -> tuple[float | None, str | None]:
    if not parse.as_list(raw):
        return None, None
    value, warning = parse.parse_number(raw, lo, hi, float("nan"), what=what)
    return (None if warning else value), warning


def from_query(
    params: Mapping[str, parse.Raw], run_ids: Sequence[str], flagged: Sequence[str] = (), group_keys: Sequence[str] = (EXPERIMENT,)
) -> tuple[CompareState, list[str]]:
    """The state a link asks for, and a warning per value that was ignored."""
    warnings: list[str] = []
    runs, bad = parse.parse_choices(params.get("runs"), run_ids, what="run", why="there is no such run here")
    warnings += bad
    if len(runs) > MAX_RUNS:
        warnings.append(f"Only the first {MAX_RUNS} runs of the link are compared.")
        runs = runs[:MAX_RUNS]
    if "runs" not in params:
        runs = parse.default_runs(run_ids, 2, skip=flagged)
    view, w_view = parse.parse_choice(params.get("view"), VIEWS, "text", what="view", why=f"use one of {', '.join(VIEWS)}")
    ref, w_ref = parse.parse_choice(params.get("ref"), runs, runs[0] if runs else "", what="reference run", why="it is not among the runs compared")
    other_default = next((r for r in runs if r != ref), "")
    other, w_other = parse.parse_choice(params.get("other"), [r for r in runs if r != ref], other_default, what="run", why="it is not another of the runs compared")
    colour, w_col = parse.parse_choice(params.get("colour"), MODES, "best", what="colouring", why=f"use one of {', '.join(MODES)}")
    docs, w_docs = parse.parse_number(params.get("docs"), 1, MAX_DOCS, 100, what="number of documents")
    seed, w_seed = parse.parse_number(params.get("seed"), 0, MAX_SEED, 0, what="seed")
    doc, w_doc = parse.parse_number(params.get("doc"), 0, MAX_DOCS - 1, 0, what="document")
    warnings += [w for w in (w_view, w_ref, w_other, w_col, w_docs, w_seed, w_doc) if w]
    span = None
    raw_span = parse.as_list(params.get("span"))
    if raw_span:
        parts = raw_span[-1].split("-")
        if len(parts) == 2 and all(p.isdigit() and len(p) <= 9 for p in parts) and int(parts[0]) < int(parts[1]) <= MAX_CHARS:
            span = (int(parts[0]), int(parts[1]))
        else:
            warnings.append(f"Ignored the passage {text.shown(raw_span[-1])} from the link: write it as start-end (characters).")
    group, w_group = parse.parse_choice(params.get("group"), group_keys, EXPERIMENT, what="group-by key", why="the runs have no such config key that differs")
    fit_x, w_fx = parse.parse_choice(params.get("fitx"), FIT_AXES, "compute", what="fit axis", why=f"use one of {', '.join(FIT_AXES)}")
    curves, w_cv = parse.parse_bool(params.get("curves"), False, what="whole curves")
    loss, w_loss = _optional_number(params.get("loss"), 1e-6, MAX_LOSS, "target loss")
    at_tokens, w_at = _optional_number(params.get("at_tokens"), 1.0, 1e30, "matched tokens")
    at_flops, w_af = _optional_number(params.get("at_flops"), 1.0, 1e40, "matched FLOPs")
    warnings += [w for w in (w_group, w_fx, w_cv, w_loss, w_at, w_af) if w]
    # Groups are names made from configs (checked by the page against the fitted groups).
    base = next(iter(parse.as_list(params.get("base"))[-1:]), None)
    variant = next(iter(parse.as_list(params.get("variant"))[-1:]), None)
    state = CompareState(
        runs=runs, view=view, reference=ref or None, other=other or None, colour=colour,
        docs=int(docs), seed=int(seed), doc=int(doc), span=span, group=group, fit_x=fit_x,
        curves=curves and fit_x == "compute", base=base if base and len(base) <= 200 else None,
        variant=variant if variant and len(variant) <= 200 else None, loss=loss,
        at_tokens=at_tokens, at_flops=at_flops,
    )  # fmt: skip
    return state, warnings


def _num(value: float | None) -> list[str]:
    return [] if value is None else [f"{value:.6g}"]


def to_query(state: CompareState) -> dict[str, list[str]]:
    """Query parameters that :func:`from_query` turns back into ``state`` (absent: default)."""
    return {
        "runs": list(state.runs),
        "view": [state.view],
        "ref": [state.reference] if state.reference else [],
        "other": [state.other] if state.other else [],
        "colour": [state.colour],
        "docs": [str(state.docs)],
        "seed": [str(state.seed)],
        "doc": [str(state.doc)],
        "span": [f"{state.span[0]}-{state.span[1]}"] if state.span else [],
        "group": [state.group],
        "fitx": [state.fit_x],
        "curves": ["1" if state.curves else "0"],
        "base": [state.base] if state.base else [],
        "variant": [state.variant] if state.variant else [],
        "loss": _num(state.loss),
        "at_tokens": _num(state.at_tokens),
        "at_flops": _num(state.at_flops),
    }
