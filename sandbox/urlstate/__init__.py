"""Each page's state in the URL, one pattern for all: ``from_query`` and ``to_query``.

A link is a request from anyone: every value is checked against what the app offers and
anything else is ignored with a sentence the page shows (`parse` holds the checks). One
module per page (`evaluation`, `models`, `loss_curves`, `playground`), each with
``from_query(params, ...) -> (state, warnings)`` and ``to_query(state) -> params``, and one
set of parameter names: ``runs`` wherever a list of runs is meant, ``run`` only where
exactly one run is (older links that wrote ``run`` for a list still open). It may import
the feature packages whose settings it describes and the base modules; never Streamlit.
"""
