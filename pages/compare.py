"""Compare: where runs differ, across tokenizers, and at what compute.

Four views of 2–6 runs: one text coloured by who predicts each character best (or by one
run's difference to a reference), where they differ across the corpus (ranked passages,
words, a histogram), losses at matched tokens and FLOPs, and scaling fits with the compute
multiplier. Widgets and layout only: the analyses live in `sandbox.analysis`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages import common
from sandbox.analysis import charts, corpusdiff, matched, sources, textview, wins
from sandbox.errors import UnknownRunError, WorkerError
from sandbox.evaluation import bytelosses, data
from sandbox.evaluation.details import MAX_DETAIL_CHARS, document_details
from sandbox.evaluation.run import evaluate
from sandbox.evaluation.tokenrate import token_rates
from sandbox.text import md_escape
from sandbox.urlstate import compare as url
from sandbox.urlstate.evaluation import standard_settings

common.require_access()

ss = st.session_state
st.title("Compare")
st.caption(
    "Where runs differ, across tokenizers, and at what compute: per-byte losses line runs with "
    "different tokenizers up on the same text; matched points and scaling fits compare training."
)

runs_by_id = {run.id: run for exp in common.experiments() for run in exp.runs if run.has_model}
common.logs_only_caption()
run_ids = list(runs_by_id)
if len(run_ids) < url.MIN_RUNS:
    st.info("Comparing needs at least two trained runs in the models directory.")
    st.stop()
group_keys = sources.group_keys(list(runs_by_id.values()))

# -- the URL -> the widgets: on the first visit, and whenever the link was changed ------------
current = {key: st.query_params.get_all(key) for key in st.query_params}
mine = {k: v for k, v in current.items() if k in url.QUERY_KEYS}
if mine != ss.get("cmp_url"):
    linked, warnings = url.from_query(mine, run_ids, sorted(common.flagged_runs()), group_keys)
    ss.update(
        cmp_runs=linked.runs, cmp_view=linked.view, cmp_ref=linked.reference, cmp_other=linked.other,
        cmp_colour=linked.colour, cmp_docs=linked.docs, cmp_seed=linked.seed, cmp_doc=linked.doc,
        cmp_span=linked.span, cmp_span_doc=linked.doc, cmp_group=linked.group, cmp_fitx=linked.fit_x, cmp_curves=linked.curves,
        cmp_base=linked.base, cmp_variant=linked.variant, cmp_loss=linked.loss or 0.0,
        cmp_at_tokens=linked.at_tokens or 0.0, cmp_at_flops=linked.at_flops or 0.0,
    )  # fmt: skip
    ss["cmp_warnings"] = warnings
for warning in ss.get("cmp_warnings", []):
    st.warning(warning, icon=":material/link_off:")

picked = st.multiselect(
    "Runs (2 to 6, any experiments and tokenizers)", run_ids, key="cmp_runs", max_selections=url.MAX_RUNS,
    placeholder="Choose runs to compare",
)  # fmt: skip
view = st.segmented_control("View", list(url.VIEWS), format_func=url.VIEWS.get, key="cmp_view") or "text"
state = url.CompareState(runs=list(picked), view=view)


def exports(chart, name: str, *, stretch: bool = False) -> None:
    """The chart (``stretch``: as wide as the page, for charts with continuous axes that
    Streamlit otherwise draws smaller than their spec), and PNG/SVG buttons for it."""
    common.altair_chart(chart, width="stretch" if stretch else "content")
    common.chart_downloads(lambda: chart, name, f"cmp_{name}")


def pick_pair() -> tuple[str, str]:
    """The reference run and the run compared with it."""
    cols = st.columns(2)
    if ss.get("cmp_ref") not in picked:
        ss["cmp_ref"] = picked[0]
    ref = cols[0].selectbox("Reference run", picked, key="cmp_ref")
    others = [r for r in picked if r != ref]
    if ss.get("cmp_other") not in others:
        ss["cmp_other"] = others[0]
    other = cols[1].selectbox("Compared with it", others, key="cmp_other")
    state.reference, state.other = ref, other
    return ref, other


@st.cache_data(show_spinner="Loading documents…", max_entries=4)
def bundled() -> list[str]:
    """The bundled corpus' validation documents."""
    return data.load_documents("bundled")


