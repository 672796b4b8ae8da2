"""Charts and HTML of the Evaluation page, built from `sandbox.evaluation.run` tables.

Nothing here imports Streamlit: each function returns an Altair chart or a self-contained
HTML string. Token pieces and document text are untrusted and always go through
`html.escape`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from html import escape

import altair as alt
import numpy as np
import pandas as pd

from sandbox.figures.colors import color_scale
from sandbox.numfmt import format_number
from sandbox.text import visible_piece

HIT = "#c7e9c0"  # the true token, or a prediction equal to it
MISS = "#fcbba1"  # the true token when it is not in the top k
_CELL = "padding:1px 6px;border:1px solid #ddd;white-space:pre;font-family:ui-monospace,Menlo,monospace"


def accuracy_k_chart(by_k: pd.DataFrame) -> alt.Chart:
    """Top-k accuracy against k, one line per run, with its 95 % bootstrap band."""
    runs = list(dict.fromkeys(by_k["run"]))
    base = alt.Chart(by_k).encode(
        x=alt.X("k:Q", title="k", scale=alt.Scale(domainMin=1), axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("run:N", scale=color_scale(runs), legend=alt.Legend(orient="bottom")),
    )
    band = base.mark_area(opacity=0.2).encode(y="lo:Q", y2="hi:Q")
    line = base.mark_line(point=True).encode(
        y=alt.Y("accuracy:Q", title="top-k accuracy", scale=alt.Scale(zero=False)),
        tooltip=["run", "k", alt.Tooltip("accuracy:Q", format=".4f"), alt.Tooltip("lo:Q", format=".4f"),
                 alt.Tooltip("hi:Q", format=".4f")],
    )
    return (band + line).properties(height=300, title="Accuracy vs k")


def position_chart(by_pos: pd.DataFrame, column: str, title: str, max_points: int = 128) -> alt.Chart:
    """``column`` (loss or a top-k accuracy) against the position in the context window.

    Long contexts are averaged into at most ``max_points`` bins per run, weighted by the
    tokens at each position, so the chart stays light in the browser.
    """
    runs = list(dict.fromkeys(by_pos["run"]))
    frame = by_pos[["run", "position", "tokens", column]].dropna()
    span = int(frame["position"].max()) + 1 if len(frame) else 1
    width = max(1, -(-span // max_points))
    frame = frame.assign(bin=frame["position"] // width * width, weighted=frame[column] * frame["tokens"])
    binned = frame.groupby(["run", "bin"], as_index=False)[["weighted", "tokens"]].sum()
    binned[column] = binned["weighted"] / binned["tokens"]
    return (
        alt.Chart(binned.rename(columns={"bin": "position"}))
        .mark_line()
        .encode(
            x=alt.X("position:Q", title="position in the window (0: predicted from one token)"),
            y=alt.Y(f"{column}:Q", title=title, scale=alt.Scale(zero=False)),
            color=alt.Color("run:N", scale=color_scale(runs), legend=alt.Legend(orient="bottom")),
            tooltip=["run", "position", "tokens", alt.Tooltip(f"{column}:Q", format=".4f")],
        )
        .properties(height=280, title=f"{title} vs position")
    )


def topk_table_html(details: dict, k: int, n_positions: int) -> str:
    """The true next token beside the model's top-k predictions for the first positions.

    The true token is green when it is in the top k (rank < k), red otherwise; a prediction
    equal to the true token is green.
    """
    ids, pieces = details["ids"], details["pieces"]
    n = min(n_positions, len(details["top_pieces"]), len(ids) - 1)
    k = min(k, details["top_ids"].shape[1]) if n else k
    head = "".join(f"<th style='{_CELL}'>{h}</th>" for h in ["pos", "true", "rank", *[f"#{j + 1}" for j in range(k)]])
    rows = []
    for i in range(n):
        true_id, rank = ids[i + 1], int(details["rank"][i])
        cells = [
            f"<td style='{_CELL}'>{i}</td>",
            f"<td style='{_CELL};background:{HIT if rank < k else MISS}'>{escape(visible_piece(pieces[i + 1]))}</td>",
            f"<td style='{_CELL}'>{rank}</td>",
        ]
        for j in range(k):
            pred, prob = int(details["top_ids"][i, j]), float(details["top_probs"][i, j])
            style = f"{_CELL};background:{HIT}" if pred == true_id else _CELL
            piece = escape(visible_piece(details["top_pieces"][i][j]))
            cells.append(f"<td style='{style}' title='p = {prob:.1%}'>{piece} <small>{prob:.0%}</small></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<div style='overflow-x:auto'><table style='border-collapse:collapse;font-size:0.85rem'>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def char_grid(text: str, width: int = 80) -> pd.DataFrame:
    """Each character's row and column when ``text`` is laid out in lines of ``width``."""
    rows, cols, index = [], [], []
    row, at = 0, 0
    for line in text.split("\n"):
        n = len(line) + 1  # the newline ends the line (shown as an empty cell)
        j = np.arange(n)
        rows.append(row + j // width)
        cols.append(j % width)
        index.append(at + j)
        row += -(-n // width)
        at += n
    frame = pd.DataFrame({"index": np.concatenate(index), "row": np.concatenate(rows), "col": np.concatenate(cols)})
    frame = frame[frame["index"] < len(text)].reset_index(drop=True)
    frame["char"] = [text[i] if text[i] != "\n" else "↵" for i in frame["index"]]
    return frame


def heatmap_frame(text: str, loss_a: np.ndarray, loss_b: np.ndarray, width: int = 80) -> pd.DataFrame:
    """The character grid with each model's per-character loss and their difference (A - B)."""
    grid = char_grid(text, width)
    grid["loss_a"] = loss_a[grid["index"]]
    grid["loss_b"] = loss_b[grid["index"]]
    grid["a_minus_b"] = grid["loss_a"] - grid["loss_b"]
    return grid


def char_heatmap(frame: pd.DataFrame, run_a: str, run_b: str) -> alt.Chart:
    """Characters coloured by loss(A) - loss(B): blue where A is better, orange where B is."""
    limit = float(np.nanpercentile(np.abs(frame["a_minus_b"]), 98)) if frame["a_minus_b"].notna().any() else 1.0
    cell = 14
    n_rows, n_cols = int(frame["row"].max()) + 1, int(frame["col"].max()) + 1
    base = alt.Chart(frame).encode(
        x=alt.X("col:O", axis=None),
        y=alt.Y("row:O", axis=None),
        tooltip=[
            alt.Tooltip("char:N", title="character"),
            alt.Tooltip("loss_a:Q", title=f"loss {run_a} (nats)", format=".3f"),
            alt.Tooltip("loss_b:Q", title=f"loss {run_b} (nats)", format=".3f"),
            alt.Tooltip("a_minus_b:Q", title="A - B", format="+.3f"),
        ],
    )
    rect = base.mark_rect().encode(
        color=alt.Color(
            "a_minus_b:Q",
            title="loss A - B",
            scale=alt.Scale(scheme="blueorange", domain=[-limit or -1.0, limit or 1.0], domainMid=0),
        )
    )
    # Dark cells get white letters so the text stays readable.
    strong = f"abs(datum.a_minus_b) > {0.6 * (limit or 1.0)}"
    chars = base.mark_text(fontSize=11, font="monospace").encode(
        text="char:N", color=alt.condition(strong, alt.value("white"), alt.value("black"))
    )
    return (rect + chars).properties(width=n_cols * cell * 0.75, height=n_rows * cell * 1.4)


def comparison_figure(
    table: pd.DataFrame, title: str, by_k: pd.DataFrame | None, by_pos: pd.DataFrame | None
) -> alt.VConcatChart:
    """A whole evaluation as one picture: the results table, accuracy vs k, loss by position.

    ``table`` is the text summary (`sandbox.evaluation.tables.summary_text`); the charts are left out when
    no run succeeded.
    """
    from sandbox.figures.tables import stack, table_chart

    charts = [table_chart(table, title, col_width=120)]
    if by_k is not None and not by_k.empty:
        charts.append(accuracy_k_chart(by_k).properties(width=520))
    if by_pos is not None and not by_pos.empty:
        charts.append(position_chart(by_pos, "loss", "loss (nats/token)").properties(width=520))
    return stack(*charts)


# -- the results table -------------------------------------------------------------------------

BEST = "background-color: #c7e9c0; font-weight: 700"  # the best value of a column


def results_display(summary: pd.DataFrame, names: list[str], huge: Collection[str] = ()) -> pd.DataFrame:
    """The results table as shown: run, check, then each metric (bits per byte first) beside
    its 95 % interval as text, then round trip, speed, tokens, the training budget (steps,
    tokens and FLOPs trained), cached, error.

    Columns named in ``huge`` (values beyond what the table can format, `numfmt.has_huge`)
    are text in scientific notation."""
    display = summary[["run", "check"]].copy()
    for name in names:
        display[name] = summary[name].map(format_number) if name in huge else summary[name]
        display[f"{name} 95% CI"] = [
            "" if pd.isna(lo) else f"[{format_number(lo)}, {format_number(hi)}]"
            for lo, hi in zip(summary[f"{name}_lo"], summary[f"{name}_hi"], strict=True)
        ]
    for column in ("roundtrip_changed", "tokens_per_s", "tokens", "steps", "tokens_trained", "train_flops", "cached", "error"):
        display[column] = summary[column]
    return display


def best_values(display: pd.DataFrame, names: list[str], per_token_comparable: bool) -> dict[str, float]:
    """The best value of each metric column that ranks runs fairly (none for a column with
    fewer than two values, for tokens per byte, or for per-token metrics across tokenizers)."""
    from sandbox.evaluation import metrics

    out = {}
    for name in names:
        lower = metrics.lower_is_better(name)
        values = pd.to_numeric(display[name], errors="coerce")
        if lower is None or (metrics.per_token(name) and not per_token_comparable) or values.notna().sum() < 2:
            continue
        out[name] = float(values.min() if lower else values.max())
    return out


def styled_results(display: pd.DataFrame, names: list[str], per_token_comparable: bool):
    """A pandas Styler of the results table: numbers to 4 decimals, the best of each fair
    column highlighted (`best_values`)."""

    def number(value: float | str) -> str:
        if isinstance(value, str):  # already text (a huge column, see `results_display`)
            return value
        return "" if pd.isna(value) else format_number(value)

    def highlight(col: pd.Series, best: float) -> list[str]:
        return [BEST if v == best else "" for v in pd.to_numeric(col, errors="coerce")]

    styler = display.style.format({name: number for name in names})
    for name, best in best_values(display, names, per_token_comparable).items():
        styler = styler.apply(highlight, best=best, subset=[name])
    return styler


def paired_table(paired: list[dict]) -> pd.DataFrame:
    """Every paired difference (`sandbox.evaluation.report.Report.paired`) as a table of text cells."""
    rows = []
    for row in paired:
        d, lo, hi = row["difference"], row["lo"], row["hi"]
        n = row.get("decimals", 4)  # as many decimals as the Monte Carlo noise allows
        rows.append({
            "run − reference": f"{row['run']} − {row['reference']}",
            "metric": row["metric"].replace("_", " "),
            "difference": "" if pd.isna(d) else f"{d:+,.{n}f}",
            "95% interval": "" if pd.isna(lo) else f"[{lo:+,.{n}f}, {hi:+,.{n}f}]",
            "p (Holm)": "" if pd.isna(row.get("p_holm", math.nan)) else f"{row['p_holm']:.3f}",
            "verdict": row["verdict"] or ("" if row["comparable"] else "not comparable across tokenizers"),
        })
    return pd.DataFrame(rows, columns=["run − reference", "metric", "difference", "95% interval", "p (Holm)", "verdict"])
