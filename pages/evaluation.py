"""Evaluation: top-k accuracy, loss, perplexity and bits per byte of runs on the same text.

Widgets and layout only; the method is `sandbox.evaluation.run` (read its docstring). Results
live in ``st.session_state`` so that changing a widget redraws without recomputing; each
run's result is also cached on disk, so repeating an evaluation is instant. Cancel (or any
rerun) arrives as an exception at the next st.* call inside the progress callback; the
evaluation's ``finally`` closes the worker stream, which cancels the scoring in the worker.
"""

from __future__ import annotations

import importlib.util
import math
import time

import numpy as np
import streamlit as st

from pages import common
from sandbox.errors import UnknownRunError, WorkerError
from sandbox.evaluation import data, formats, metrics, views
from sandbox.evaluation.details import MAX_DETAIL_CHARS, document_details
from sandbox.evaluation.parallel import evaluate_runs
from sandbox.evaluation.report import Report, multiple_note
from sandbox.evaluation.results import EvalSettings, RunResult
from sandbox.evaluation.tables import accuracy_by_k, by_position, summary_text
from sandbox.figures import export
from sandbox.numfmt import has_huge
from sandbox.settings import data_dir
from sandbox.text import md_escape
from sandbox.urlstate import evaluation as url

common.require_access()

MAX_UPLOAD_BYTES = data.UPLOAD_MAX_BYTES
DRAW_EVERY = 0.1  # seconds between progress redraws
SOURCES = ("Bundled corpus (validation)", "Upload a file", "Data folder", "Hugging Face")

st.title("Evaluation")
st.caption(
    "The same documents for every run, each read by its own tokenizer: top-k accuracy, loss, "
    "perplexity and bits per byte (comparable across tokenizers) with 95 % bootstrap intervals "
    "over documents."
)

run_ids = common.model_run_ids()
common.logs_only_caption()
if not run_ids:
    st.info("No trained runs in the models directory.")
    st.stop()

ss = st.session_state

# -- the selection: from the link on the first visit, then from the widgets -------------------
def data_folder_names() -> tuple:
    """(data folder, its offered files, their names there, a sentence per file refused as a
    link out of the folder): the only files a link may name."""
    folder = data_dir()
    files, refused = data.scan_data_folder(folder)
    return folder, files, [p.relative_to(folder).as_posix() for p in files], refused


if "ev_runs" not in ss:
    params = {key: st.query_params.get_all(key) for key in st.query_params}
    flagged = common.flagged_runs() if "runs" not in params else set()  # never picked by default
    first, ss["ev_url_warnings"] = url.from_query(
        params, run_ids, flagged, data_files=data_folder_names()[2],
        hf_available=importlib.util.find_spec("datasets") is not None,
    )  # fmt: skip
    ss["ev_runs"], ss["ev_ks"], ss["ev_docs"], ss["ev_seed"] = first.runs, first.ks, first.docs, first.seed
    kind = url.data_kind(first.data)
    ss["ev_source"] = SOURCES[url.DATA_KINDS.index(kind)]
    if kind == "file":
        ss["ev_file"] = first.data[len(url.FILE_PREFIX) :]
    elif kind == "hf":
        ss["ev_hf"] = first.data
    ss["ev_upload_from_link"] = kind == "upload"
for warning in ss.get("ev_url_warnings", []):
    st.warning(warning)

picked = st.multiselect("Runs (any experiments)", run_ids, key="ev_runs", placeholder="Choose runs to compare")
cols = st.columns([2, 1, 1])
ks = sorted(cols[0].multiselect("Top-k accuracies", url.K_CHOICES, key="ev_ks"))
n_docs = int(cols[1].number_input("Documents", 1, url.MAX_DOCS, step=10, key="ev_docs"))
seed = int(cols[2].number_input("Sample seed", 0, url.MAX_SEED, step=1, key="ev_seed"))



# -- data -------------------------------------------------------------------------------------
@st.cache_data(show_spinner="Loading documents…", max_entries=8)
def load_source(source: str) -> list[str]:
    """Documents of the bundled corpus or a Hugging Face data set (files: the library's cache)."""
    return data.load_documents(source)


