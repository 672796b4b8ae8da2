"""A blind vote in a real browser: the names of the two runs appear only after the vote,
and the leaderboard counts it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from sandbox.arena.store import ArenaStore

from . import appdriver as drv

pytestmark = pytest.mark.browser

RUNS = ("template/gpt2_atto", "kv_variant/gqa_atto")
NAMES = ("template", "gpt2_atto", "kv_variant", "gqa_atto")


@pytest.fixture(autouse=True)
def _needs_the_runs() -> None:
    for run in RUNS:
        experiment, name = run.split("/")
        if not (drv.PROJECT_ROOT / "models" / experiment / "trained" / name / "model.pth").is_file():
            pytest.skip(f"{run} is not trained yet")


def test_a_blind_vote_reveals_the_names_and_counts(server: drv.Server, cache_dir, page: Page, console: drv.ConsoleLog) -> None:
    db = cache_dir / "arena" / "arena.sqlite3"
    before = ArenaStore(db).counts()["person_votes"] if db.exists() else 0
    drv.open_page(page, server.url("arena", {"runs": list(RUNS)}))
    main = drv.main(page)
    main.get_by_role("button", name="New battle").click()
    drv.settle(page)
    expect(main.get_by_text("Which story is better?")).to_be_visible()
    drv.screenshot(page, "arena-before-vote")
    # Blind: no run or experiment name anywhere in the main area, nor in the URL beyond the pool.
    shown = main.inner_text()
    assert [n for n in NAMES if n in shown] == []
    assert set(drv.wait_for_query(page, {"runs": list(RUNS)})) == {"runs"}

    main.get_by_role("button", name="A is better").click()
    drv.settle(page)
    reveal = main.get_by_text(re.compile(r"^A was .+, B was .+\. You chose A: .+ wins this battle\.$"))
    expect(reveal).to_be_visible()
    text = reveal.inner_text()
    at_a = re.match(r"A was (.+?), B was", text).group(1)
    assert at_a in RUNS and all(run in text for run in RUNS)
    expect(main.get_by_role("button", name="A is better")).to_have_count(0)
    drv.screenshot(page, "arena-after-vote")
    assert ArenaStore(db).counts()["person_votes"] == before + 1

    main.get_by_text("Leaderboard", exact=True).click()
    drv.settle(page)
    votes = main.get_by_test_id("stMetric").filter(has_text="Votes by people")
    expect(votes).to_contain_text(str(before + 1))
    headers, rows = drv.table_rows(main.get_by_test_id("stDataFrame").first)
    runs = [row[headers.index("run")] for row in rows]
    assert sorted(runs) == sorted(RUNS)
    drv.screenshot(page, "arena-leaderboard")
    drv.assert_clean(page, console)