@st.cache_data(show_spinner="Scoring the document…", max_entries=64)
def details(run_id: str, stamp: tuple, fingerprint: str, text: str) -> dict:
    """`document_details` of one run on one text (cached until its weights or code change)."""
    client, run = common.client_for(run_id)
    max_len = int(client.request("info", run=run.name)["max_seq_len"])
    return document_details(client, run.name, text, max_len=max_len, top_n=5, n_positions=max_len)


def byte_losses(docs: list[str]) -> dict[str, list[np.ndarray]] | None:
    """Every picked run's per-byte losses on ``docs`` from the evaluation cache; runs not scored
    on them yet get a button that evaluates them (the Evaluation page's standard method)."""
    settings = standard_settings(common.device_name())
    found, missing = sources.cached_byte_losses([runs_by_id[r] for r in picked], docs, settings)
    if not missing:
        return found
    st.info(f"Not scored on these {len(docs):,} documents yet: {md_escape(', '.join(missing))}.")
    if st.button("Score them", type="primary", icon=":material/play_arrow:", key="cmp_score"):
        bar = st.progress(0.0, text="Scoring")
        report = evaluate(
            common.worker_pool(), missing, docs, settings, models_dir=common.models_dir(), data_label=data.BUNDLED_LABEL,
            progress=lambda run_id, done, total: bar.progress(done / total if total else 1.0, text=md_escape(run_id)),
        )  # fmt: skip
        for r in report.results:
            if not r.ok:
                st.error(f"{md_escape(r.run_id)}: {md_escape(r.error['message'])}")
        if all(r.ok for r in report.results):
            st.rerun()
    return None


def corpus_inputs() -> tuple[list[str], dict[str, list[np.ndarray]]] | None:
    """The sampled documents and every run's per-byte losses on them (None: not yet)."""
    cols = st.columns(2)
    state.docs = int(cols[0].number_input("Documents of the bundled corpus", 1, url.MAX_DOCS, step=10, key="cmp_docs"))
    state.seed = int(cols[1].number_input("Sample seed", 0, url.MAX_SEED, step=1, key="cmp_seed"))
    docs = data.sample_documents(bundled(), state.docs, state.seed)
    found = byte_losses(docs)
    return (docs, found) if found is not None else None


def open_passage(doc: int, start: int, end: int) -> None:
    """Button callback: the text view of one passage (before the widgets are drawn again)."""
    ss.update(cmp_view="text", cmp_doc=doc, cmp_span=(start, end), cmp_span_doc=doc)


# -- the views ---------------------------------------------------------------------------------
def text_view() -> None:
    got = corpus_inputs()
    if got is None:
        return
    docs, found = got
    labels = {i: f"{i}: {d[:60]}…" if len(d) > 60 else f"{i}: {d}" for i, d in enumerate(docs)}
    ss["cmp_doc"] = min(int(ss.get("cmp_doc") or 0), len(docs) - 1)
    d = st.selectbox("Document", list(labels), format_func=labels.get, key="cmp_doc")
    state.doc = int(d)
    mode = st.radio("Colour", textview.MODES, horizontal=True, key="cmp_colour",
                    format_func={"best": "which run predicts it best", "reference": "difference to a reference"}.get)  # fmt: skip
    state.colour = mode
    ref, other = pick_pair() if mode == "reference" else (None, None)
    text = docs[d][:MAX_DETAIL_CHARS]
    per_char = {r: bytelosses.bytes_to_chars(docs[d], found[r][d])[: len(text)] for r in picked}
    hover = {}
    for r in picked:
        try:
            exp, run = common.lookup(r)
            hover[r] = textview.token_hover(details(r, run.weights_stamp(), exp.fingerprint(), text), len(text))
        except (WorkerError, UnknownRunError) as exc:
            common.show_error(exc, r)
    span = ss.get("cmp_span") if ss.get("cmp_span_doc") == d else None  # a passage belongs to its document
    state.span = tuple(span) if span else None
    st.html(textview.legend_html(picked, mode=mode, reference=ref, other=other))
    colors = textview.char_colors(per_char, mode=mode, reference=ref, other=other)
    st.html(textview.nrun_html(text, colors, hover, mark=state.span))
    st.caption("Hover a character for each run's token there, its probability, rank and top alternatives. "
               "A character's loss is its share of its token's loss (tokens spread over their bytes).")  # fmt: skip
    exports(charts.wins_chart(wins.who_wins(per_char)), "who_wins_document")