def choose_documents() -> tuple[list[str] | None, str, str]:
    """The documents of the chosen source (None when there are none yet), a label, and the
    source as the link names it (see `sandbox.urlstate.evaluation`)."""
    source = st.radio("Data", SOURCES, horizontal=True, key="ev_source")
    link = url.BUNDLED
    try:
        if source == SOURCES[0]:
            return load_source("bundled"), "bundled corpus, validation split", link
        if source == SOURCES[1]:
            link = url.UPLOAD
            upload = st.file_uploader(
                f"A text file (.txt: blank lines between documents; .jsonl or .parquet with a "
                f"text field; at most {formats.format_size(MAX_UPLOAD_BYTES)})",
                type=[f.lstrip(".") for f in formats.FORMATS],
                key="ev_upload",
            )
            if upload is None and ss.get("ev_upload_from_link"):
                st.info("This link was made with an uploaded file, which a link cannot carry: upload it again.")
            else:
                ss["ev_upload_from_link"] = False
                st.caption("An uploaded file cannot be part of a link: a copied link asks for the file again.")
            if upload is None:
                return None, "", link
            return data.documents_from_bytes(upload.getvalue(), upload.name, MAX_UPLOAD_BYTES), upload.name, link
        if source == SOURCES[2]:
            folder, files, names, refused = data_folder_names()
            for sentence in refused:
                st.warning(md_escape(sentence))
            if not files:
                st.info(f"No .txt, .jsonl or .parquet files in the data folder ({md_escape(folder.name)}; the server's SANDBOX_DATA_DIR sets it).")
                return None, "", link
            name = st.selectbox("File in the data folder", names, key="ev_file")
            link = url.FILE_PREFIX + name
            return data.load_documents(str(files[names.index(name)]), within=folder), name, link
        if importlib.util.find_spec("datasets") is None:
            st.info("Hugging Face data sets need the optional `datasets` package on the server.")
            return None, "", link
        spec = st.text_input("Data set", placeholder="hf:<dataset>[:<config>]:<split>", key="ev_hf").strip()
        if not spec.startswith("hf:"):
            return None, "", link
        link = spec if url.HF_SPEC.fullmatch(spec) else link
        return load_source(spec), spec, link
    except formats.DataSourceError as exc:
        st.error(md_escape(str(exc)))
        return None, "", link


all_docs, data_label, data_link = choose_documents()
selection = url.EvalSelection(list(picked), ks, n_docs, seed, data_link)
common.sync_query_params(url.to_query(selection), url.QUERY_KEYS)
if all_docs is not None:
    st.caption(f"{len(all_docs):,} documents in the source; {min(n_docs, len(all_docs)):,} used (sample seed {seed}).")

with st.expander("Method"):
    mcols = st.columns(4)
    overlap = int(
        mcols[0].number_input(
            "Context overlap (tokens)", 0, 4096, 0, key="ev_overlap",
            help="0: disjoint windows of the model's context. c > 0: each later window carries c "
            "already-scored tokens as context (lm-evaluation-harness rolling loglikelihood); "
            "every token is still scored exactly once.",
        )
    )
    batch = int(mcols[1].number_input("Batch size", 1, 256, url.STANDARD_BATCH, key="ev_batch", help="Capped by a run's max_batch_size."))
    on_cuda = common.device_name().startswith("cuda")
    autocast = mcols[2].selectbox(
        "Autocast", ["off", "bf16", "fp16"], key="ev_autocast", disabled=not on_cuda,
        help="Lower-precision forward passes; only on a CUDA device.",
    )
    resamples = int(mcols[3].number_input("Bootstrap resamples", 100, 10000, 2000, step=100, key="ev_boot"))
    st.caption(
        "Each document is tokenized by each run's own tokenizer after its start token (its bos; "
        "for codebases without one, what the run's kind names: a newline for nanoGPT's characters, "
        "`<|endoftext|>` for GPT-2 BPE). Logits come from model(input_ids) alone; windows of equal length are batched, so no padding is "
        "ever scored. The first token of a later disjoint window is predicted from that "
        "window's own first token (the previous window's last target)."
    )

# -- run --------------------------------------------------------------------------------------
buttons = st.columns([1, 1, 4])
go = buttons[0].button(
    "Run", type="primary", icon=":material/play_arrow:", key="ev_go",
    disabled=not picked or not ks or not all_docs,
)
buttons[1].button("Cancel", icon=":material/stop:", key="ev_cancel", help="Stop the evaluation.")
if ss.get("ev_running"):  # the last run was interrupted (Cancel, Stop or another widget)
    ss["ev_running"] = False
    st.info("The evaluation was cancelled. Runs that had finished are cached: Run again resumes there.")


