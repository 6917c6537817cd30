"""The Learning page's controller: runs and the replay viewer, experiences, lessons, prompt
versions, refine, export, forget. Every engine call runs in a worker."""

from __future__ import annotations

import html
import json
import threading
import time
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox

from desktop.confirm import diff_html
from desktop.panels.learning_adapter import (
    LearningAdapter,
    Unavailable,
    version_diff,
)
from desktop.panels.learning_view import LearningPage, fill, step_html, when
from desktop.tasks import TaskRunner, error_text


def version_text(row: dict[str, Any]) -> str:
    """A prompt version as one text: the system prompt, then its lessons."""
    lessons = [f"- {lesson.get('text', '')}" for lesson in row.get("lessons") or []]
    text = str(row.get("system_text") or row.get("text") or "")
    return text + ("\n\nLessons:\n" + "\n".join(lessons) if lessons else "")


def schedule_text(status: dict[str, Any], now: float | None = None) -> str:
    """The schedule in one line: when the next refinement runs, and how the last one ended."""
    now = time.time() if now is None else now
    parts = []
    next_at = status.get("next_run_at")
    if status.get("running"):
        parts.append("Idle refinement: running now")
    elif next_at is None:
        parts.append("Idle refinement: off ([learning] refine_max_per_day = 0)")
    elif not status.get("scheduled"):
        parts.append("Idle refinement: not scheduled (it starts with the model)")
    elif next_at <= now + 1:
        parts.append("Idle refinement: due now (checked every few minutes)")
    else:
        idle = status.get("idle_minutes")
        why = (
            f" after {idle:g} min idle"
            if idle and "active" in (status.get("why_not") or "")
            else ""
        )
        parts.append(f"Idle refinement: next {when(next_at)}{why}")
    last = status.get("last_run")
    if not last:
        parts.append("never run yet")
    else:
        result = str(last.get("status", ""))
        if last.get("candidate_score") is not None and last.get("current_score") is not None:
            result += (
                f" ({float(last['candidate_score']):.3f} vs {float(last['current_score']):.3f})"
            )
        reason = str(last.get("reason") or "")
        parts.append(f"last run {when(last.get('started_at'))}: {result}" +
                     (f" — {reason}" if reason else ""))  # fmt: skip
    return " · ".join(parts)


MARK_WORDS = {"up": "▲ up", "down": "▼ down", "corrected": "✎ corrected"}
FILTER_MARKS = {"Rated up": "up", "Rated down": "down", "Corrected": "corrected"}


