"""memory.db's m002 tables, the audit log's queries, and what the redactor catches."""

from __future__ import annotations

import sqlite3

import pytest

from agent_core.memory_db import applied_migrations, connect, migrate
from tools.audit import AuditLog
from tools.redact import REDACTED, redact, redact_text


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_m002_creates_the_tables(memory) -> None:
    assert "m002_permissions_and_audit" in applied_migrations(memory)
    assert columns(memory, "permission_rules") == [
        "id", "tool", "path_prefix", "arg_patterns_json", "created_at",
    ]  # fmt: skip
    assert columns(memory, "tool_audit") == [
        "id", "created_at", "tool", "risk", "arguments_json", "decision", "rule", "answer",
        "status", "observation", "duration_ms", "trace_id",
    ]  # fmt: skip


def test_m002_upgrades_a_db_from_m001(tmp_path) -> None:
    from agent_core import memory_db

    path = tmp_path / "old.db"
    conn = connect(path)
    first = memory_db.MIGRATIONS[0]
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    conn.execute("BEGIN")
    first(conn)
    conn.execute("INSERT INTO migrations VALUES (?, 0)", (first.__name__,))
    conn.execute("COMMIT")
    conn.execute("INSERT INTO conversations VALUES ('c1', 'kept', 0, 0)")
    applied = migrate(conn, path)
    assert "m002_permissions_and_audit" in applied
    assert conn.execute("SELECT title FROM conversations").fetchone()[0] == "kept"
    assert AuditLog(conn).recent() == []


def test_recent_filters_and_orders(memory) -> None:
    log = AuditLog(memory)
    ids = [
        log.record(tool=t, arguments={}, status="ok", observation="", duration_ms=1, trace_id=tr)
        for t, tr in [("a", "t1"), ("b", "t1"), ("a", "t2")]
    ]
    assert [e.id for e in log.recent()] == ids[::-1]
    assert [e.id for e in log.recent(tool="a")] == [ids[2], ids[0]]
    assert [e.id for e in log.recent(trace_id="t1")] == [ids[1], ids[0]]
    assert [e.id for e in log.recent(limit=1)] == [ids[2]]
    assert log.get(ids[0]).tool == "a" and log.get(999) is None
    assert log.get(ids[0]).to_dict()["arguments"] == {}


def test_arguments_that_are_not_json_clean_are_still_logged(memory) -> None:
    log = AuditLog(memory)
    entry = log.get(
        log.record(tool="x", arguments={"n": float("nan"), "o": object()}, status="ok",
                   observation="", duration_ms=0)
    )  # fmt: skip
    assert entry is not None and "n" in str(entry.arguments)


@pytest.mark.parametrize(
    "key", ["password", "db_password", "api_key", "apiKey", "OPENAI_API_KEY", "token",
            "github_token", "client_secret", "Authorization", "passphrase", "secret"],
)  # fmt: skip
def test_secret_keys_are_redacted(key: str) -> None:
    assert redact({key: "value", "nested": [{key: "v2"}]}) == {
        key: REDACTED,
        "nested": [{key: REDACTED}],
    }


@pytest.mark.parametrize("key", ["max_tokens", "author", "path", "tokens_used", "note"])
def test_ordinary_keys_are_kept(key: str) -> None:
    assert redact({key: "value"}) == {key: "value"}


@pytest.mark.parametrize(
    "secret",
    [
        "sk-abcdefghijklmnopqrstuvwxyz012345",
        "sk-proj-abcDEF123456789012345678",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-123456789012-abcdefghij",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "Bearer abcdefghijklmnopqrstuvwxyz",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "Zx8Kq2LmN4pR7sT1vW3yB5dF6gH9jK0a",  # an opaque mixed-case key
    ],
)
def test_secret_looking_values_are_redacted(secret: str) -> None:
    text = redact_text(f"before {secret} after")
    assert "before" in text and "after" in text and REDACTED in text
    assert secret.split()[-1][-8:] not in text


def test_secret_inside_a_url_is_redacted() -> None:
    assert redact_text("https://ann:pa55word@example.com/x") == "https://[redacted]@example.com/x"


@pytest.mark.parametrize(
    "text",
    [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # sha256 hex
        "/home/ann/Documents/Quarterly_Report_2024_Final_Version.pdf",
        "The quick brown fox jumps over the lazy dog 1234567890 times.",
        "print(sum(range(10)))",
    ],
)
def test_ordinary_values_are_kept(text: str) -> None:
    assert redact_text(text) == text