def corpus_view() -> None:
    got = corpus_inputs()
    if got is None:
        return
    docs, found = got
    ref, other = pick_pair()
    order = st.radio("Rank by", corpusdiff.ORDERS, horizontal=True, key="cmp_order",
                     format_func={"abs": "largest difference", "second_worse": f"{other} worse",
                                  "first_worse": f"{other} better"}.get)  # fmt: skip
    ranking = corpusdiff.rank_passages(docs, found, runs=(ref, other), top=10, order=order)
    stats = corpusdiff.word_stats(docs, found[ref], found[other])
    st.markdown(md_escape(corpusdiff.word_sentence(stats, ref, other)))
    st.subheader("Passages", divider="gray")
    st.caption(f"Difference in bits per byte, {other} − {ref} (positive: {other} is worse there).")
    for i, row in ranking.passages.iterrows():
        cols = st.columns([1, 6, 1], vertical_alignment="center")
        cols[0].metric("Δ bits/byte", f"{row['diff']:+.3f}", label_visibility="collapsed" if i else "visible")
        cols[1].text(f"doc {row['doc']}: {row['text']}"[:300])
        cols[2].button("Open", key=f"cmp_open_{i}", on_click=open_passage, args=(int(row["doc"]), int(row["char_start"]), int(row["char_end"])))
    st.subheader("Documents", divider="gray")
    st.dataframe(ranking.documents.head(20), hide_index=True)
    st.subheader("Words", divider="gray")
    cols = st.columns(2)
    cols[0].caption(f"Most often better in {other}")
    cols[0].dataframe(stats.most_often(True)[["word", "class", "count", "share_better", "diff_bpb"]], hide_index=True)
    cols[1].caption(f"Most often worse in {other}")
    cols[1].dataframe(stats.most_often(False)[["word", "class", "count", "share_worse", "diff_bpb"]], hide_index=True)
    st.dataframe(stats.classes, hide_index=True)
    joined = {r: np.concatenate(found[r]) for r in picked}
    exports(charts.difference_histogram(wins.difference_to_reference(joined, ref), ref), "per_byte_differences")
    exports(charts.wins_chart(wins.who_wins(joined)), "who_wins_corpus")


def matched_view() -> None:
    runs = [runs_by_id[r] for r in picked]
    axes, notes = {}, []
    for axis, name in (("tokens", "tokens"), ("flops", "FLOPs")):
        series, why = sources.run_curves(runs, axis)
        axes[name] = series
        notes += why
    cols = st.columns(2)
    at_tokens = cols[0].number_input("Matched tokens (0: the largest common)", 0.0, 1e30, key="cmp_at_tokens", format="%g")
    at_flops = cols[1].number_input("Matched FLOPs (0: the largest common)", 0.0, 1e40, key="cmp_at_flops", format="%g")
    state.at_tokens, state.at_flops = (at_tokens or None), (at_flops or None)
    rates = {k: v.tokens_per_byte for k, v in token_rates(runs).items()}
    table = matched.matched_table({k: v for k, v in axes.items() if v}, at={"tokens": state.at_tokens, "FLOPs": state.at_flops},
                                  tokens_per_byte=rates)  # fmt: skip
    for note in dict.fromkeys(notes):
        st.caption(md_escape(note))
    if table.empty:
        st.info("None of these runs has a log with validation loss and tokens seen.")
        return
    st.dataframe(table, hide_index=True)
    exports(charts.matched_chart(table), "matched_loss")
    if table["bits_per_byte"].notna().any():
        exports(charts.matched_chart(table, value="bits_per_byte"), "matched_bits_per_byte")
    curves = matched.per_byte_curves(axes.get("tokens", {}), rates)
    if not curves.empty:
        exports(charts.bpb_curves_chart(curves, "tokens seen"), "bits_per_byte_curves", stretch=True)
    missing = matched.missing_rates(axes.get("tokens", {}), rates)
    if missing:
        st.caption(f"No bits per byte for {md_escape(', '.join(missing))}: evaluate them once (Evaluation page).")


