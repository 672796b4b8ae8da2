"""One text, several runs: each character coloured by the run that predicts it best, or by one
run's difference to a reference (blue better, orange worse, as in Levanter's diff view).

The text, token pieces and run names are untrusted: every piece goes through `html.escape`
(quotes included, for ``title`` attributes), as in `sandbox.playground.tokens_html`. The
result is self-contained HTML (inline styles, no scripts) for `st.html`. Hover text per
character lists, for every run, the token covering it, its probability, its rank and the
top alternatives (where the per-token view has them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from sandbox.analysis.wins import TIE, who_wins
from sandbox.evaluation.bytelosses import LN2
from sandbox.figures.colors import run_color

MODES = ("best", "reference")
BETTER = (31, 119, 180)  # blue: better than the reference there
WORSE = (255, 127, 14)  # orange: worse
FULL_BITS = 4.0  # a difference of this many bits (or more) gets the full colour
_BOX = (
    "white-space:pre-wrap;word-break:break-word;line-height:1.9;"
    "font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:0.9rem"
)
_MARK = "outline:2px solid #333;outline-offset:1px"  # the passage clicked through to


def _rgba(rgb: tuple[int, int, int], alpha: float) -> str:
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{alpha:.2f})"


def _hex_rgba(color: str, alpha: float) -> str:
    return _rgba((int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)), alpha)


def char_colors(
    per_run_chars: Mapping[str, np.ndarray], *, mode: str = "best", reference: str | None = None, other: str | None = None
) -> list[str]:
    """A CSS background per character: the winning run's colour ("best"; none for a tie), or
    ``other`` − ``reference`` in bits mapped to blue (better) / orange (worse) ("reference")."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    runs = list(per_run_chars)
    n = len(next(iter(per_run_chars.values()))) if runs else 0
    if mode == "best":
        wins = who_wins(per_run_chars)
        colours = {i: _hex_rgba(run_color(r), 0.55) for i, r in enumerate(runs)}
        return [colours[int(w)] if w != TIE else "transparent" for w in wins.winner]
    if reference not in per_run_chars or other not in per_run_chars:
        raise ValueError("the reference view needs a reference run and another run among those shown")
    diff = (np.asarray(per_run_chars[other], dtype=np.float64) - np.asarray(per_run_chars[reference], dtype=np.float64)) / LN2
    out = []
    for d in diff[:n]:
        if not math.isfinite(d) or d == 0:
            out.append("transparent")
        else:
            out.append(_rgba(BETTER if d < 0 else WORSE, 0.15 + 0.7 * min(abs(d) / FULL_BITS, 1.0)))
    return out


def token_hover(details: Mapping, n_chars: int, *, top: int = 3) -> list[str]:
    """Per character of the text, one line about the token of this run that covers it:
    its piece, probability, rank and top alternatives (from `document_details`, whose
    ``ends`` are each decoded prefix's length in characters)."""
    ends = np.maximum.accumulate(np.asarray(details["ends"], dtype=np.int64)) if len(details["ends"]) else np.zeros(0, np.int64)
    token = np.searchsorted(ends, np.arange(n_chars), side="right")  # target index covering each char
    pieces, nll, rank = details["pieces"], details["nll"], details["rank"]
    top_pieces, top_probs = details.get("top_pieces", []), details.get("top_probs", [])
    lines, memo = [], {}
    for t in token.tolist():
        if t not in memo:
            if t >= len(nll):
                memo[t] = "—"
            else:
                line = f"{pieces[t + 1]!r} p={math.exp(-float(nll[t])):.1%} rank {int(rank[t]) + 1}"
                if t < len(top_pieces):
                    alts = ", ".join(f"{p!r} {float(q):.0%}" for p, q in zip(top_pieces[t][:top], top_probs[t][:top], strict=False))
                    line += f" · top: {alts}"
                memo[t] = line
        lines.append(memo[t])
    return lines


def nrun_html(
    text: str,
    colors: Sequence[str],
    hover: Mapping[str, Sequence[str]] | None = None,
    *,
    mark: tuple[int, int] | None = None,
) -> str:
    """``text`` as escaped HTML, each run of equal colour and hover one span; ``hover`` maps
    each run to a line per character; ``mark`` (character start, end) outlines a passage."""
    hover = hover or {}
    spans: list[str] = []
    start = 0
    n = len(text)

    def title(i: int) -> str:
        return "\n".join(f"{run}: {lines[i]}" for run, lines in hover.items() if i < len(lines))

    def marked(i: int) -> bool:
        return mark is not None and mark[0] <= i < mark[1]

    for i in range(1, n + 1):
        if i < n and colors[i] == colors[start] and title(i) == title(start) and marked(i) == marked(start):
            continue
        style = f"background:{colors[start]}" + (f";{_MARK}" if marked(start) else "")
        tip = title(start)
        attr = f' title="{escape(tip, quote=True)}"' if tip else ""
        spans.append(f'<span style="{style}"{attr}>{escape(text[start:i])}</span>')
        start = i
    return f'<div style="{_BOX}">{"".join(spans) or "&nbsp;"}</div>'


def legend_html(runs: Sequence[str], *, mode: str = "best", reference: str | None = None, other: str | None = None) -> str:
    """A one-line legend: each run's colour ("best"), or blue/orange and the two runs."""
    if mode == "best":
        items = [f'<span style="background:{_hex_rgba(run_color(r), 0.55)};padding:0 .4em">{escape(r)}</span>' for r in runs]
        items.append("no colour: a tie or no value")
        return "<div>" + " &nbsp; ".join(items) + "</div>"
    return (
        f'<div><span style="background:{_rgba(BETTER, 0.6)};padding:0 .4em">{escape(str(other))} better</span> &nbsp; '
        f'<span style="background:{_rgba(WORSE, 0.6)};padding:0 .4em">{escape(str(other))} worse</span> &nbsp; '
        f"than {escape(str(reference))} (full colour at {FULL_BITS:g} bits or more)</div>"
    )
