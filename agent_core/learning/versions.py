"""Prompt versions: what the model is told before the tools (system text with exemplars, and
the lessons after the tools). Every version is kept with its scores; the one in force is the
latest *activation* (adoption, rollback), so a rollback is one row and a forgotten version
falls back to the one activated before it. The version id is the hash recorded on traces.

A version built on an older package system prompt (``base_id``) is not used after an
upgrade changes that prompt: the new default applies until a refinement builds on it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_core.learning.errors import PromptVersionNotFoundError, RollbackRefusedError
from agent_core.memory_db import transaction
from agent_core.prompting import SystemPrompt, load_template, prompt_version_id, render

DEFAULT, CANDIDATE, ADOPTED, REJECTED, ABANDONED = (
    "default",
    "candidate",
    "adopted",
    "rejected",
    "abandoned",
)


@dataclass(frozen=True)
class Exemplar:
    question: str
    answer: str
    source: str  # "correction:ID" | "trace:ID"
    trace_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Exemplar:
        return cls(**data)


@dataclass
class PromptVersion:
    id: str
    system_text: str
    base_id: str
    origin: str = "refinement"  # default | refinement | manual
    parent_id: str | None = None
    lessons: list[dict[str, Any]] = field(default_factory=list)  # {"id": N, "text": ...}
    exemplars: list[Exemplar] = field(default_factory=list)
    status: str = CANDIDATE
    score: float | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    created_at: float = field(default_factory=time.time)

    @property
    def system_prompt(self) -> SystemPrompt:
        return SystemPrompt(self.system_text, tuple(x["text"] for x in self.lessons))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["exemplars"] = [e.to_dict() for e in self.exemplars]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptVersion:
        values = dict(data)
        values["exemplars"] = [Exemplar.from_dict(e) for e in data.get("exemplars", [])]
        return cls(**values)


def compose(
    base_text: str,
    lessons: list[dict[str, Any]],
    exemplars: list[Exemplar],
    *,
    origin: str = "refinement",
    parent_id: str | None = None,
) -> PromptVersion:
    """A version from the package system prompt, lessons and exemplars (in that order)."""
    text = base_text
    if exemplars:
        text = base_text.rstrip() + "\n\n" + render("exemplars.txt", exemplars=exemplars).strip()
    version_id = prompt_version_id(text, [x["text"] for x in lessons])
    return PromptVersion(
        id=version_id,
        system_text=text,
        base_id=prompt_version_id(base_text),
        origin=origin,
        parent_id=parent_id,
        lessons=list(lessons),
        exemplars=list(exemplars),
    )


class PromptVersionStore:
    def __init__(self, conn: sqlite3.Connection, base_text: str | None = None) -> None:
        self.conn = conn
        self.base_text = base_text if base_text is not None else load_template("system.txt")

    @property
    def base_id(self) -> str:
        return prompt_version_id(self.base_text)

    def default(self) -> PromptVersion:
        version = compose(self.base_text, [], [], origin="default")
        version.status = DEFAULT
        if self._known_default == version.id:
            return self.get(version.id)
        with transaction(self.conn):
            self._insert_default(version)
        self._known_default = version.id
        return self.get(version.id)

    _known_default: str | None = None

    def _insert_default(self, version: PromptVersion) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO prompt_versions (id, created_at, origin, base_id, parent_id, "
            "system_text, lessons_json, exemplars_json, status, scores_json, reason) "
            "VALUES (?, ?, ?, ?, NULL, ?, '[]', '[]', ?, '{}', 'the packaged system prompt')",
            (
                version.id,
                version.created_at,
                version.origin,
                version.base_id,
                version.system_text,
                DEFAULT,
            ),
        )

    def active(self) -> PromptVersion:
        row = self.conn.execute(
            "SELECT v.* FROM prompt_activations a JOIN prompt_versions v ON v.id = a.version_id "
            "WHERE v.base_id = ? ORDER BY a.id DESC LIMIT 1",
            (self.base_id,),
        ).fetchone()
        return self._version(row) if row is not None else self.default()

    def active_prompt(self) -> SystemPrompt:
        """For the agent: the prompt version in force, looked up on every run."""
        return self.active().system_prompt

    def save(self, version: PromptVersion) -> PromptVersion:
        """Insert ``version``, or update the status, scores and reason of the stored one (a
        default or once-adopted version keeps that status)."""
        self.conn.execute(
            "INSERT INTO prompt_versions (id, created_at, origin, base_id, parent_id, system_text, "
            "lessons_json, exemplars_json, status, score, scores_json, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            # A version that was in force stays eligible for rollback when scored again.
            "status = CASE WHEN prompt_versions.status IN ('default', 'adopted') "
            "AND excluded.status != 'adopted' THEN prompt_versions.status "
            "ELSE excluded.status END, score = excluded.score, "
            "scores_json = excluded.scores_json, reason = excluded.reason",
            (
                version.id,
                version.created_at,
                version.origin,
                version.base_id,
                version.parent_id,
                version.system_text,
                json.dumps(version.lessons),
                json.dumps([e.to_dict() for e in version.exemplars]),
                version.status,
                version.score,
                json.dumps(version.scores),
                version.reason,
            ),
        )
        return version

    def activate(self, version_id: str, reason: str) -> None:
        self.conn.execute(
            "INSERT INTO prompt_activations (version_id, activated_at, reason) VALUES (?, ?, ?)",
            (version_id, time.time(), reason),
        )

    def rollback(self, version_id: str) -> PromptVersion:
        """Put an earlier version back in force (one that was adopted, or the default)."""
        version = self.get(version_id)
        if version.status not in (ADOPTED, DEFAULT):
            raise RollbackRefusedError(
                f"Version {version.id} was never in force (status {version.status})."
            )
        if version.base_id != self.base_id:
            raise RollbackRefusedError(
                f"Version {version.id} was built on an older system prompt of Jackdaw."
            )
        with transaction(self.conn):
            self.activate(version.id, "rollback")
        return version

    def get(self, version_id: str) -> PromptVersion:
        row = self.conn.execute(
            "SELECT * FROM prompt_versions WHERE id = ?", (version_id,)
        ).fetchone()
        if row is None:
            rows = self.conn.execute(
                "SELECT * FROM prompt_versions WHERE id LIKE ? LIMIT 2",
                (version_id.replace("%", "") + "%",),
            ).fetchall()
            if len(rows) != 1:
                raise PromptVersionNotFoundError(f"No prompt version {version_id!r}.")
            row = rows[0]
        return self._version(row)

    def all(self) -> list[PromptVersion]:
        self.default()
        rows = self.conn.execute("SELECT * FROM prompt_versions ORDER BY created_at, id")
        return [self._version(r) for r in rows]

    def activations(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT version_id, activated_at, reason FROM prompt_activations ORDER BY id"
        )
        return [dict(r) for r in rows]

    def _version(self, row: sqlite3.Row) -> PromptVersion:
        return PromptVersion(
            id=row["id"],
            system_text=row["system_text"],
            base_id=row["base_id"],
            origin=row["origin"],
            parent_id=row["parent_id"],
            lessons=json.loads(row["lessons_json"]),
            exemplars=[Exemplar.from_dict(e) for e in json.loads(row["exemplars_json"])],
            status=row["status"],
            score=row["score"],
            scores=json.loads(row["scores_json"]),
            reason=row["reason"],
            created_at=row["created_at"],
        )
