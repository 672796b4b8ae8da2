"""Read view settings from URL query parameters without trusting them.

A shared link is a request from anyone: every value is checked against what the app
offers (a list of known choices, a numeric range, a yes/no) and anything else is ignored
with a sentence the page shows as a warning. No value is ever used as a path, a module
name or code; choices are matched exactly against ``allowed``, so ``../../etc/passwd`` is
simply not a known run.

``raw`` is what ``st.query_params.get_all(key)`` returns (a list of strings), a single
string, or None when the parameter is absent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from sandbox.text import shown

MAX_VALUE_LENGTH = 300  # longer values are never legitimate here
MAX_VALUES = 500  # repeated parameters beyond this are ignored

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

Raw = str | Sequence[str] | None


def as_list(raw: Raw) -> list[str]:
    """The values of a parameter as a list (absent: empty; one string: one value)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    return [str(v) for v in list(raw)[:MAX_VALUES]]


def _last(raw: Raw) -> str | None:
    values = as_list(raw)
    return values[-1] if values else None


_NOT_A_CHOICE = "it is not one of the choices here"


def parse_choices(
    raw: Raw, allowed: Iterable[str], *, what: str = "value", why: str = _NOT_A_CHOICE
) -> tuple[list[str], list[str]]:
    """The values of ``raw`` that are exactly one of ``allowed`` (first occurrence, in
    order), and one warning per value that is not (``why`` says what it should have been)."""
    allowed_set = set(allowed)
    kept: list[str] = []
    warnings: list[str] = []
    for value in as_list(raw):
        if len(value) <= MAX_VALUE_LENGTH and value in allowed_set:
            if value not in kept:
                kept.append(value)
        else:
            warnings.append(f"Ignored {what} {shown(value)} from the link: {why}.")
    return kept, warnings


def parse_choice(
    raw: Raw, allowed: Iterable[str], default: str, *, what: str = "value", why: str = _NOT_A_CHOICE
) -> tuple[str, str | None]:
    """One value of ``allowed`` (the last one given wins), else ``default`` and a warning."""
    value = _last(raw)
    if value is None:
        return default, None
    if len(value) <= MAX_VALUE_LENGTH and value in set(allowed):
        return value, None
    return default, f"Ignored {what} {shown(value)} from the link: {why}."


def parse_number(
    raw: Raw, lo: float, hi: float, default: float, *, what: str = "number"
) -> tuple[float, str | None]:
    """A plain decimal number in [lo, hi], else ``default`` and a warning.

    Only digits, a sign, a point and an exponent are accepted: no "nan", "inf", "1_000",
    hex or expressions, which Python's ``float`` would partly take.
    """
    value = _last(raw)
    if value is None:
        return default, None
    text = value.strip()
    if len(text) > 40 or not _NUMBER.fullmatch(text):
        return default, f"Ignored {what} {shown(value)} from the link: it is not a number."
    number = float(text)
    if not lo <= number <= hi:
        return default, f"Ignored {what} {shown(value)} from the link: it must be between {lo:g} and {hi:g}."
    return number, None


def parse_bool(raw: Raw, default: bool, *, what: str = "switch") -> tuple[bool, str | None]:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case), else ``default`` and a warning."""
    value = _last(raw)
    if value is None:
        return default, None
    text = value.strip().lower()
    if text in _TRUE:
        return True, None
    if text in _FALSE:
        return False, None
    return default, f"Ignored {what} {shown(value)} from the link: use 1 or 0."


def default_runs(run_ids: Sequence[str], limit: int, skip: Collection[str] = ()) -> list[str]:
    """What a page shows before anyone chose: one run of each experiment first, then more.

    Run ids are "experiment/run"; the first run of each experiment comes before a second run
    of any, so the default view compares experiments. Runs in ``skip`` (flagged by a sanity
    check: weights that look untrained, `sandbox.zoo.sanity`) are never picked by default.
    """
    skipped = set(skip)
    run_ids = [rid for rid in run_ids if rid not in skipped]
    experiments: set[str] = set()
    firsts = []
    for rid in run_ids:
        experiment = rid.split("/", 1)[0]
        if experiment not in experiments:
            experiments.add(experiment)
            firsts.append(rid)
    ordered = firsts + [rid for rid in run_ids if rid not in firsts]
    return ordered[:limit]


def first_present(params: Mapping[str, Raw], *keys: str) -> tuple[str | None, Raw]:
    """The first of ``keys`` that ``params`` holds, and its values; ``(None, None)`` when none.

    A page's key comes first, then the older names a link may still use for the same thing
    (a list of runs was ``run`` on some pages before every page called it ``runs``).
    """
    for key in keys:
        if key in params:
            return key, params[key]
    return None, None
