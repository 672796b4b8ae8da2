"""One colour per run, the same on every page.

A run's colour comes from a fixed palette by a stable hash of its id, so "template/GPT2"
is the same colour on Loss curves, Evaluation and Playground, whatever else is shown.
The price of stability: two runs can share a colour (legend, tooltips and the table still
tell them apart). Red is left out of the palette: it marks diverged points.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import altair as alt

PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7",
    "#9c755f", "#17becf", "#bcbd22", "#1b9e77", "#7570b3", "#e7298a", "#66a61e",
    "#a6761d", "#386cb0", "#6a3d9a", "#b15928", "#666666", "#8dd3c7",
)  # fmt: skip

# Marks a NaN/inf value in a chart; not in PALETTE.
DIVERGED_COLOR = "#d62728"


# Colours given to the runs of the models directory (see `assign_colors`).
_ASSIGNED: dict[str, str] = {}


def _slot(run_id: str) -> int:
    # Python's ``hash()`` is salted per process, so a digest of the id picks the entry.
    digest = hashlib.blake2s(run_id.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % len(PALETTE)


def assign_colors(run_ids: Iterable[str]) -> None:
    """Give the runs of one models directory distinct colours (up to the palette's size).

    Each run takes its hashed entry, or the next free one when an earlier run (in sorted
    order) has it already, so colours depend only on the set of runs: the same on every
    page and every visit, and a new run moves no colour unless it collides.
    """
    taken: dict[int, str] = {}
    assigned = {}
    for rid in sorted(set(run_ids)):
        slot = _slot(rid)
        if len(taken) < len(PALETTE):
            while slot in taken:
                slot = (slot + 1) % len(PALETTE)
        taken[slot] = rid
        assigned[rid] = PALETTE[slot]
    _ASSIGNED.clear()
    _ASSIGNED.update(assigned)


def run_color(run_id: str) -> str:
    """The colour of ``run_id`` (a hex string), stable across pages, processes and machines.

    Runs of the models directory get distinct colours (`assign_colors`); any other id its
    hashed palette entry.
    """
    return _ASSIGNED.get(run_id) or PALETTE[_slot(run_id)]


def color_scale(run_ids: Iterable[str]) -> alt.Scale:
    """An Altair colour scale mapping each run id to :func:`run_color` (for ``color=``)."""
    domain = list(dict.fromkeys(run_ids))
    return alt.Scale(domain=domain, range=[run_color(r) for r in domain])
