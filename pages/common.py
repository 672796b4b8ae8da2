"""App-side helpers shared by the pages: cached access to the library, shared widgets.

Everything here is thin glue around `sandbox`; logic that can be tested without Streamlit
belongs in the library.

One rule for untrusted text on every page: anything that comes from files, logs, uploads,
links or prompts (run and file names, log headers, error messages, READMEs) is shown as
text. Where it goes into an element that renders Markdown (st.markdown, st.caption,
st.info/warning/error/success, expander labels, progress text), it is passed through
``md_escape`` (or quoted by ``text.shown``); HTML views escape it with ``html.escape``.
Only a run's README renders as Markdown, after ``text.safe_readme`` (all three: `sandbox.text`).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from sandbox.app.shared import Shared
from sandbox.settings import parse_app_args, parse_app_ray
from sandbox.text import md_escape
from sandbox.zoo import discovery

# Right after a server start, Streamlit runs in its legacy multipage mode (a `pages/` folder
# sits beside the entry script) until some run calls st.navigation: a first request for
# /models would run pages/models.py on its own, without the entry script. Every page imports
# this module, so the first such run switches the legacy mode off for good, and
# `require_access` reruns it once, through the entry script.
PagesManager.uses_pages_directory = False
ENTRY_KEY = "_ran_via_entry_script"

# Live worker processes, all pools together (README: "at most 4 workers are alive at once").
MAX_WORKERS = 4

log = logging.getLogger("sandbox.app")

# Workers, the worker cap, the wrong-token counts, the sessions that gave the token, the
# vote ledger, the judge-run rule and the arena store: state of the whole process, never in
# st.cache_resource (any session's "clear cache" message empties that; `sandbox.app.shared`).
SHARED = Shared()


def release_shared() -> None:
    """Stop every worker and forget the limits and the arena store (tests only: no page calls it)."""
    SHARED.close_all()


def _log_to_server() -> None:
    """Send the library's log (worker tracebacks, stopped workers) to the server's stderr.

    Visitors see one sentence per error; the detail is for whoever runs the server. Once per
    process: this module is imported once, whatever the reruns.
    """
    library = logging.getLogger("sandbox")
    if not any(getattr(h, "sandbox_server_log", False) for h in library.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.sandbox_server_log = True
        library.addHandler(handler)
        library.setLevel(logging.INFO)


_log_to_server()


@st.cache_resource(show_spinner=False)
def models_dir() -> Path:
    """The models directory chosen when the app was started (never by a request)."""
    return parse_app_args(sys.argv[1:])


@st.cache_resource(show_spinner=False)
def ray_backend() -> tuple[str | None, str | None]:
    """(The Ray cluster the workers run on, or None for local processes; the sentence saying
    why a cluster asked for is not used). Chosen when the app was started (``-- --ray
    ADDRESS|auto`` or ``$SANDBOX_RAY_ADDRESS``), never by a request. Without the ``ray``
    package the app runs its workers locally and says so on the overview page."""
    address = parse_app_ray(sys.argv[1:])
    if address is None:
        return None, None
    from sandbox.worker.ray import RayUnavailable
    from sandbox.worker.ray.connect import require_ray

    try:
        require_ray()
    except RayUnavailable as exc:
        log.warning("SANDBOX_RAY_ADDRESS / --ray %s: %s; workers run as local processes", address, exc)
        return None, f"{exc} Until then the workers run as local processes."
    return address, None


def device_name() -> str:
    """The device the workers use (`SANDBOX_DEVICE`, else probed once per process in a
    subprocess: the app's own process never imports torch; on a Ray cluster "auto": each
    node picks)."""
    from sandbox.worker.backends import workers_device

    return SHARED.get("device_name", lambda: workers_device(ray_backend()[0]))


def make_pool():
    """A new pool of workers of the app's backend (local, or the Ray cluster), sharing the one cap."""
    from sandbox.worker.backends import make_pool as backend_pool

    return backend_pool(ray_backend()[0], device=device_name(), limiter=worker_limiter())


