"""The Playground's state (runs, prompt, sampling, per-run overrides) and its URL form.

A link is untrusted input: runs are matched exactly against the ids discovery found (never
used as paths), numbers must be plain decimals inside the ranges the page's widgets offer,
and every value that is ignored gives a sentence the page shows as a warning. The ranges
here are also the widgets' ranges, so a value read from a link always fits its widget.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

from sandbox import querystate, text
from sandbox.worker.sampling import MAX_NEW_TOKENS_CAP, SamplingSettings

MAX_RUNS = 4
MAX_PROMPT_CHARS = 4000
DEFAULT_PROMPT = "Once upon a time"

# Widget and URL ranges of each sampling field: (lo, hi, is_integer).
RANGES: dict[str, tuple[float, float, bool]] = {
    "temperature": (0.0, 2.0, False),
    "top_k": (0, 1000, True),
    "top_p": (0.01, 1.0, False),
    "min_p": (0.0, 1.0, False),
    "max_new_tokens": (1, MAX_NEW_TOKENS_CAP, True),
    "seed": (0, 2**31 - 1, True),
}
# Fields a run may set for itself; the number of new tokens and eos stay shared.
OVERRIDABLE = ("temperature", "top_k", "top_p", "min_p", "seed")
DEFAULT_SETTINGS = SamplingSettings(temperature=0.8, top_k=0, top_p=0.95, min_p=0.0, max_new_tokens=120, seed=0)

# URL keys: short names for the sampling fields.
_KEYS = {
    "temperature": "t",
    "top_k": "k",
    "top_p": "p",
    "min_p": "minp",
    "max_new_tokens": "n",
    "seed": "seed",
}
QUERY_KEYS = ("run", "prompt", "eos", "ov", "tokens", "split", *_KEYS.values())
_OTHER_KEYS = ("embed", "embed_options", "screenshot")  # Streamlit's and the app's own
_OV_SEP = "|"  # ov=<run id>|t=0.5|k=20


@dataclass
class PlaygroundState:
    """Everything the Playground's controls hold."""

    runs: list[str] = field(default_factory=list)
    prompt: str = DEFAULT_PROMPT
    settings: SamplingSettings = DEFAULT_SETTINGS
    overrides: dict[str, dict[str, float | int]] = field(default_factory=dict)
    token_view: bool = False
    prompt_view: bool = False

    def settings_for(self, run_id: str) -> SamplingSettings:
        """The shared settings with ``run_id``'s own overrides applied."""
        return with_overrides(self.settings, self.overrides.get(run_id, {}))


def with_overrides(base: SamplingSettings, override: Mapping[str, float | int]) -> SamplingSettings:
    """``base`` with the overridable fields of ``override`` replaced (others are ignored)."""
    return replace(base, **{k: v for k, v in override.items() if k in OVERRIDABLE})


def _parse_field(name: str, raw: querystate.Raw, default: float | int, what: str) -> tuple[float | int, str | None]:
    """One sampling field from the link: a plain number inside the widget's range."""
    lo, hi, integer = RANGES[name]
    value, warning = querystate.parse_number(raw, -math.inf, math.inf, default, what=what)
    if warning or querystate.as_list(raw) == []:
        return default, warning
    shown = text.shown(querystate.as_list(raw)[-1])
    if not math.isfinite(value) or (integer and value != int(value)):
        kind = "a whole number" if integer else "a finite number"
        return default, f"Ignored {what} {shown} from the link: it must be {kind}."
    if name == "max_new_tokens" and value > hi:
        # Too many new tokens is capped rather than ignored: the intent is clear.
        return int(hi), f"Max new tokens {shown} from the link is over the cap; using {int(hi)}."
    if not lo <= value <= hi:
        return default, f"Ignored {what} {shown} from the link: it must be between {lo:g} and {hi:g}."
    return (int(value) if integer else float(value)), None


def _parse_settings(params: Mapping[str, querystate.Raw], base: SamplingSettings) -> tuple[SamplingSettings, list[str]]:
    values = base.as_dict()
    warnings = []
    for name, key in _KEYS.items():
        value, warning = _parse_field(name, params.get(key), values[name], what=name.replace("_", " "))
        values[name] = value
        if warning:
            warnings.append(warning)
    eos, warning = querystate.parse_bool(params.get("eos"), base.stop_at_eos, what="stop at eos")
    values["stop_at_eos"] = eos
    if warning:
        warnings.append(warning)
    return SamplingSettings(**values), warnings


