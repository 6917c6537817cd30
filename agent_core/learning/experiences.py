"""Experiences (AgentRR-style, two levels) induced from runs that went well.

* the **script**: the successful tool calls of a run, in order, with literal values that
  came from the task turned into slots (:mod:`agent_core.learning.slots`) and check functions
  stored as data (:mod:`agent_core.learning.checks`);
* the **workflow**: a short plan in words, the guidance the model gets for similar tasks.

An experience is de-duplicated on the step signature (tools and argument names, in order)
plus the task (same pattern, or similarity at least ``dedup_similarity``): a run like an
earlier one adds itself as a source and a success instead of a new row.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from agent_core.learning import slots as slotting
from agent_core.learning.checks import Check, read_paths, result_type, sha256_file, sha256_text
from agent_core.learning.errors import ExperienceNotFoundError
from agent_core.learning.outcome import unverified_reason
from agent_core.learning.similarity import QuestionEncoder, cosine, from_blob, to_blob
from agent_core.learning.slots import Slot
from agent_core.memory_db import transaction
from agent_core.traces import Trace
from tools.base import ToolRegistry

ACTIVE = "active"
RETIRED = "retired"
RETIRE_AFTER_FAILURES = 2  # an experience that failed this often is never offered again


@dataclass(frozen=True)
class ScriptStep:
    tool: str
    arguments: Any  # a template: {{slot}} in strings, {"$slot": name} for whole values
    pre: list[Check] = field(default_factory=list)
    post: list[Check] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "arguments": self.arguments,
            "pre": [c.to_dict() for c in self.pre],
            "post": [c.to_dict() for c in self.post],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScriptStep:
        return cls(
            data["tool"],
            data["arguments"],
            [Check.from_dict(c) for c in data.get("pre", [])],
            [Check.from_dict(c) for c in data.get("post", [])],
        )


@dataclass(frozen=True)
class Recorded:
    """What the source run saw and said: a replay that sees exactly the same (the same slot
    values, the same results, the same notes passages, no conversation before) may say the
    same without asking the model again."""

    answer: str
    results_sha256: list[str]
    context_sha256: str  # of the notes passages the model was shown (passages_sha256)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recorded:
        return cls(data["answer"], list(data["results_sha256"]), data["context_sha256"])


def passages_sha256(passages: list[tuple[str, str]]) -> str:
    """One digest of (source, text) pairs, in order."""
    return sha256_text(json.dumps(passages, ensure_ascii=False))


@dataclass(frozen=True)
class Script:
    slots: list[Slot]
    steps: list[ScriptStep]
    pattern: str | None  # over the normalised task; None: only similarity finds it
    source_trace: str = ""  # the run whose literal values the script holds
    recorded: Recorded | None = None  # None: a follow-up in a conversation, or an old script

    def to_dict(self) -> dict[str, Any]:
        return {
            "slots": [s.to_dict() for s in self.slots],
            "steps": [s.to_dict() for s in self.steps],
            "pattern": self.pattern,
            "source_trace": self.source_trace,
            "recorded": self.recorded.to_dict() if self.recorded else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Script:
        recorded = data.get("recorded")
        return cls(
            [Slot.from_dict(s) for s in data.get("slots", [])],
            [ScriptStep.from_dict(s) for s in data.get("steps", [])],
            data.get("pattern"),
            data.get("source_trace", ""),
            Recorded.from_dict(recorded) if recorded else None,
        )

    @property
    def signature(self) -> str:
        return signature_of(self.steps)


@dataclass
class Experience:
    id: str
    task: str  # the task of the run it was first induced from
    task_template: str
    script: Script
    workflow: str
    status: str = ACTIVE
    successes: int = 1
    failures: int = 0
    uses: int = 0
    created_at: float = field(default_factory=time.time)
    last_used_at: float | None = None
    sources: list[str] = field(default_factory=list)  # trace ids

    @property
    def signature(self) -> str:
        return self.script.signature

    @property
    def usable(self) -> bool:
        return self.status == ACTIVE and self.successes > self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "task_template": self.task_template,
            "signature": self.signature,
            "script": self.script.to_dict(),
            "workflow": self.workflow,
            "status": self.status,
            "successes": self.successes,
            "failures": self.failures,
            "uses": self.uses,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "sources": list(self.sources),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experience:
        values = {k: v for k, v in data.items() if k != "signature"}
        values["script"] = Script.from_dict(data["script"])
        return cls(**values)


def signature_of(steps: list[ScriptStep]) -> str:
    def keys(arguments: Any) -> str:
        return ",".join(sorted(arguments)) if isinstance(arguments, dict) else ""

    return "|".join(f"{s.tool}({keys(s.arguments)})" for s in steps)


def workflow_text(template: str, steps: list[ScriptStep]) -> str:
    """The plan in words: one numbered line per call, then the answer."""
    lines = [
        f"{i}. Call {step.tool} with {slotting.describe(step.arguments) or 'no arguments'}."
        for i, step in enumerate(steps, 1)
    ]
    lines.append(f"{len(steps) + 1}. Answer from the results.")
    return "\n".join(lines)


def inducible(trace: Trace, *, rated_up: bool = False) -> bool:
    """A run worth learning a script from: it worked (the user rated it up, or it verifies:
    :func:`agent_core.learning.outcome.unverified_reason`), called tools that worked, and the
    user did not have to refuse anything."""
    if trace.status != "ok" or not trace.final_answer or trace.extra.get("truncated"):
        return False
    if not rated_up and unverified_reason(trace) is not None:
        return False
    if trace.extra.get("correction"):
        return False  # answered from a correction, not from tools
    outcomes = [s.tool_outcome for s in trace.steps if s.tool_outcome]
    if any(o.get("status") == "denied" for o in outcomes):
        return False
    return any(
        s.kind == "tool_call" and (s.tool_outcome or {}).get("status") == "ok" for s in trace.steps
    )


def induce(trace: Trace, registry: ToolRegistry, *, rated_up: bool = False) -> Experience | None:
    """The experience a run teaches, or None when it teaches none."""
    if not inducible(trace, rated_up=rated_up):
        return None
    calls = [
        s
        for s in trace.steps
        if s.kind == "tool_call" and (s.tool_outcome or {}).get("status") == "ok" and s.tool_name
    ]
    observations = [s.observation or "" for s in calls]
    templated = slotting.extract(trace.question, [s.tool_args for s in calls], observations)
    if templated is None:
        return None
    steps: list[ScriptStep] = []
    for k, (call, arguments) in enumerate(zip(calls, templated.arguments, strict=True)):
        tool_name = call.tool_name or ""
        pre = [
            Check("tool_exists", {"tool": tool_name}),
            Check("tool_permitted"),
            Check("args_valid"),
        ]
        tool = registry.get(tool_name)
        if tool is not None:
            if slotting.slot_names_in(arguments):
                pre.append(Check("paths_exist"))
            else:
                for path in read_paths(tool, call.tool_args):
                    digest = sha256_file(path)
                    if digest is not None:
                        pre.append(Check("file_unchanged", {"path": str(path), "sha256": digest}))
        if templated.depends_on[k]:
            hashes = {str(j): sha256_text(observations[j]) for j in templated.depends_on[k]}
            pre.append(Check("results_unchanged", {"sha256": hashes}))
        post = [
            Check("status_ok"),
            Check("non_empty"),
            Check("result_type", {"type": result_type(call.observation or "")}),
        ]
        steps.append(ScriptStep(tool_name, arguments, pre, post))
    recorded = None
    if not trace.extra.get("history_turns"):  # a follow-up's answer also rests on the talk
        sources = [(p["source"], p["text"]) for p in trace.extra.get("sources", [])]
        recorded = Recorded(
            trace.final_answer or "",
            [sha256_text(o) for o in observations],
            passages_sha256(sources),
        )
    script = Script(templated.slots, steps, templated.pattern, trace.id, recorded)
    return Experience(
        id=uuid.uuid4().hex[:10],
        task=trace.question,
        task_template=templated.template,
        script=script,
        workflow=workflow_text(templated.template, steps),
        sources=[trace.id],
    )


class ExperienceStore:
    def __init__(self, conn: sqlite3.Connection, encoder: QuestionEncoder) -> None:
        self.conn = conn
        self.encoder = encoder

    def add(
        self, experience: Experience, *, dedup_similarity: float = 0.9
    ) -> tuple[Experience, bool]:
        """Store ``experience``, or merge it into an equal one; returns (stored, merged)."""
        vector = self.encoder.vector(experience.task)
        same = self._duplicate_of(experience, vector, dedup_similarity)
        now = time.time()
        if same is not None:
            with transaction(self.conn):
                # The newer script carries fresher checks (file hashes): it replaces the old.
                self.conn.execute(
                    "UPDATE experiences SET successes = successes + 1, script_json = ?, "
                    "workflow = ?, last_used_at = ? WHERE id = ?",
                    (json.dumps(experience.script.to_dict()), experience.workflow, now, same.id),
                )
                self._add_sources(same.id, experience.sources, now)
            return self.get(same.id), True
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO experiences (id, task, task_template, signature, script_json, "
                "workflow, status, successes, failures, uses, created_at, last_used_at, "
                "embedding, embedding_model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    experience.id,
                    experience.task,
                    experience.task_template,
                    experience.signature,
                    json.dumps(experience.script.to_dict()),
                    experience.workflow,
                    experience.status,
                    experience.successes,
                    experience.failures,
                    experience.uses,
                    experience.created_at,
                    experience.last_used_at,
                    to_blob(vector) if vector is not None else None,
                    self.encoder.model_id if vector is not None else None,
                ),
            )
            self._add_sources(experience.id, experience.sources, now)
        return self.get(experience.id), False

    def _add_sources(self, experience_id: str, trace_ids: list[str], now: float) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO experience_sources (experience_id, trace_id, added_at) "
            "VALUES (?, ?, ?)",
            [(experience_id, t, now) for t in trace_ids],
        )

    def _duplicate_of(
        self, experience: Experience, vector: np.ndarray | None, threshold: float
    ) -> Experience | None:
        for other, similarity in self._with_similarity(
            experience.task, vector, signature=experience.signature
        ):
            if other.status != ACTIVE:
                continue
            if (
                other.script.pattern is not None
                and other.script.pattern == experience.script.pattern
            ):
                return other
            if similarity >= threshold:
                return other
        return None

    def get(self, experience_id: str) -> Experience:
        row = self.conn.execute(
            "SELECT * FROM experiences WHERE id = ?", (experience_id,)
        ).fetchone()
        if row is None:
            rows = self.conn.execute(
                "SELECT * FROM experiences WHERE id LIKE ? LIMIT 2",
                (experience_id.replace("%", "") + "%",),
            ).fetchall()
            if len(rows) != 1:
                raise ExperienceNotFoundError(f"No experience {experience_id!r}.")
            row = rows[0]
        return self._experience(row)

    def all(self, status: str | None = None) -> list[Experience]:
        sql = "SELECT * FROM experiences"
        params: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        return [
            self._experience(r) for r in self.conn.execute(sql + " ORDER BY created_at", params)
        ]

    def _experience(self, row: sqlite3.Row) -> Experience:
        sources = [
            r[0]
            for r in self.conn.execute(
                "SELECT trace_id FROM experience_sources WHERE experience_id = ? ORDER BY added_at",
                (row["id"],),
            )
        ]
        return Experience(
            id=row["id"],
            task=row["task"],
            task_template=row["task_template"],
            script=Script.from_dict(json.loads(row["script_json"])),
            workflow=row["workflow"],
            status=row["status"],
            successes=row["successes"],
            failures=row["failures"],
            uses=row["uses"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            sources=sources,
        )

    def similar(
        self, task: str, vector: np.ndarray | None, threshold: float, limit: int = 3
    ) -> list[tuple[Experience, float]]:
        """Usable experiences whose task is at least ``threshold`` similar, best first; a
        task that fits an experience's pattern counts as similarity 1."""
        hits = []
        for experience, similarity in self._with_similarity(task, vector):
            if not experience.usable:
                continue
            if slotting.match(experience.script.pattern, task, experience.script.slots) is not None:
                similarity = 1.0
            if similarity >= threshold:
                hits.append((experience, similarity))
        hits.sort(key=lambda hit: (-round(hit[1], 6), -hit[0].successes, hit[0].id))
        return hits[:limit]

    def _with_similarity(
        self, task: str, vector: np.ndarray | None, signature: str | None = None
    ) -> list[tuple[Experience, float]]:
        sql = "SELECT * FROM experiences"
        params: list[Any] = []
        if signature is not None:
            sql += " WHERE signature = ?"
            params.append(signature)
        out = []
        model = self.encoder.model_id
        for row in self.conn.execute(sql + " ORDER BY created_at", params).fetchall():
            experience = self._experience(row)
            if experience.task.strip().lower() == task.strip().lower():
                out.append((experience, 1.0))
                continue
            if vector is None:
                out.append((experience, 0.0))
                continue
            if row["embedding"] is None or row["embedding_model"] != model:
                stored = self.encoder.vector(experience.task)
                if stored is not None:
                    with transaction(self.conn):
                        self.conn.execute(
                            "UPDATE experiences SET embedding = ?, embedding_model = ? "
                            "WHERE id = ?",
                            (to_blob(stored), model, experience.id),
                        )
            else:
                stored = from_blob(row["embedding"])
            out.append((experience, cosine(vector, stored)))
        return out

    def record_use(self, experience_id: str, success: bool) -> None:
        column = "successes" if success else "failures"
        with transaction(self.conn):
            self.conn.execute(
                f"UPDATE experiences SET uses = uses + 1, {column} = {column} + 1, "
                "last_used_at = ? WHERE id = ?",
                (time.time(), experience_id),
            )
            self._retire_if_failed(experience_id)

    def record_failure(self, experience_id: str) -> Experience:
        """A run it taught or replayed went wrong (down-rated, corrected): one failure more;
        at ``RETIRE_AFTER_FAILURES`` it is retired."""
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE experiences SET failures = failures + 1 WHERE id = ?", (experience_id,)
            )
            self._retire_if_failed(experience_id)
        return self.get(experience_id)

    def _retire_if_failed(self, experience_id: str) -> None:
        self.conn.execute(
            "UPDATE experiences SET status = ? WHERE id = ? AND failures >= ?",
            (RETIRED, experience_id, RETIRE_AFTER_FAILURES),
        )

    def set_status(self, experience_id: str, status: str) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE experiences SET status = ? WHERE id = ?", (status, experience_id)
            )

    def from_trace(self, trace_id: str) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT experience_id FROM experience_sources WHERE trace_id = ?", (trace_id,)
            )
        ]

    def delete(self, experience_id: str) -> None:
        experience = self.get(experience_id)
        with transaction(self.conn):
            self.conn.execute("DELETE FROM experiences WHERE id = ?", (experience.id,))
