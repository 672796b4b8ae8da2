"""One SQLite database file for every battle and every verdict of the arena.

The file lives under the sandbox's cache folder (``<cache>/arena/arena.sqlite3``), or where
``$SANDBOX_ARENA_DB`` or the caller says. It is opened in WAL mode, so LAN voters read while
one writes; each call opens its own short-lived connection (safe from any thread) and waits
up to ``busy_timeout`` seconds for another writer. The schema is versioned with
``PRAGMA user_version`` and created on first use.

Nothing is lost when a write fails (database locked past the timeout, disk full, a read-only
file): the write is kept in memory, in order, and `ArenaStore.retry` stores it later; the
caller gets a `StoreError` with one sentence (never the server path, which goes to the log).
Every row has a random id and is inserted with ``ON CONFLICT DO NOTHING``, so retrying a
write that did reach the disk stores it once.

The file may be deleted or replaced while the app runs (someone clears ``.cache/``): every
connection first checks that the file is the one the store opened, and otherwise makes the
schema again in whatever is there now (a new file where there is none). Writes waiting for a
retry are kept, and a vote carries its battle, written with it when the battle is missing,
so a vote whose battle was lost with the old file is still stored. A file that is no arena
database is one sentence, on reads and writes alike, until it is moved away.

Verdicts are stored in terms of the battle's own ``run_a`` / ``run_b`` ("a": run_a is better),
whatever positions the rater saw; ``shown_order`` records those positions ("ab": run_a was
shown as A, on the left; "ba": run_b was; "both": a judge that saw both orders).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from sandbox.arena.records import (  # noqa: F401 — re-exported: callers import the records from here
    ORDERS,
    RATER_KINDS,
    VERDICTS,
    BattleRecord,
    Comparison,
    PendingWrite,
    VoteRecord,
    new_id,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DB_ENV = "SANDBOX_ARENA_DB"
DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a write waits for another writer before it fails

_SCHEMA = """
CREATE TABLE IF NOT EXISTS battles (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    prompt TEXT NOT NULL,
    settings TEXT NOT NULL,
    seed INTEGER NOT NULL,
    draw_seed INTEGER NOT NULL,
    shown_order TEXT NOT NULL CHECK (shown_order IN ('ab', 'ba')),
    run_a TEXT NOT NULL,
    fingerprint_a TEXT NOT NULL,
    text_a TEXT NOT NULL,
    run_b TEXT NOT NULL,
    fingerprint_b TEXT NOT NULL,
    text_b TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS votes (
    id TEXT PRIMARY KEY,
    battle_id TEXT NOT NULL REFERENCES battles(id),
    created REAL NOT NULL,
    rater_kind TEXT NOT NULL CHECK (rater_kind IN ('person', 'judge')),
    rater_id TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('a', 'b', 'tie', 'both_bad', 'unparsed')),
    shown_order TEXT NOT NULL CHECK (shown_order IN ('ab', 'ba', 'both')),
    rubric TEXT,
    raw TEXT
);
CREATE INDEX IF NOT EXISTS votes_battle ON votes(battle_id);
CREATE INDEX IF NOT EXISTS votes_rater ON votes(rater_kind, rater_id);
"""


class StoreError(RuntimeError):
    """A write or read of the arena database failed; the message is one sentence for a visitor."""


class _NewerSchema(sqlite3.DatabaseError):
    """The file's schema is newer than this sandbox reads."""


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def default_path() -> Path:
    """``$SANDBOX_ARENA_DB``, else ``<cache folder>/arena/arena.sqlite3``."""
    chosen = os.environ.get(DB_ENV, "").strip()
    if chosen:
        return Path(chosen).expanduser()
    from sandbox.settings import cache_dir

    return cache_dir() / "arena" / "arena.sqlite3"


# What SQLite's message says (any of the words) and the reason a visitor is given.
_REASONS = (
    (("locked", "busy"), "the database stayed busy with another writer past the timeout"),
    (("full",), "the disk (or the database's size limit) is full"),
    (("readonly", "read-only", "read only"), "the database file is read-only"),
    (("not a database", "malformed"), "the file is not a readable arena database"),
    (("unable to open",), "the database file cannot be opened"),
    (("newer sandbox",), "the database was written by a newer sandbox"),
)


def _sentence(exc: BaseException, what: str) -> str:
    """One sentence for a failed database call, without the file's path."""
    text = str(exc).lower()
    why = next((r for words, r in _REASONS if any(w in text for w in words)), f"the database said: {exc}")
    return f"The arena could not {what}: {why}."


