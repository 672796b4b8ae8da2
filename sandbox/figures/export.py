"""Export charts and data: PNG/SVG through vl-convert (offline), CSV through pandas.

vl-convert renders Vega-Lite without a browser or network, as long as the data is inline
in the spec and no web font is asked for (Altair's default theme asks for none).
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import vl_convert

# A chart drawn "as wide as its container" needs a width when there is no container.
EXPORT_WIDTH = 900


def inline_spec(chart: alt.TopLevelMixin, *, validate: bool = True) -> dict:
    """The chart's Vega-Lite spec with its top-level DataFrame inline.

    The spec is built around a placeholder and the rows go in afterwards as one JSON
    string written by pandas in C (NaN becomes null: a gap, as in the app), which
    Vega-Lite parses itself (``format: json``). So no row limit applies, no Python object
    is made per row and Altair never walks the data. Data attached to inner layers goes
    through Altair's own transformer, row limit included. ``validate=False`` skips
    Altair's schema check for charts whose structure the tests already check.
    """
    if getattr(chart, "width", alt.Undefined) == "container":
        chart = chart.properties(width=EXPORT_WIDTH)
    data = getattr(chart, "data", alt.Undefined)
    if not isinstance(data, pd.DataFrame):
        return chart.to_dict(validate=validate)
    placeholder = chart.copy(deep=False)
    placeholder.data = alt.NamedData(name="inline")
    spec = placeholder.to_dict(validate=validate)
    spec["data"] = inline_data(data)
    return spec


def inline_data(frame: pd.DataFrame) -> dict:
    """A Vega-Lite ``data`` object holding ``frame``'s rows as one JSON string (NaN: null)."""
    return {"values": frame.to_json(orient="records", date_format="iso"), "format": {"type": "json"}}


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document."""
    return spec_to_svg(inline_spec(chart))


def to_png(chart: alt.TopLevelMixin, scale: float = 2.0) -> bytes:
    """The chart as PNG bytes (``scale`` 2 is sharp on high-density screens and in slides)."""
    return spec_to_png(inline_spec(chart), scale=scale)


def spec_to_svg(spec: dict) -> str:
    """A standalone Vega-Lite spec (data inline) as an SVG document."""
    return vl_convert.vegalite_to_svg(spec)


def spec_to_png(spec: dict, scale: float = 2.0) -> bytes:
    """A standalone Vega-Lite spec (data inline) as PNG bytes."""
    return vl_convert.vegalite_to_png(spec, scale=scale)


def to_csv(frame: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV bytes, without the index."""
    return frame.to_csv(index=False).encode("utf-8")
