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
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DB_ENV = "SANDBOX_ARENA_DB"
DEFAULT_BUSY_TIMEOUT = 5.0  # seconds a write waits for another writer before it fails

RATER_KINDS = ("person", "judge")
VERDICTS = ("a", "b", "tie", "both_bad", "unparsed")
ORDERS = ("ab", "ba", "both")

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


def new_id() -> str:
    """A random row id (hex), unique without asking the database."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class BattleRecord:
    """One battle: the same prompt, settings and seed through two runs."""

    id: str
    prompt: str
    settings: dict  # the sampling settings (SamplingSettings.as_dict()), seed included
    seed: int  # the sampling seed both runs used
    draw_seed: int  # the seed that drew the pair and the positions
    shown_order: str  # "ab": run_a shown as A (left); "ba": run_b shown as A
    run_a: str
    fingerprint_a: str
    text_a: str
    run_b: str
    fingerprint_b: str
    text_b: str
    source: str = ""  # where the prompt came from ("story openings", "user", a file name)
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.shown_order not in ("ab", "ba"):
            raise ValueError(f"shown_order must be 'ab' or 'ba', not {self.shown_order!r}")
        if self.run_a == self.run_b:
            raise ValueError("a battle needs two different runs")


@dataclass(frozen=True)
class VoteRecord:
    """One verdict on a battle, by a person or a judge (see the module docstring for terms)."""

    id: str
    battle_id: str
    rater_kind: str  # "person" or "judge"
    rater_id: str  # an anonymous session id, or the judge's model name
    verdict: str  # "a", "b", "tie", "both_bad" or "unparsed" (judge answers only)
    shown_order: str  # "ab", "ba" or "both"
    rubric: str | None = None  # judge votes: the rubric the judge was given
    raw: str | None = None  # judge votes: JSON with both orders' raw answers
    created: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.rater_kind not in RATER_KINDS:
            raise ValueError(f"rater_kind must be one of {', '.join(RATER_KINDS)}, not {self.rater_kind!r}")
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {self.verdict!r}")
        if self.shown_order not in ORDERS:
            raise ValueError(f"shown_order must be one of {', '.join(ORDERS)}, not {self.shown_order!r}")
        if not self.rater_id:
            raise ValueError("a vote needs a rater id")


@dataclass(frozen=True)
class Comparison:
    """A vote joined with its battle's runs: what the ratings need."""

    vote_id: str
    battle_id: str
    rater_kind: str
    rater_id: str
    run_a: str
    run_b: str
    verdict: str
    fingerprint_a: str
    fingerprint_b: str
    created: float


@dataclass(frozen=True)
class PendingWrite:
    """A write that failed and waits in memory for `ArenaStore.retry`."""

    kind: str  # "battle" or "vote"
    record: BattleRecord | VoteRecord
    error: str  # the sentence of the last failure


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
        """A fresh connection with the busy timeout and foreign keys on (one per call)."""
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
            conn = self._connect()
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
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
        except sqlite3.Error as exc:
            log.warning("arena database %s cannot be opened: %s", self.path, exc)
            raise StoreError(_sentence(exc, "open its database")) from None

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
        row = asdict(write.record)
        if write.kind == "battle":
            row["settings"] = json.dumps(row["settings"], sort_keys=True)
        table = "battles" if write.kind == "battle" else "votes"
        columns = list(row)
        conn = self._connect()
        try:
            conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                "ON CONFLICT(id) DO NOTHING",
                [row[c] for c in columns],
            )
        finally:
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
                self._pending.append(PendingWrite(write.kind, write.record, sentence))
                self.last_error = sentence
            raise StoreError(f"{sentence} It is kept in memory and will be saved on retry.") from None

    def add_battle(self, battle: BattleRecord) -> None:
        """Store a battle (raises `StoreError` after keeping it for `retry` when the write fails)."""
        self._write(PendingWrite("battle", battle, ""))

    def add_vote(self, vote: VoteRecord) -> None:
        """Store a vote (raises `StoreError` after keeping it for `retry` when the write fails)."""
        self._write(PendingWrite("vote", vote, ""))

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
                    self._pending[0] = PendingWrite(head.kind, head.record, sentence)
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
