"""Lessons: short itemised guidelines distilled (by the model, offline) from corrections and
down-rated runs, each with evidence (trace ids), helpful/harmful counters and a status.

Updates are *deltas* (add, agree, edit, remove) merged deterministically: a batch is applied
in a canonical order (edits, removals, agreements, additions; then by lesson id and text), so
the same lessons and the same batch always give the same result whatever order the model
wrote them in. An addition that nearly duplicates a live lesson counts as agreement with it.

A lesson can never loosen a permission or a safety rule: any lesson that so much as talks
about permissions, confirmation, secrets or safety is refused (:func:`unsafe_reason`), and
lessons only ever reach the system prompt *after* the tool rules, which the executor enforces
in code whatever the prompt says.

Status: ``candidate`` -> ``active`` once helpful >= 2 and helpful > harmful (agreement, or
a refinement that adopted a prompt trying it); -> ``retired`` once harmful >= 2 and harmful >
helpful (removals, or refinements refused while trying it).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_core.learning.errors import LessonNotFoundError
from agent_core.learning.similarity import word_overlap
from agent_core.memory_db import transaction
from agent_core.prompting import render
from models.chat import ChatBackend, GenerationSettings

CANDIDATE, ACTIVE, RETIRED = "candidate", "active", "retired"
OPS = ("edit", "remove", "agree", "add")  # the canonical order of a batch
PROMOTE_AT = 2
RETIRE_AT = 2
NEAR_DUPLICATE = 0.7  # word overlap
MAX_LESSON_CHARS = 200
NEVER_HELPED_AFTER = 3  # refinements that tried a lesson without it ever helping: retired

_UNSAFE = re.compile(
    r"""permission|permit|confirm|approv|consent|allow(ed|s|ing)?\b|\bdeny|denied|refus
    |without\s+asking|(don'?t|do\s+not|never|no\s+need\s+to)\s+(ask|check|confirm)
    |skip\w*\s+(the\s+)?(check|confirm|question|prompt|ask)|bypass|override|circumvent
    |ignore\s+(the\s+|all\s+|any\s+|previous\s+|your\s+)*(rule|instruction|system|polic|guideline|safety|limit)
    |auto-?approv|sudo|rm\s+-rf|password|passphrase|secret|api[\s_-]?key|token|credential
    |keyring|outside\s+(the\s+)?(allowed|watched|permitted)|run_python|shell|jailbreak
    |disable|safety|unsafe|follow\s+(the\s+)?(instructions|orders|commands)\s+(in|from|found)""",
    re.IGNORECASE | re.VERBOSE,
)


def unsafe_reason(text: str) -> str | None:
    """Why a lesson may not be used, or None. Lessons about permissions or safety are refused
    outright: only the user (through the permission dialog and rules) changes those."""
    found = _UNSAFE.search(text)
    if found:
        return f"touches permissions or safety ({found.group(0).strip()!r})"
    if not text.strip():
        return "empty"
    if len(text) > MAX_LESSON_CHARS:
        return f"longer than {MAX_LESSON_CHARS} characters"
    return None


_GENERIC = re.compile(
    r"^(always\s+|please\s+)?(be|stay)\s+(more\s+)?(accurate|helpful|careful|precise|correct|"
    r"concise|brief|clear)\b|^(always\s+)?(double[- ]?check|verify|check)\s+(your|the)\s+"
    r"(answer|facts|information|notes)\W*$|^answer\s+(correctly|accurately|the\s+question)\W*$",
    re.IGNORECASE,
)
_FILLER = {"a", "an", "the", "is", "are", "be", "to", "of", "in", "on", "for", "and", "or", "it"}
_FILLER |= {"always", "never", "when", "what", "which", "who", "how", "with", "from", "that"}
_FILLER |= {"answer", "answers", "question", "questions", "user", "assistant", "give", "use"}
_FILLER |= {"asked", "ask", "about", "this", "your", "you", "their", "his", "her", "my", "i"}
MIN_LESSON_WORDS = 5


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if w not in _FILLER and len(w) > 1}


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in content_words(text)}


def _numbers(text: str) -> set[str]:
    """The numbers in ``text``, and numbers run into letters ("WTU48261937"), as written."""
    return set(re.findall(r"\w*\d[\w]*", text))


def vague_reason(
    text: str,
    evidence: str = "",
    anchor: str = "",
    *,
    said: str = "",
    rejected: str = "",
    others: str = "",
    corrected: str = "",
) -> str | None:
    """Why a lesson says nothing, or None: a copied placeholder, a stock phrase ("be
    accurate"), too short, or (given the run it comes from) nothing in common with it.
    With the ``anchor`` it had to start with (:func:`lesson_anchor`), what follows the
    anchor is judged: the anchor repeats the question, so it proves nothing by itself; it
    must share a word with what the user ``said`` (the correction, the comment), say something
    of the ``corrected`` answer that the rejected one did not, and may not mostly repeat the
    ``rejected`` answer, give a number the user did not, nor be mostly words of the ``others``
    (the lessons the model was shown) that have nothing to do with this run."""
    others_words = content_words(others)
    words = text.split()
    if re.search(r"<[^>]*>|\.\.\.|\bN\b", text):
        return "a placeholder, not a lesson"
    if anchor and text.startswith(anchor):
        text = text[len(anchor) :]
        if not content_words(text):
            return "says nothing after the question"
        if said and not content_words(text) & content_words(said):
            return "says nothing the user said"
        # The correction's news is what a lesson from it must carry: "... say that the bike
        # shop is Halfords." shares "Halfords" with "Spokes on Mill Road (ask for Femi), not
        # Halfords any more." and says what the rejected answer said (kept in a session-6 run).
        news = content_words(corrected) - content_words(rejected)
        if news and not content_words(text) & news:
            return "says only what the rejected answer said"
        wrong_only = content_words(rejected) - content_words(f"{evidence} {said}")
        copied = content_words(text) & wrong_only
        if len(copied) >= 2 and len(copied) * 2 >= len(content_words(text)):
            return "repeats the answer the user rejected"
        # A number (a date, a code) the user did not give is the model's, and was wrong in
        # every kept lesson of the run that had one: "... say that the tenancy ends on 31
        # August 2026." for "On 31 August 2027.", "... the frame number WTU48261937." for
        # "1937, the last four digits of the frame number."
        if said and _numbers(text) - _numbers(f"{anchor} {evidence} {said}"):
            return "gives a number the user did not"
        # Mostly words of another lesson, from neither the question nor what the user said:
        # its sentence carried over (measured: "When asked when is Ellie's Grade 2 piano exam,
        # say that the home insurance policy renews on June 23.").
        known = _stems(f"{evidence} {said} {rejected}")
        carried = {w for w in content_words(text) if _stem(w) not in known} & others_words
        if len(carried) >= 2 and len(carried) * 2 >= len(content_words(text)):
            return "brings in words from another lesson"
    if _GENERIC.search(text.strip()):
        return "too vague to help"
    if len(words) < MIN_LESSON_WORDS:
        return f"fewer than {MIN_LESSON_WORDS} words"
    if evidence and not content_words(text) & content_words(evidence):
        return "says nothing about the run it comes from"
    return None


def next_status(status: str, helpful: int, harmful: int) -> str:
    if status == RETIRED:
        return RETIRED
    if harmful >= RETIRE_AT and harmful > helpful:
        return RETIRED
    if status == CANDIDATE and helpful >= PROMOTE_AT and helpful > harmful:
        return ACTIVE
    return status


@dataclass
class Lesson:
    id: int
    text: str
    status: str = CANDIDATE
    helpful: int = 0
    harmful: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    evidence: list[str] = field(default_factory=list)  # trace ids

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lesson:
        return cls(**data)


@dataclass(frozen=True)
class LessonDelta:
    op: str  # add | agree | edit | remove
    text: str = ""
    lesson_id: int | None = None
    evidence: tuple[str, ...] = ()  # trace ids
    source: str = ""  # what prompted it: "correction:12", "rating:4", "refinement:3", "user"

    def sort_key(self) -> tuple[Any, ...]:
        text = " ".join(self.text.lower().split())
        return (OPS.index(self.op), self.lesson_id or 0, text, self.evidence, self.source)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "evidence": list(self.evidence)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LessonDelta:
        return cls(**{**data, "evidence": tuple(data.get("evidence", ()))})


@dataclass(frozen=True)
class Applied:
    """What one delta did: added | agreed | merged | edited | removed | refused | ignored."""

    delta: LessonDelta
    result: str
    lesson_id: int | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta": self.delta.to_dict(),
            "result": self.result,
            "lesson_id": self.lesson_id,
            "reason": self.reason,
        }


class LessonStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- reading -----------------------------------------------------------------------------
    def get(self, lesson_id: int | str) -> Lesson:
        try:
            key = int(lesson_id)
        except ValueError:
            raise LessonNotFoundError(f"No lesson {lesson_id!r}.") from None
        row = self.conn.execute("SELECT * FROM lessons WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise LessonNotFoundError(f"No lesson {lesson_id!r}.")
        return self._lesson(row)

    def all(self, status: str | None = None) -> list[Lesson]:
        sql, params = "SELECT * FROM lessons", []
        if status is not None:
            sql += " WHERE status = ?"
            params.append(status)
        return [self._lesson(r) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def ranked(self, status: str, limit: int) -> list[Lesson]:
        """The best lessons of a status: most net helpful first, then oldest."""
        lessons = self.all(status)
        lessons.sort(key=lambda x: (-(x.helpful - x.harmful), x.id))
        return lessons[:limit]

    def _lesson(self, row: sqlite3.Row) -> Lesson:
        evidence = [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT trace_id FROM lesson_evidence WHERE lesson_id = ? ORDER BY 1",
                (row["id"],),
            )
        ]
        values = {k: row[k] for k in Lesson.__dataclass_fields__ if k != "evidence"}
        return Lesson(**values, evidence=evidence)

    def events(self, lesson_id: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT op, payload_json, created_at FROM lesson_events "
            "WHERE lesson_id = ? ORDER BY id",
            (lesson_id,),
        )
        return [{"op": r[0], **json.loads(r[1]), "created_at": r[2]} for r in rows]

    # -- deltas ------------------------------------------------------------------------------
    def apply(self, deltas: list[LessonDelta]) -> list[Applied]:
        """Apply a batch in the canonical order, in one transaction."""
        out: list[Applied] = []
        with transaction(self.conn):
            for delta in sorted(deltas, key=LessonDelta.sort_key):
                out.append(self._apply(delta))
        return out

    def _apply(self, delta: LessonDelta) -> Applied:
        now = time.time()
        if delta.op not in OPS:
            return Applied(delta, "ignored", reason=f"unknown op {delta.op!r}")
        if delta.op in ("add", "edit"):
            why = unsafe_reason(delta.text)
            if why is not None:
                return Applied(delta, "refused", delta.lesson_id, why)
        if delta.op == "add":
            text = " ".join(delta.text.split())
            twin = self._near_duplicate(text)
            if twin is not None and twin.status == RETIRED:
                return Applied(delta, "refused", twin.id, "nearly the same as a retired lesson")
            if twin is not None:
                self._count(twin, helpful=1, evidence=delta.evidence, source=delta.source, now=now)
                self._event(twin.id, "merged", delta, now)
                return Applied(delta, "merged", twin.id)
            cursor = self.conn.execute(
                "INSERT INTO lessons (text, status, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (text, CANDIDATE, now, now),
            )
            lesson_id = int(cursor.lastrowid or 0)
            self._add_evidence(lesson_id, delta.evidence, delta.source)
            self._event(lesson_id, "add", delta, now)
            return Applied(delta, "added", lesson_id)

        row = self.conn.execute("SELECT * FROM lessons WHERE id = ?", (delta.lesson_id,)).fetchone()
        if row is None:
            return Applied(delta, "ignored", delta.lesson_id, "no such lesson")
        lesson = self._lesson(row)
        if lesson.status == RETIRED:
            return Applied(delta, "ignored", lesson.id, "the lesson is retired")
        if delta.op == "agree":
            self._count(lesson, helpful=1, evidence=delta.evidence, source=delta.source, now=now)
            self._event(lesson.id, "agree", delta, now)
            return Applied(delta, "agreed", lesson.id)
        if delta.op == "remove":
            self._count(lesson, harmful=1, evidence=delta.evidence, source=delta.source, now=now)
            self._event(lesson.id, "remove", delta, now)
            return Applied(delta, "removed", lesson.id)
        text = " ".join(delta.text.split())
        self.conn.execute(
            "UPDATE lessons SET text = ?, updated_at = ? WHERE id = ?", (text, now, lesson.id)
        )
        self._add_evidence(lesson.id, delta.evidence, delta.source)
        self._event(lesson.id, "edit", delta, now, before=lesson.text)
        return Applied(delta, "edited", lesson.id)

    def _near_duplicate(self, text: str) -> Lesson | None:
        best: tuple[float, Lesson] | None = None
        for lesson in self.all():
            overlap = word_overlap(text, lesson.text)
            if overlap >= NEAR_DUPLICATE and (best is None or overlap > best[0]):
                best = (overlap, lesson)
        return best[1] if best else None

    def _count(
        self,
        lesson: Lesson,
        *,
        helpful: int = 0,
        harmful: int = 0,
        evidence: tuple[str, ...] = (),
        source: str = "",
        now: float,
    ) -> None:
        new_helpful, new_harmful = lesson.helpful + helpful, lesson.harmful + harmful
        status = next_status(lesson.status, new_helpful, new_harmful)
        self.conn.execute(
            "UPDATE lessons SET helpful = ?, harmful = ?, status = ?, updated_at = ? WHERE id = ?",
            (new_helpful, new_harmful, status, now, lesson.id),
        )
        self._add_evidence(lesson.id, evidence, source)

    def _add_evidence(self, lesson_id: int, trace_ids: tuple[str, ...], source: str) -> None:
        self.conn.executemany(
            "INSERT OR IGNORE INTO lesson_evidence (lesson_id, trace_id, source) VALUES (?, ?, ?)",
            [(lesson_id, t, source) for t in trace_ids],
        )

    def _event(self, lesson_id: int, op: str, delta: LessonDelta, now: float, **more: Any) -> None:
        self.conn.execute(
            "INSERT INTO lesson_events (lesson_id, op, payload_json, created_at) "
            "VALUES (?, ?, ?, ?)",
            (lesson_id, op, json.dumps({**delta.to_dict(), **more}), now),
        )

    # -- other updates -----------------------------------------------------------------------
    def retire(self, lesson_id: int | str, source: str = "user") -> Lesson:
        """The user retires a lesson: it leaves the prompt, its history stays."""
        lesson = self.get(lesson_id)
        now = time.time()
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE lessons SET status = ?, updated_at = ? WHERE id = ?",
                (RETIRED, now, lesson.id),
            )
            self.conn.execute(
                "INSERT INTO lesson_events (lesson_id, op, payload_json, created_at) "
                "VALUES (?, 'retire', ?, ?)",
                (lesson.id, json.dumps({"source": source}), now),
            )
        return self.get(lesson.id)

    def record_trial(
        self, lesson_ids: list[int], adopted: bool, source: str, *, helped: bool | None = None
    ) -> list[int]:
        """A refinement tried these lessons in its candidate. Refused: harmful. Adopted:
        helpful when they ``helped`` (the candidate scored better with them than without;
        None: adoption is taken as help), else no count. A lesson tried
        ``NEVER_HELPED_AFTER`` times that never helped is retired; returns those retired."""
        helpful = adopted and helped is not False
        deltas = [
            LessonDelta("agree" if helpful else "remove", lesson_id=i, source=source)
            for i in lesson_ids
            if helpful or not adopted
        ]
        self.apply(deltas)
        retired = []
        now = time.time()
        with transaction(self.conn):
            for lesson_id in lesson_ids:
                self.conn.execute(
                    "INSERT INTO lesson_events (lesson_id, op, payload_json, created_at) "
                    "VALUES (?, 'trial', ?, ?)",
                    (
                        lesson_id,
                        json.dumps({"source": source, "adopted": adopted, "helped": helped}),
                        now,
                    ),
                )
                row = self.conn.execute(
                    "SELECT status, helpful, (SELECT COUNT(*) FROM lesson_events e WHERE "
                    "e.lesson_id = lessons.id AND e.op = 'trial') FROM lessons WHERE id = ?",
                    (lesson_id,),
                ).fetchone()
                if row and row[0] != RETIRED and row[1] == 0 and row[2] >= NEVER_HELPED_AFTER:
                    self.conn.execute(
                        "UPDATE lessons SET status = ?, updated_at = ? WHERE id = ?",
                        (RETIRED, now, lesson_id),
                    )
                    self.conn.execute(
                        "INSERT INTO lesson_events (lesson_id, op, payload_json, created_at) "
                        "VALUES (?, 'retire', ?, ?)",
                        (lesson_id, json.dumps({"source": source, "why": "never helped"}), now),
                    )
                    retired.append(lesson_id)
        return retired

    def merge_near_duplicates(self) -> list[tuple[int, int]]:
        """Fold each live lesson into an older live near-duplicate; returns (kept, merged)."""
        merged: list[tuple[int, int]] = []
        now = time.time()
        with transaction(self.conn):
            live = [x for x in self.all() if x.status != RETIRED]
            gone: set[int] = set()
            for i, keep in enumerate(live):
                if keep.id in gone:
                    continue
                for other in live[i + 1 :]:
                    if other.id in gone or word_overlap(keep.text, other.text) < NEAR_DUPLICATE:
                        continue
                    self.conn.execute(
                        "UPDATE lessons SET helpful = helpful + ?, harmful = harmful + ?, "
                        "updated_at = ? WHERE id = ?",
                        (other.helpful, other.harmful, now, keep.id),
                    )
                    self.conn.execute(
                        "INSERT OR IGNORE INTO lesson_evidence (lesson_id, trace_id, source) "
                        "SELECT ?, trace_id, source FROM lesson_evidence WHERE lesson_id = ?",
                        (keep.id, other.id),
                    )
                    self.conn.execute(
                        "UPDATE lessons SET status = ?, updated_at = ? WHERE id = ?",
                        (RETIRED, now, other.id),
                    )
                    self.conn.execute(
                        "INSERT INTO lesson_events (lesson_id, op, payload_json, created_at) "
                        "VALUES (?, 'merged_into', ?, ?)",
                        (other.id, json.dumps({"into": keep.id}), now),
                    )
                    gone.add(other.id)
                    merged.append((keep.id, other.id))
            for keep_id in {k for k, _ in merged}:
                row = self.conn.execute(
                    "SELECT status, helpful, harmful FROM lessons WHERE id = ?", (keep_id,)
                ).fetchone()
                self.conn.execute(
                    "UPDATE lessons SET status = ? WHERE id = ?",
                    (next_status(row[0], row[1], row[2]), keep_id),
                )
        return merged

    def delete(self, lesson_id: int) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM lessons WHERE id = ?", (lesson_id,))

    # -- inputs the distiller has seen -------------------------------------------------------
    def processed(self, source: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM lesson_inputs WHERE source = ?", (source,))
        return row.fetchone() is not None

    def mark_processed(self, source: str) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR IGNORE INTO lesson_inputs (source, processed_at) VALUES (?, ?)",
                (source, time.time()),
            )


@dataclass(frozen=True)
class LessonInput:
    """A run the user was unhappy with: what was asked, answered, and what they said."""

    source: str  # "correction:ID" | "rating:ID"
    trace_id: str
    question: str
    answer: str
    corrected: str = ""
    comment: str = ""


_OPS_SCHEMA = {
    "type": "object",
    "properties": {
        "ops": {
            "type": "array",
            "items": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {"op": {"const": "add"}, "text": {"type": "string"}},
                        "required": ["op", "text"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "op": {"enum": ["agree", "remove"]},
                            "id": {"type": "integer"},
                        },
                        "required": ["op", "id"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "op": {"const": "edit"},
                            "id": {"type": "integer"},
                            "text": {"type": "string"},
                        },
                        "required": ["op", "id", "text"],
                        "additionalProperties": False,
                    },
                ]
            },
        }
    },
    "required": ["ops"],
    "additionalProperties": False,
}
MAX_OPS_PER_INPUT = 2
MAX_ANCHOR_CHARS = 100


def lesson_anchor(question: str) -> str | None:
    """The words a new lesson must start with: "When asked <the question>, say ". A small
    model otherwise copies the prompt's example lesson word for word (Qwen2.5-Coder-0.5B
    wrote the commute-train example for a question about sourdough flour, and went on with
    it after "When asked <the question>, "); held to the question and to what to say, it
    writes about the question. Only letters, digits, spaces, apostrophes, commas and
    hyphens are kept, so the anchor is literal text in a schema ``pattern``. None for a
    question too long to repeat."""
    words = " ".join(re.sub(r"[^\w' ,-]", " ", question).split()).rstrip(" ,")
    if not words or len(words) > MAX_ANCHOR_CHARS:
        return None
    if len(words) > 1 and not words[:2].isupper():  # "What flour ..." -> "what flour ..."
        words = words[0].lower() + words[1:]
    return f"When asked {words}, say "


def ops_schema(anchor: str | None) -> dict[str, Any]:
    """The reply's schema; with an ``anchor``, an added or edited lesson starts with it."""
    if anchor is None:
        return _OPS_SCHEMA
    schema = json.loads(json.dumps(_OPS_SCHEMA))
    for option in schema["properties"]["ops"]["items"]["anyOf"]:
        text = option["properties"].get("text")
        if text is not None:
            text["pattern"] = f"^{anchor}.+$"
    return schema


class LessonDistiller:
    """Asks the model for lesson deltas, one unhappy run at a time (a small model, a small
    context); the deltas are data, checked and merged by :class:`LessonStore`."""

    def __init__(self, backend: ChatBackend, *, seed: int = 42, max_tokens: int = 160) -> None:
        self.backend = backend
        self.settings = GenerationSettings(temperature=0.0, seed=seed, max_tokens=max_tokens)
        self.refused: list[dict[str, Any]] = []  # proposals that said nothing, and why

    def propose(self, item: LessonInput, lessons: list[Lesson]) -> list[LessonDelta]:
        prompt = render(
            "lessons_distill.txt",
            lessons=[x for x in lessons if x.status != RETIRED],
            question=item.question,
            answer=item.answer,
            corrected=item.corrected,
            comment=item.comment,
        )
        anchor = lesson_anchor(item.question)
        result = self.backend.chat(
            [{"role": "user", "content": prompt}],
            self.settings,
            response_schema=ops_schema(anchor),
        )
        try:
            ops = json.loads(result.text).get("ops", [])
        except (json.JSONDecodeError, AttributeError):
            return []  # cut off by max_tokens: nothing learnt from this one
        deltas = []
        evidence = " ".join((item.question, item.corrected, item.comment))
        for op in ops[:MAX_OPS_PER_INPUT]:
            if not isinstance(op, dict) or op.get("op") not in OPS:
                continue
            if op["op"] in ("add", "edit"):
                why = vague_reason(
                    str(op.get("text", "")),
                    evidence,
                    anchor or "",
                    said=f"{item.corrected} {item.comment}".strip(),
                    rejected=item.answer,
                    others=" ".join(x.text for x in lessons),
                    corrected=item.corrected,
                )
                if why is not None:
                    self.refused.append({"source": item.source, "op": op, "reason": why})
                    continue
            deltas.append(
                LessonDelta(
                    op["op"],
                    text=str(op.get("text", "")),
                    lesson_id=op.get("id"),
                    evidence=(item.trace_id,),
                    source=item.source,
                )
            )
        return deltas
