"""The Evaluation page's selection (runs, k list, documents, seed, data source) and its URL form.

A link is a request from anyone: values are checked with `sandbox.urlstate.parse` and anything
invalid is ignored with a warning sentence for the page to show.

The data source is one URL value: ``bundled``, ``file:<name>`` (a file offered from the
data folder, by its name there), ``hf:<dataset>[:<config>]:<split>``, or ``upload``. An
upload cannot travel in a link: ``upload`` only says that the link was made with one, so
the page asks for the file again.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from sandbox import text
from sandbox.evaluation.results import DEFAULT_KS, EvalSettings
from sandbox.urlstate import parse

K_CHOICES = (1, 2, 3, 5, 10, 20, 50, 100)
STANDARD_BATCH = 8  # the page's default batch size (windows per forward pass)
MAX_DOCS = 5000
MAX_SEED = 2**31 - 1
QUERY_KEYS = ("runs", "k", "docs", "seed", "data")

BUNDLED = "bundled"
UPLOAD = "upload"
FILE_PREFIX = "file:"
# The kinds of data source, in the order the page offers them.
DATA_KINDS = ("bundled", "upload", "file", "hf")
# Hugging Face names: letters, digits, "-", "_", "." (and one "/" between owner and name).
_HF_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}"
HF_SPEC = re.compile(rf"hf:{_HF_NAME}(?:/{_HF_NAME})?(?::{_HF_NAME}){{1,2}}")


@dataclass
class EvalSelection:
    """What to evaluate: which runs, which k, how many documents, which sample, which text."""

    runs: list[str] = field(default_factory=list)
    ks: list[int] = field(default_factory=lambda: list(DEFAULT_KS))
    docs: int = 100
    seed: int = 0
    data: str = BUNDLED


def data_kind(data: str) -> str:
    """Which of `DATA_KINDS` a data value (as from :func:`parse_data`) names."""
    if data.startswith(FILE_PREFIX):
        return "file"
    if data.startswith("hf:"):
        return "hf"
    return UPLOAD if data == UPLOAD else BUNDLED


def parse_data(raw: parse.Raw, data_files: Sequence[str], hf_available: bool) -> tuple[str, str | None]:
    """The data source a link asks for, checked against what this server offers, else
    ``bundled`` and a warning sentence."""
    values = parse.as_list(raw)
    if not values:
        return BUNDLED, None
    value = values[-1]
    if len(value) > parse.MAX_VALUE_LENGTH:
        return BUNDLED, f"Ignored data source {text.shown(value)} from the link: it is too long."
    if value in (BUNDLED, UPLOAD):
        return value, None
    if value.startswith(FILE_PREFIX):
        if value[len(FILE_PREFIX) :] in set(data_files):
            return value, None
        return BUNDLED, (
            f"Ignored data source {text.shown(value)} from the link: it is not a file in the data folder "
            "of this server; the bundled corpus is used instead."
        )
    if HF_SPEC.fullmatch(value):
        if hf_available:
            return value, None
        return BUNDLED, (
            f"Ignored data source {text.shown(value)} from the link: this server has no `datasets` "
            "package for Hugging Face data; the bundled corpus is used instead."
        )
    return BUNDLED, (
        f"Ignored data source {text.shown(value)} from the link: it is not a data source "
        "(bundled, file:<name>, hf:<dataset>[:<config>]:<split> or upload)."
    )


def from_query(
    params: Mapping[str, list[str] | str],
    run_ids: list[str],
    flagged: Collection[str] = (),
    *,
    data_files: Sequence[str] = (),
    hf_available: bool = False,
) -> tuple[EvalSelection, list[str]]:
    """The selection a link asks for, and a warning per value that was ignored.

    Without runs in the link, two runs are picked, never one of ``flagged`` (`sandbox.zoo.sanity`).
    ``data_files`` are the names the page offers from the data folder; ``hf_available``
    says whether Hugging Face data can be loaded here.
    """
    default = EvalSelection()
    runs, warnings = parse.parse_choices(params.get("runs"), run_ids, what="run", why="there is no such run here")
    if "runs" not in params:
        runs = parse.default_runs(run_ids, 2, skip=flagged)
    k_raw, k_warn = parse.parse_choices(
        params.get("k"), [str(k) for k in K_CHOICES], what="k",
        why=f"k must be one of {', '.join(map(str, K_CHOICES))}",
    )
    warnings += k_warn
    docs, w_docs = parse.parse_number(params.get("docs"), 1, MAX_DOCS, default.docs, what="number of documents")
    seed, w_seed = parse.parse_number(params.get("seed"), 0, MAX_SEED, default.seed, what="seed")
    warnings += [w for w in (w_docs, w_seed) if w]
    for name, value in (("number of documents", docs), ("seed", seed)):
        if value != int(value):
            warnings.append(f"Ignored the {name} {text.shown(value)} from the link: it must be a whole number.")
    ks = sorted(int(k) for k in k_raw) if "k" in params and k_raw else default.ks
    data, w_data = parse_data(params.get("data"), data_files, hf_available)
    if w_data:
        warnings.append(w_data)
    return (
        EvalSelection(
            runs=runs,
            ks=ks,
            docs=int(docs) if docs == int(docs) else default.docs,
            seed=int(seed) if seed == int(seed) else default.seed,
            data=data,
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
        "data": [selection.data],
    }


def standard_settings(device: str) -> EvalSettings:
    """The page's default method (k up to the largest default k, disjoint windows): what the
    compare card's "evaluate both" uses too, so both find each other's results in the cache."""
    return EvalSettings(kmax=max(DEFAULT_KS), overlap=0, batch_size=STANDARD_BATCH, autocast=None, device=device)
