"""The experiment's SQLite store (WAL mode): participants, responses, and the experiment's definition.

Durability: a response is committed (``synchronous=FULL``: the write-ahead
log is fsynced at each commit) before the server answers 200, so a
response that was acknowledged survives a crash of the server process — or
of the machine. Writes go through one writer thread that commits whatever
is waiting as one transaction (group commit: one fsync for many answers
under load, each answer in its own savepoint); every waiting request is
answered only after that commit. Reads use a second connection, which WAL
lets run while a commit is under way.

No duplicates: each response carries a client-made idempotency ``key``
(``UNIQUE``), and a participant answers each trial position and each
stimulus once per phase (two more ``UNIQUE`` constraints). Posting the same
key again stores nothing and reports the stored row; a different key for a
trial that is already answered is a conflict.

Tables
------
``meta(key, value)``
    ``design`` (the experiment as JSON), ``fingerprint``, ``admin_token``,
    ``secret`` (for completion codes and signed links), ``schema_version``, ``stimulus_set``
    (the served stimulus set's :func:`ipe.fingerprint.stimulus_fingerprint`).

Start-up failures (a read-only folder, a full disk, not a database) are one
line naming the cause, and a database this start created is removed again.
Neither connection memory-maps the database (``mmap_size=0``). A commit
that fails while serving raises :class:`StoreUnavailable` for the waiting
requests (the server answers 503) and the writer goes on. Exports and
``ipe experiment links`` open the file read-only (``readonly=True``: SQLite
``mode=ro``).
``participants(participant, token_hash, condition, created, completed, completion_code)``
``responses(id, key, participant, phase, stimulus_id, response, rt, trial_index, condition, received)``
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import queue
import secrets
import sqlite3
import threading
import time
from concurrent.futures import Future
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


class StoreUnavailable(RuntimeError):
    """The database cannot be written right now (disk full, files made read-only, I/O error)."""


def _why(exc: BaseException) -> str:
    """A one-line reason for an SQLite failure, naming the usual causes plainly."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = " ".join(str(exc).split())
    if name == "SQLITE_FULL" or "disk is full" in text:
        return "the disk is full"
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return f"the database or its folder is read-only ({text})"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return f"cannot open the database file ({text}); is its folder writable?"
    if name.startswith("SQLITE_IOERR") or "disk I/O" in text:
        return f"disk I/O error ({text})"
    return text


