"""The hostile suite: every fault and hostile case found so far, run as tests; prints tried / passed.

    .venv/bin/python bench/hostile.py                 # every group
    .venv/bin/python bench/hostile.py --group 1 --group 3  # groups whose name starts so
    .venv/bin/python bench/hostile.py --collect-only  # count the cases without running them

Groups 1-8 are the cases of "Reliability II" (a raw websocket client, a dictionary-encoded
Parquet file, a trickling or oversized judge on 127.0.0.1, ...); "R1" is the first round
(hostile models folders and links, worker faults, locked databases, input limits, tokens),
kept so that the next round starts from all of it. Each case is a pytest test of the suite
(`make test` runs them too); this only selects and counts them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "tests/test_hostile_clients.py"

GROUPS: dict[str, list[str]] = {
    "1 clear cache from a session without the token": [f"{HOSTILE}::test_clear_cache_from_a_stranger_keeps_the_wrong_token_limit",
                                                       f"{HOSTILE}::test_clear_cache_keeps_workers_limits_and_pending_votes"],
    "2 Parquet dictionary bomb": ["tests/test_input_limits.py::test_a_dictionary_bomb_is_refused_before_its_rows_are_unpacked"],
    "3 uploads before the token": [f"{HOSTILE}::test_a_session_without_the_token_keeps_no_upload",
                                   f"{HOSTILE}::test_a_session_with_the_token_holds_its_newest_uploads_only",
                                   f"{HOSTILE}::test_uploads_made_before_the_first_page_run_are_dropped_by_it",
                                   f"{HOSTILE}::test_an_upload_with_the_token_reaches_the_evaluation_page"],
    "4 hostile judge endpoint": ["tests/test_arena_judge.py::test_a_trickling_answer_times_out_on_the_whole_answer",
                                 "tests/test_arena_judge.py::test_an_oversized_answer_is_refused_without_being_read_whole",
                                 "tests/test_arena_judge.py::test_a_long_answer_is_stored_cut_keeping_its_verdict",
                                 "tests/test_arena_judge.py::test_a_lone_surrogate_in_an_answer_is_stored_replaced",
                                 "tests/test_page_arena.py::test_a_judge_run_waits_while_another_session_has_one_going",
                                 "tests/test_arena_headless.py::test_listing_the_battles_to_judge_reads_no_stored_answer"],
    "5 lone surrogates in files and worker errors": ["tests/test_text_entry.py"],
    "6 blind votes rigged": ["tests/test_page_arena.py::test_without_a_new_seed_a_voter_never_meets_a_revealed_battle_again",
                             "tests/test_page_arena.py::test_the_vote_ledger_takes_a_content_once_and_a_bounded_number_of_votes"],
    "7 arena database deleted or replaced": ["tests/test_arena_store.py::test_a_deleted_database_is_created_again_and_the_pending_votes_are_kept",
                                             "tests/test_arena_store.py::test_a_database_replaced_by_another_file_is_read_from_the_new_file",
                                             "tests/test_arena_store.py::test_a_database_replaced_by_junk_gives_one_sentence_and_keeps_the_write",
                                             "tests/test_page_arena.py::test_a_database_replaced_by_junk_is_one_sentence_on_every_section"],
    "8 token guessing, fit output, key echoes": [f"{HOSTILE}::test_a_guesser_gains_nothing_by_opening_a_new_session_for_every_try",
                                                 "tests/test_auth.py::test_a_quiet_key_starts_afresh",
                                                 "tests/test_analysis_scaling.py::test_a_group_is_not_its_own_variant",
                                                 "tests/test_analysis_scaling.py::test_the_fit_command_names_a_missing_interval_instead_of_printing_nan",
                                                 "tests/test_arena_judge.py::test_the_key_is_masked_however_it_is_echoed"],
    "R1 first round: links, markup, worker faults, databases, limits, tokens": [
        "tests/test_security.py", "tests/test_worker_faults.py", "tests/test_faults.py", "tests/test_arena_store.py",
        "tests/test_input_limits.py", "tests/test_auth.py"],
}  # fmt: skip


class Tally:
    """A pytest plugin: each case's outcome, by node id."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.collected: list[str] = []

    def pytest_collection_modifyitems(self, items) -> None:
        self.collected = [item.nodeid for item in items]

    def pytest_runtest_logreport(self, report) -> None:
        if report.failed or report.skipped or report.when == "call":
            self.outcomes.setdefault(report.nodeid, report.outcome)


def _in(nodeid: str, selection: str) -> bool:
    """Whether a collected case is one that ``selection`` (a file or a test, pytest's way) names."""
    return nodeid == selection or nodeid.startswith((selection + "::", selection + "["))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", action="append", default=[], help="run the groups whose name starts with this")
    parser.add_argument("--collect-only", action="store_true", help="count the cases, run nothing")
    args = parser.parse_args(argv)
    groups = {name: ids for name, ids in GROUPS.items() if not args.group or any(name.startswith(g) for g in args.group)}
    selections = list(dict.fromkeys(s for ids in groups.values() for s in ids))
    tally = Tally()
    extra = ["--collect-only"] if args.collect_only else []
    pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT), *extra, *selections], plugins=[tally])
    for name, ids in groups.items():
        cases = [n for n in tally.collected if any(_in(n, s) for s in ids)]
        passed = sum(tally.outcomes.get(n) == "passed" for n in cases)
        print(f"{name}: {len(cases)} tried" + ("" if args.collect_only else f", {passed} passed"))
    passed = sum(outcome == "passed" for outcome in tally.outcomes.values())
    print(f"hostile suite: {len(tally.collected)} tried" + ("" if args.collect_only else f", {passed} passed"))
    return 0 if args.collect_only or passed == len(tally.collected) else 1


if __name__ == "__main__":
    sys.exit(main())
