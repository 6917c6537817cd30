from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent_core import memory_db
from agent_core.memory_db import connect, migrate, open_memory_db
from agent_core.traces import Step, Trace, TraceNotFoundError, TraceStore


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def test_fresh_db_has_the_schema_and_wal(tmp_path: Path) -> None:
    conn = open_memory_db(tmp_path / "memory.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert {
        "id",
        "question",
        "status",
        "model_json",
        "settings_json",
        "prompt_version",
        "dropped_history_json",
        "final_answer",
    } <= columns(conn, "traces")
    assert {
        "trace_id",
        "idx",
        "messages_json",
        "raw_output",
        "action_json",
        "tool_name",
        "tool_args_json",
        "tool_outcome_json",
        "prompt_tokens",
        "duration_ms",
    } <= columns(conn, "steps")
    names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY rowid")]
    assert names == [m.__name__ for m in memory_db.MIGRATIONS]


def test_upgrade_backs_up_first_and_keeps_data(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "memory.db"
    conn = open_memory_db(path)
    TraceStore(conn).save(Trace(question="keep me", model={"name": "m"}, settings={}))
    conn.close()

    def m999_add_column(c: sqlite3.Connection) -> None:
        c.execute("ALTER TABLE traces ADD COLUMN rating INTEGER")

    monkeypatch.setattr(memory_db, "MIGRATIONS", [*memory_db.MIGRATIONS, m999_add_column])
    conn = open_memory_db(path)
    assert "rating" in columns(conn, "traces")
    backups = list(tmp_path.glob("memory.db.backup-*"))
    assert len(backups) == 1
    old = sqlite3.connect(backups[0])
    assert old.execute("SELECT question FROM traces").fetchone()[0] == "keep me"
    assert "rating" not in columns(old, "traces")
    assert TraceStore(conn).list()[0]["question"] == "keep me"


def test_a_failing_migration_rolls_back_and_records_nothing(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "memory.db"
    open_memory_db(path).close()

    def m999_broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(memory_db, "MIGRATIONS", [*memory_db.MIGRATIONS, m999_broken])
    conn = connect(path)
    with pytest.raises(RuntimeError):
        migrate(conn, path)
    assert "half_done" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "m999_broken" not in memory_db.applied_migrations(conn)


def test_trace_round_trips(tmp_path: Path) -> None:
    store = TraceStore(open_memory_db(tmp_path / "memory.db"))
    trace = Trace(
        question="2+3?",
        model={"name": "m", "sha256": "ab" * 32},
        settings={"temperature": 0.0, "seed": 1},
        conversation_id="c1",
        status="ok",
        final_answer="5",
        prompt_version="abc",
        prompt_blocks={"system": 10},
        dropped_history=[0, 1],
        prompt_tokens=30,
        completion_tokens=5,
        extra={"sources": [{"source": "a.md", "text": "t", "meta": {}}]},
        steps=[
            Step(
                0,
                "tool_call",
                [{"role": "user", "content": "2+3?"}],
                {"type": "object"},
                {"temperature": 0.0},
                1.5,
                raw_output='{"x": 1}',
                action={"kind": "call_tool"},
                tool_name="add",
                tool_args={"a": 2, "b": 3},
                tool_outcome={"status": "ok"},
                observation="5",
                prompt_tokens=20,
                completion_tokens=3,
                duration_ms=12.5,
                first_token_ms=2.0,
                finish_reason="stop",
            ),
            Step(1, "final", [], None, {}, 2.0, raw_output="{}", error=None),
        ],
    )
    store.save(trace)
    assert store.get(trace.id) == trace
    assert store.get(trace.id[:6]) == trace  # a unique prefix is enough
    assert Trace.from_dict(trace.to_dict()) == trace
    store.save(trace)  # saving again replaces, never duplicates
    assert len(store.list()) == 1
    with pytest.raises(TraceNotFoundError):
        store.get("zzz")


def test_transactions_from_many_threads_take_turns(tmp_path: Path) -> None:
    import threading

    from agent_core.memory_db import transaction

    conn = open_memory_db(tmp_path / "memory.db")
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for j in range(20):
                with transaction(conn):
                    conn.execute(
                        "INSERT INTO conversations (id, title, created_at, updated_at) "
                        "VALUES (?, '', 0, 0)",
                        (f"{i}-{j}",),
                    )
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 80
