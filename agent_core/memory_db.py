"""``memory.db``: the user's precious data (traces, feedback, learning, permissions, audit).

One :func:`connect` sets the pragmas; :func:`migrate` applies numbered migrations, each in its
own transaction, recorded in ``migrations``, after backing up a DB that already holds data.
A migration is a function ``mNNN_name(conn)``; append new ones to ``MIGRATIONS``, never edit
one that has shipped.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

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
        """,
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


# The learning loop's tables (issue 5). They name traces by id without a FOREIGN KEY:
# TraceStore.save writes with INSERT OR REPLACE, and a REPLACE deletes the old row, which
# would cascade to (or be blocked by) the user's ratings. Forgetting a trace cleans these up
# explicitly (agent_core/learning/forget.py).
def m003_learning_feedback(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            trace_id TEXT NOT NULL,
            value INTEGER NOT NULL CHECK (value IN (-1, 1)),
            comment TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            superseded_by INTEGER REFERENCES ratings(id) ON DELETE SET NULL
        );
        CREATE INDEX ratings_trace ON ratings(trace_id);
        CREATE TABLE corrections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            trace_id TEXT NOT NULL,
            question TEXT NOT NULL,
            original_answer TEXT,
            answer TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            superseded_by INTEGER REFERENCES corrections(id) ON DELETE SET NULL,
            embedding BLOB,
            embedding_model TEXT
        );
        CREATE INDEX corrections_trace ON corrections(trace_id);
        """,
    )


def m004_learning_experiences(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE experiences (
            id TEXT PRIMARY KEY,
            task TEXT NOT NULL,
            task_template TEXT NOT NULL,
            signature TEXT NOT NULL,
            script_json TEXT NOT NULL,
            workflow TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active',
            successes INTEGER NOT NULL DEFAULT 0,
            failures INTEGER NOT NULL DEFAULT 0,
            uses INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            last_used_at REAL,
            embedding BLOB,
            embedding_model TEXT
        );
        CREATE INDEX experiences_signature ON experiences(signature);
        CREATE TABLE experience_sources (
            experience_id TEXT NOT NULL REFERENCES experiences(id) ON DELETE CASCADE,
            trace_id TEXT NOT NULL,
            added_at REAL NOT NULL,
            PRIMARY KEY (experience_id, trace_id)
        );
        CREATE INDEX experience_sources_trace ON experience_sources(trace_id);
        """,
    )


def m005_learning_lessons(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE lessons (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            text TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'candidate',
            helpful INTEGER NOT NULL DEFAULT 0,
            harmful INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE lesson_evidence (
            lesson_id INTEGER NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
            trace_id TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (lesson_id, trace_id, source)
        );
        CREATE INDEX lesson_evidence_trace ON lesson_evidence(trace_id);
        CREATE TABLE lesson_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            lesson_id INTEGER REFERENCES lessons(id) ON DELETE CASCADE,
            op TEXT NOT NULL,
            payload_json TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL
        );
        CREATE TABLE lesson_inputs (
            source TEXT PRIMARY KEY,
            processed_at REAL NOT NULL
        );
        """,
    )


def m006_learning_prompt_versions(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE prompt_versions (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            origin TEXT NOT NULL,
            base_id TEXT NOT NULL,
            parent_id TEXT,
            system_text TEXT NOT NULL,
            lessons_json TEXT NOT NULL DEFAULT '[]',
            exemplars_json TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL,
            score REAL,
            scores_json TEXT NOT NULL DEFAULT '{}',
            reason TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE prompt_activations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            version_id TEXT NOT NULL REFERENCES prompt_versions(id) ON DELETE CASCADE,
            activated_at REAL NOT NULL,
            reason TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE refinement_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at REAL NOT NULL,
            heartbeat_at REAL,
            finished_at REAL,
            status TEXT NOT NULL,
            current_id TEXT,
            candidate_id TEXT,
            current_score REAL,
            candidate_score REAL,
            reason TEXT NOT NULL DEFAULT '',
            report_json TEXT NOT NULL DEFAULT '{}'
        );
        """,
    )


def m007_rating_embeddings(conn: sqlite3.Connection) -> None:
    """An up-rated answer is a confirmed answer for similar questions: its question's
    vector is kept with the rating, as a correction's is."""
    run_script(
        conn,
        """
        ALTER TABLE ratings ADD COLUMN embedding BLOB;
        ALTER TABLE ratings ADD COLUMN embedding_model TEXT
        """,
    )


MIGRATIONS: list[Migration] = [
    m001_conversations_and_traces,
    m002_permissions_and_audit,
    m003_learning_feedback,
    m004_learning_experiences,
    m005_learning_lessons,
    m006_learning_prompt_versions,
    m007_rating_embeddings,
]


def connect(path: Path | str) -> sqlite3.Connection:
    """Open memory.db with WAL, foreign keys and a busy timeout; rows come back as ``Row``."""
    conn = sqlite3.connect(
        str(path),
        timeout=10.0,
        isolation_level=None,
        check_same_thread=False,
        factory=SharedConnection,
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SharedConnection(sqlite3.Connection):
    """A connection shared by threads (GUI workers, the scheduler). SQLite has one
    transaction per connection, so :func:`transaction` takes ``lock`` first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.RLock()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction on an autocommit connection: all or nothing.

    Transactions on one :class:`SharedConnection` take turns across threads.
    """
    with getattr(conn, "lock", None) or nullcontext():
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
