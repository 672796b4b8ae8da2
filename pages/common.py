"""App-side helpers shared by the pages: cached access to the library, shared widgets.

Everything here is thin glue around `sandbox`; logic that can be tested without Streamlit
belongs in the library.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from sandbox import discovery
from sandbox.settings import parse_app_args


@st.cache_resource(show_spinner=False)
def models_dir() -> Path:
    """The models directory chosen when the app was started (never by a request)."""
    return parse_app_args(sys.argv[1:])


@st.cache_resource(show_spinner=False)
def device_name() -> str:
    from sandbox.device import pick_device

    return pick_device()


def experiments() -> list[discovery.Experiment]:
    """Experiments under the models directory, discovered afresh (cheap: a directory listing)."""
    return discovery.discover(models_dir())


def run_ids() -> list[str]:
    """Ids ("experiment/run") of every run, in a stable order."""
    return [run.id for exp in experiments() for run in exp.runs]


def zoo_summary() -> dict[str, int]:
    exps = experiments()
    return {"experiments": len(exps), "runs": sum(len(e.runs) for e in exps)}


def runs_overview() -> pd.DataFrame:
    """One row per run: a quick look for the home page."""
    rows = [
        {"experiment": run.experiment, "run": run.name, "has log": run.log_path.is_file()}
        for exp in experiments()
        for run in exp.runs
    ]
    return pd.DataFrame(rows, columns=["experiment", "run", "has log"])


@st.cache_resource(show_spinner=False, on_release=lambda pool: pool.close_all())
def worker_pool():
    """The process-wide pool of experiment workers (shared by every browser session).

    Each worker is keyed inside the pool by experiment root, a fingerprint of its code and
    the device; a worker reloads a run by itself when the run's weights file changes.
    """
    from sandbox.loader import WorkerPool

    return WorkerPool(max_workers=4, device=device_name())


def client_for(run_id: str):
    """(worker client, run) for a run id chosen from the list; unknown ids raise UnknownRunError."""
    run = discovery.find_run(models_dir(), run_id)
    exp = discovery.find_experiment(models_dir(), run.experiment)
    return worker_pool().client(exp), run


def show_error(exc: Exception, where: str = "") -> None:
    """A worker or contract error as one red box with the sentence, and details folded away."""
    prefix = f"**{where}**: " if where else ""
    st.error(prefix + str(exc))
    hint = getattr(exc, "hint", "")
    detail = getattr(exc, "detail", "")
    if hint:
        st.caption(f"Fix: {hint}")
    if detail:
        with st.expander("Details"):
            st.code(detail, language="text")
