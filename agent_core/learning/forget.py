"""Forgetting: delete a trace, an experience, a lesson or a correction, and everything
derived only from it, in one transaction.

* a **trace**: its steps, ratings and corrections, its conversation turn, experiences and
  lessons left with no other source, and prompt versions that quote it (an exemplar taken
  from it, or a lesson that goes);
* a **correction**: lessons whose only evidence it was, prompt versions that quote it;
* a **lesson**: prompt versions that include it;
* an **experience**: just itself (traces that replayed it keep only its id).

Prompt versions that quote forgotten text are deleted; if the version in force is among
them, the version activated before it is in force again (activations are a history). The
tool audit log is kept: it is the security record of what tools did, not learnt data.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from agent_core.learning.feedback import FeedbackStore
from agent_core.learning.versions import DEFAULT, PromptVersionStore
from agent_core.memory_db import transaction
from agent_core.traces import TraceStore

KINDS = ("trace", "experience", "lesson", "correction")


@dataclass
class ForgetReport:
    kind: str
    id: str
    deleted: dict[str, list[Any]] = field(default_factory=dict)
    active_prompt_before: str = ""
    active_prompt_after: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, what: str, ids: list[Any]) -> None:
        if ids:
            self.deleted.setdefault(what, []).extend(ids)


class Forgetter:
    def __init__(
        self,
        conn: sqlite3.Connection,
        traces: TraceStore,
        feedback: FeedbackStore,
        versions: PromptVersionStore,
    ) -> None:
        self.conn = conn
        self.traces = traces
        self.feedback = feedback
        self.versions = versions

    def forget(self, kind: str, item_id: str) -> ForgetReport:
        if kind not in KINDS:
            raise ValueError(f"cannot forget a {kind!r}")
        before = self.versions.active().id
        report = ForgetReport(kind, item_id, active_prompt_before=before)
        if kind == "trace":
            trace_id = self.traces.get(item_id).id  # raises with a hint when unknown
            report.id = trace_id
            with transaction(self.conn):
                self._trace(trace_id, report)
        elif kind == "correction":
            correction = self.feedback.correction(item_id)
            report.id = str(correction.id)
            with transaction(self.conn):
                self._correction(correction.id, report)
        elif kind == "lesson":
            from agent_core.learning.lessons import LessonStore

            lesson = LessonStore(self.conn).get(item_id)
            report.id = str(lesson.id)
            with transaction(self.conn):
                self._lessons([lesson.id], report)
        else:
            from agent_core.learning.experiences import ExperienceStore

            experience = ExperienceStore(self.conn, self.feedback.encoder).get(item_id)
            report.id = experience.id
            with transaction(self.conn):
                self.conn.execute("DELETE FROM experiences WHERE id = ?", (experience.id,))
                report.add("experiences", [experience.id])
        report.active_prompt_after = self.versions.active().id
        return report

    # -- the parts (inside the caller's transaction) --------------------------------------
    def _ids(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return [r[0] for r in self.conn.execute(sql, params)]

    def _trace(self, trace_id: str, report: ForgetReport) -> None:
        for correction_id in self._ids(
            "SELECT id FROM corrections WHERE trace_id = ?", (trace_id,)
        ):
            self._correction(correction_id, report)
        ratings = self._ids("SELECT id FROM ratings WHERE trace_id = ?", (trace_id,))
        self.conn.execute("DELETE FROM ratings WHERE trace_id = ?", (trace_id,))
        self.conn.executemany(
            "DELETE FROM lesson_inputs WHERE source = ?", [(f"rating:{r}",) for r in ratings]
        )
        report.add("ratings", ratings)

        # An experience goes when no other run backs it, or when its text comes from this
        # run (its task is the first source's question; its script the latest source's).
        doomed = []
        for experience_id in self._ids(
            "SELECT experience_id FROM experience_sources WHERE trace_id = ?", (trace_id,)
        ):
            sources = self._ids(
                "SELECT trace_id FROM experience_sources WHERE experience_id = ? "
                "ORDER BY added_at, rowid",
                (experience_id,),
            )
            script = json.loads(
                self.conn.execute(
                    "SELECT script_json FROM experiences WHERE id = ?", (experience_id,)
                ).fetchone()[0]
            )
            if sources[0] == trace_id or script.get("source_trace") == trace_id:
                doomed.append(experience_id)
        self.conn.execute("DELETE FROM experience_sources WHERE trace_id = ?", (trace_id,))
        self.conn.executemany("DELETE FROM experiences WHERE id = ?", [(e,) for e in doomed])
        report.add("experiences", doomed)

        self._evidence("trace_id = ?", (trace_id,), report)
        self._versions_quoting(
            lambda v: any(e["trace_id"] == trace_id for e in v["exemplars"]), report
        )
        turns = self.conn.execute("DELETE FROM turns WHERE trace_id = ?", (trace_id,)).rowcount
        if turns:
            report.add("turns", [trace_id])
        self.conn.execute("DELETE FROM traces WHERE id = ?", (trace_id,))  # steps cascade
        report.add("traces", [trace_id])
        self._scrub_reports(trace_id, report)

    def _correction(self, correction_id: int, report: ForgetReport) -> None:
        source = f"correction:{correction_id}"
        self.conn.execute("DELETE FROM corrections WHERE id = ?", (correction_id,))
        self.conn.execute("DELETE FROM lesson_inputs WHERE source = ?", (source,))
        report.add("corrections", [correction_id])
        self._scrub_reports(f'"{source}"', report)
        self._evidence("source = ?", (source,), report)
        self._versions_quoting(lambda v: any(e["source"] == source for e in v["exemplars"]), report)

    def _scrub_reports(self, needle: str, report: ForgetReport) -> None:
        """Refinement reports quote the answers of their cases: drop those that name it."""
        runs = self._ids(
            "SELECT id FROM refinement_runs WHERE instr(report_json, ?) > 0", (needle,)
        )
        self.conn.executemany(
            "UPDATE refinement_runs SET report_json = '{}' WHERE id = ?", [(r,) for r in runs]
        )
        report.add("refinement_reports", runs)

    def _evidence(self, where: str, params: tuple[Any, ...], report: ForgetReport) -> None:
        """Drop evidence rows; lessons left with none (that had some) go too."""
        lessons = self._ids(f"SELECT DISTINCT lesson_id FROM lesson_evidence WHERE {where}", params)
        self.conn.execute(f"DELETE FROM lesson_evidence WHERE {where}", params)
        orphans = [
            x
            for x in lessons
            if not self._ids("SELECT 1 FROM lesson_evidence WHERE lesson_id = ?", (x,))
        ]
        self._lessons(orphans, report)

    def _lessons(self, lesson_ids: list[int], report: ForgetReport) -> None:
        if not lesson_ids:
            return
        self.conn.executemany("DELETE FROM lessons WHERE id = ?", [(x,) for x in lesson_ids])
        report.add("lessons", lesson_ids)
        gone = set(lesson_ids)
        self._versions_quoting(lambda v: any(x["id"] in gone for x in v["lessons"]), report)

    def _versions_quoting(self, quotes: Any, report: ForgetReport) -> None:
        rows = self.conn.execute(
            "SELECT id, status, lessons_json, exemplars_json FROM prompt_versions"
        ).fetchall()
        doomed = [
            r["id"]
            for r in rows
            if r["status"] != DEFAULT
            and quotes(
                {
                    "lessons": json.loads(r["lessons_json"]),
                    "exemplars": json.loads(r["exemplars_json"]),
                }
            )
        ]
        # Activations cascade: the version activated before a deleted one is in force again.
        self.conn.executemany("DELETE FROM prompt_versions WHERE id = ?", [(v,) for v in doomed])
        report.add("prompt_versions", doomed)
