"""The learning tables in memory.db: a fresh DB has them, an older DB gains them (backed up
first, its data kept)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent_core import memory_db
from agent_core.memory_db import open_memory_db
from agent_core.traces import Trace, TraceStore

LEARNING_MIGRATIONS = [
    "m003_learning_feedback",
    "m004_learning_experiences",
    "m005_learning_lessons",
    "m006_learning_prompt_versions",
    "m007_rating_embeddings",
]


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_a_fresh_db_has_the_learning_tables(tmp_path: Path) -> None:
    conn = open_memory_db(tmp_path / "memory.db")
    assert {"trace_id", "value", "comment", "superseded_by", "embedding"} <= columns(
        conn, "ratings"
    )
    assert {"trace_id", "question", "answer", "note", "superseded_by", "embedding"} <= columns(
        conn, "corrections"
    )
    assert {
        "task",
        "signature",
        "script_json",
        "workflow",
        "successes",
        "failures",
        "uses",
        "last_used_at",
        "status",
    } <= columns(conn, "experiences")
    assert {"experience_id", "trace_id"} <= columns(conn, "experience_sources")
    assert {"text", "status", "helpful", "harmful"} <= columns(conn, "lessons")
    assert {"lesson_id", "trace_id", "source"} <= columns(conn, "lesson_evidence")
    assert {"system_text", "lessons_json", "exemplars_json", "status", "score"} <= columns(
        conn, "prompt_versions"
    )
    assert {"version_id", "activated_at"} <= columns(conn, "prompt_activations")
    assert {"status", "heartbeat_at", "current_score", "candidate_score"} <= columns(
        conn, "refinement_runs"
    )
    assert set(LEARNING_MIGRATIONS) <= set(memory_db.applied_migrations(conn))


def test_an_older_db_is_upgraded_with_its_data_kept(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "memory.db"
    older = [m for m in memory_db.MIGRATIONS if m.__name__ not in LEARNING_MIGRATIONS]
    monkeypatch.setattr(memory_db, "MIGRATIONS", older)
    conn = open_memory_db(path)
    TraceStore(conn).save(Trace(question="keep me", model={"name": "m"}, settings={}))
    conn.close()
    monkeypatch.undo()
    conn = open_memory_db(path)
    assert "ratings" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert TraceStore(conn).list()[0]["question"] == "keep me"
    assert list(tmp_path.glob("memory.db.backup-*"))
