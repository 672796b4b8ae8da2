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


def has_huge(values: Iterable[float | None]) -> bool:
    """True when any finite value is large enough to be written in scientific notation.

    Streamlit's table refuses to format numbers beyond about 9e15 (it shows the raw digits
    with an error mark), so a page shows such a column as text made by :func:`format_number`.
    """
    return any(v is not None and math.isfinite(float(v)) and abs(float(v)) >= SCIENTIFIC_FROM for v in values)