def queue_note(run_id: str) -> str:
    """Where this run's job stands before it starts: other sessions may be using the worker."""
    try:
        ahead = common.worker_pool().busy(common.lookup(run_id)[0])  # served in turn with ours
    except UnknownRunError:
        return "unknown run"
    return f"waiting, {ahead} request(s) ahead on its worker (sessions take turns)" if ahead else "starting"


def run_evaluation(docs: list[str], settings: EvalSettings) -> Report:
    """Evaluate the picked runs with a progress bar per run and one overall."""
    overall = st.progress(0.0, text="Overall")
    bars = {run_id: st.progress(0.0, text=f"{md_escape(run_id)}: {queue_note(run_id)}") for run_id in picked}
    last = [0.0]
    fractions = dict.fromkeys(picked, 0.0)  # runs may advance side by side (on a Ray cluster)

    def progress(run_id: str, done: int, total: int) -> None:
        fractions[run_id] = frac = done / total if total else 1.0
        now = time.monotonic()
        if done < total and now - last[0] < DRAW_EVERY:
            return
        last[0] = now
        bars[run_id].progress(frac, text=f"{md_escape(run_id)}: {done:,} / {total:,} windows")
        finished = sum(fractions.values())
        overall.progress(finished / len(picked), text=f"Overall: {finished:.1f} / {len(picked)} runs")

    report = evaluate_runs(  # experiments side by side when the workers are on a Ray cluster
        common.worker_pool(), list(picked), docs, settings, models_dir=common.models_dir(),
        data_label=data_label, progress=progress, session=common.session_id(),
    )
    overall.progress(1.0, text="Overall: done")
    return report


if go and all_docs:
    docs = data.sample_documents(all_docs, n_docs, seed)
    settings = EvalSettings(
        kmax=max(ks), overlap=overlap, batch_size=batch,
        autocast=None if autocast == "off" or not on_cuda else autocast, device=common.device_name(),
    )
    ss["ev_running"] = True
    report = run_evaluation(docs, settings)
    ss["ev_running"] = False
    ss["ev_result"] = {"report": report, "docs": docs}
    ss.pop("ev_tables", None)

result = ss.get("ev_result")
if result is None:
    st.stop()

# -- results ----------------------------------------------------------------------------------
report: Report = result["report"]
docs: list[str] = result["docs"]
kmax = report.settings.kmax
shown_ks = [k for k in ks if k <= kmax]
if len(shown_ks) < len(ks):
    st.warning(f"This result has top-k up to k = {kmax}; press Run for larger k.")
shown_ks = shown_ks or [1]

tables = ss.setdefault("ev_tables", {})  # bootstrap once per k list and resample count
key = (tuple(shown_ks), resamples)
if key not in tables:
    tables[key] = report.summary(shown_ks, n_resamples=resamples)
summary = tables[key]

st.subheader("Results")
st.caption(
    md_escape(f"{report.data['documents']:,} documents of {report.data['source'] or 'the chosen data'} "
              f"({report.data['bytes']:,} UTF-8 bytes), data fingerprint {report.data['fingerprint']}. ")
    + "Bits per byte first: the only metric comparable across tokenizers. Intervals: 95 % bootstrap "
    "over documents. Green: the best value of a column."
)
names = metrics.metric_names(shown_ks)
fair = report.same_tokens()  # per-token metrics rank runs only when they share a tokenizer
# A diverged run's perplexity (1e33) is beyond what the table can format: such a column is
# shown as text in scientific notation rather than as 36 digits (evalview.results_display).
huge = {name for name in names if has_huge(summary[name])}


def metric_column(name: str):
    """A metric's column: its name, and a mark where it does not compare these runs."""
    label = name.replace("_", " ")
    kind = st.column_config.TextColumn if name in huge else st.column_config.NumberColumn
    extra = {} if name in huge else {"format": "%.4f"}
    if metrics.per_token(name) and not fair:
        return kind(
            f"{label} ⚠", help="Per token, and these runs use different tokenizers: not comparable "
            "across them. Bits per byte is.", **extra,
        )
    return kind(label, **extra)


