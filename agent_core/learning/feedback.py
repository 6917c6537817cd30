"""Ratings and corrections, linked to traces and kept with their history.

A later rating or correction of the same run *supersedes* the earlier one (which stays,
marked ``superseded_by``). A correction also supersedes active corrections of the same
question asked elsewhere, so the user's newest word on a question is the one that counts.
Corrections are looked up by the similarity of the question (:meth:`FeedbackStore.lookup`).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from agent_core.learning.errors import CorrectionNotFoundError, FeedbackError
from agent_core.learning.similarity import (
    QuestionEncoder,
    cosine,
    from_blob,
    normalize_question,
    to_blob,
)
from agent_core.memory_db import transaction
from agent_core.traces import Trace


@dataclass(frozen=True)
class Rating:
    id: int
    trace_id: str
    value: int  # +1 up, -1 down
    comment: str
    created_at: float
    superseded_by: int | None = None

    @property
    def up(self) -> bool:
        return self.value > 0

    @property
    def active(self) -> bool:
        return self.superseded_by is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rating:
        return cls(**data)


@dataclass(frozen=True)
class Correction:
    id: int
    trace_id: str
    question: str
    original_answer: str | None
    answer: str
    note: str
    created_at: float
    superseded_by: int | None = None

    @property
    def active(self) -> bool:
        return self.superseded_by is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Correction:
        return cls(**data)


@dataclass(frozen=True)
class Confirmation:
    """An answer the user rated up: right for its question (``rating_id`` names it)."""

    rating_id: int
    trace_id: str
    question: str
    answer: str
    created_at: float  # of the rating
    asked_at: float  # of the run
    paths: tuple[str, ...]  # the files of the notes passages the run was shown
    tool_calls: tuple[tuple[str, str], ...] = ()  # (tool, arguments JSON) of the run's reads


_CORRECTION_FIELDS = (
    "id, trace_id, question, original_answer, answer, note, created_at, superseded_by"
)


def _rating(row: sqlite3.Row) -> Rating:
    return Rating(**{k: row[k] for k in Rating.__dataclass_fields__})


def _correction(row: sqlite3.Row) -> Correction:
    return Correction(**{k: row[k] for k in _CORRECTION_FIELDS.split(", ")})


class FeedbackStore:
    def __init__(self, conn: sqlite3.Connection, encoder: QuestionEncoder) -> None:
        self.conn = conn
        self.encoder = encoder

    # -- ratings -----------------------------------------------------------------------------
    def rate(self, trace: Trace, up: bool, comment: str = "") -> Rating:
        if trace.status not in ("ok", "budget_exhausted") or trace.final_answer is None:
            raise FeedbackError(f"Run {trace.id} has no answer to rate (status {trace.status}).")
        now = time.time()
        with transaction(self.conn):
            cursor = self.conn.execute(
                "INSERT INTO ratings (trace_id, value, comment, created_at) VALUES (?, ?, ?, ?)",
                (trace.id, 1 if up else -1, comment, now),
            )
            new_id = cursor.lastrowid
            self.conn.execute(
                "UPDATE ratings SET superseded_by = ? "
                "WHERE trace_id = ? AND superseded_by IS NULL AND id != ?",
                (new_id, trace.id, new_id),
            )
        return Rating(int(new_id or 0), trace.id, 1 if up else -1, comment, now)

    def ratings(self, trace_id: str | None = None, *, history: bool = True) -> list[Rating]:
        where, params = [], []
        if trace_id is not None:
            where.append("trace_id = ?")
            params.append(trace_id)
        if not history:
            where.append("superseded_by IS NULL")
        sql = "SELECT * FROM ratings" + (f" WHERE {' AND '.join(where)}" if where else "")
        return [_rating(r) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def current_rating(self, trace_id: str) -> Rating | None:
        found = self.ratings(trace_id, history=False)
        return found[-1] if found else None

    def confirmations(
        self,
        question: str,
        vector: np.ndarray | None,
        threshold: float,
        read_tools: Sequence[str] = (),
    ) -> list[tuple[Confirmation, float]]:
        """Up-rated answers whose question is at least ``threshold`` similar, best first. Only
        the user's current word counts: a run later down-rated or corrected is left out, and
        so is one whose answer came from a correction, a conversation, or tools other than
        ``read_tools`` (whose calls come with it, for the caller to check what they read)."""
        key = normalize_question(question)
        others = ", ".join("?" for _ in read_tools)
        rows = self.conn.execute(
            "SELECT r.id, r.trace_id, r.created_at, r.embedding, r.embedding_model, "
            "t.question, t.final_answer, t.created_at AS asked_at, t.extra_json "
            "FROM ratings r JOIN traces t ON t.id = r.trace_id "
            "WHERE r.value > 0 AND r.superseded_by IS NULL AND t.status = 'ok' "
            "AND t.final_answer IS NOT NULL AND t.final_answer != '' "
            "AND NOT EXISTS (SELECT 1 FROM corrections c WHERE c.trace_id = r.trace_id) "
            # An answer that rested on other tools' results is replayed (with its checks), not
            # recalled: a sum's answer is not another sum's.
            "AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.trace_id = r.trace_id "
            f"AND s.tool_name IS NOT NULL AND s.tool_name NOT IN ({others})) "
            "ORDER BY r.id",
            tuple(read_tools),
        ).fetchall()
        hits: list[tuple[Confirmation, float]] = []
        for row in rows:
            extra = json.loads(row["extra_json"] or "{}")
            if extra.get("correction") or extra.get("history_turns"):
                continue
            paths = tuple(
                str(p.get("meta", {}).get("path") or "") for p in extra.get("sources", [])
            )
            confirmation = Confirmation(
                row["id"],
                row["trace_id"],
                row["question"],
                row["final_answer"],
                row["created_at"],
                row["asked_at"],
                tuple(p for p in paths if p),
            )
            similarity = self._similarity(
                key, vector, confirmation.question, row, "ratings", confirmation.rating_id
            )
            if similarity is not None and similarity >= threshold:
                calls = self.conn.execute(
                    "SELECT tool_name, tool_args_json FROM steps WHERE trace_id = ? "
                    "AND tool_name IS NOT NULL ORDER BY idx",
                    (confirmation.trace_id,),
                ).fetchall()
                if calls:
                    confirmation = dataclasses.replace(
                        confirmation, tool_calls=tuple((c[0], c[1] or "{}") for c in calls)
                    )
                hits.append((confirmation, similarity))
        return sorted(hits, key=lambda hit: (-round(hit[1], 6), -hit[0].created_at))

    # -- corrections -------------------------------------------------------------------------
    def correct(
        self, trace: Trace, answer: str, note: str = "", *, same_question: float = 0.97
    ) -> Correction:
        """Record the right answer for ``trace``'s question. Earlier active corrections of the
        same run, or of the same question (similarity >= ``same_question``), are superseded."""
        answer = answer.strip()
        if not answer:
            raise FeedbackError("A correction needs the right answer.", hint='Give it: "ANSWER".')
        vector = self.encoder.vector(trace.question)
        now = time.time()
        superseded = [
            c.id
            for c, similarity in self._active_with_similarity(trace.question, vector)
            if c.trace_id == trace.id or similarity >= same_question
        ]
        with transaction(self.conn):
            cursor = self.conn.execute(
                "INSERT INTO corrections (trace_id, question, original_answer, answer, note, "
                "created_at, embedding, embedding_model) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    trace.id,
                    trace.question,
                    trace.final_answer,
                    answer,
                    note,
                    now,
                    to_blob(vector) if vector is not None else None,
                    self.encoder.model_id if vector is not None else None,
                ),
            )
            new_id = int(cursor.lastrowid or 0)
            self.conn.executemany(
                "UPDATE corrections SET superseded_by = ? WHERE id = ?",
                [(new_id, old) for old in superseded],
            )
        return Correction(new_id, trace.id, trace.question, trace.final_answer, answer, note, now)

    def correction(self, correction_id: int | str) -> Correction:
        try:
            key = int(correction_id)
        except ValueError:
            raise CorrectionNotFoundError(f"No correction {correction_id!r}.") from None
        row = self.conn.execute(
            f"SELECT {_CORRECTION_FIELDS} FROM corrections WHERE id = ?", (key,)
        ).fetchone()
        if row is None:
            raise CorrectionNotFoundError(f"No correction {correction_id!r}.")
        return _correction(row)

    def corrections(
        self, *, history: bool = False, trace_id: str | None = None
    ) -> list[Correction]:
        where, params = [], []
        if not history:
            where.append("superseded_by IS NULL")
        if trace_id is not None:
            where.append("trace_id = ?")
            params.append(trace_id)
        sql = f"SELECT {_CORRECTION_FIELDS} FROM corrections"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        return [_correction(r) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def lookup(
        self, question: str, vector: np.ndarray | None, threshold: float
    ) -> list[tuple[Correction, float]]:
        """Active corrections whose question is at least ``threshold`` similar, best first
        (the newest first among equals)."""
        hits = [(c, s) for c, s in self._active_with_similarity(question, vector) if s >= threshold]
        return sorted(hits, key=lambda hit: (-round(hit[1], 6), -hit[0].created_at))

    def _active_with_similarity(
        self, question: str, vector: np.ndarray | None
    ) -> list[tuple[Correction, float]]:
        key = normalize_question(question)
        rows = self.conn.execute(
            f"SELECT {_CORRECTION_FIELDS}, embedding, embedding_model FROM corrections "
            "WHERE superseded_by IS NULL ORDER BY id"
        ).fetchall()
        out: list[tuple[Correction, float]] = []
        for row in rows:
            correction = _correction(row)
            similarity = self._similarity(
                key, vector, correction.question, row, "corrections", correction.id
            )
            if similarity is not None:
                out.append((correction, similarity))
        return out

    def _similarity(
        self,
        key: str,
        vector: np.ndarray | None,
        question: str,
        row: sqlite3.Row,
        table: str,
        row_id: int,
    ) -> float | None:
        """How similar ``question`` (kept in ``table`` with its vector) is to the asked one
        (normalised ``key``, ``vector``): 1.0 when the same words, None without a vector to
        compare. A vector made without (or with another) embedder is made again and kept."""
        if normalize_question(question) == key:
            return 1.0
        if vector is None:
            return None
        if row["embedding"] is not None and row["embedding_model"] == self.encoder.model_id:
            return cosine(vector, from_blob(row["embedding"]))
        stored = self.encoder.vector(question)
        if stored is None:
            return 0.0
        with transaction(self.conn):
            self.conn.execute(
                f"UPDATE {table} SET embedding = ?, embedding_model = ? WHERE id = ?",
                (to_blob(stored), self.encoder.model_id, row_id),
            )
        return cosine(vector, stored)