def backend_label() -> str:
    """Where the workers run, for the overview page (an address, never a path)."""
    from sandbox.worker.backends import pool_label

    return pool_label(worker_pool())


def experiments() -> list[discovery.Experiment]:
    """Experiments under the models directory, as discovered when its folders last changed.

    Discovery lists every run folder (about 15 ms for 500 runs); it is kept under a stamp of
    the models folder and each experiment's ``trained/`` folder (`discovery.tree_stamp`, a
    couple of stats per experiment), so a run folder added or removed shows at once. Also
    gives the runs distinct chart colours, the same on every page.
    """
    from sandbox.figures.colors import assign_colors

    found = list(_discovered(str(models_dir()), discovery.tree_stamp(models_dir())))
    assign_colors(run.id for exp in found for run in exp.runs)  # a global map: set on every run
    return found


@st.cache_resource(show_spinner=False, max_entries=4)
def _discovered(models: str, stamp: tuple) -> tuple[discovery.Experiment, ...]:
    """Discovery of ``models`` while its folders have ``stamp`` (frozen dataclasses: shared
    by every session as they are, never copied)."""
    return tuple(discovery.discover(Path(models)))


def refused_experiment_links() -> list[str]:
    """Sentences for experiment folders left out because they link out of the models directory
    (run folders that do are the doctor's, under their experiment)."""
    return [s for s in discovery.refused_links(models_dir()) if "/" not in s.split(" ", 1)[0]]


def run_ids() -> list[str]:
    """Ids ("experiment/run") of every run, in a stable order."""
    return [run.id for exp in experiments() for run in exp.runs]


def model_run_ids() -> list[str]:
    """Ids of the runs that have a model to load, in a stable order: the runs that are
    training logs alone (TensorBoard events, a ``metrics.csv``) are left out."""
    return [run.id for exp in experiments() for run in exp.runs if run.has_model]


def logs_only_caption() -> None:
    """One sentence when some runs are left out of a page that needs a model."""
    count = sum(1 for exp in experiments() for run in exp.runs if not run.has_model)
    if count:
        st.caption(f"{count} run{'s' if count != 1 else ''} with training logs only (no model to load) "
                   f"{'are' if count != 1 else 'is'} not offered here; {'their' if count != 1 else 'its'} "
                   "curves are on the Loss curves page.")


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


def worker_limiter():
    """The one cap on live worker processes, shared by `worker_pool` and every `lane_pool`."""
    from sandbox.worker.client import WorkerLimiter

    return SHARED.get("worker_limiter", lambda: WorkerLimiter(MAX_WORKERS))


def _close_pool(pool) -> None:
    pool.close_all()


def worker_pool():
    """The process-wide pool of experiment workers (shared by every browser session).

    Each worker is keyed inside the pool by experiment root, a fingerprint of its code and
    the device; a worker reloads a run by itself when the run's weights file changes. Its
    requests time out after ``$SANDBOX_REQUEST_TIMEOUT`` seconds (default 120). Workers are
    local processes, or Ray actors when the app was started with a Ray cluster (`ray_backend`).
    """
    return SHARED.get("worker_pool", make_pool, close=_close_pool)


def session_id() -> str:
    """This browser session's id (Streamlit's own; a kept uuid where there is none, as in
    AppTest): workers serve the requests of different sessions in turn."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None and ctx.session_id:
        return ctx.session_id
    if "_session_uuid" not in st.session_state:
        import uuid

        st.session_state["_session_uuid"] = uuid.uuid4().hex
    return st.session_state["_session_uuid"]


def lookup(run_id: str) -> tuple[discovery.Experiment, discovery.Run]:
    """(experiment, run) of a run id chosen from a list or read from a link: the pages' one
    run lookup. An id that is no run in the models directory raises `UnknownRunError`, one
    sentence that the page shows (`show_error`); ids never become paths."""
    return discovery.lookup(models_dir(), run_id)


def client_for(run_id: str, session: str | None = None):
    """(worker client, run) for a run id chosen from the list (see :func:`lookup`); with
    ``session``, the least busy replica of the run's worker for that session."""
    exp, run = lookup(run_id)
    return worker_pool().client(exp, session=session), run


