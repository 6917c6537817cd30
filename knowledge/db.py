"""``knowledge.db``: one :func:`connect` and the numbered migrations.

The knowledge base is not precious (it can be rebuilt from the folders), but it is large and
slow to rebuild, so its schema is migrated like memory.db's: functions ``mNNN_name(conn)``,
each applied in its own transaction and recorded in ``migrations``. Append new ones to
``MIGRATIONS``; never edit one that has shipped.

The vector table is not created here: its width is the embedding model's dimension, known
only when an embedder is attached (see :mod:`knowledge.store`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# sqlean is a drop-in sqlite3 built with extension loading enabled (the stdlib module on
# this machine is compiled without it) and a recent SQLite with FTS5.
import sqlean
import sqlite_vec

Connection = Any  # sqlean.Connection; typed loosely because sqlean ships no stubs
Migration = Callable[[Connection], None]

BUSY_TIMEOUT_MS = 10_000
# Large enough that a 100k-chunk vector table stays in memory between queries; the KNN scan
# is then CPU-bound instead of re-reading pages (measured: 32 ms -> 9 ms at k=100).
CACHE_KIB = 131_072
MMAP_BYTES = 1 << 30


def run_script(conn: Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction.

    (``executescript`` would COMMIT the migration's transaction first on Python 3.11.)
    Statements containing ``;`` inside a trigger body are kept whole: a trigger is written
    with its body ending in ``END;`` and is split on that.
    """
    buffer = ""
    for piece in script.split(";"):
        buffer += piece
        statement = buffer.strip()
        if not statement:
            buffer = ""
            continue
        if statement.upper().startswith("CREATE TRIGGER") and not statement.upper().endswith("END"):
            buffer += ";"
            continue
        conn.execute(statement)
        buffer = ""


def m001_documents_chunks_fts(conn: Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE index_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE folders (
            path TEXT PRIMARY KEY,
            status TEXT NOT NULL DEFAULT 'online',
            added_at REAL NOT NULL,
            last_scan_at REAL,
            note TEXT
        );
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            folder TEXT NOT NULL,
            content_hash TEXT,
            size INTEGER NOT NULL DEFAULT 0,
            mtime_ns INTEGER NOT NULL DEFAULT 0,
            type TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            error TEXT,
            warning TEXT,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            model_id TEXT,
            indexed_at REAL
        );
        CREATE INDEX documents_folder ON documents(folder);
        CREATE INDEX documents_hash ON documents(content_hash);
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            text TEXT NOT NULL,
            heading TEXT NOT NULL DEFAULT '',
            page INTEGER,
            start_char INTEGER NOT NULL,
            end_char INTEGER NOT NULL,
            token_count INTEGER NOT NULL,
            text_hash TEXT NOT NULL,
            embedding BLOB NOT NULL
        );
        CREATE INDEX chunks_document ON chunks(document_id, seq);
        CREATE INDEX chunks_text_hash ON chunks(text_hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, heading,
            content='chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
        END;
        CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
            VALUES ('delete', old.id, old.text, old.heading);
        END;
        """,
    )


def m002_index_runs(conn: Connection) -> None:
    """Indexing runs, so one that was killed is seen (and marked interrupted) later."""
    run_script(
        conn,
        """
        CREATE TABLE index_runs (
            id INTEGER PRIMARY KEY,
            pid INTEGER NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            status TEXT NOT NULL,
            scope TEXT NOT NULL DEFAULT 'all',
            summary TEXT
        );
        CREATE INDEX documents_status ON documents(status);
        """,
    )


MIGRATIONS: list[Migration] = [
    m001_documents_chunks_fts,
    m002_index_runs,
]


def connect(path: Path | str) -> Connection:
    """Open knowledge.db with sqlite-vec loaded, WAL, foreign keys and a busy timeout."""
    conn = sqlean.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlean.Row
    conn.enable_load_extension(True)
    try:
        sqlite_vec.load(conn)
    finally:
        conn.enable_load_extension(False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # NORMAL is durable across application crashes in WAL mode; a power cut may lose the last
    # transactions, which the next scan re-does (the index is derived data).
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    return conn


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (KeyboardInterrupt too)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def applied_migrations(conn: Connection) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    return [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY rowid")]


def migrate(conn: Connection) -> list[str]:
    """Apply pending migrations, each in its own transaction; return their names."""
    done = set(applied_migrations(conn))
    pending = [m for m in MIGRATIONS if m.__name__ not in done]
    for migration in pending:
        with transaction(conn):
            # Another process may have migrated while we waited for the write lock.
            if conn.execute(
                "SELECT 1 FROM migrations WHERE name = ?", (migration.__name__,)
            ).fetchone():
                continue
            migration(conn)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                (migration.__name__, time.time()),
            )
    return [m.__name__ for m in pending]


def open_db(path: Path) -> Connection:
    """Create the folder if needed, connect and migrate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    migrate(conn)
    return conn