class ArenaStore:
    """The arena's database: battles, votes, and the writes waiting for a retry.

    Thread-safe: every call opens its own connection. ``busy_timeout`` is how long a write
    waits for another writer (another thread, another Streamlit session, the CLI).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT):
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.busy_timeout = float(busy_timeout)
        self._pending: list[PendingWrite] = []
        self._pending_lock = threading.RLock()
        self.last_error: str | None = None
        self._init_schema()

    def __repr__(self) -> str:
        return f"ArenaStore({self.path.name!r}, pending={len(self._pending)})"

    # -- connections --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """A fresh connection with the busy timeout and foreign keys on (one per call), to
        the file the store opened: when it was deleted or replaced since, the schema is made
        again first (raises `sqlite3.Error` when the file there now is no arena database)."""
        if _identity(self.path) != self._identity:
            self._reopen()
        return self._open()

    def _reopen(self) -> None:
        log.warning("arena database %s was deleted or replaced while open: opening it again", self.path)
        if not self.path.exists():
            for suffix in ("-wal", "-shm"):  # the lost file's journal must not be replayed into a new one
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self._create_schema()
        self._identity = _identity(self.path)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL's NORMAL sync is durable across application crashes; only a power cut can
        # lose the last commits, a fair price for votes that arrive a few per second.
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _init_schema(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.warning("arena database folder %s cannot be made: %s", self.path.parent, exc)
            raise StoreError("The arena could not open its database: its folder cannot be created.") from None
        try:
            self._create_schema()
        except _NewerSchema as exc:
            raise StoreError(str(exc)) from None
        except sqlite3.Error as exc:
            log.warning("arena database %s cannot be opened: %s", self.path, exc)
            raise StoreError(_sentence(exc, "open its database")) from None
        self._identity = _identity(self.path)

    def _create_schema(self) -> None:
        """Create the tables unless they are there (raises `sqlite3.Error`)."""
        conn = self._open()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise _NewerSchema(
                    f"The arena database was written by a newer sandbox (schema {version}; "
                    f"this one reads up to {SCHEMA_VERSION})."
                )
            if version < SCHEMA_VERSION:
                conn.execute("BEGIN IMMEDIATE")
                # Another process may have created it while we waited for the lock.
                if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("arena database %s is in journal mode %s, not WAL", self.path, mode)
        finally:
            conn.close()

    def _pragma(self, name: str) -> object:
        conn = self._connect()
        try:
            return conn.execute(f"PRAGMA {name}").fetchone()[0]
        finally:
            conn.close()

    @property
    def schema_version(self) -> int:
        """The database's ``PRAGMA user_version``."""
        return int(self._pragma("user_version"))

    @property
    def journal_mode(self) -> str:
        """The database's journal mode ("wal" once opened)."""
        return str(self._pragma("journal_mode")).lower()

    # -- writes -------------------------------------------------------------------------

    def _insert(self, write: PendingWrite) -> None:
        """Insert ``write`` (a vote together with its battle, when it carries one) in one transaction."""
        rows = [("battles", write.battle)] if write.battle is not None else []
        rows.append(("battles" if write.kind == "battle" else "votes", write.record))
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for table, record in rows:
                row = asdict(record)
                if table == "battles":
                    row["settings"] = json.dumps(row["settings"], sort_keys=True)
                columns = list(row)
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                    "ON CONFLICT(id) DO NOTHING",
                    [row[c] for c in columns],
                )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    def _write(self, write: PendingWrite) -> None:
        """Store ``write`` after anything still pending (order matters: a vote needs its battle).

        On failure the write joins the pending queue and `StoreError` says why.
        """
        with self._pending_lock:
            if self._pending:
                self.retry()
            if self._pending:
                self._pending.append(write)
                raise StoreError(
                    f"{self.last_error} Your {write.kind} is kept in memory with "
                    f"{len(self._pending) - 1} earlier write(s) and will be saved on retry."
                )
        # The insert runs outside the lock: concurrent voters wait on SQLite's own lock
        # (busy_timeout), not on each other in this process.
        try:
            self._insert(write)
        except sqlite3.Error as exc:
            sentence = _sentence(exc, f"save a {write.kind}")
            log.warning("arena database %s: %s failed: %s", self.path, write.kind, exc)
            with self._pending_lock:
                self._pending.append(PendingWrite(write.kind, write.record, sentence, write.battle))
                self.last_error = sentence
            raise StoreError(f"{sentence} It is kept in memory and will be saved on retry.") from None

    def add_battle(self, battle: BattleRecord) -> None:
        """Store a battle (raises `StoreError` after keeping it for `retry` when the write fails)."""
        self._write(PendingWrite("battle", battle, ""))

    def add_vote(self, vote: VoteRecord, battle: BattleRecord | None = None) -> None:
        """Store a vote (raises `StoreError` after keeping it for `retry` when the write fails).

        With ``battle`` (the vote's own), the battle is written with it when it is missing:
        the database file may have been lost since the battle was stored.
        """
        if battle is not None and battle.id != vote.battle_id:
            raise ValueError("the vote is not on this battle")
        self._write(PendingWrite("vote", vote, "", battle))

    def pending(self) -> list[PendingWrite]:
        """The writes kept in memory after a failure, oldest first."""
        with self._pending_lock:
            return list(self._pending)

    def retry(self) -> int:
        """Store the pending writes in order; returns how many were stored.

        Stops at the first write that still fails (a later vote may need an earlier battle);
        `last_error` then says why, and `pending` lists what is left.
        """
        stored = 0
        with self._pending_lock:
            while self._pending:
                head = self._pending[0]
                try:
                    self._insert(head)
                except sqlite3.Error as exc:
                    sentence = _sentence(exc, f"save a {head.kind}")
                    log.warning("arena database %s: retrying a %s failed: %s", self.path, head.kind, exc)
                    self._pending[0] = PendingWrite(head.kind, head.record, sentence, head.battle)
                    self.last_error = sentence
                    return stored
                self._pending.pop(0)
                stored += 1
            self.last_error = None
        return stored

    # -- reads --------------------------------------------------------------------------

    def _query(self, sql: str, args: Iterable = ()) -> list[sqlite3.Row]:
        try:
            conn = self._connect()
            try:
                conn.row_factory = sqlite3.Row
                return conn.execute(sql, list(args)).fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning("arena database %s: read failed: %s", self.path, exc)
            raise StoreError(_sentence(exc, "read its database")) from None

    @staticmethod
    def _battle(row: sqlite3.Row) -> BattleRecord:
        data = dict(row)
        data["settings"] = json.loads(data["settings"])
        return BattleRecord(**data)

    def battle(self, battle_id: str) -> BattleRecord | None:
        """The stored battle ``battle_id``, or None."""
        rows = self._query("SELECT * FROM battles WHERE id = ?", (battle_id,))
        return self._battle(rows[0]) if rows else None

    def battles(self, limit: int | None = None) -> list[BattleRecord]:
        """Stored battles, oldest first (the last ``limit`` when given)."""
        inner = "battles" if limit is None else "(SELECT * FROM battles ORDER BY created DESC, id DESC LIMIT ?)"
        rows = self._query(f"SELECT * FROM {inner} ORDER BY created, id", () if limit is None else (int(limit),))
        return [self._battle(r) for r in rows]

    def votes(self, battle_id: str | None = None) -> list[VoteRecord]:
        """Stored votes (of one battle when given), oldest first."""
        if battle_id is None:
            rows = self._query("SELECT * FROM votes ORDER BY created, id")
        else:
            rows = self._query("SELECT * FROM votes WHERE battle_id = ? ORDER BY created, id", (battle_id,))
        return [VoteRecord(**dict(r)) for r in rows]

    def comparisons(self, rater_kind: str | None = None, rater_id: str | None = None) -> list[Comparison]:
        """Votes joined with their battles' runs, for ratings (filtered by rater when given)."""
        sql = (
            "SELECT v.id AS vote_id, v.battle_id, v.rater_kind, v.rater_id, b.run_a, b.run_b, v.verdict, "
            "b.fingerprint_a, b.fingerprint_b, v.created FROM votes v JOIN battles b ON b.id = v.battle_id"
        )
        where, args = [], []
        if rater_kind is not None:
            where.append("v.rater_kind = ?")
            args.append(rater_kind)
        if rater_id is not None:
            where.append("v.rater_id = ?")
            args.append(rater_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY v.created, v.id"
        return [Comparison(**dict(r)) for r in self._query(sql, args)]

    def judges(self) -> list[str]:
        """The model names of every judge that voted, sorted."""
        return [r[0] for r in self._query("SELECT DISTINCT rater_id FROM votes WHERE rater_kind = 'judge' ORDER BY 1")]

    def counts(self) -> dict[str, int]:
        """``{"battles", "votes", "person_votes", "judge_votes", "pending"}``."""
        row = self._query(
            "SELECT (SELECT COUNT(*) FROM battles), (SELECT COUNT(*) FROM votes), "
            "(SELECT COUNT(*) FROM votes WHERE rater_kind = 'person'), "
            "(SELECT COUNT(*) FROM votes WHERE rater_kind = 'judge')"
        )[0]
        names = ("battles", "votes", "person_votes", "judge_votes")
        return {**dict(zip(names, row, strict=True)), "pending": len(self.pending())}