display = views.results_display(summary, names, huge)
st.dataframe(
    views.styled_results(display, names, fair),
    hide_index=True,
    width="stretch",
    key="ev_results",
    column_config={
        **{n: metric_column(n) for n in names},
        **{f"{n} 95% CI": st.column_config.TextColumn(f"{n.replace('_', ' ')} 95% CI") for n in names},
        "check": st.column_config.TextColumn(
            "check", help="suspect: weights look untrained or do not match the code (see below)."
        ),
        "roundtrip_changed": st.column_config.NumberColumn(
            "round trip changed", format="percent", help="Share of characters decode(encode(text)) did not give back."
        ),
        "tokens_per_s": st.column_config.NumberColumn("tokens/s", format="localized"),
        "steps": st.column_config.NumberColumn("steps trained", format="%d"),
        "tokens_trained": st.column_config.NumberColumn("tokens trained", format="%.3e"),
        "train_flops": st.column_config.NumberColumn(
            "training FLOPs", format="%.3e", help="Blank until a worker has counted the run's parameters."),
        "cached": st.column_config.CheckboxColumn("cached", help="From the disk cache (tokens/s of the original run)."),
    },
)
for r in report.results:
    for warning in r.warnings:
        st.warning(md_escape(warning))
    if r.error:
        st.error(f"**{md_escape(r.run_id)}**: {md_escape(r.error['message'])}")
        if r.error.get("hint"):
            st.caption(f"Fix: {md_escape(r.error['hint'])}")
for r in report.results:
    for flag in r.flags:
        st.error(md_escape(flag), icon=":material/warning:")
for note in report.notes():
    st.caption(md_escape(note))
lossy = summary[summary["roundtrip_changed"] > 0]
for _, row in lossy.iterrows():
    st.warning(
        f"{md_escape(row['run'])}: its tokenizer is lossy on this text: decode(encode(text)) changes "
        f"{row['roundtrip_changed']:.2%} of the characters, which it therefore never predicts as written."
    )
ok = [r for r in report.results if r.ok]
by_k = accuracy_by_k(ok, n_resamples=300) if ok else None
by_pos = by_position(ok, shown_ks) if ok else None


# -- the verdict: paired differences against a reference run -----------------------------------
if len(ok) >= 2:
    st.subheader("Verdict")
    ok_ids = [r.run_id for r in ok]
    if ss.get("ev_ref") not in ok_ids:
        ss.pop("ev_ref", None)
    reference = st.selectbox("Reference run", ok_ids, key="ev_ref", help="Every other run is compared with this one.")
    pkey = ("paired", tuple(shown_ks), resamples, reference)
    if pkey not in tables:
        tables[pkey] = report.paired(shown_ks, reference, n_resamples=resamples)
    paired = tables[pkey]
    st.caption(
        "Paired differences: both runs read the same documents, so one bootstrap over documents "
        "resamples both and what they share cancels out. 95 % studentized intervals, printed to the "
        "digits their resampling noise allows; no clear difference when the interval spans 0."
    )
    if note := multiple_note(paired):
        st.caption(md_escape(note))
    for row in paired:
        if row["metric"] == "bits_per_byte" and row["verdict"]:
            clear = "no clear difference" not in row["verdict"]
            (st.success if clear else st.info)(md_escape(row["verdict"]), icon=":material/balance:")
    with st.expander("All paired differences"):
        st.dataframe(views.paired_table(paired), hide_index=True, width="stretch")


def comparison_figure():
    """Table and charts of this evaluation as one picture (for a chat or a paper)."""
    title = f"Evaluation: {report.data['documents']:,} documents of {report.data['source'] or 'text'}"
    return views.comparison_figure(summary_text(summary, shown_ks), title, by_k, by_pos)


with st.container(horizontal=True):
    st.download_button("CSV", summary.to_csv(index=False), "evaluation.csv", "text/csv", icon=":material/download:")
    st.download_button(
        "JSON", report.to_json(shown_ks, n_resamples=resamples, reference=ss.get("ev_ref")), "evaluation.json",
        "application/json",
        icon=":material/download:",
    )
    st.download_button(
        "Whole comparison as PNG", lambda: export.to_png(comparison_figure()), "evaluation.png", "image/png",
        on_click="ignore", icon=":material/image:", key="ev_all_png",
    )  # fmt: skip

