"""The arena's SQLite store: schema, restarts, concurrent voters, failed writes kept for retry."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from sandbox.arena.store import (
    SCHEMA_VERSION,
    ArenaStore,
    BattleRecord,
    StoreError,
    VoteRecord,
    new_id,
)


def make_battle(run_a: str = "x/one", run_b: str = "y/two", text: str = "once", order: str = "ab") -> BattleRecord:
    return BattleRecord(
        id=new_id(), prompt="Once upon a time", settings={"temperature": 0.8, "seed": 3}, seed=3,
        draw_seed=11, shown_order=order, run_a=run_a, fingerprint_a="fa:1:2", text_a=text + " a",
        run_b=run_b, fingerprint_b="fb:3:4", text_b=text + " b", source="test",
    )  # fmt: skip


def make_vote(battle: BattleRecord, verdict: str = "a", rater: str = "s1", kind: str = "person") -> VoteRecord:
    return VoteRecord(id=new_id(), battle_id=battle.id, rater_kind=kind, rater_id=rater, verdict=verdict,
                      shown_order=battle.shown_order if kind == "person" else "both")


def test_schema_is_created_versioned_and_in_wal_mode(tmp_path):
    path = tmp_path / "deep" / "arena.sqlite3"
    store = ArenaStore(path)
    assert path.is_file()
    assert store.schema_version == SCHEMA_VERSION
    assert store.journal_mode == "wal"
    assert store.counts() == {"battles": 0, "votes": 0, "person_votes": 0, "judge_votes": 0, "pending": 0}


def test_everything_survives_a_restart(tmp_path):
    path = tmp_path / "arena.sqlite3"
    store = ArenaStore(path)
    battle = make_battle(text="ünïcode ✓")
    store.add_battle(battle)
    vote = VoteRecord(id=new_id(), battle_id=battle.id, rater_kind="judge", rater_id="judge-model",
                      verdict="tie", shown_order="both", rubric="Be fair.", raw='{"ab": "A", "ba": "A"}')
    store.add_vote(vote)
    del store
    again = ArenaStore(path)  # a new process would do the same: open the file and read
    assert again.battle(battle.id) == battle
    assert again.votes() == [vote]
    [comparison] = again.comparisons()
    assert (comparison.run_a, comparison.run_b, comparison.verdict) == ("x/one", "y/two", "tie")
    assert again.judges() == ["judge-model"]
    assert again.battle("nope") is None


def test_concurrent_voters_are_all_stored(tmp_path):
    path = tmp_path / "arena.sqlite3"
    first = ArenaStore(path)
    second = ArenaStore(path)  # another session (or the CLI) with its own store object
    battles = [make_battle(text=str(i)) for i in range(4)]
    for b in battles:
        first.add_battle(b)
    threads, per_thread = 10, 40
    written: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def voter(t: int) -> None:
        store = first if t % 2 else second
        start.wait()
        for i in range(per_thread):
            vote = make_vote(battles[(t + i) % len(battles)], verdict=("a", "b", "tie", "both_bad")[i % 4], rater=f"s{t}")
            try:
                store.add_vote(vote)
            except BaseException as exc:  # noqa: BLE001 — collected and asserted below
                errors.append(exc)
            with lock:
                written.append(vote.id)

    def reader() -> None:
        start.wait()
        for _ in range(20):
            first.comparisons()

    workers = [threading.Thread(target=voter, args=(t,)) for t in range(threads)]
    workers.append(threading.Thread(target=reader))
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors
    assert first.pending() == [] and second.pending() == []
    stored = {v.id for v in ArenaStore(path).votes()}
    assert stored == set(written) and len(stored) == threads * per_thread


def test_a_locked_database_keeps_votes_for_retry(tmp_path):
    path = tmp_path / "arena.sqlite3"
    store = ArenaStore(path, busy_timeout=0.2)
    battle = make_battle()
    store.add_battle(battle)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer that holds the lock too long
    try:
        first, second = make_vote(battle, "a"), make_vote(battle, "b")
        with pytest.raises(StoreError) as err:
            store.add_vote(first)
        message = str(err.value)
        assert "busy" in message and "kept in memory" in message
        assert str(tmp_path) not in message and "arena.sqlite3" not in message
        with pytest.raises(StoreError, match="kept in memory with 1 earlier write"):
            store.add_vote(second)
        assert [p.record for p in store.pending()] == [first, second]
        assert store.retry() == 0 and len(store.pending()) == 2 and "busy" in store.last_error
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.retry() == 2
    assert store.pending() == [] and store.last_error is None
    assert [v.id for v in store.votes()] == [first.id, second.id]


def test_a_full_disk_keeps_the_battle_and_its_vote(tmp_path, monkeypatch):
    path = tmp_path / "arena.sqlite3"
    store = ArenaStore(path)
    real_connect = store._connect

    def full_connect() -> sqlite3.Connection:
        conn = real_connect()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite then answers SQLITE_FULL
        return conn

    monkeypatch.setattr(store, "_connect", full_connect)
    battle = make_battle(text="x" * 200_000)  # needs new pages
    with pytest.raises(StoreError, match="full"):
        store.add_battle(battle)
    vote = make_vote(battle)
    with pytest.raises(StoreError, match="kept in memory"):
        store.add_vote(vote)  # queued behind its battle, not written before it
    assert [p.kind for p in store.pending()] == ["battle", "vote"]
    monkeypatch.setattr(store, "_connect", real_connect)  # space was freed
    assert store.retry() == 2
    assert store.battle(battle.id) == battle and store.votes() == [vote]


def test_a_read_only_file_keeps_the_vote(tmp_path, monkeypatch):
    path = tmp_path / "arena.sqlite3"
    store = ArenaStore(path)
    battle = make_battle()
    store.add_battle(battle)

    # chmod does not stop root, so the file is opened the way SQLite opens a read-only file.
    def read_only() -> sqlite3.Connection:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=1)

    monkeypatch.setattr(store, "_connect", read_only)
    vote = make_vote(battle, "both_bad")
    with pytest.raises(StoreError, match="read-only"):
        store.add_vote(vote)
    assert store.pending()[0].record == vote and "read-only" in store.pending()[0].error
    monkeypatch.undo()
    store.add_vote(make_vote(battle, "tie"))  # the next write first stores the pending one
    assert [v.verdict for v in store.votes()] == ["both_bad", "tie"]


def test_a_retried_write_that_did_land_is_stored_once(tmp_path):
    store = ArenaStore(tmp_path / "arena.sqlite3")
    battle = make_battle()
    store.add_battle(battle)
    store.add_battle(battle)  # e.g. an error after the commit, then a retry
    assert len(store.battles()) == 1


def test_unusable_files_get_one_sentence(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a readable arena database") as err:
        ArenaStore(junk)
    assert str(tmp_path) not in str(err.value)
    newer = tmp_path / "newer.sqlite3"
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer sandbox"):
        ArenaStore(newer)


def test_default_path_is_under_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SANDBOX_ARENA_DB", raising=False)
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path / "cache"))
    assert ArenaStore().path == tmp_path / "cache" / "arena" / "arena.sqlite3"
    monkeypatch.setenv("SANDBOX_ARENA_DB", str(tmp_path / "elsewhere.db"))
    assert ArenaStore().path == tmp_path / "elsewhere.db"


def test_records_refuse_bad_values():
    battle = make_battle()
    with pytest.raises(ValueError, match="verdict"):
        make_vote(battle, verdict="left")
    with pytest.raises(ValueError, match="rater_kind"):
        make_vote(battle, kind="robot")
    with pytest.raises(ValueError, match="two different runs"):
        make_battle(run_a="x/one", run_b="x/one")
    with pytest.raises(ValueError, match="shown_order"):
        make_battle(order="left")


# -- Reliability II, 7: the database file deleted or replaced while the app runs ---------------------


def test_a_deleted_database_is_created_again_and_the_pending_votes_are_kept(tmp_path):
    path = tmp_path / "arena.sqlite3"
    store = ArenaStore(path, busy_timeout=0.2)
    first = make_battle()
    store.add_battle(first)
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    waiting = make_vote(first)
    with pytest.raises(StoreError):
        store.add_vote(waiting, first)  # kept in memory, with its battle
    lock.execute("ROLLBACK")
    lock.close()
    for name in (path.name, path.name + "-wal", path.name + "-shm"):
        (tmp_path / name).unlink(missing_ok=True)

    second = make_battle(text="again")
    store.add_battle(second)  # first the waiting vote, with its battle (lost with the file)
    store.add_vote(make_vote(second), second)
    assert store.pending() == []
    assert {b.id for b in store.battles()} == {first.id, second.id}
    assert waiting in store.votes(), "the vote that waited for a retry is stored"
    assert ArenaStore(path).counts()["votes"] == 2, "the new file has the schema and every write"


def test_a_database_replaced_by_another_file_is_read_from_the_new_file(tmp_path):
    path = tmp_path / "arena.sqlite3"
    store = ArenaStore(path)
    store.add_battle(make_battle())
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).close()  # an empty SQLite file, no tables
    other.replace(path)
    for name in (path.name + "-wal", path.name + "-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    assert store.counts()["battles"] == 0
    store.add_battle(make_battle(text="new"))
    assert len(store.battles()) == 1


def test_a_database_replaced_by_junk_gives_one_sentence_and_keeps_the_write(tmp_path):
    path = tmp_path / "arena.sqlite3"
    store = ArenaStore(path)
    (tmp_path / "junk").write_bytes(b"not sqlite " * 1000)
    (tmp_path / "junk").replace(path)
    for name in (path.name + "-wal", path.name + "-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    battle = make_battle()
    with pytest.raises(StoreError, match="not a readable arena database") as err:
        store.add_battle(battle)
    assert str(tmp_path) not in str(err.value)
    assert [p.record for p in store.pending()] == [battle]
    with pytest.raises(StoreError, match="not a readable arena database"):
        store.counts()
    path.unlink()  # the owner moves the junk away: the next write recreates the file
    store.add_vote(make_vote(battle), battle)
    assert store.pending() == [] and store.counts()["votes"] == 1
