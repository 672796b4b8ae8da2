"""sandbox.urlstate.parse and the Loss curves URL: untrusted query values are checked, never used."""

from __future__ import annotations

import pytest

from sandbox import text as sandbox_text
from sandbox.curves.prepare import CurveSettings
from sandbox.urlstate import loss_curves, parse

RUNS = ["alpha/v1", "beta/v2", "beta/broken"]
HOSTILE = [
    "../../etc/passwd",
    "/etc/passwd",
    "alpha/../../../etc/shadow",
    "..%2F..%2Fetc%2Fpasswd",
    "C:\\Windows\\system32",
    "__import__('os').system('rm -rf /')",
    "<script>alert(1)</script>",
    "`rm -rf`",
    "[x](javascript:alert(1))",
    "alpha/v1\x00",
    "x" * 5000,
    "",
]


def test_choices_keep_known_values_in_order_once():
    kept, warnings = parse.parse_choices(["beta/v2", "alpha/v1", "beta/v2"], RUNS, what="run")
    assert kept == ["beta/v2", "alpha/v1"] and warnings == []
    assert parse.parse_choices(None, RUNS) == ([], [])
    assert parse.parse_choices("alpha/v1", RUNS) == (["alpha/v1"], [])


@pytest.mark.parametrize("value", HOSTILE)
def test_path_like_and_code_like_values_are_ignored_with_a_warning(value):
    kept, warnings = parse.parse_choices(["alpha/v1", value], RUNS, what="run")
    assert kept == ["alpha/v1"]
    assert len(warnings) == 1 and warnings[0].startswith("Ignored run ")
    message = warnings[0]
    assert "`" not in message.replace(sandbox_text.shown(value), "")  # no way out of the code span
    assert "\x00" not in message and len(message) < 200


def test_shown_values_are_printable_short_and_cannot_break_markdown():
    assert sandbox_text.shown("a`b") == "`ab`"
    assert sandbox_text.shown("\x1b[31mred") == "`[31mred`"
    assert len(sandbox_text.shown("y" * 500)) <= 42
    assert sandbox_text.shown("") == "an empty value"


def test_single_choice_last_value_wins_and_bad_ones_fall_back():
    assert parse.parse_choice(["step", "time"], ["step", "time"], "step") == ("time", None)
    value, warning = parse.parse_choice("../../x", ["step", "time"], "step", what="x axis")
    assert value == "step" and warning.startswith("Ignored x axis")
    assert parse.parse_choice(None, ["step"], "step") == ("step", None)


@pytest.mark.parametrize("raw", ["0.6", ".5", "0", "1e-1", "+0.25", ["0.9", "0.6"]])
def test_numbers_in_range_are_read(raw):
    value, warning = parse.parse_number(raw, 0.0, 0.99, 0.0)
    assert warning is None and 0 <= value <= 0.99


@pytest.mark.parametrize(
    "raw", ["nan", "inf", "-inf", "1e999", "0x10", "1_0", "", " ", "1/2", "--1", "0.5; drop", "2", "-0.1",
            "__import__('os')", "../../etc/passwd"],
)  # fmt: skip
def test_bad_numbers_fall_back_to_the_default_with_a_warning(raw):
    value, warning = parse.parse_number(raw, 0.0, 0.99, 0.3, what="smoothing")
    assert value == 0.3
    assert warning is not None and warning.startswith("Ignored smoothing")


def test_bools():
    for raw, expected in (("1", True), ("true", True), ("ON", True), ("0", False), ("no", False)):
        assert parse.parse_bool(raw, not expected) == (expected, None)
    value, warning = parse.parse_bool("maybe", False, what="log y")
    assert value is False and "log y" in warning
    assert parse.parse_bool(None, True) == (True, None)


def metric_options(run_ids):
    return ["train loss", "validation loss", "perplexity"]


