"""The experiment's SQLite store (WAL mode): participants, responses, and the experiment's definition.

Durability: every response is written in its own transaction and committed
(``synchronous=FULL``: the write-ahead log is fsynced at each commit) before
the server answers 200, so a response that was acknowledged survives a
crash of the server process — or of the machine.

No duplicates: each response carries a client-made idempotency ``key``
(``UNIQUE``), and a participant answers each trial position and each
stimulus once per phase (two more ``UNIQUE`` constraints). Posting the same
key again stores nothing and reports the stored row; a different key for a
trial that is already answered is a conflict.

Tables
------
``meta(key, value)``
    ``design`` (the experiment as JSON), ``fingerprint``, ``admin_token``,
    ``secret`` (for completion codes), ``schema_version``.
``participants(participant, token_hash, condition, created, completed, completion_code)``
``responses(id, key, participant, phase, stimulus_id, response, rt, trial_index, condition, received)``
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    participant TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    condition TEXT,
    created REAL NOT NULL,
    completed REAL,
    completion_code TEXT
);
CREATE TABLE IF NOT EXISTS responses (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    participant TEXT NOT NULL REFERENCES participants(participant),
    phase TEXT NOT NULL CHECK (phase IN ('practice', 'test')),
    stimulus_id TEXT NOT NULL,
    response REAL NOT NULL,
    rt REAL,
    trial_index INTEGER NOT NULL CHECK (trial_index >= 0),
    condition TEXT,
    received REAL NOT NULL,
    UNIQUE (participant, phase, trial_index),
    UNIQUE (participant, phase, stimulus_id)
);
"""


def token_hash(token: str) -> str:
    """SHA-256 of a participant's session token (only the hash is stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What :meth:`Store.add_response` did: ``status`` is ``stored``, ``duplicate`` or ``conflict``."""

    status: str
    message: str = ""
    row: dict | None = None