def show_error(exc: Exception, where: str = "") -> None:
    """An error as one red box with its sentence and the fix hint; the details go to the
    server log, never to the visitor (tracebacks name server paths).

    A worker's own traceback was logged by `sandbox.worker.client` when its reply came; anything
    else is logged here with the app's traceback. Messages quote files and code: they are
    shown as text, never as Markdown.
    """
    from sandbox.errors import WorkerError

    prefix = f"**{md_escape(where)}**: " if where else ""
    st.error(prefix + md_escape(str(exc)))
    hint = getattr(exc, "hint", "")
    if hint:
        st.caption(f"Fix: {md_escape(hint)}")
    if not isinstance(exc, WorkerError):
        log.warning("%s: %s: %s", where or "page", type(exc).__name__, exc, exc_info=exc)


def access_ok() -> bool:
    """True when the app is open, or this browser session has already given the access token."""
    from sandbox.app.auth import expected_token

    guard_uploads()
    return expected_token() is None or bool(st.session_state.get("access_ok"))


# Files one browser session may hold on the server at once (Streamlit keeps every upload of
# a session until it ends): the Evaluation page reads only the newest.
MAX_UPLOADS_PER_SESSION = 2


def granted_sessions():
    """The browser sessions that gave the access token (`sandbox.app.uploads.SessionSet`)."""
    from sandbox.app.uploads import SessionSet

    return SHARED.get("granted_sessions", SessionSet)


def may_upload(session: str) -> bool:
    """Whether the server keeps files uploaded by browser session ``session``."""
    from sandbox.app.auth import expected_token

    return expected_token() is None or session in granted_sessions()


def upload_bounds():
    """What one session may hold in uploads (`sandbox.app.uploads.UploadBounds`)."""
    from sandbox.app.uploads import UploadBounds

    per_file = int(st.get_option("server.maxUploadSize")) * 1024 * 1024
    return UploadBounds(max_files=MAX_UPLOADS_PER_SESSION, max_bytes=MAX_UPLOADS_PER_SESSION * per_file)


def guard_uploads() -> None:
    """Put the app's rule in front of Streamlit's upload store, once per server process.

    Streamlit stores a file for any connected session that asks (no uploader widget
    needed). With the guard, a session that has not given the token gets HTTP 403 and keeps
    nothing; any other keeps its newest files within `upload_bounds` (older ones are
    dropped). Files stored before the guard (before the process's first page run) by
    sessions without the token are dropped when it is put in place.
    """
    from streamlit import runtime

    if not runtime.exists():
        return  # AppTest: no server, no upload endpoint
    manager = runtime.get_instance().uploaded_file_mgr
    with _GUARD_LOCK:
        if getattr(manager, "sandbox_guarded", False):
            return
        from starlette.exceptions import HTTPException

        store_file = manager.add_file

        def add_file(session_id: str, file) -> None:
            if not may_upload(session_id):
                log.warning("upload refused: browser session %s has not given the access token", session_id)
                raise HTTPException(status_code=403, detail="Give the access token first.")
            with _GUARD_LOCK:
                store_file(session_id, file)
                held = [(rec.file_id, len(rec.data)) for rec in list(manager.file_storage.get(session_id, {}).values())]
                for file_id in upload_bounds().to_drop(held):
                    manager.remove_file(session_id, file_id)

        manager.add_file = add_file
        manager.sandbox_guarded = True
        for session in list(manager.file_storage):
            if not may_upload(session):
                manager.remove_session_files(session)


_GUARD_LOCK = threading.RLock()


