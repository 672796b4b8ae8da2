"""Numbers as people read them in tables, terminals and exports.

A diverged or untrained run has a perplexity of 1e33 and more; written with four decimals
in fixed point that is a 38-character number that pushes every other column away. Values
this large switch to scientific notation; ordinary values keep their fixed decimals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SCIENTIFIC_FROM = 1e6  # |value| at or above this is written as 1.2345e+33


def format_number(value: float | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals, in scientific notation when it is huge.

    None gives "" (a missing value); NaN and infinities stay visible as "nan", "inf", "-inf"
    (a diverged value is a finding, not a blank).
    """
    if value is None:
        return ""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= SCIENTIFIC_FROM:
        return f"{value:.{digits}e}"
    return f"{value:.{digits}f}"


def printf_format(values: Iterable[float | None], digits: int = 4) -> str:
    """A printf format for a whole table column (e.g. Streamlit's NumberColumn):
    fixed point, or scientific when any finite value in it is huge."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
    return f"%.{digits}e" if finite and max(finite) >= SCIENTIFIC_FROM else f"%.{digits}f"
