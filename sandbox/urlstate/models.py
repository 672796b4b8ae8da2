"""The Models page's selection and its URL form, so a copied link opens the same view.

Every value is checked against what is on disk (experiment names, run ids); anything else
is dropped with a warning sentence (see `sandbox.urlstate.parse`).
"""

from __future__ import annotations

from collections.abc import Mapping

from sandbox.urlstate import parse

# URL key -> session-state key of the widget it drives.
LIST_KEYS = {"exp": "models_experiments", "runs": "models_diff_runs"}
OLDER_NAMES = {"runs": ("diff",)}  # older names of a key, still read from links
ONE_KEYS = {
    "run": "models_detail_run",
    "code": "code_target",
    "base": "code_base",
    "a": "card_a",
    "b": "card_b",
}
# The page's tabs: URL value -> label. The open tab is a widget value (st.tabs with a key),
# kept in the URL as ``tab=<value>`` so a link opens on the same tab.
TABS = {
    "details": "Run details",
    "diff": "Config diff",
    "changes": "What changed",
    "cost": "Parameters & compute",
    "compare": "Compare two runs",
    "doctor": "Doctor",
}
TAB_KEY = "models_tab"
QUERY_KEYS = (*LIST_KEYS, *ONE_KEYS, "tab", "diff")


def from_query(
    params: Mapping[str, list[str] | str], experiments: list[str], run_ids: list[str]
) -> tuple[dict[str, object], list[str]]:
    """Widget values (by session-state key) that the link asks for, and a warning per bad value.

    Only keys present in the link are returned; the page keeps its defaults for the others.
    """
    allowed = {"exp": experiments, "runs": run_ids, "run": run_ids, "code": experiments, "base": experiments, "a": run_ids, "b": run_ids}
    what = {"exp": "experiment", "code": "experiment", "base": "experiment"}
    values: dict[str, object] = {}
    warnings: list[str] = []
    for key, state_key in LIST_KEYS.items():
        given, raw = parse.first_present(params, key, *OLDER_NAMES.get(key, ()))
        if given is not None:
            kept, warn = parse.parse_choices(raw, allowed[key], what=what.get(key, "run"), why="it is not in the models directory")
            values[state_key] = kept
            warnings += warn
    for key, state_key in ONE_KEYS.items():
        raw = params.get(key)
        if raw is None:
            continue
        value, warn = parse.parse_choice(raw, allowed[key], "", what=what.get(key, "run"), why="it is not in the models directory")
        if warn:
            warnings.append(warn)
        elif value:
            values[state_key] = value
    if "tab" in params:
        tab, warn = parse.parse_choice(params["tab"], TABS, "", what="tab", why=f"use one of {', '.join(TABS)}")
        if warn:
            warnings.append(warn)
        elif tab:
            values[TAB_KEY] = TABS[tab]
    return values, warnings


def to_query(state: Mapping[str, object]) -> dict[str, list[str] | str]:
    """URL parameters for the current widget values (absent widgets are left out)."""
    out: dict[str, list[str] | str] = {}
    for key, state_key in LIST_KEYS.items():
        if state_key in state:
            out[key] = [str(v) for v in state[state_key]]  # type: ignore[union-attr]
    for key, state_key in ONE_KEYS.items():
        if state.get(state_key):
            out[key] = str(state[state_key])
    tab = next((value for value, label in TABS.items() if label == state.get(TAB_KEY)), None)
    if tab is not None:
        out["tab"] = tab
    return out
