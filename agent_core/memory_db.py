"""``memory.db``: the user's precious data (traces, feedback, learning, permissions, audit).

One :func:`connect` sets the pragmas; :func:`migrate` applies numbered migrations, each in its
own transaction, recorded in ``migrations``, after backing up a DB that already holds data.
A migration is a function ``mNNN_name(conn)``; append new ones to ``MIGRATIONS``, never edit
one that has shipped.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Migration = Callable[[sqlite3.Connection], None]


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements inside the caller's transaction.

    (``executescript`` would COMMIT the migration's transaction first on Python 3.11.)
    """
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def m001_conversations_and_traces(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE turns (
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            trace_id TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (conversation_id, idx)
        );
        CREATE TABLE traces (
            id TEXT PRIMARY KEY,
            conversation_id TEXT,
            created_at REAL NOT NULL,
            question TEXT NOT NULL,
            status TEXT NOT NULL,
            final_answer TEXT,
            error TEXT,
            model_json TEXT NOT NULL,
            settings_json TEXT NOT NULL,
            prompt_version TEXT NOT NULL DEFAULT '',
            prompt_blocks_json TEXT NOT NULL DEFAULT '{}',
            dropped_history_json TEXT NOT NULL DEFAULT '[]',
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            duration_ms REAL NOT NULL DEFAULT 0,
            extra_json TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX traces_created ON traces(created_at);
        CREATE TABLE steps (
            trace_id TEXT NOT NULL REFERENCES traces(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            kind TEXT NOT NULL,
            messages_json TEXT NOT NULL,
            response_schema_json TEXT,
            raw_output TEXT NOT NULL DEFAULT '',
            action_json TEXT,
            tool_name TEXT,
            tool_args_json TEXT,
            tool_outcome_json TEXT,
            observation TEXT,
            error TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            started_at REAL NOT NULL,
            duration_ms REAL NOT NULL DEFAULT 0,
            extra_json TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (trace_id, idx)
        );
        """
    )


def m002_permissions_and_audit(conn: sqlite3.Connection) -> None:
    # AUTOINCREMENT: a revoked rule's id is never reused, so "permissions revoke 3" typed
    # from an old listing cannot hit a newer rule.
    run_script(
        conn,
        """
        CREATE TABLE permission_rules (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tool TEXT NOT NULL,
            path_prefix TEXT,
            arg_patterns_json TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL
        );
        CREATE INDEX permission_rules_tool ON permission_rules(tool);
        CREATE TABLE tool_audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at REAL NOT NULL,
            tool TEXT NOT NULL,
            risk TEXT,
            arguments_json TEXT NOT NULL,
            decision TEXT,
            rule TEXT,
            answer TEXT,
            status TEXT NOT NULL,
            observation TEXT NOT NULL DEFAULT '',
            duration_ms REAL NOT NULL DEFAULT 0,
            trace_id TEXT
        );
        CREATE INDEX tool_audit_created ON tool_audit(created_at);
        CREATE INDEX tool_audit_trace ON tool_audit(trace_id);
        """,
    )


MIGRATIONS: list[Migration] = [
    m001_conversations_and_traces,
    m002_permissions_and_audit,
]


def connect(path: Path | str) -> sqlite3.Connection:
    """Open memory.db with WAL, foreign keys and a busy timeout; rows come back as ``Row``."""
    conn = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction on an autocommit connection: all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    return [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY rowid")]


def backup(conn: sqlite3.Connection, path: Path) -> Path:
    """Copy the live DB (consistently, via SQLite's backup API) next to it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.backup-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.backup-{stamp}-{n}")
        n += 1
    with sqlite3.connect(str(target)) as dest:
        conn.backup(dest)
    dest.close()
    return target


def migrate(conn: sqlite3.Connection, db_path: Path | None = None) -> list[str]:
    """Apply pending migrations; return their names. Backs up first when data exists."""
    done = set(applied_migrations(conn))
    pending = [m for m in MIGRATIONS if m.__name__ not in done]
    if pending and done and db_path is not None:
        backup(conn, db_path)
    for migration in pending:
        with transaction(conn):
            migration(conn)
            conn.execute(
                "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                (migration.__name__, time.time()),
            )
    return [m.__name__ for m in pending]


def open_memory_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    migrate(conn, path)
    return conn
