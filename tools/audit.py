"""The audit log: one row in memory.db's ``tool_audit`` for every tool call, whatever came of it.

Arguments and observations are redacted before they are written (tools/redact.py). The agent
links a call to its trace through ``trace_id`` here and ``audit_id`` on the trace step.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from tools.redact import redact, redact_text

MAX_AUDIT_OBSERVATION_CHARS = 1000

_COLUMNS = (
    "id, created_at, tool, risk, arguments_json, decision, rule, answer, status, observation,"
    " duration_ms, trace_id"
)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    created_at: float
    tool: str
    risk: str | None
    arguments: Any
    decision: str | None  # allow | deny | None (never reached the policy)
    rule: str | None
    answer: str | None  # what the user answered, when asked
    status: str
    observation: str
    duration_ms: float
    trace_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: sqlite3.Row | tuple[Any, ...]) -> AuditEntry:
        values = list(row)
        values[4] = json.loads(values[4])
        return cls(*values)


class AuditLog:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def record(
        self,
        *,
        tool: str,
        arguments: Any,
        status: str,
        observation: str,
        duration_ms: float,
        risk: str | None = None,
        decision: str | None = None,
        rule: str | None = None,
        answer: str | None = None,
        trace_id: str | None = None,
    ) -> int:
        try:
            args_json = json.dumps(redact(arguments), ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # arguments the model sent are not always JSON-clean
            args_json = json.dumps(redact_text(repr(arguments)))
        text = redact_text(observation[:MAX_AUDIT_OBSERVATION_CHARS])
        with self._lock:
            cur = self.conn.execute(
                "INSERT INTO tool_audit (created_at, tool, risk, arguments_json, decision, rule,"
                " answer, status, observation, duration_ms, trace_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), tool, risk, args_json, decision, rule, answer, status, text,
                 duration_ms, trace_id),
            )  # fmt: skip
        assert cur.lastrowid is not None
        return cur.lastrowid

    def recent(
        self, limit: int = 20, *, tool: str | None = None, trace_id: str | None = None
    ) -> list[AuditEntry]:
        """Newest first."""
        where, params = [], []
        if tool:
            where.append("tool = ?")
            params.append(tool)
        if trace_id:
            where.append("trace_id = ?")
            params.append(trace_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self.conn.execute(
                f"SELECT {_COLUMNS} FROM tool_audit {clause} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [AuditEntry.from_row(r) for r in rows]

    def get(self, audit_id: int) -> AuditEntry | None:
        with self._lock:
            row = self.conn.execute(
                f"SELECT {_COLUMNS} FROM tool_audit WHERE id = ?", (audit_id,)
            ).fetchone()
        return AuditEntry.from_row(row) if row else None