def require_access() -> None:
    """First call of every page: stop here unless access is granted.

    The entry script checks first, but right after a server start Streamlit can run a file
    of `pages/` directly (its legacy multipage mode, until the entry script has called
    st.navigation once), which would skip that check.
    """
    if ENTRY_KEY not in st.session_state:
        st.session_state[ENTRY_KEY] = False  # rerun once: this time through the entry script
        st.rerun()
    if not access_ok():
        token_form()
        st.stop()


def token_throttle():
    """The process-wide record of wrong tokens per client (`sandbox.app.auth.Throttle`)."""
    from sandbox.app.auth import Throttle

    return SHARED.get("token_throttle", Throttle)


# Wrong tokens from anywhere, together: a new browser session (one per websocket connection)
# or a forged X-Forwarded-For address starts a client's count afresh; the server's never does.
SERVER_FREE_TRIES = 50
SERVER_KEYS = ("server",)


def server_throttle():
    """The process-wide record of wrong tokens from every client together."""
    from sandbox.app.auth import Throttle

    return SHARED.get("server_throttle", lambda: Throttle(free_tries=SERVER_FREE_TRIES))


def token_wait(keys: tuple[str, ...]) -> float:
    """Seconds before the client of ``keys`` may try a token: its own wait or the server's."""
    return max(token_throttle().wait_left(keys), server_throttle().wait_left(SERVER_KEYS))


