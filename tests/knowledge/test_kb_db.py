from __future__ import annotations

from pathlib import Path

from knowledge import db
from knowledge.store import VEC_TABLE, KnowledgeStore


def columns(conn: object, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}  # type: ignore[attr-defined]


def test_fresh_db_has_the_schema_and_records_migrations(tmp_path: Path) -> None:
    conn = db.open_db(tmp_path / "k.db")
    assert columns(conn, "documents") >= {
        "path",
        "folder",
        "content_hash",
        "size",
        "mtime_ns",
        "type",
        "status",
        "error",
        "warning",
        "chunk_count",
    }
    assert columns(conn, "chunks") >= {
        "document_id",
        "seq",
        "text",
        "heading",
        "page",
        "start_char",
        "end_char",
        "token_count",
        "text_hash",
        "embedding",
    }
    assert columns(conn, "folders") >= {"path", "status", "last_scan_at"}
    assert db.applied_migrations(conn) == [m.__name__ for m in db.MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == db.BUSY_TIMEOUT_MS
    assert conn.execute("SELECT vec_version()").fetchone()[0].startswith("v")


def test_migrate_is_idempotent_and_upgrades_an_older_db(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    conn = db.connect(path)
    # An "old" DB: only the first migration applied, with a row in it.
    db.applied_migrations(conn)
    with db.transaction(conn):
        db.MIGRATIONS[0](conn)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (db.MIGRATIONS[0].__name__,))
        conn.execute(
            "INSERT INTO documents (path, folder, status) VALUES ('/a/b.txt', '/a', 'indexed')"
        )
    applied = db.migrate(conn)
    assert applied == [m.__name__ for m in db.MIGRATIONS[1:]]
    assert db.migrate(conn) == []
    assert conn.execute("SELECT count(*) FROM documents").fetchone()[0] == 1


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch) -> None:
    conn = db.connect(tmp_path / "k.db")

    def m999_broken(c: object) -> None:
        c.execute("CREATE TABLE half_done (x)")  # type: ignore[attr-defined]
        raise RuntimeError("boom")

    monkeypatch.setattr(db, "MIGRATIONS", [*db.MIGRATIONS, m999_broken])
    try:
        db.migrate(conn)
    except RuntimeError:
        pass
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in names
    assert "m999_broken" not in db.applied_migrations(conn)


def test_vector_table_is_created_for_the_model_and_refuses_another(tmp_path: Path) -> None:
    store = KnowledgeStore(db.open_db(tmp_path / "k.db"))
    assert store.index_state() is None
    store.set_index_state("model-a", 64)
    store.set_index_state("model-a", 64)  # same model: no-op
    state = store.index_state()
    assert state is not None and (state.model_id, state.dimension) == ("model-a", 64)
    sql = store.conn.execute(
        "SELECT sql FROM sqlite_master WHERE name = ?", (VEC_TABLE,)
    ).fetchone()[0]
    assert "bit[64]" in sql and "folder" in sql and "type" in sql
    try:
        store.set_index_state("model-b", 64)
    except ValueError as exc:
        assert "model-a" in str(exc)
    else:
        raise AssertionError("a second model must not overwrite the first")
