"""The Playground's state (runs, prompt, sampling, per-run overrides) and its URL form.

A link is untrusted input: runs are matched exactly against the ids discovery found (never
used as paths), numbers must be plain decimals inside the ranges the page's widgets offer,
and every value that is ignored gives a sentence the page shows as a warning. The ranges
here are also the widgets' ranges, so a value read from a link always fits its widget.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields

from sandbox import text
from sandbox.playground.settings import (
    DEFAULT_SETTINGS,
    OVERRIDABLE,
    RANGES,
    SamplingSettings,
    format_value,
    with_overrides,
)
from sandbox.urlstate import parse

MAX_RUNS = 4
MAX_PROMPT_CHARS = 4000
DEFAULT_PROMPT = "Once upon a time"


# URL keys: short names for the sampling fields.
_KEYS = {
    "temperature": "t",
    "top_k": "k",
    "top_p": "p",
    "min_p": "minp",
    "max_new_tokens": "n",
    "seed": "seed",
}
RUNS_KEYS = ("runs", "run")  # the runs shown; "run" is their older name, still read from links
QUERY_KEYS = (*RUNS_KEYS, "prompt", "eos", "ov", "tokens", "split", *_KEYS.values())
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


def _parse_field(name: str, raw: parse.Raw, default: float | int, what: str) -> tuple[float | int, str | None]:
    """One sampling field from the link: a plain number inside the widget's range."""
    lo, hi, integer = RANGES[name]
    value, warning = parse.parse_number(raw, -math.inf, math.inf, default, what=what)
    if warning or parse.as_list(raw) == []:
        return default, warning
    shown = text.shown(parse.as_list(raw)[-1])
    if not math.isfinite(value) or (integer and value != int(value)):
        kind = "a whole number" if integer else "a finite number"
        return default, f"Ignored {what} {shown} from the link: it must be {kind}."
    if name == "max_new_tokens" and value > hi:
        # Too many new tokens is capped rather than ignored: the intent is clear.
        return int(hi), f"Max new tokens {shown} from the link is over the cap; using {int(hi)}."
    if not lo <= value <= hi:
        return default, f"Ignored {what} {shown} from the link: it must be between {lo:g} and {hi:g}."
    return (int(value) if integer else float(value)), None


def _parse_settings(params: Mapping[str, parse.Raw], base: SamplingSettings) -> tuple[SamplingSettings, list[str]]:
    values = base.as_dict()
    warnings = []
    for name, key in _KEYS.items():
        value, warning = _parse_field(name, params.get(key), values[name], what=name.replace("_", " "))
        values[name] = value
        if warning:
            warnings.append(warning)
    eos, warning = parse.parse_bool(params.get("eos"), base.stop_at_eos, what="stop at eos")
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


def names_runs(params: Mapping[str, parse.Raw]) -> bool:
    """True when a link chooses the runs itself (else the page picks its default runs)."""
    return parse.first_present(params, *RUNS_KEYS)[0] is not None


def from_query(
    params: Mapping[str, parse.Raw], run_ids: Sequence[str], flagged: Collection[str] = ()
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
    runs, bad = parse.parse_choices(
        parse.first_present(params, *RUNS_KEYS)[1], run_ids, what="run", why="it is not a run found in the models directory"
    )
    warnings += bad
    if not names_runs(params):
        runs = parse.default_runs(run_ids, 2, skip=flagged)
    if len(runs) > MAX_RUNS:
        warnings.append(f"The link names {len(runs)} runs; the Playground shows at most {MAX_RUNS}, the first ones.")
        runs = runs[:MAX_RUNS]
    prompt = DEFAULT_PROMPT
    given = parse.as_list(params.get("prompt"))
    if given:
        prompt = given[-1]
        if len(prompt) > MAX_PROMPT_CHARS:
            warnings.append(f"The link's prompt is {len(prompt)} characters; only the first {MAX_PROMPT_CHARS} are used.")
            prompt = prompt[:MAX_PROMPT_CHARS]
    settings, bad = _parse_settings(params, DEFAULT_SETTINGS)
    warnings += bad
    overrides: dict[str, dict] = {}
    for value in parse.as_list(params.get("ov")):
        run, override, bad = _parse_override(value, runs)
        warnings += bad
        if run is not None and override:
            overrides[run] = override
    token_view, w1 = parse.parse_bool(params.get("tokens"), False, what="token view")
    prompt_view, w2 = parse.parse_bool(params.get("split"), False, what="prompt tokens view")
    warnings += [w for w in (w1, w2) if w]
    state = PlaygroundState(runs, prompt, settings, overrides, token_view, prompt_view)
    return state, warnings


def to_query(state: PlaygroundState) -> dict[str, str | list[str]]:
    """Query parameters that `from_query` turns back into ``state`` (defaults left out)."""
    query: dict[str, str | list[str]] = {}
    if state.runs:
        query["runs"] = list(state.runs)
    if state.prompt != DEFAULT_PROMPT:
        query["prompt"] = state.prompt[:MAX_PROMPT_CHARS]
    for f in fields(SamplingSettings):
        if f.name in _KEYS and getattr(state.settings, f.name) != getattr(DEFAULT_SETTINGS, f.name):
            query[_KEYS[f.name]] = format_value(getattr(state.settings, f.name))
    if state.settings.stop_at_eos != DEFAULT_SETTINGS.stop_at_eos:
        query["eos"] = "1" if state.settings.stop_at_eos else "0"
    ov = []
    for run in state.runs:
        override = {k: v for k, v in state.overrides.get(run, {}).items() if k in OVERRIDABLE}
        if override:
            ov.append(_OV_SEP.join([run, *(f"{_KEYS[k]}={format_value(v)}" for k, v in override.items())]))
    if ov:
        query["ov"] = ov
    if state.token_view:
        query["tokens"] = "1"
    if state.prompt_view:
        query["split"] = "1"
    return query