def test_settings_round_trip_through_the_url():
    settings = CurveSettings(
        runs=("beta/v2", "alpha/v1"), metrics=("perplexity",), x="tokens", log_x=True, log_y=False,
        smoothing=0.85, trim=12.0,
    )  # fmt: skip
    query = loss_curves.to_query(settings)
    assert all(isinstance(v, list) for v in query.values())
    parsed, warnings = loss_curves.from_query(query, RUNS, metric_options)
    assert parsed == settings and warnings == []


def test_url_without_parameters_gives_the_defaults():
    settings, warnings = loss_curves.from_query({}, RUNS, metric_options)
    assert settings.runs == tuple(RUNS)
    assert settings.metrics == ("validation loss", "train loss")
    assert (settings.x, settings.log_x, settings.log_y, settings.smoothing, settings.trim) == ("step", False, False, 0, 0)
    assert warnings == []


def test_invalid_url_values_are_each_reported_and_never_used():
    params = {
        "run": ["../../etc/passwd", "alpha/v1", "beta/fresh", "nobody/else"],
        "metric": ["__import__('os')", "train loss"],
        "x": ["/etc/passwd"],
        "logx": ["yes please"],
        "smooth": ["1.5"],
        "trim": ["nan"],
    }
    settings, warnings = loss_curves.from_query(
        params, RUNS, metric_options, all_run_ids=[*RUNS, "beta/fresh"]
    )
    assert settings.runs == ("alpha/v1",)
    assert set(settings.runs) <= set(RUNS)  # only discovered runs, never a path from the link
    assert settings.metrics == ("train loss",)
    assert (settings.x, settings.log_x, settings.smoothing, settings.trim) == ("step", False, 0.0, 0.0)
    text = "\n".join(warnings)
    assert len(warnings) == 8
    assert "not a run found in the models directory" in text
    assert "`beta/fresh` has no training log yet" in text
    assert "the chosen runs do not log it" in text
    assert "between 0 and 0.99" in text


def test_a_link_with_only_unknown_runs_shows_every_run():
    settings, warnings = loss_curves.from_query({"run": ["ghost/run"]}, RUNS, metric_options)
    assert settings.runs == tuple(RUNS) and len(warnings) == 1


def test_default_runs_compare_experiments_first():
    from sandbox.urlstate.parse import default_runs

    assert default_runs(["a/1", "a/2", "b/1", "c/1"], 3) == ["a/1", "b/1", "c/1"]
    assert default_runs(["a/1", "a/2"], 2) == ["a/1", "a/2"]
    assert default_runs([], 2) == []


def test_every_page_calls_a_list_of_runs_runs_and_still_reads_the_older_names():
    """One set of parameter names: ``runs`` wherever a list of runs is meant; links written
    before (``run=`` on Loss curves and the Playground, ``diff=`` on Models) still open."""
    from sandbox.playground.settings import DEFAULT_SETTINGS
    from sandbox.urlstate import models, playground

    chosen = ["beta/v2", "alpha/v1"]
    settings, warnings = loss_curves.from_query({"run": chosen}, RUNS, metric_options)
    assert settings.runs == tuple(chosen) and warnings == []
    assert loss_curves.to_query(settings)["runs"] == chosen and "run" not in loss_curves.to_query(settings)
    state, warnings = playground.from_query({"run": chosen}, RUNS)
    assert state.runs == chosen and warnings == []
    assert playground.to_query(state)["runs"] == chosen and "run" not in playground.to_query(state)
    assert playground.names_runs({"run": chosen}) and not playground.names_runs({"prompt": ["x"]})
    back, _ = playground.from_query(playground.to_query(playground.PlaygroundState(chosen, settings=DEFAULT_SETTINGS)), RUNS)
    assert back.runs == chosen
    values, warnings = models.from_query({"diff": chosen}, ["alpha", "beta"], RUNS)
    assert values["models_diff_runs"] == chosen and warnings == []
    assert models.to_query(values)["runs"] == chosen
    # The older names are page keys: syncing the URL replaces them by the new ones.
    assert {"run", "runs"} <= set(loss_curves.QUERY_KEYS) and {"run", "runs"} <= set(playground.QUERY_KEYS)
    assert {"diff", "runs"} <= set(models.QUERY_KEYS)