def _start_failure(path: Path, exc: BaseException) -> InputError:
    """The one-line error for a database that could not be opened or set up."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_NOTADB" or "not a database" in str(exc):
        return InputError(f"{path}: not an experiment database ({exc})")
    return InputError(f"--db {path}: cannot use the database: {_why(exc)}")


@dataclass(frozen=True)
class Outcome:
    """What :meth:`Store.add_response` did: ``status`` is ``stored``, ``duplicate``, ``conflict`` or ``closed``
    (the participant has completed: nothing more is taken)."""

    status: str
    message: str = ""
    row: dict | None = None


class Store:
    """One experiment's SQLite database.

    Opening a new file writes the experiment's ``design`` and makes an admin
    token and a secret; opening an existing one checks that it was made for
    the same experiment (``fingerprint``). One connection is shared by the
    writer thread (see the module docstring); reads go through a second one.
    """

    def __init__(self, path: str | Path, design: str | None = None, fingerprint: str | None = None,
                 admin_token: str | None = None, synchronous: str = "FULL", readonly: bool = False,
                 stimulus_set: str | None = None):
        self.path = Path(path)
        self.readonly = readonly
        if self.path.exists() and self.path.is_dir():
            raise InputError(f"--db {self.path}: is a directory, expected a database file")
        if (design is None or readonly) and not self.path.exists():
            raise InputError(f"{self.path}: no such database")
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise InputError(f"synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
        self._tokens: dict[str, tuple[str, str | None]] = {}
        self._lock = threading.Lock()  # guards the reader connection
        self._closed = False
        if readonly:
            self._open_readonly()
            return
        made = self._made = [p for p in (self.path, *self._sidecars()) if not p.exists()]
        try:
            self._setup(design, fingerprint, admin_token, synchronous, stimulus_set)
        except BaseException as exc:
            for conn in ("_conn", "_reader"):
                c = getattr(self, conn, None)
                if c is not None:
                    c.close()
            if self.path in made:  # nothing left behind: the files this call made go again
                for p in made:
                    try:
                        p.unlink()
                    except OSError:
                        pass
            if isinstance(exc, sqlite3.Error):
                raise _start_failure(self.path, exc) from None
            raise
        self._queue: queue.Queue = queue.Queue()
        self._writer = threading.Thread(target=self._write_loop, name="ipe-experiment-writer", daemon=True)
        self._writer.start()

    def _sidecars(self) -> tuple[Path, Path, Path]:
        return tuple(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm", "-journal"))

    def _open_readonly(self) -> None:
        # mode=ro: reads only, never creates or changes a file (works on a read-only folder as long as no
        # server has the database open with an unfinished write-ahead log).
        try:
            self._conn = None
            self._reader = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           check_same_thread=False, isolation_level=None, timeout=30.0)
            self._reader.execute("PRAGMA query_only=ON")
            self.meta = dict(self._reader.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.Error as exc:
            if getattr(self, "_reader", None) is not None:
                self._reader.close()
            if "no such table" in str(exc):
                raise InputError(f"{self.path}: not an experiment database (no design stored)") from None
            raise _start_failure(self.path, exc) from None
        if "design" not in self.meta:
            self._reader.close()
            raise InputError(f"{self.path}: not an experiment database (no design stored)")

    def _setup(self, design, fingerprint, admin_token, synchronous, stimulus_set) -> None:
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--db {self.path}: cannot create the folder {parent} ({exc.strerror or exc})") \
                from None
        if not self.path.exists() and not os.access(parent, os.W_OK | os.X_OK):
            raise InputError(f"--db {self.path}: the folder {parent} is not writable")
        self._conn = self._connect()
        # No memory-mapped I/O of the database file: a file that stops being writable or shrinks then gives
        # an error on the next read or write instead of a SIGBUS that kills the process.
        self._conn.execute("PRAGMA mmap_size=0")
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise InputError(f"{self.path}: cannot switch the database to WAL mode (got {mode})")
        self._conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._conn.execute("PRAGMA foreign_keys=ON")
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
            if stimulus_set and not meta.get("stimulus_set"):  # also fills it in for a database made before
                self._conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('stimulus_set', ?)",
                                   (stimulus_set,))
                meta = {**meta, "stimulus_set": stimulus_set}
            self._conn.execute("COMMIT")
        except BaseException:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        self.meta = meta
        self._reader = self._connect()
        self._reader.execute("PRAGMA mmap_size=0")
        self._reader.execute("PRAGMA query_only=ON")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0)

    # ------------------------------------------------------------------ the writer

    MAX_BATCH = 256
    """Most writes committed together."""

    def _write_loop(self) -> None:
        conn = self._conn
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
            results = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                for fn, fut in batch:
                    conn.execute("SAVEPOINT one")
                    try:
                        results.append((fut, fn(conn), None))
                        conn.execute("RELEASE one")
                    except Exception as exc:  # this write fails alone; the others still commit
                        conn.execute("ROLLBACK TO one")
                        conn.execute("RELEASE one")
                        results.append((fut, None, exc))
                conn.execute("COMMIT")
            except Exception as exc:  # the commit itself failed: nothing of the batch is stored
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                failure = StoreUnavailable(_why(exc)) if isinstance(exc, sqlite3.Error) else exc
                for _fn, fut in batch:
                    if not fut.done():
                        fut.set_exception(failure)
                continue
            for fut, value, exc in results:  # answered only now, after the commit
                if exc is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(value)

    def submit(self, fn) -> Future:
        """Run ``fn(connection)`` in the writer's next transaction; the future resolves after its commit."""
        if self.readonly:
            raise RuntimeError("the store was opened read-only")
        if self._closed:
            raise RuntimeError("the store is closed")
        fut: Future = Future()
        self._queue.put((fn, fut))
        return fut

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._reader.execute(sql, args).fetchall()

    # ------------------------------------------------------------------ properties

    @property
    def admin_token(self) -> str:
        return self.meta["admin_token"]

    @property
    def design(self) -> str:
        return self.meta["design"]

    @property
    def stimulus_set(self) -> str:
        """Fingerprint of the stimulus set served (``""`` for a database made before it was recorded)."""
        return self.meta.get("stimulus_set", "")

    def check_admin(self, token: str | None) -> bool:
        """Whether ``token`` is the admin token (constant-time comparison)."""
        return bool(token) and hmac.compare_digest(token.encode(), self.admin_token.encode())

    def link_signature(self, participant: str) -> str:
        """The signature of ``participant``'s instructor-signed link: 22 URL-safe characters (128 bits) of an
        HMAC-SHA256 of the database's secret and the id (``ipe experiment links``; ``serve --signed-links``)."""
        mac = hmac.new(bytes.fromhex(self.meta["secret"]), b"ipe-link\0" + participant.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")

    def check_link(self, participant: str, sig: str | None) -> bool:
        """Whether ``sig`` is the signature of ``participant``'s link (constant-time comparison)."""
        return isinstance(sig, str) and hmac.compare_digest(sig.encode(), self.link_signature(participant).encode())

    def completion_code(self, participant: str, fixed: str = "") -> str:
        """``fixed`` when given, else a per-participant code: HMAC of the database's secret and the id."""
        if fixed:
            return fixed
        mac = hmac.new(bytes.fromhex(self.meta["secret"]), participant.encode(), hashlib.sha256).hexdigest()
        return mac[:10].upper()

    # ------------------------------------------------------------------ participants

    def participant(self, participant: str) -> dict | None:
        """The participant's row (with the token hash), or ``None``."""
        rows = self._read("SELECT participant, token_hash, condition, created, completed, completion_code "
                          "FROM participants WHERE participant = ?", (participant,))
        if not rows:
            return None
        return dict(zip(("participant", "token_hash", "condition", "created", "completed", "completion_code"),
                        rows[0]))

    def create_participant(self, participant: str, condition: str | None) -> str | None:
        """Register a participant; returns their new session token, or ``None`` if the id is taken."""
        token = secrets.token_urlsafe(24)
        th = token_hash(token)

        def insert(conn):
            cur = conn.execute("INSERT OR IGNORE INTO participants(participant, token_hash, condition, created) "
                               "VALUES (?, ?, ?, ?)", (participant, th, condition, time.time()))
            return cur.rowcount == 1

        if not self.submit(insert).result():
            return None
        self._tokens[participant] = (th, condition)
        return token

    def _cached(self, participant: str) -> tuple[str, str | None] | None:
        hit = self._tokens.get(participant)
        if hit is None:
            p = self.participant(participant)
            if p is None:
                return None
            hit = self._tokens[participant] = (p["token_hash"], p["condition"])
        return hit

    def check_token(self, participant: str, token: str | None) -> bool:
        """Whether ``token`` is ``participant``'s session token."""
        if not isinstance(token, str) or not token:
            return False
        hit = self._cached(participant)
        return hit is not None and hmac.compare_digest(hit[0], token_hash(token))

    def condition(self, participant: str) -> str | None:
        """The condition ``participant`` was assigned at the start of the session."""
        hit = self._cached(participant)
        return None if hit is None else hit[1]

    def answered(self, participant: str) -> dict[str, list[int]]:
        """Trial indices ``participant`` has answered, per phase."""
        rows = self._read("SELECT phase, trial_index FROM responses WHERE participant = ? ORDER BY trial_index",
                          (participant,))
        out: dict[str, list[int]] = {"practice": [], "test": []}
        for phase, ti in rows:
            out[phase].append(int(ti))
        return out

    def complete(self, participant: str, code: str) -> str:
        """Mark ``participant`` complete (once) and return the completion code stored for them."""

        def update(conn):
            conn.execute("UPDATE participants SET completed = ?, completion_code = ? "
                         "WHERE participant = ? AND completed IS NULL", (time.time(), code, participant))
            return conn.execute("SELECT completion_code FROM participants WHERE participant = ?",
                                (participant,)).fetchone()[0]

        return self.submit(update).result()

    # ------------------------------------------------------------------ responses

    _FIELDS = ("key", "participant", "phase", "stimulus_id", "response", "rt", "trial_index", "condition")

    def add_response(self, row: dict) -> Outcome:
        """Store one validated response; returns after it is committed.

        ``row`` has the keys of :attr:`_FIELDS`. A repeated key whose content
        matches the stored row is a ``duplicate`` (nothing written); a
        repeated key with other content, or a new key for a trial or stimulus
        already answered, is a ``conflict``.
        """
        return self.add_response_future(row).result()

    def add_response_future(self, row: dict) -> Future:
        """:meth:`add_response` without waiting: a future that resolves to the :class:`Outcome` after the commit."""
        values = tuple(row[k] for k in self._FIELDS) + (time.time(),)

        def insert(conn):
            done = conn.execute("SELECT completed FROM participants WHERE participant = ?",
                                (row["participant"],)).fetchone()
            if done is not None and done[0] is not None:  # completed: only a repeat of a stored answer is acked
                cur = None
            else:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO responses(key, participant, phase, stimulus_id, response, rt, "
                    "trial_index, condition, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            if cur is not None and cur.rowcount == 1:
                return Outcome("stored")
            existing = conn.execute("SELECT key, participant, phase, stimulus_id, response, rt, trial_index, "
                                    "condition FROM responses WHERE key = ?", (row["key"],)).fetchone()
            if existing is None and cur is not None:
                return Outcome("conflict", f"participant {row['participant']!r} already answered trial "
                                           f"{row['trial_index']} (or stimulus {row['stimulus_id']!r}) of the "
                                           f"{row['phase']} phase under another key")
            stored = dict(zip(self._FIELDS, existing)) if existing is not None else None
            if stored is not None and all(stored[k] == row[k] for k in ("participant", "phase", "stimulus_id",
                                                                         "response", "trial_index")):
                return Outcome("duplicate", row=stored)
            if cur is None:
                return Outcome("closed", f"participant {row['participant']!r} has completed the experiment; "
                                         "no more answers are taken")
            return Outcome("conflict", "this key was already used for a different response")

        return self.submit(insert)

    def count(self, phase: str | None = None) -> int:
        """Number of stored responses (of one phase, or all)."""
        if phase is None:
            return self._read("SELECT COUNT(*) FROM responses")[0][0]
        return self._read("SELECT COUNT(*) FROM responses WHERE phase = ?", (phase,))[0][0]

    def rows(self, phase: str | None = "test") -> list[dict]:
        """Stored responses as dicts (``phase=None``: both phases), ordered by participant, phase, trial."""
        sql = ("SELECT key, participant, phase, stimulus_id, response, rt, trial_index, condition, received "
               "FROM responses")
        args: tuple = ()
        if phase is not None:
            sql += " WHERE phase = ?"
            args = (phase,)
        sql += " ORDER BY participant, phase, trial_index"
        names = self._FIELDS + ("received",)
        return [dict(zip(names, r)) for r in self._read(sql, args)]

    def participants(self) -> list[dict]:
        """Every participant's row (without token hashes)."""
        rows = self._read("SELECT participant, condition, created, completed, completion_code "
                          "FROM participants ORDER BY participant")
        return [dict(zip(("participant", "condition", "created", "completed", "completion_code"), r)) for r in rows]

    def close(self) -> None:
        """Finish the pending writes and close both connections."""
        if self._closed:
            return
        self._closed = True
        if not self.readonly:
            self._queue.put(None)
            self._writer.join()
        with self._lock:
            self._reader.close()
        if self._conn is not None:
            self._conn.close()


def open_store(path: str | Path, readonly: bool = True) -> Store:
    """Open an existing experiment database; read-only by default (SQLite ``mode=ro``: exports, links)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such database")
    return Store(path, readonly=readonly)
