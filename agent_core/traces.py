"""Traces: every run and every step, exactly as it happened — the log *and* the replay record."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from agent_core.memory_db import transaction
from models.errors import JackdawError


class TraceNotFoundError(JackdawError):
    hint = "List the recorded runs with `jackdaw traces list`."


@dataclass
class Step:
    """One model turn and what came of it (a tool call and its outcome, or the answer)."""

    idx: int
    kind: str  # final | tool_call | mistake | cancelled | truncated
    messages: list[dict[str, str]]
    response_schema: dict[str, Any] | None
    settings: dict[str, Any]
    started_at: float
    raw_output: str = ""
    action: dict[str, Any] | None = None
    tool_name: str | None = None
    tool_args: Any = None
    tool_outcome: dict[str, Any] | None = None
    observation: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_ms: float = 0.0
    first_token_ms: float = 0.0
    finish_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return cls(**data)


@dataclass
class Trace:
    question: str
    model: dict[str, Any]
    settings: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    conversation_id: str | None = None
    created_at: float = field(default_factory=time.time)
    status: str = "running"  # running | ok | cancelled | budget_exhausted | error
    final_answer: str | None = None
    error: str | None = None
    prompt_version: str = ""
    prompt_blocks: dict[str, int] = field(default_factory=dict)
    dropped_history: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    duration_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # sources, replay info, ...
    steps: list[Step] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [s.to_dict() for s in self.steps]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        values = dict(data)
        values["steps"] = [Step.from_dict(s) for s in data.get("steps", [])]
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "question": self.question,
            "status": self.status,
            "answer": self.final_answer,
            "steps": len(self.steps),
            "model": self.model.get("name", ""),
            "duration_ms": round(self.duration_ms, 1),
        }


_TRACE_COLUMNS = {
    # column -> (attribute, is JSON)
    "id": ("id", False),
    "conversation_id": ("conversation_id", False),
    "created_at": ("created_at", False),
    "question": ("question", False),
    "status": ("status", False),
    "final_answer": ("final_answer", False),
    "error": ("error", False),
    "model_json": ("model", True),
    "settings_json": ("settings", True),
    "prompt_version": ("prompt_version", False),
    "prompt_blocks_json": ("prompt_blocks", True),
    "dropped_history_json": ("dropped_history", True),
    "prompt_tokens": ("prompt_tokens", False),
    "completion_tokens": ("completion_tokens", False),
    "duration_ms": ("duration_ms", False),
    "extra_json": ("extra", True),
}
_STEP_COLUMNS = {
    "idx": ("idx", False),
    "kind": ("kind", False),
    "messages_json": ("messages", True),
    "response_schema_json": ("response_schema", True),
    "raw_output": ("raw_output", False),
    "action_json": ("action", True),
    "tool_name": ("tool_name", False),
    "tool_args_json": ("tool_args", True),
    "tool_outcome_json": ("tool_outcome", True),
    "observation": ("observation", False),
    "error": ("error", False),
    "prompt_tokens": ("prompt_tokens", False),
    "completion_tokens": ("completion_tokens", False),
    "started_at": ("started_at", False),
    "duration_ms": ("duration_ms", False),
}
# Step fields without a column of their own travel in the step row's extra_json.
_STEP_EXTRA = [f.name for f in fields(Step) if f.name not in {a for a, _ in _STEP_COLUMNS.values()}]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class TraceStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def save(self, trace: Trace) -> None:
        """Write the whole trace (replacing an earlier save of it) in one transaction."""
        trace_row = {
            col: (_dump(getattr(trace, attr)) if is_json else getattr(trace, attr))
            for col, (attr, is_json) in _TRACE_COLUMNS.items()
        }
        with transaction(self.conn):
            self.conn.execute("DELETE FROM steps WHERE trace_id = ?", (trace.id,))
            self.conn.execute(
                # An upsert, not INSERT OR REPLACE: a REPLACE deletes the row first, and the
                # delete would cascade to whatever refers to the trace (ratings, ...).
                f"INSERT INTO traces ({', '.join(trace_row)}) "
                f"VALUES ({', '.join('?' * len(trace_row))}) ON CONFLICT(id) DO UPDATE SET "
                + ", ".join(f"{col} = excluded.{col}" for col in trace_row if col != "id"),
                list(trace_row.values()),
            )
            for step in trace.steps:
                row = {
                    col: (_dump(getattr(step, attr)) if is_json else getattr(step, attr))
                    for col, (attr, is_json) in _STEP_COLUMNS.items()
                }
                row["extra_json"] = _dump({name: getattr(step, name) for name in _STEP_EXTRA})
                self.conn.execute(
                    f"INSERT INTO steps (trace_id, {', '.join(row)}) "
                    f"VALUES (?, {', '.join('?' * len(row))})",
                    [trace.id, *row.values()],
                )

    def get(self, trace_id: str) -> Trace:
        row = self.conn.execute("SELECT * FROM traces WHERE id = ?", (trace_id,)).fetchone()
        if row is None:
            row = self._by_prefix(trace_id)
        values = {
            attr: (json.loads(row[col]) if is_json else row[col])
            for col, (attr, is_json) in _TRACE_COLUMNS.items()
        }
        steps = []
        for step_row in self.conn.execute(
            "SELECT * FROM steps WHERE trace_id = ? ORDER BY idx", (values["id"],)
        ):
            step_values = {
                attr: (json.loads(step_row[col]) if is_json else step_row[col])
                for col, (attr, is_json) in _STEP_COLUMNS.items()
            }
            step_values.update(json.loads(step_row["extra_json"]))
            steps.append(Step(**step_values))
        return Trace(**values, steps=steps)

    def _by_prefix(self, prefix: str) -> sqlite3.Row:
        rows = self.conn.execute(
            "SELECT * FROM traces WHERE id LIKE ? LIMIT 2", (prefix.replace("%", "") + "%",)
        ).fetchall()
        if len(rows) != 1:
            why = "no run has" if not rows else "more than one run has"
            raise TraceNotFoundError(f"{why} the id {prefix!r}")
        return rows[0]

    def list(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, created_at, question, status, final_answer, model_json, duration_ms, "
            "(SELECT COUNT(*) FROM steps WHERE trace_id = traces.id) AS n_steps "
            "FROM traces ORDER BY created_at DESC LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
        return [
            {
                "id": r["id"],
                "created_at": r["created_at"],
                "question": r["question"],
                "status": r["status"],
                "answer": r["final_answer"],
                "steps": r["n_steps"],
                "model": json.loads(r["model_json"]).get("name", ""),
                "duration_ms": round(r["duration_ms"], 1),
            }
            for r in rows
        ]