def scaling_view() -> None:
    cols = st.columns([2, 2, 1], vertical_alignment="bottom")
    state.group = cols[0].selectbox("Group by", group_keys, key="cmp_group")
    state.fit_x = cols[1].radio("Against", list(sources.FIT_AXES), format_func=sources.FIT_AXES.get, horizontal=True, key="cmp_fitx")
    state.curves = cols[2].toggle("Whole curves", key="cmp_curves", disabled=state.fit_x != "compute",
                                  help="Fit each group's lower envelope of its runs' training curves (the compute frontier).") and state.fit_x == "compute"  # fmt: skip
    st.caption("All runs of the models directory are fitted (not only the runs picked above): L = E + A·C^(−α) per group.")
    result = sources.fit_scaling(list(runs_by_id.values()), axis=state.fit_x, group_by=state.group, curves=state.curves)
    groups = list(result.fits)
    if len(groups) >= 2:
        mc = st.columns([2, 2, 2])
        if ss.get("cmp_base") not in groups:
            ss["cmp_base"] = groups[0]
        if ss.get("cmp_variant") not in groups:
            ss["cmp_variant"] = groups[1]
        state.base = mc[0].selectbox("Base", groups, key="cmp_base")
        state.variant = mc[1].selectbox("Variant", groups, key="cmp_variant")
        state.loss = mc[2].number_input("At loss L* (0: the lowest both reached)", 0.0, url.MAX_LOSS, key="cmp_loss", format="%.4f") or None
        if state.base != state.variant:
            result = sources.fit_scaling(list(runs_by_id.values()), axis=state.fit_x, group_by=state.group, curves=state.curves,
                                         base=state.base, variant=state.variant, loss=state.loss)  # fmt: skip
    if result.multiplier is not None:
        st.markdown(f"**{md_escape(result.multiplier.sentence)}**")
        for note in result.multiplier.notes:
            st.caption(md_escape(note))
    for fit in result.fits.values():
        for note in fit.notes:
            (st.warning if fit.n_points < 3 else st.caption)(md_escape(note))
    for note in result.notes:
        st.caption(md_escape(note))
    if not result.fits:
        st.info("No run has both a validation loss and a counted size yet (Load every run on the Models page).")
        return
    exports(charts.scaling_chart(result.fits, result.multiplier, x_title=sources.FIT_AXES[state.fit_x]), "scaling_fits", stretch=True)
    st.dataframe(pd.DataFrame(scaling_rows(result)), hide_index=True)


def scaling_rows(result: sources.ScalingResult) -> list[dict]:
    """The fits as table rows."""
    from sandbox.analysis.scaling import fits_frame

    return fits_frame(result.fits).round(4).to_dict(orient="records")


if len(picked) < url.MIN_RUNS and view in ("text", "corpus", "matched"):
    st.info("Choose at least two runs.")
else:
    {"text": text_view, "corpus": corpus_view, "matched": matched_view, "scaling": scaling_view}[view]()

wanted = url.to_query(state)
common.sync_query_params(wanted, url.QUERY_KEYS)
ss["cmp_url"] = {k: v for k, v in wanted.items() if v}