class Store:
    """One experiment's SQLite database.

    Opening a new file writes the experiment's ``design`` and makes an admin
    token and a secret; opening an existing one checks that it was made for
    the same experiment (``fingerprint``). One connection is shared by the
    server's threads behind a lock; SQLite serialises the writes anyway.
    """

    def __init__(self, path: str | Path, design: str | None = None, fingerprint: str | None = None,
                 admin_token: str | None = None, synchronous: str = "FULL"):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise InputError(f"--db {self.path}: is a directory, expected a database file")
        if design is None and not self.path.exists():
            raise InputError(f"{self.path}: no such database")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise InputError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                         timeout=30.0)
            mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not an experiment database ({exc})") from None
        if str(mode).lower() != "wal":
            raise InputError(f"{self.path}: cannot switch the database to WAL mode (got {mode})")
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for stmt in filter(str.strip, _SCHEMA.split(";")):
                    self._conn.execute(stmt)
                meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
                if not meta:
                    if design is None:
                        raise InputError(f"{self.path}: not an experiment database (no design stored)")
                    token = admin_token or secrets.token_urlsafe(24)
                    rows = {"schema_version": SCHEMA_VERSION, "design": design, "fingerprint": fingerprint or "",
                            "admin_token": token, "secret": secrets.token_hex(32), "created": repr(time.time())}
                    self._conn.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", rows.items())
                    meta = rows
                elif fingerprint is not None and meta.get("fingerprint") != fingerprint:
                    raise InputError(f"--db {self.path}: holds a different experiment (other stimuli, task or "
                                     "settings); use a new database file")
                elif admin_token is not None and admin_token != meta.get("admin_token"):
                    self._conn.execute("UPDATE meta SET value = ? WHERE key = 'admin_token'", (admin_token,))
                    meta["admin_token"] = admin_token
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        self.meta = meta

    # ------------------------------------------------------------------ properties

    @property
    def admin_token(self) -> str:
        return self.meta["admin_token"]

    @property
    def design(self) -> str:
        return self.meta["design"]

    def check_admin(self, token: str | None) -> bool:
        """Whether ``token`` is the admin token (constant-time comparison)."""
        return bool(token) and hmac.compare_digest(token.encode(), self.admin_token.encode())

    def completion_code(self, participant: str, fixed: str = "") -> str:
        """``fixed`` when given, else a per-participant code: HMAC of the database's secret and the id."""
        if fixed:
            return fixed
        mac = hmac.new(bytes.fromhex(self.meta["secret"]), participant.encode(), hashlib.sha256).hexdigest()
        return mac[:10].upper()

    # ------------------------------------------------------------------ participants

    def participant(self, participant: str) -> dict | None:
        """The participant's row (without the token hash), or ``None``."""
        with self._lock:
            row = self._conn.execute("SELECT participant, token_hash, condition, created, completed, completion_code "
                                     "FROM participants WHERE participant = ?", (participant,)).fetchone()
        if row is None:
            return None
        return dict(zip(("participant", "token_hash", "condition", "created", "completed", "completion_code"), row))

    def create_participant(self, participant: str, condition: str | None) -> str | None:
        """Register a participant; returns their new session token, or ``None`` if the id is taken."""
        token = secrets.token_urlsafe(24)
        th = token_hash(token)
        with self._lock:
            cur = self._conn.execute("INSERT OR IGNORE INTO participants(participant, token_hash, condition, created) "
                                     "VALUES (?, ?, ?, ?)", (participant, th, condition, time.time()))
            if cur.rowcount == 0:
                return None
            self._tokens[participant] = th
        return token

    def check_token(self, participant: str, token: str | None) -> bool:
        """Whether ``token`` is ``participant``'s session token."""
        if not isinstance(token, str) or not token:
            return False
        th = self._tokens.get(participant)
        if th is None:
            p = self.participant(participant)
            if p is None:
                return False
            th = self._tokens[participant] = p["token_hash"]
        return hmac.compare_digest(th, token_hash(token))

    def answered(self, participant: str) -> dict[str, list[int]]:
        """Trial indices ``participant`` has answered, per phase."""
        with self._lock:
            rows = self._conn.execute("SELECT phase, trial_index FROM responses WHERE participant = ? "
                                      "ORDER BY trial_index", (participant,)).fetchall()
        out: dict[str, list[int]] = {"practice": [], "test": []}
        for phase, ti in rows:
            out[phase].append(int(ti))
        return out

    def complete(self, participant: str, code: str) -> str:
        """Mark ``participant`` complete (once) and return the completion code stored for them."""
        with self._lock:
            self._conn.execute("UPDATE participants SET completed = ?, completion_code = ? "
                               "WHERE participant = ? AND completed IS NULL", (time.time(), code, participant))
            row = self._conn.execute("SELECT completion_code FROM participants WHERE participant = ?",
                                     (participant,)).fetchone()
        return row[0]

    # ------------------------------------------------------------------ responses

    _FIELDS = ("key", "participant", "phase", "stimulus_id", "response", "rt", "trial_index", "condition")

    def add_response(self, row: dict) -> Outcome:
        """Store one validated response, committed before returning.

        ``row`` has the keys of :attr:`_FIELDS`. A repeated key whose content
        matches the stored row is a ``duplicate`` (nothing written); a
        repeated key with other content, or a new key for a trial or stimulus
        already answered, is a ``conflict``.
        """
        values = tuple(row[k] for k in self._FIELDS) + (time.time(),)
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(
                    "INSERT OR IGNORE INTO responses(key, participant, phase, stimulus_id, response, rt, trial_index, "
                    "condition, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
                inserted = cur.rowcount == 1
                existing = None
                if not inserted:
                    existing = self._conn.execute(
                        "SELECT key, participant, phase, stimulus_id, response, rt, trial_index, condition "
                        "FROM responses WHERE key = ?", (row["key"],)).fetchone()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        if inserted:
            return Outcome("stored")
        if existing is None:
            return Outcome("conflict", f"participant {row['participant']!r} already answered trial "
                                       f"{row['trial_index']} (or stimulus {row['stimulus_id']!r}) of the "
                                       f"{row['phase']} phase under another key")
        stored = dict(zip(self._FIELDS, existing))
        same = all(stored[k] == row[k] for k in ("participant", "phase", "stimulus_id", "response", "trial_index"))
        if same:
            return Outcome("duplicate", row=stored)
        return Outcome("conflict", "this key was already used for a different response")

    def count(self, phase: str | None = None) -> int:
        """Number of stored responses (of one phase, or all)."""
        with self._lock:
            if phase is None:
                return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM responses WHERE phase = ?", (phase,)).fetchone()[0]

    def rows(self, phase: str | None = "test") -> list[dict]:
        """Stored responses as dicts (``phase=None``: both phases), ordered by participant, phase, trial."""
        sql = ("SELECT key, participant, phase, stimulus_id, response, rt, trial_index, condition, received "
               "FROM responses")
        args: tuple = ()
        if phase is not None:
            sql += " WHERE phase = ?"
            args = (phase,)
        sql += " ORDER BY participant, phase, trial_index"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        names = self._FIELDS + ("received",)
        return [dict(zip(names, r)) for r in rows]

    def participants(self) -> list[dict]:
        """Every participant's row (without token hashes)."""
        with self._lock:
            rows = self._conn.execute("SELECT participant, condition, created, completed, completion_code "
                                      "FROM participants ORDER BY participant").fetchall()
        return [dict(zip(("participant", "condition", "created", "completed", "completion_code"), r)) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_store(path: str | Path) -> Store:
    """Open an existing experiment database read-write (for exports); no design is needed."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such database")
    return Store(path)
