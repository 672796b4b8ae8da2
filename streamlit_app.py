"""micro-GPT sandbox: the entry script (`streamlit run streamlit_app.py -- [--models-dir D] [--ray ADDRESS|auto]`).

It only declares the pages (st.navigation) and the overview home page. All logic lives in
the `sandbox` library; pages are widgets and layout.
"""

from pathlib import Path

import streamlit as st

from pages import common
from sandbox.text import md_escape

st.set_page_config(page_title="micro-GPT sandbox", page_icon="🧪", layout="wide")

HERE = Path(__file__).parent
# (file, title, icon); a page appears once its file exists.
PAGES = [
    ("pages/models.py", "Models", ":material/view_list:"),
    ("pages/loss_curves.py", "Loss curves", ":material/show_chart:"),
    ("pages/evaluation.py", "Evaluation", ":material/fact_check:"),
    ("pages/playground.py", "Playground", ":material/edit_note:"),
    ("pages/arena.py", "Arena", ":material/how_to_vote:"),
    ("pages/compare.py", "Compare", ":material/compare_arrows:"),
]


def home() -> None:
    """Overview: what is in the models directory and where to go next."""
    st.title("micro-GPT sandbox")
    st.caption(
        "Small GPT experiments side by side: browse runs, overlay loss curves, evaluate on the "
        "same text and sample from several models at once."
    )
    summary = common.zoo_summary()
    cols = st.columns(3)
    cols[0].metric("Experiments", summary["experiments"])
    cols[1].metric("Trained runs", summary["runs"])
    device = common.device_name()
    cols[2].metric("Device", device, help="auto: each node of the Ray cluster picks cuda, else mps, else cpu" if device == "auto" else None)
    st.caption(f"Models directory: {md_escape(common.models_dir().name)} · {md_escape(common.backend_label())}")
    if problem := common.ray_backend()[1]:
        st.warning(md_escape(problem), icon=":material/cloud_off:")
    for sentence in common.refused_experiment_links():
        st.warning(md_escape(sentence), icon=":material/link_off:")
    if summary["runs"] == 0:
        st.info("No trained runs found. Add an experiment folder under the models directory.")
    st.dataframe(common.runs_overview(), hide_index=True, width="stretch")
    for file, title, icon in PAGES:
        if (HERE / file).exists():
            st.page_link(file, label=title, icon=icon)


pages = [st.Page(home, title="Overview", icon=":material/home:", default=True)]
pages += [st.Page(file, title=title, icon=icon) for file, title, icon in PAGES if (HERE / file).exists()]
# st.navigation is called on every run, and every page checks access again itself: a file of
# pages/ is never reachable by URL without the token (see pages/common.py on Streamlit's
# legacy multipage mode right after a server start).
st.session_state[common.ENTRY_KEY] = True
if common.access_ok():
    page = st.navigation(pages)
    common.screenshot_mode()
    page.run()
else:
    # Every page is known (hidden), so a shared link to one is not "Page not found" and keeps
    # its path and query parameters through the token: once it is given, the rerun opens the
    # linked page as linked. Nothing of the page runs before that.
    st.navigation(pages, position="hidden")
    common.token_form()