class LearningController(QObject):
    refined = Signal()

    def __init__(self, services: Any, page: LearningPage, tasks: TaskRunner) -> None:
        super().__init__(page)
        self.services = services
        self.page = page
        self.tasks = tasks
        self.learning = LearningAdapter(services)
        self.rows: list[dict[str, Any]] = []
        self.marks: dict[str, str] = {}
        self.trace: Any = None
        self.replay_checks: list[dict[str, Any]] = []
        self.lesson_rows: dict[str, dict[str, Any]] = {}
        self.version_rows: list[dict[str, Any]] = []
        self.experience_rows: dict[str, dict[str, Any]] = {}
        runs = page.runs
        runs.filter_changed.connect(lambda _: self._show_runs())
        runs.run_selected.connect(self.open_run)
        runs.replay_requested.connect(self.replay)
        runs.forget_requested.connect(lambda key: self.forget("trace", key))
        runs.steps.currentRowChanged.connect(self._show_step)
        page.experiences.selected.connect(self._show_experience)
        page.experiences.action.connect(self._experience_action)
        page.lessons.selected.connect(self._show_lesson)
        page.lessons.action.connect(self._lesson_action)
        page.prompts.selected.connect(self._show_version)
        page.prompts.action.connect(self._version_action)
        page.refine_requested.connect(self.refine)
        page.export_requested.connect(self.export)

    # -- loading ----------------------------------------------------------------------------
    def refresh(self) -> None:
        def load() -> dict[str, Any]:
            rows = self.learning.runs()
            out: dict[str, Any] = {
                "runs": rows,
                "marks": self.learning.feedback_marks(),
            }
            for name in ("experiences", "lessons", "prompt_versions", "schedule", "judge_status"):
                try:
                    out[name] = getattr(self.learning, name)()
                except Unavailable as exc:
                    out[name] = exc
            out["capabilities"] = {
                name: self.learning.available(name)
                for name in (
                    "replay",
                    "forget",
                    "refine",
                    "export",
                    "edit_lesson",
                    "retire_lesson",
                    "rollback",
                )
            }
            return out

        self.tasks.run(load, on_done=self._loaded, on_error=self._failed, name="learning")

    def _loaded(self, data: dict[str, Any]) -> None:
        self.rows, self.marks = data["runs"], data["marks"]
        self._show_runs()
        caps = data["capabilities"]
        page = self.page
        page.runs.replay.setProperty("available", caps["replay"])
        page.refine.setEnabled(caps["refine"])
        page.export.setEnabled(caps["export"])
        page.lessons.set_available("edit", caps["edit_lesson"])
        page.lessons.set_available("retire", caps["retire_lesson"])
        page.lessons.set_available("forget", caps["forget"])
        page.experiences.set_available("forget", caps["forget"])
        page.prompts.set_available("rollback", caps["rollback"])
        if not caps["refine"]:
            page.refine.setToolTip("Arrives with the learning engine.")
        schedule = data["schedule"]
        page.schedule.setText("" if isinstance(schedule, Exception) else schedule_text(schedule))
        judge = data["judge_status"]
        page.judge.setText("" if isinstance(judge, Exception) else judge)
        self._fill_experiences(data["experiences"])
        self._fill_lessons(data["lessons"])
        self._fill_versions(data["prompt_versions"])

    def _show_runs(self) -> None:
        wanted = self.page.runs.filter.currentText()
        rows = self.rows
        if wanted in FILTER_MARKS:
            rows = [r for r in rows if self.marks.get(r["id"]) == FILTER_MARKS[wanted]]
        elif wanted == "Not rated":
            rows = [r for r in rows if r["id"] not in self.marks]
        elif wanted == "Failed or stopped":
            rows = [r for r in rows if r["status"] not in ("ok",)]
        marks = {k: MARK_WORDS.get(v, v) for k, v in self.marks.items()}
        self.page.runs.set_runs(rows, marks)

    def _fill_experiences(self, rows: Any) -> None:
        tab = self.page.experiences
        if isinstance(rows, Exception):
            tab.note.setText(str(rows))
            return
        self.experience_rows = {str(r.get("id")): r for r in rows}
        fill(
            tab.table,
            [
                [
                    str(r.get("task", "")),
                    str(r.get("uses", 0)),
                    str(r.get("successes", 0)),
                    str(r.get("failures", 0)),
                    when(r.get("last_used_at")),
                ]
                for r in rows
            ],
            [str(r.get("id")) for r in rows],
        )

    def _fill_lessons(self, rows: Any) -> None:
        tab = self.page.lessons
        if isinstance(rows, Exception):
            tab.note.setText(str(rows))
            return
        self.lesson_rows = {str(r.get("id")): r for r in rows}
        fill(
            tab.table,
            [
                [
                    str(r.get("text", "")),
                    str(r.get("status", "")),
                    str(r.get("helpful", 0)),
                    str(r.get("harmful", 0)),
                ]
                for r in rows
            ],
            [str(r.get("id")) for r in rows],
        )

    def _fill_versions(self, rows: Any) -> None:
        tab = self.page.prompts
        if isinstance(rows, Exception):
            tab.note.setText(str(rows))
            return
        self.version_rows = list(rows)
        fill(
            tab.table,
            [
                [
                    str(r.get("id", "")),
                    when(r.get("created_at")),
                    str(r.get("status", "")),
                    "" if r.get("score") is None else f"{float(r['score']):.3f}",
                    str(r.get("reason", "")),
                ]
                for r in rows
            ],
            [str(r.get("id")) for r in rows],
        )

    # -- runs and replay ----------------------------------------------------------------------
    def open_run(self, trace_id: str) -> None:
        def loaded(trace: Any) -> None:
            self.trace = trace
            self.replay_checks = []
            runs = self.page.runs
            runs.show_trace(trace)
            runs.replay.setEnabled(runs.replay.property("available") is not False)
            runs.forget.setEnabled(True)

        self.tasks.run(lambda: self.learning.trace(trace_id), on_done=loaded, on_error=self._failed)

    def _show_step(self, row: int) -> None:
        if self.trace is None or not 0 <= row < len(self.trace.steps):
            return
        check = self.replay_checks[row] if row < len(self.replay_checks) else None
        self.page.runs.detail.setHtml(step_html(self.trace.steps[row], check))

    def replay(self, trace_id: str) -> None:
        runs = self.page.runs
        runs.replay.setEnabled(False)
        self.page.status.setText("Replaying…")

        def done(report: dict[str, Any]) -> None:
            runs.replay.setEnabled(True)
            self.replay_checks = report["steps"]
            runs.mark_replay(report["steps"], report["first_divergence"])
            self._show_step(runs.steps.currentRow())
            self.page.status.setText(report["summary"])

        def failed(exc: BaseException) -> None:
            runs.replay.setEnabled(True)
            self._failed(exc)

        self.tasks.run(
            lambda: self.learning.replay(trace_id), on_done=done, on_error=failed, name="replay"
        )

    # -- experiences, lessons, versions ------------------------------------------------------
    def _show_experience(self, key: str) -> None:
        row = self.experience_rows.get(key, {})
        body = row.get("workflow") or ""
        script = json.dumps(row.get("script") or {}, ensure_ascii=False, indent=2)
        self.page.experiences.detail.setHtml(
            f"<h4>Workflow</h4><p>{html.escape(str(body))}</p>"
            f"<h4>Script</h4><pre>{html.escape(str(script))}</pre>"
        )

    def _experience_action(self, name: str, key: str) -> None:
        if name == "forget":
            self.forget("experience", key)

    def _show_lesson(self, key: str) -> None:
        row = self.lesson_rows.get(key, {})
        evidence = row.get("evidence") or []
        self.page.lessons.detail.setHtml(
            f"<p>{html.escape(str(row.get('text', '')))}</p>"
            f"<p style='color:#6b7280'>Evidence: {html.escape(', '.join(map(str, evidence)))}</p>"
        )

    def _lesson_action(self, name: str, key: str) -> None:
        if name == "edit":
            current = str(self.lesson_rows.get(key, {}).get("text", ""))
            text, ok = QInputDialog.getText(
                self.page, "Edit lesson", "Lesson:", QLineEdit.EchoMode.Normal, current
            )
            if ok and text.strip() and text.strip() != current:
                self._do(lambda: self.learning.edit_lesson(key, text.strip()), "Lesson saved.")
        elif name == "retire":
            self._do(lambda: self.learning.retire_lesson(key), "Lesson retired.")
        elif name == "forget":
            self.forget("lesson", key)

    def _show_version(self, key: str) -> None:
        rows = self.version_rows
        index = next((i for i, r in enumerate(rows) if str(r.get("id")) == key), None)
        if index is None:
            return
        row = rows[index]
        previous = next((r for r in rows if r.get("id") == row.get("parent_id")), None)
        if previous is None and index + 1 < len(rows):
            previous = rows[index + 1]
        scores = json.dumps(row.get("scores") or {}, ensure_ascii=False, indent=1)
        head = (
            f"<p><b>{html.escape(key)}</b> · {html.escape(str(row.get('status', '')))} · "
            f"{html.escape(str(row.get('origin', '')))}<br>"
            f"<span style='color:#6b7280'>{html.escape(str(row.get('reason', '')))}</span></p>"
        )
        if previous is None:
            body = f"<pre>{html.escape(version_text(row))}</pre>"
        else:
            diff = version_diff(version_text(previous), version_text(row),
                                str(previous.get("id")), key)  # fmt: skip
            body = diff_html(diff)
        self.page.prompts.detail.setHtml(
            head + body + f"<h4>Scores</h4><pre>{html.escape(scores)}</pre>"
        )

    def _version_action(self, name: str, key: str) -> None:
        if name == "rollback":
            self._do(lambda: self.learning.rollback(key), f"Version {key} is now in use.")

    # -- refine, export, forget ---------------------------------------------------------------
    def refine(self) -> None:
        page = self.page
        page.refine.setEnabled(False)
        page.refine_progress.show()
        page.refine_progress.setRange(0, 0)
        page.status.setText("Refining: building a candidate prompt and scoring it…")

        def finished(summary: str) -> None:
            page.refine.setEnabled(True)
            page.refine_progress.hide()
            page.status.setText(summary)
            self.refined.emit()
            self.refresh()

        def failed(exc: BaseException) -> None:
            page.refine.setEnabled(True)
            page.refine_progress.hide()
            self._failed(exc)

        cancel = threading.Event()
        self.refine_task = self.tasks.run(
            lambda: self.learning.refine(cancel),
            on_done=finished,
            on_error=failed,
            cancel=cancel,
            name="refine",
        )

    def export(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self.page,
            "Export dataset",
            "jackdaw-sft.jsonl",
            "SFT chat messages (*.jsonl);;Preference pairs (*.jsonl)",
        )
        if not path:
            return
        fmt = "preference" if chosen.startswith("Preference") else "sft"
        self._do(lambda: self.learning.export(path, fmt), None)

    def forget(self, kind: str, key: str) -> None:
        answer = QMessageBox.question(
            self.page,
            f"Forget {kind}",
            f"Forget this {kind}, and everything learned only from it? This cannot be undone.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._do(lambda: self.learning.forget(kind, key), f"Forgot the {kind}.")

    def _do(self, work: Any, message: str | None) -> None:
        def done(result: Any) -> None:
            self.page.status.setText(message or str(result))
            self.refresh()

        self.tasks.run(work, on_done=done, on_error=self._failed, serial=True)

    def _failed(self, exc: BaseException) -> None:
        self.page.status.setText(str(exc) if isinstance(exc, Unavailable) else error_text(exc))