def client_keys() -> tuple[str, ...]:
    """This visitor as the token throttle and the vote ledger know it: its browser session
    and, when the server sees one, its address (shared by every session a client opens)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    keys = [f"session:{ctx.session_id if ctx else 'none'}"]
    address = st.context.ip_address
    if address:
        keys.append(f"ip:{address}")
    return tuple(keys)


def _check_token() -> None:
    """The token box's callback (before the script runs, so a right token shows the page
    at once): throttled, compared in constant time, and the box emptied either way."""
    from sandbox.app.auth import expected_token, token_matches

    ss = st.session_state
    given = ss.get("access_token", "")
    ss["access_token"] = ""  # never keep the secret (or a wrong guess) in session state
    if not given:
        return
    keys, throttle = client_keys(), token_throttle()
    if token_wait(keys) > 0:
        ss["access_message"] = "wait"  # too soon: not even compared
        return
    expected = expected_token()
    if expected is not None and token_matches(given, expected):
        throttle.succeeded(keys)
        granted_sessions().add(session_id())
        ss["access_ok"] = True
        ss.pop("access_message", None)
        return
    throttle.failed(keys)
    server_throttle().failed(SERVER_KEYS)
    ss["access_message"] = "wrong"


def token_form() -> None:
    """The only page a visitor sees until the right token is given (once per browser session)."""
    st.title("micro-GPT sandbox")
    st.text_input("Access token", type="password", key="access_token", on_change=_check_token)
    message = st.session_state.get("access_message")
    wait = token_wait(client_keys())
    wrong = "That token does not match the one this sandbox was started with"
    if message == "wrong" and wait > 0:
        st.error(f"{wrong}; after so many wrong tries, wait {math.ceil(wait)} s before the next one.")
    elif wait > 0:
        st.error(f"Too many wrong tokens from this browser, its address or all visitors together: wait {math.ceil(wait)} s, then try again.")
    elif message == "wrong":
        st.error(f"{wrong}.")
    st.caption("Ask whoever started the sandbox for the token.")


SCREENSHOT_CSS = """
<style>
/* Screenshot mode: hide the app's chrome and every control, keep content; larger text. */
[data-testid="stSidebar"], [data-testid="stHeader"], [data-testid="stToolbar"],
[data-testid="stSidebarCollapsedControl"], [data-testid="stDecoration"],
.stMultiSelect, .stSelectbox, .stSlider, .stButton, .stToggle, .stRadio, .stTextInput,
.stTextArea, .stNumberInput, .stCheckbox, .stDownloadButton, .stFileUploader,
.stSegmentedControl, .stPills, .stFormSubmitButton, [data-testid="stForm"] { display: none !important; }
.st-key-screenshot_exit, .st-key-screenshot_exit .stButton { display: block !important; }
.st-key-screenshot_exit { opacity: 0.2; } .st-key-screenshot_exit:hover { opacity: 1; }
html, body, [data-testid="stAppViewContainer"] { font-size: 20px; }
[data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"] { font-size: 1.15rem; }
</style>
"""


def in_screenshot_mode() -> bool:
    """Whether this run shows the page in screenshot mode (``?screenshot=1``)."""
    return st.query_params.get("screenshot") == "1"


def altair_chart(chart, **kwargs):
    """`st.altair_chart`, with the larger chart fonts of screenshot mode when it is on."""
    if in_screenshot_mode():
        from sandbox.curves.charts import large_text

        chart = large_text(chart)
    return st.altair_chart(chart, **kwargs)


def screenshot_mode() -> bool:
    """The sidebar toggle for clean figures; the state is in the URL (`?screenshot=1`)."""
    on = in_screenshot_mode()
    if on:
        st.html(SCREENSHOT_CSS)
        with st.container(key="screenshot_exit"):
            if st.button("Exit screenshot mode", type="tertiary"):
                del st.query_params["screenshot"]
                st.rerun()
        return True
    if st.sidebar.toggle("Screenshot mode", help="Hide controls and enlarge text for a clean figure."):
        st.query_params["screenshot"] = "1"
        st.rerun()
    return False


def common_evaluation(run_ids: list[str]):
    """The newest cached evaluation of all ``run_ids`` on the same text and settings (an
    `sandbox.evaluation.report.Report`), else None; see `sandbox.evaluation.cache.common_evaluation`."""
    from sandbox.evaluation import cache

    return cache.common_evaluation(models_dir(), run_ids)


def evaluated_texts(run_ids: list[str]) -> dict[str, list[str]]:
    """What text each run's cached evaluations used, newest first."""
    from sandbox.evaluation import cache

    return cache.evaluated_texts(models_dir(), run_ids)


def flagged_runs() -> set[str]:
    """Runs a sanity check found suspect (weights that look untrained): never picked by default."""
    from sandbox.zoo import sanity

    return sanity.flagged_run_ids([run for exp in experiments() for run in exp.runs])


def lane_pool(lane: int):
    """Extra workers for the Playground: lane 1, 2, 3 each hold one more worker per experiment.

    A worker answers one request at a time, so two runs of one experiment generate side by
    side only with a worker each (lane 0 is `worker_pool`; see `sandbox.playground.columns.assign_lanes`).
    Their workers count against the same cap as the main pool's (`worker_limiter`).
    """
    return SHARED.get(f"lane_pool:{int(lane)}", make_pool, close=_close_pool)


# Judge runs spend the owner's API key: one at a time in the whole app (README: "Reliability").
JUDGE_RUNS_AT_ONCE = 1


def judge_runs():
    """The admission rule for judge runs (`sandbox.app.admission.Admission`)."""
    from sandbox.app.admission import Admission

    return SHARED.get("judge_runs", lambda: Admission("judge run", at_once=JUDGE_RUNS_AT_ONCE, per_session=1))


def vote_ledger():
    """What each visitor has voted on (`sandbox.app.votes.VoteLedger`): a battle's content
    once, and a bounded number of votes in all."""
    from sandbox.app.votes import VoteLedger

    return SHARED.get("vote_ledger", VoteLedger)


def arena_store():
    """The arena's one store of this process (`sandbox.arena.store.ArenaStore`): its writes
    waiting for a retry are every session's. Raises `StoreError` when the database cannot
    be opened (tried again on the next call)."""
    from sandbox.arena.store import ArenaStore

    return SHARED.get("arena_store", ArenaStore)


def client_in_lane(run_id: str, lane: int, session: str | None = None):
    """`client_for`, but on the worker of ``lane`` (0: the shared pool)."""
    if lane == 0:
        return client_for(run_id, session)
    exp, run = lookup(run_id)
    return lane_pool(lane).client(exp, session=session), run


def run_breakdown(run: discovery.Run, load: bool = True) -> dict | None:
    """Parameter breakdown of a run: from the disk cache, else counted in its worker (and
    stored); with ``load`` False, None instead of starting a worker."""
    from sandbox.zoo import accounting

    breakdown = accounting.cached_breakdown(run)
    if breakdown is None and load:
        client, _ = client_for(run.id)
        breakdown = client.request("params", run=run.name)
        accounting.store_breakdown(run, breakdown)
    return breakdown


def cost_rows(runs: list[discovery.Run], load: bool = True, keep_uncounted: bool = False) -> list[dict]:
    """Parameters, compute and loss outcome per run; a run that fails shows its error and is
    skipped. A run not counted yet (``load`` False) is skipped too, or kept with its
    parameters and compute unknown (None) when ``keep_uncounted``."""
    from sandbox.zoo import accounting

    rows = []
    for run in runs:
        try:
            breakdown = run_breakdown(run, load)
            if breakdown is not None or keep_uncounted:
                rows.append({**accounting.run_figures(run, breakdown), "breakdown": breakdown})
        except Exception as exc:  # noqa: BLE001 — one broken run must not stop the page
            show_error(exc, run.id)
    return rows


def scaling_charts(rows: list[dict], loss: str = "final_val_loss") -> None:
    """The two scaling scatters (loss vs non-embedding parameters, vs training compute)."""
    from sandbox.figures import tables
    from sandbox.zoo import accounting

    points = accounting.scaling_points(rows)
    title = loss.replace("_", " ").replace("val", "validation")
    left, right = st.columns(2)
    for col, x, x_title in ((left, "non_embedding", "non-embedding parameters"), (right, "train_compute", "training compute (FLOPs)")):
        with col:
            chart = tables.scaling_scatter(points, x, x_title, loss, title)
            altair_chart(chart, width="content")
            chart_downloads(lambda chart=chart: chart, f"loss_vs_{x}", f"scaling_{x}")
    missing = points[points["train_compute"].isna()]["run_id"].tolist()
    if missing:
        st.caption(f"No training compute for: {md_escape(', '.join(missing))} (tokens seen unknown).")
    # The fits of these scatters (per group, with intervals and the compute multiplier).
    st.page_link("pages/compare.py", label="Fit scaling laws and compute multipliers", icon=":material/compare_arrows:",
                 query_params={"view": "scaling"})  # fmt: skip


def chart_downloads(chart_fn, name: str, key: str) -> None:
    """PNG and SVG buttons for a chart; the file is rendered only when clicked."""
    from sandbox.figures import export

    with st.container(horizontal=True):
        st.download_button(
            "PNG", lambda: export.to_png(chart_fn()), f"{name}.png", "image/png",
            key=f"{key}_png", on_click="ignore", icon=":material/image:",
        )  # fmt: skip
        st.download_button(
            "SVG", lambda: export.to_svg(chart_fn()), f"{name}.svg", "image/svg+xml",
            key=f"{key}_svg", on_click="ignore", icon=":material/image:",
        )  # fmt: skip


def sync_query_params(wanted: dict[str, list[str] | str], page_keys) -> None:
    """Make the URL show ``wanted`` for this page's keys, keeping every other parameter
    (screenshot mode, Streamlit's own); the URL is only written when it changes."""
    current = {key: st.query_params.get_all(key) for key in st.query_params}
    others = {k: v for k, v in current.items() if k not in set(page_keys)}
    target = {**others, **{k: v if isinstance(v, list) else [v] for k, v in wanted.items()}}
    target = {k: v for k, v in target.items() if v}  # an empty list is an absent parameter
    if target != current:
        st.query_params.from_dict(target)
