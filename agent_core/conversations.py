"""Conversations: the turns of each chat, so a session can be resumed and its history sent."""

from __future__ import annotations

import sqlite3
import time
import uuid
from typing import Any

from agent_core.memory_db import transaction
from agent_core.prompting import Turn
from models.errors import JackdawError


class ConversationNotFoundError(JackdawError):
    hint = "Start a new conversation, or list them to find the right id."


class ConversationStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def create(self, title: str = "") -> str:
        conversation_id = uuid.uuid4().hex[:12]
        now = time.time()
        self.conn.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (conversation_id, title, now, now),
        )
        return conversation_id

    def turns(self, conversation_id: str) -> list[Turn]:
        rows = self.conn.execute(
            "SELECT question, answer FROM turns WHERE conversation_id = ? ORDER BY idx",
            (conversation_id,),
        )
        return [Turn(r["question"], r["answer"]) for r in rows]

    def turn_records(self, conversation_id: str) -> list[dict[str, Any]]:
        """Turns with the id of the run that answered each (for sources and ratings)."""
        rows = self.conn.execute(
            "SELECT question, answer, trace_id FROM turns WHERE conversation_id = ? ORDER BY idx",
            (conversation_id,),
        )
        return [dict(r) for r in rows]

    def drop_last_turn(self, conversation_id: str) -> None:
        """Forget the last turn (Regenerate asks it again); its trace stays recorded."""
        self.conn.execute(
            "DELETE FROM turns WHERE conversation_id = ? AND idx = "
            "(SELECT MAX(idx) FROM turns WHERE conversation_id = ?)",
            (conversation_id, conversation_id),
        )

    def append(self, conversation_id: str, question: str, answer: str, trace_id: str) -> None:
        now = time.time()
        with transaction(self.conn):
            row = self.conn.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM turns WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()
            self.conn.execute(
                "INSERT INTO turns (conversation_id, idx, question, answer, trace_id, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, row[0], question, answer, trace_id, now),
            )
            self.conn.execute(
                "UPDATE conversations SET updated_at = ?, "
                "title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                (now, question[:60], conversation_id),
            )

    def list(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, title, created_at, updated_at FROM conversations ORDER BY updated_at DESC"
        )
        return [dict(r) for r in rows]

    def rename(self, conversation_id: str, title: str) -> None:
        if not self.conn.execute(
            "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
        ).rowcount:
            raise ConversationNotFoundError(f"No conversation {conversation_id!r}.")

    def delete(self, conversation_id: str) -> None:
        if not self.conn.execute(
            "DELETE FROM conversations WHERE id = ?", (conversation_id,)
        ).rowcount:
            raise ConversationNotFoundError(f"No conversation {conversation_id!r}.")
