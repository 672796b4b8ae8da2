"""Models: every run in one table, a run's details, a config diff, and the doctor's report."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pages import common
from sandbox import text
from sandbox.evaluation import card as compare
from sandbox.evaluation.checkup import load_run
from sandbox.figures import export, tables
from sandbox.text import md_escape, safe_readme
from sandbox.urlstate import models as url
from sandbox.zoo import catalog
from sandbox.zoo.codediff import base_reason, default_base, default_target, diff_experiments
from sandbox.zoo.doctor import static_findings

common.require_access()

st.title("Models")


def load_every_run(experiments) -> None:
    """Load each run in its experiment's worker (one forward pass), with one progress bar for
    all of them and a collapsed status box that lists only the runs with a problem.

    What each load finds (problems, parameter count) is remembered per run fingerprint, so
    the table below and later visits show it without loading anything again.
    """
    pool = common.worker_pool()
    runs = [(exp, run) for exp in experiments for run in exp.runs if run.has_model]  # logs only: nothing to load
    if not runs:
        st.info("No run here has a model to load (only training logs).")
        return
    bar = st.progress(0.0, text=f"Loading {len(runs):,} runs…")
    problems: list[str] = []
    loaded = 0
    with st.status(f"Loading {len(runs):,} runs…", expanded=False) as box:
        static: dict[str, tuple[bool, set]] = {}
        for i, (exp, run) in enumerate(runs):
            if exp.name not in static:  # the doctor's file checks, once per experiment
                found = static_findings(exp)
                static[exp.name] = (
                    any(f.severity == "error" and f.run is None for f in found),
                    {f.run for f in found if f.severity == "error" and f.run},
                )
            exp_broken, broken_runs = static[exp.name]
            bar.progress(i / len(runs), text=md_escape(f"Loading {run.id} ({i + 1:,} of {len(runs):,})…"))
            if exp_broken or run.name in broken_runs:
                problems.append(f"{run.id}: not loaded, its files break the contract (see Doctor).")
                continue
            try:
                findings, info = load_run(exp, run, pool.client(exp))
            except Exception as exc:  # noqa: BLE001 — one run's failure must not stop the others
                common.show_error(exc, run.id)
                problems.append(f"{run.id}: {exc}")
                continue
            if info is None:
                problems.append(f"{run.id}: does not load: {findings[0].sentence if findings else 'see Doctor'}")
            else:
                loaded += 1
        bar.progress(1.0, text=f"{loaded:,} of {len(runs):,} runs loaded, forward pass ok.")
        if problems:
            st.markdown("\n".join(f"- {md_escape(p)}" for p in problems))  # sentences quote files: text only
        box.update(
            label=f"{loaded:,} of {len(runs):,} runs loaded; "
            + (f"{len(problems):,} with a problem (open to see which)" if problems else "no problems"),
            state="error" if problems else "complete",
        )
    _zoo_tables.clear()  # what the loads found changes the table


@st.cache_data(show_spinner=False, max_entries=4)
def _zoo_tables(models: str, stamp: tuple) -> tuple[dict, pd.DataFrame]:
    """What is known of each experiment and the runs table, kept while ``stamp`` (every run
    file, code fingerprint and record folder: `catalog.table_stamp`) stays the same: 500 runs
    take about a second to read, their stamp a few milliseconds."""
    found = common.experiments()
    known = catalog.known_by_experiment(found)
    table = pd.DataFrame(catalog.runs_table(models, known), columns=catalog.COLUMNS)
    table["problems"] = table["problems"].map(lambda ps: "; ".join(ps) if isinstance(ps, list) else "")
    return known, table


experiments = common.experiments()
if not experiments:
    st.info("No experiments in the models directory. Add one as a folder (or git submodule) there.")
    st.stop()

# Opening the page starts no worker: the table and the doctor show the static checks and what
# the last load of each run found. Loading every run is an explicit action.
if st.button(
    "Load every run",
    icon=":material/play_circle:",
    help="Loads each run in its experiment's worker and runs one forward pass: the doctor's full "
    "check, and each model's parameter count. Remembered until the run's code, config or weights change.",
):
    load_every_run(experiments)
known, table = _zoo_tables(str(common.models_dir()), catalog.table_stamp(experiments))
findings_by_exp = {name: found[0] for name, found in known.items()}
loads_by_exp = {name: found[1] for name, found in known.items()}

# -- the selection: from the link on the first visit, then from the widgets --------------------
names = [e.name for e in experiments]
ss = st.session_state
if "models_url_read" not in ss:
    ss["models_url_read"] = True
    params = {key: st.query_params.get_all(key) for key in st.query_params}
    linked, ss["models_url_warnings"] = url.from_query(params, names, list(table["run_id"]))
    # The open tab is set now; the link's widget values wait in "models_linked" until their
    # widgets are drawn (see `_shown`): set through session state, a widget in a tab not yet
    # shown came up in the browser at its default (Run B reset to Run A on the next click).
    if url.TAB_KEY in linked:
        ss[url.TAB_KEY] = linked.pop(url.TAB_KEY)
    ss["models_linked"] = linked
    if "code_base" in linked:  # a linked base belongs to the linked (or default) target
        ss["code_base_for"] = linked.get("code_target") or getattr(default_target(experiments), "name", None)
for warning in ss.get("models_url_warnings", []):
    st.warning(warning, icon=":material/link_off:")


def _shown(key: str, options: list[str], fallback: object, valid) -> object:
    """The value widget ``key`` is drawn with, written to its state when it changes here.

    Its own value if still valid, else the link's (once), else ``fallback``. A value changed
    here is written to session state (the browser is told) and is also the widget's default on
    every run: the browser starts a widget it has not drawn yet (one in a tab not opened yet)
    from its default, so the two always agree (Run B came up as Run A after a click otherwise).
    """
    linked = ss.setdefault("models_linked", {}).pop(key, None)
    if key in ss and valid(ss[key]):
        return ss[key]
    value = linked if linked is not None and valid(linked) else fallback
    ss[key] = value
    return value


def choose(label: str, options: list[str], key: str, index: int = 0, **kw):
    """A selectbox whose value may come from the link: kept while it is an option."""
    value = _shown(key, options, options[index] if options else None, lambda v: v in options)
    return st.selectbox(label, options, key=key, index=options.index(value) if value in options else 0, **kw)


def choose_many(label: str, options: list[str], key: str, default: list[str], **kw):
    """A multiselect whose values may come from the link: those that are options are kept."""
    kept = [v for v in ss.get(key, []) if v in options]
    if key in ss and kept != ss[key]:  # some went away: keep the rest
        ss[key] = kept
    values = _shown(key, options, default, lambda vs: all(v in options for v in vs))
    return st.multiselect(label, options, default=values, key=key, **kw)


# -- the runs table ------------------------------------------------------------------------
for sentence in common.refused_experiment_links():
    st.warning(md_escape(sentence), icon=":material/link_off:")
picked = choose_many("Experiments", names, "models_experiments", names)
shown = table[table["experiment"].isin(picked)]
st.dataframe(
    # A run not loaded yet has no parameter count: a blank cell (Streamlit would write "None"
    # in a number column), never an estimate.
    shown.drop(columns=["run_id"]).assign(
        parameters=shown["parameters"].map(lambda n: "" if pd.isna(n) else f"{int(n):,}")
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "final_train_loss": st.column_config.NumberColumn("final train loss", format="%.4f"),
        "final_val_loss": st.column_config.NumberColumn("final val loss", format="%.4f"),
        "steps": st.column_config.NumberColumn("steps trained", format="%d"),
        "tokens_trained": st.column_config.NumberColumn("tokens trained", format="%.3e"),
        "train_flops": st.column_config.NumberColumn("training FLOPs", format="%.3e"),
        "status": st.column_config.TextColumn("status"),
    },
)
not_loaded = int(shown["parameters"].isna().sum())
st.caption(
    "Parameters: the model's own, tied weights once, buffers excluded, counted when a worker loads "
    "the run. "
    + (f"{not_loaded} run(s) not loaded yet (blank): **Load every run** counts them." if not_loaded else "")
)

runs_by_id = {r.id: r for e in experiments for r in e.runs}
experiment_by_name = {e.name: e for e in experiments}
# Runs that load ("suspect" ones too: their flag is shown beside their numbers).
# Loadable runs: a run of training logs alone has no model to count or compare.
healthy = [rid for rid in table.loc[table["status"].isin(["ok", "suspect"]), "run_id"] if runs_by_id[rid].has_model]
suspect = set(table.loc[table["status"] == "suspect", "run_id"])
# A keyed, rerunning st.tabs: the open tab is a widget value, so the link can carry it
# (modelsstate.TABS) and a link can open it. Every tab is still drawn on every run.
tab_detail, tab_diff, tab_code, tab_cost, tab_card, tab_doctor = st.tabs(
    list(url.TABS.values()), key=url.TAB_KEY, on_change="rerun"
)

# -- one run in detail ----------------------------------------------------------------------
with tab_detail:
    run_ids = list(shown["run_id"])
    if not run_ids:
        st.info("No runs in the selected experiments.")
    else:
        run_id = choose("Run", run_ids, "models_detail_run")
        if common.in_screenshot_mode():  # the picker is hidden there: name the run
            st.subheader(run_id)
        run = runs_by_id[run_id]
        left, right = st.columns(2)
        with left:
            st.subheader("Model config")
            try:
                st.json(run.model_config())
            except ValueError as exc:
                st.error(md_escape(str(exc)))
            record = loads_by_exp.get(run.experiment, {}).get(run.name)
            info = record["info"] if record else None
            if info:
                st.caption(md_escape(
                    f"Loaded: {info['n_params']:,} parameters · {info['vocab_size']} logits · "
                    f"context {info['max_seq_len']} · device {info['device']} · loaded by "
                    f"{info.get('loaded_by') or 'the contract'} · documents start after "
                    f"{info.get('start') or 'the bos token'}"
                ))
                for note in info.get("notes") or []:
                    st.caption(md_escape(note))
                st.json({k: v for k, v in info["config"].items()}, expanded=False)
            elif record is None:
                st.caption("Not loaded yet: **Load every run** (above) counts its parameters.")
        with right:
            st.subheader("Train config")
            try:
                train_cfg = run.train_config()
                if train_cfg is not None:
                    st.json(train_cfg)
                else:
                    st.caption(md_escape(f"No {run.shown(run.train_config_path)}."))
            except ValueError as exc:
                st.error(md_escape(str(exc)))
            st.subheader("Training log")
            row = table[table["run_id"] == run_id].iloc[0]
            if run.log_path.is_file():
                st.caption(
                    f"Final train loss {row['final_train_loss']} · final validation loss {row['final_val_loss']}"
                )
            else:
                st.caption(md_escape(f"No training log ({run.shown(run.log_path)})."))
        try:
            readme = run.readme()
        except ValueError as exc:  # a link out of the models directory: not read, said
            readme = None
            st.error(md_escape(str(exc)))
        if readme:
            with st.expander("README.md", expanded=True):
                st.markdown(safe_readme(readme))

# -- config diff ----------------------------------------------------------------------------
with tab_diff:
    chosen = choose_many("Runs to compare", list(table["run_id"]), "models_diff_runs", list(table["run_id"])[:2])
    if len(chosen) < 2:
        st.info("Pick two or more runs.")
    else:
        configs = {}
        for rid in chosen:
            run = runs_by_id[rid]
            try:
                configs[rid] = catalog.run_configs(run)  # model and training config (train.*)
            except ValueError as exc:
                st.warning(md_escape(f"{rid}: {exc}"))
        diff = catalog.config_diff(configs)
        if diff:
            st.caption("Only the keys whose values differ are shown; train.* keys come from train_config.json.")
            st.dataframe(pd.DataFrame(diff).astype(str), hide_index=True, width="stretch")
        else:
            st.success("The configs are identical.")

# -- what an experiment changed ---------------------------------------------------------------
with tab_code:
    if len(experiments) < 2:
        st.info("One experiment only: nothing to compare its code with.")
    else:
        first = default_target(experiments)
        target_name = choose("Experiment", names, "code_target", names.index(first.name) if first else 0)
        target = experiment_by_name[target_name]
        others = [n for n in names if n != target_name]
        # A base belongs to the target it was chosen for: a new target gets its own default base.
        guess = default_base(target, experiments)
        if ss.get("code_base_for") != target_name:
            ss["code_base"] = guess.name if guess else others[0]
        ss["code_base_for"] = target_name
        base_name = choose(
            "Compared with (base)", others, "code_base", others.index(guess.name) if guess and guess.name in others else 0,
            help="Default: the experiment it was forked from (named in its README), else the most "
            "similar one that is not a fork of it.",
        )  # fmt: skip
        base = experiment_by_name[base_name]
        diffs = diff_experiments(base, target)
        changed = [d for d in diffs if d.status != "unchanged"]
        st.caption(
            f"Diff of **{target_name}** against its base **{base_name}** "
            f"({base_reason(target, base, experiments)}). "
            f"{len(changed)} of {len(diffs)} files of config.py, modules/ and tokenizer code differ. "
            f"Unchanged: {', '.join(text.shown(d.path, 200) for d in diffs if d.status == 'unchanged') or 'none'}."
        )
        for d in changed:
            counts = f" +{d.added} −{d.removed}" if d.status == "changed" else ""
            with st.expander(f"{text.shown(d.path, 200)} — {d.status}{counts}", expanded=d.status == "changed"):
                if d.diff:
                    st.code(d.diff, language="diff")

# -- parameters and compute -------------------------------------------------------------------
with tab_cost:
    from sandbox.zoo.accounting import FORMULA

    st.caption(f"Counted from each loaded model (tied weights once). {FORMULA}; inference 2·N + 2·n_layers·context·d_model.")
    cost_rows = common.cost_rows([runs_by_id[rid] for rid in healthy], load=False)
    uncounted = sorted(set(healthy) - {r["run_id"] for r in cost_rows})
    if uncounted:
        st.caption(f"Not counted yet (**Load every run** counts them): {md_escape(', '.join(uncounted))}.")
    parts = [{"run_id": r["run_id"], "part": p, "parameters": n} for r in cost_rows for p, n in r["breakdown"]["parts"].items()]
    if cost_rows:
        cost = pd.DataFrame(cost_rows)
        st.dataframe(
            cost[["run_id", "parameters", "non_embedding", "embedding", "train_flops_per_token", "tokens_seen", "tokens_seen_source", "train_compute", "final_val_loss", "best_val_loss"]],
            hide_index=True, width="stretch",
            column_config={c: st.column_config.NumberColumn(format="%.3e") for c in ("train_flops_per_token", "tokens_seen", "train_compute")},
        )
        st.dataframe(
            pd.DataFrame(parts).pivot_table(index="part", columns="run_id", values="parameters", fill_value=0),
            width="stretch",
        )
        common.scaling_charts(cost_rows)

# -- a comparison card ----------------------------------------------------------------------------


def evaluate_both(run_a: str, run_b: str):
    """Evaluate both runs on the bundled corpus with the Evaluation page's default settings
    (so its cache serves both), with a progress bar per run; returns the report."""
    from sandbox.evaluation import data
    from sandbox.evaluation.parallel import evaluate_runs
    from sandbox.urlstate import evaluation as eval_url

    docs = data.sample_documents(data.load_documents("bundled"), eval_url.EvalSelection().docs, eval_url.EvalSelection().seed)
    bars = {rid: st.progress(0.0, text=md_escape(f"{rid}: starting")) for rid in (run_a, run_b)}

    def progress(run_id: str, done: int, total: int) -> None:
        bars[run_id].progress(done / total if total else 1.0, text=md_escape(f"{run_id}: {done:,} / {total:,} windows"))

    return evaluate_runs(
        common.worker_pool(), [run_a, run_b], docs, eval_url.standard_settings(common.device_name()),
        models_dir=common.models_dir(), data_label=data.BUNDLED_LABEL, progress=progress,
    )


with tab_card:
    if len(healthy) < 2:
        st.info("Two loadable runs are needed for a comparison.")
    else:
        from sandbox.text import md_escape

        # Defaults leave suspect runs out (they stay selectable).
        clean = [i for i, rid in enumerate(healthy) if rid not in suspect] or list(range(len(healthy)))
        c1, c2 = st.columns(2)
        with c1:
            a_id = choose("Run A", healthy, "card_a", clean[0])
        with c2:
            b_id = choose("Run B", healthy, "card_b", clean[-1])
        rows_ab = {
            r["run_id"]: r
            for r in common.cost_rows([runs_by_id[a_id], runs_by_id[b_id]], load=False, keep_uncounted=True)
        }
        fa, fb = rows_ab.get(a_id), rows_ab.get(b_id)
        if a_id != b_id and fa and fb and (fa["parameters"] is None or fb["parameters"] is None):
            st.info("Parameters and compute are blank until a worker counts them: **Load every run** (above).")
        if fa and fb and a_id != b_id:
            ra, rb = runs_by_id[a_id], runs_by_id[b_id]
            fresh = ss.setdefault("card_evaluations", {})
            shared = common.common_evaluation([a_id, b_id])
            if shared is None and (a_id, b_id) in fresh:  # evaluated here, but the cache could not keep it
                shared = fresh[(a_id, b_id)]
            card = compare.summary_card(
                ra, rb, experiment_by_name[ra.experiment], experiment_by_name[rb.experiment],
                fa, fb, shared, common.evaluated_texts([a_id, b_id]),
            )
            ev_part = card["evaluation"]
            with st.container(border=True, key="compare_card"):
                st.markdown(f"#### {md_escape(a_id)} vs {md_escape(b_id)}")
                st.dataframe(compare.card_table(card), hide_index=True, width="stretch")
                if ev_part["same"]:
                    st.caption(md_escape(f"Evaluated on {ev_part['text']}, the same settings for both. "
                                         "B − A of bits per byte: paired difference with its 95 % interval."))
                    if ev_part["verdict"]:
                        st.markdown(f"**Verdict:** {md_escape(ev_part['verdict'])}")
                    for note in ev_part["notes"]:
                        st.caption(md_escape(note))
                else:
                    st.warning(
                        md_escape(f"Evaluation: {compare.NOT_SAME_TEXT} ({a_id}: {ev_part['texts'][a_id]}; "
                                  f"{b_id}: {ev_part['texts'][b_id]}), so no evaluation figure compares them."),
                        icon=":material/rule:",
                    )
                    if st.button("Evaluate both on the bundled corpus", key="card_eval", icon=":material/play_arrow:",
                                 help="100 documents of the bundled corpus's validation split, the Evaluation page's default settings."):
                        report = evaluate_both(a_id, b_id)
                        for r in report.results:
                            if r.error:
                                common.show_error(RuntimeError(r.error["message"]), r.run_id)
                        if all(r.ok for r in report.results):
                            fresh[(a_id, b_id)] = report
                            st.rerun()
                for flag in card["flags"]:
                    st.error(md_escape(flag), icon=":material/warning:")
                st.markdown(f"**Code:** {md_escape(card['code_note'])}." + "".join(f"\n- {text.shown(f, 200)}" for f in card["changed_files"]))
                if card["config_diff"]:
                    st.markdown("**Config keys that differ:** " + ", ".join(text.shown(r["key"], 80) for r in card["config_diff"]))
            md = compare.card_markdown(card)
            d1, d2 = st.columns(2)
            d1.download_button("Markdown", md, file_name="comparison.md", mime="text/markdown")
            png = export.to_png(tables.table_chart(compare.card_table(card), f"{a_id} vs {b_id}", col_width=190))
            d2.download_button("PNG", png, file_name="comparison.png", mime="image/png")
        elif a_id == b_id:
            st.info("Pick two different runs.")

# -- doctor ---------------------------------------------------------------------------------
with tab_doctor:
    for exp in experiments:
        findings = findings_by_exp.get(exp.name, [])
        errors = [f for f in findings if f["severity"] == "error"]
        label = f"{md_escape(exp.name)}: " + ("ok" if not errors else f"{len(errors)} problem(s)")
        loads = loads_by_exp.get(exp.name, {})
        unloaded = [run.name for run in exp.runs if run.name not in loads and run.has_model]
        with st.expander(label, expanded=bool(errors)):
            if not errors:
                st.success(
                    "Follows the contract."
                    + (" Every run loads and runs a forward pass." if exp.runs and not unloaded else "")
                )
            if unloaded:
                st.caption(
                    f"Checked from its files only: {md_escape(', '.join(unloaded))}. **Load every run** (above) "
                    "loads them and runs a forward pass."
                )
            for f in findings:
                where = text.shown(f["file"], 200) + (f" (run {md_escape(f['run'])})" if f["run"] else "")
                box = st.error if f["severity"] == "error" else st.warning
                box(f"{md_escape(f['sentence'])}  \nRule: *{f['rule']}* · {where}")
                if f["hint"]:
                    st.caption(f"Fix: {md_escape(f['hint'])}")

# -- the URL follows the widgets (other parameters, e.g. screenshot mode, are kept) -------------
common.sync_query_params(url.to_query(ss), url.QUERY_KEYS)