if not ok:
    st.stop()

tab_k, tab_pos = st.tabs(["Accuracy vs k", "By position in the context"])
with tab_k:
    common.altair_chart(views.accuracy_k_chart(by_k), width="stretch")
    common.chart_downloads(lambda: views.accuracy_k_chart(by_k), "accuracy_vs_k", "ev_k_chart")
with tab_pos:
    pos_cols = st.columns(2)
    k_pos = pos_cols[0].selectbox("k", shown_ks, index=0, key="ev_pos_k")
    with pos_cols[0]:
        common.altair_chart(views.position_chart(by_pos, f"top{k_pos}", f"top-{k_pos} accuracy"), width="stretch")
    with pos_cols[1]:
        common.altair_chart(views.position_chart(by_pos, "loss", "loss (nats/token)"), width="stretch")
    common.chart_downloads(lambda: views.position_chart(by_pos, "loss", "loss (nats/token)"), "loss_by_position", "ev_pos_chart")

# -- one document -----------------------------------------------------------------------------
st.subheader("One document")


@st.cache_data(show_spinner="Scoring the document…", max_entries=64)
def details(run_id: str, stamp: tuple, fingerprint: str, text: str, max_len: int, overlap: int, top_n: int) -> dict:
    """`sandbox.evaluation.details.document_details` (cached until the run's weights or code change)."""
    client, run = common.client_for(run_id)
    return document_details(client, run.name, text, max_len=max_len, overlap=overlap, top_n=top_n, n_positions=64)


def details_for(r: RunResult, text: str) -> dict | None:
    """One document scored by an evaluated run; None, with its sentence shown, when the run
    cannot answer (its folder may have gone since it was evaluated)."""
    top_n = min(max(shown_ks), 20)
    try:
        exp, run = common.lookup(r.run_id)
        return details(r.run_id, run.weights_stamp(), exp.fingerprint(), text, int(r.info["max_seq_len"]),
                       report.settings.overlap, top_n)
    except (WorkerError, UnknownRunError) as exc:
        common.show_error(exc, r.run_id)
        return None


doc_index = st.selectbox(
    "Document", range(len(docs)), key="ev_doc",
    format_func=lambda i: f"{i + 1}: {docs[i][:70].replace(chr(10), ' ')}…",
)
text = docs[doc_index][: MAX_DETAIL_CHARS]
tab_tok, tab_heat = st.tabs(["Top-k predictions", "Loss heat map (A vs B)"])
with tab_tok:
    tcols = st.columns(2)
    n_show = tcols[0].slider("Positions", 4, 64, 16, key="ev_tok_n")
    k_options = [k for k in shown_ks if k <= 20] or [1]
    k_default = max([i for i, k in enumerate(k_options) if k <= 10], default=0)
    k_show = tcols[1].selectbox("k (green: true token in the top k)", k_options, index=k_default, key="ev_tok_k")
    for r in ok:
        d = details_for(r, text)
        if d is not None:
            st.markdown(f"**{md_escape(r.run_id)}**")
            st.html(views.topk_table_html(d, k_show, n_show))
with tab_heat:
    if len(ok) < 2:
        st.info("Evaluate two runs to compare them character by character.")
    else:
        hcols = st.columns(2)
        ids = [r.run_id for r in ok]
        run_a = hcols[0].selectbox("A", ids, index=0, key="ev_heat_a")
        run_b = hcols[1].selectbox("B", ids, index=1, key="ev_heat_b")
        da = details_for(report.result(run_a), text)
        db = details_for(report.result(run_b), text)
        if da is not None and db is not None:
            frame = views.heatmap_frame(text, da["char_nll"], db["char_nll"])
            better = np.nanmean(frame["a_minus_b"] < 0) if len(frame) else math.nan
            bits_a, bits_b = (np.nansum(d["char_nll"]) / metrics.LN2 for d in (da, db))
            st.caption(
                f"Each token's loss is spread evenly over its characters; the tokenizers line up "
                f"through decoded-prefix lengths. Blue: A has the lower loss, orange: B. "
                f"A is better on {better:.0%} of the characters; A needs {bits_a:,.0f} bits, "
                f"B {bits_b:,.0f} bits for this text ({len(text.encode('utf-8')):,} bytes)."
            )
            common.altair_chart(views.char_heatmap(frame, run_a, run_b))