def _parse_override(value: str, runs: Sequence[str]) -> tuple[str | None, dict, list[str]]:
    """One ``ov`` value: ``<run id>|t=0.5|k=20``."""
    run, *pairs = value.split(_OV_SEP)
    if run not in runs:
        return None, {}, [f"Ignored override {text.shown(value)} from the link: its run is not one of the chosen runs."]
    by_key = {key: name for name, key in _KEYS.items() if name in OVERRIDABLE}
    override: dict = {}
    warnings = []
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if key not in by_key:
            warnings.append(f"Ignored override {text.shown(pair)} for {run} from the link: it is not a per-run setting.")
            continue
        name = by_key[key]
        number, warning = _parse_field(name, raw, getattr(DEFAULT_SETTINGS, name), f"{name.replace('_', ' ')} for {run}")
        if warning:
            warnings.append(warning)
        else:
            override[name] = number
    return run, override, warnings


def state_from_query(
    params: Mapping[str, querystate.Raw], run_ids: Sequence[str], flagged: Collection[str] = ()
) -> tuple[PlaygroundState, list[str]]:
    """The state a link describes, and one warning per value that was ignored.

    ``params`` maps each key to its values (``st.query_params.get_all``); ``run_ids`` are the
    runs discovery found: only those can be chosen. Without runs in the link, two are picked,
    never one of ``flagged`` (weights that look untrained, `sandbox.zoo.sanity`).
    """
    warnings = [
        f"Ignored the link's parameter {text.shown(key)}: this page does not use it."
        for key in params
        if key not in QUERY_KEYS and key not in _OTHER_KEYS
    ]
    runs, bad = querystate.parse_choices(
        params.get("run"), run_ids, what="run", why="it is not a run found in the models directory"
    )
    warnings += bad
    if "run" not in params:
        runs = querystate.default_runs(run_ids, 2, skip=flagged)
    if len(runs) > MAX_RUNS:
        warnings.append(f"The link names {len(runs)} runs; the Playground shows at most {MAX_RUNS}, the first ones.")
        runs = runs[:MAX_RUNS]
    prompt = DEFAULT_PROMPT
    given = querystate.as_list(params.get("prompt"))
    if given:
        prompt = given[-1]
        if len(prompt) > MAX_PROMPT_CHARS:
            warnings.append(f"The link's prompt is {len(prompt)} characters; only the first {MAX_PROMPT_CHARS} are used.")
            prompt = prompt[:MAX_PROMPT_CHARS]
    settings, bad = _parse_settings(params, DEFAULT_SETTINGS)
    warnings += bad
    overrides: dict[str, dict] = {}
    for value in querystate.as_list(params.get("ov")):
        run, override, bad = _parse_override(value, runs)
        warnings += bad
        if run is not None and override:
            overrides[run] = override
    token_view, w1 = querystate.parse_bool(params.get("tokens"), False, what="token view")
    prompt_view, w2 = querystate.parse_bool(params.get("split"), False, what="prompt tokens view")
    warnings += [w for w in (w1, w2) if w]
    state = PlaygroundState(runs, prompt, settings, overrides, token_view, prompt_view)
    return state, warnings


def _fmt(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def state_to_query(state: PlaygroundState) -> dict[str, str | list[str]]:
    """Query parameters that `state_from_query` turns back into ``state`` (defaults left out)."""
    query: dict[str, str | list[str]] = {}
    if state.runs:
        query["run"] = list(state.runs)
    if state.prompt != DEFAULT_PROMPT:
        query["prompt"] = state.prompt[:MAX_PROMPT_CHARS]
    for f in fields(SamplingSettings):
        if f.name in _KEYS and getattr(state.settings, f.name) != getattr(DEFAULT_SETTINGS, f.name):
            query[_KEYS[f.name]] = _fmt(getattr(state.settings, f.name))
    if state.settings.stop_at_eos != DEFAULT_SETTINGS.stop_at_eos:
        query["eos"] = "1" if state.settings.stop_at_eos else "0"
    ov = []
    for run in state.runs:
        override = {k: v for k, v in state.overrides.get(run, {}).items() if k in OVERRIDABLE}
        if override:
            ov.append(_OV_SEP.join([run, *(f"{_KEYS[k]}={_fmt(v)}" for k, v in override.items())]))
    if ov:
        query["ov"] = ov
    if state.token_view:
        query["tokens"] = "1"
    if state.prompt_view:
        query["split"] = "1"
    return query


LABELS = {
    "temperature": "temperature",
    "top_k": "top-k",
    "top_p": "top-p",
    "min_p": "min-p",
    "max_new_tokens": "max new tokens",
    "seed": "seed",
    "stop_at_eos": "stop at eos",
}


def _shown_value(name: str, value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "temperature" and value == 0:
        return "0 (greedy)"
    if (name in ("top_k", "min_p") and value == 0) or (name == "top_p" and value == 1.0):
        return "off"
    return _fmt(value)


def describe_settings(settings: SamplingSettings, base: SamplingSettings | None = None) -> str:
    """Settings in one line (``temperature 0.8 · top-k off · …``); with ``base``, only differences."""
    parts = [
        f"{label} {_shown_value(name, getattr(settings, name))}"
        for name, label in LABELS.items()
        if base is None or getattr(settings, name) != getattr(base, name)
    ]
    return " · ".join(parts)
