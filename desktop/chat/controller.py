"""Gives the chat page life: conversations, asking with streaming, Stop, Regenerate, feedback.

Every call into services runs in a :class:`TaskRunner` worker; the worker reports text pieces
and agent events through ``report`` and they reach the view on the main thread.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

from agent_core.progress import related_fact_line, step_line
from agent_core.traces import Trace
from desktop import seams
from desktop.chat.correction import CorrectionDialog
from desktop.chat.transcript import AnswerCard
from desktop.chat.view import ChatView
from desktop.model_loader import ModelLoader
from desktop.sources import open_source
from desktop.tasks import Task, TaskRunner, error_text

NO_FEEDBACK = "Rating and correcting arrive with the learning engine."


@dataclass
class _Run:
    question: str
    card: AnswerCard
    cancel: threading.Event = field(default_factory=threading.Event)
    task: Task | None = None
    started: float = field(default_factory=time.perf_counter)


def tokens_per_second(trace: Trace) -> float | None:
    tokens = sum(s.completion_tokens for s in trace.steps)
    seconds = sum(max(s.duration_ms - s.first_token_ms, 0.0) for s in trace.steps) / 1000
    return tokens / seconds if tokens and seconds > 0 else None


def with_corrections(services: Any, turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each turn whose run the user corrected gets ``corrected``: the newest correction's
    answer (the turn's ``answer`` stays the original). Workers only."""
    engine = seams.learning_service(services)
    if engine is None or not seams.has_capability(engine, "corrections"):
        return turns
    for turn in turns:
        trace = turn.get("trace")
        if trace is None:
            continue
        try:
            found = engine.corrections(history=True, trace_id=trace.id)
        except TypeError:  # an engine that cannot look them up by run
            return turns
        if found:
            turn["corrected"] = found[-1].answer
    return turns


def markers_for(trace: Trace) -> list[tuple[str, str]]:
    """(label, tooltip) for answers that did not come from the model alone."""
    extra = trace.extra or {}
    out = []
    if extra.get("replayed_from"):
        out.append(
            (
                "↻ Replayed a saved experience",
                f"Experience {extra['replayed_from']} did the planning; the model was not asked",
            )
        )
    correction = extra.get("correction")
    if isinstance(correction, dict):
        stamp = correction.get("created_at")
        date = time.strftime("%Y-%m-%d", time.localtime(stamp)) if stamp is not None else ""
        if correction.get("kind") == "confirmed":
            out.append(
                (
                    f"✓ The answer you rated up{' on ' + date if date else ''}",
                    "You rated this answer up for the same question; your notes have not "
                    "changed since, so the model was not asked again",
                )
            )
        else:
            judged = correction.get("judged_by")
            out.append(
                (
                    f"✓ Your correction{' of ' + date if date else ''}",
                    f'Answered with the answer you gave when you corrected "'
                    f'{correction.get("question", "")}", judged to ask the same by {judged}'
                    if judged
                    else "Answered with the answer you gave when you corrected this question",
                )
            )
    elif extra.get("corrections"):
        out.append(_informed_by(extra["corrections"]))
    if extra.get("truncated"):
        out.append(("Cut short", "The answer reached the token limit ([model] max_answer_tokens)"))
    return out


def _informed_by(facts: list[dict[str, Any]]) -> tuple[str, str]:
    """The marker of an answer the model gave with corrections or up-rated answers in its
    prompt; the tooltip says which questions they answered."""
    kinds = {f.get("kind", "correction") for f in facts}
    if kinds == {"confirmed"}:
        label = "answers you rated up" if len(facts) > 1 else "an answer you rated up"
    elif kinds == {"correction"}:
        label = "your corrections" if len(facts) > 1 else "your correction"
    else:
        label = "your corrections and ratings"
    lines = [
        f'{"Rated up" if f.get("kind") == "confirmed" else "Corrected"}: "{f.get("question", "")}"'
        f" -> {f.get('answer', '')}"
        + (f" (judged to answer this question by {f['judged_by']})" if f.get("judged_by") else "")
        for f in facts
    ]
    return (
        f"✓ Informed by {label}",
        "Given to the model as facts for this question:\n" + "\n".join(lines),
    )


class ChatController(QObject):
    conversations_changed = Signal()
    answer_finished = Signal(object)  # Trace
    speed_measured = Signal(float)  # tokens/s of the last answer
    busy_changed = Signal(bool)

    def __init__(
        self, services: Any, view: ChatView, tasks: TaskRunner, model: ModelLoader
    ) -> None:
        super().__init__(view)
        self.services = services
        self.view = view
        self.tasks = tasks
        self.model = model
        self.conversation_id: str | None = None
        self.run: _Run | None = None
        self.last_question: str | None = None
        self._rows: list[dict[str, Any]] = []

        conv = view.conversations
        conv.new_requested.connect(self.new_conversation)
        conv.selected.connect(self.open_conversation)
        conv.rename_requested.connect(self.rename)
        conv.delete_requested.connect(self.delete)
        composer = view.composer
        composer.send_requested.connect(self.send)
        composer.stop_requested.connect(self.stop)
        composer.regenerate_requested.connect(self.regenerate)

    # -- conversations ------------------------------------------------------------------------
    def refresh_conversations(self) -> None:
        self.tasks.run(
            self.services.conversations.list, on_done=self._show_rows, name="conversations"
        )

    def _show_rows(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows
        self.view.conversations.set_conversations(rows, self.conversation_id)
        self.conversations_changed.emit()

    def new_conversation(self) -> None:
        if self.busy:
            return
        self.conversation_id = None
        self.last_question = None
        self.view.transcript.clear()
        self.view.conversations.select(None)
        self._update_composer()
        self.view.composer.edit.setFocus()

    def open_conversation(self, conversation_id: str) -> None:
        if self.busy:  # a streaming answer belongs to the conversation on screen
            self.view.conversations.select(self.conversation_id)
            return
        self.conversation_id = conversation_id

        def load() -> list[dict[str, Any]]:
            return with_corrections(
                self.services, seams.conversation_turns(self.services, conversation_id)
            )

        self.tasks.run(load, on_done=lambda turns: self._show_turns(conversation_id, turns))

    def _show_turns(self, conversation_id: str, turns: list[dict[str, Any]]) -> None:
        if conversation_id != self.conversation_id:
            return  # the user moved on while it loaded
        transcript = self.view.transcript
        transcript.clear()
        for turn in turns:
            transcript.add_question(turn["question"])
            card = transcript.add_answer()
            card.set_text(turn["answer"])
            trace = turn["trace"]
            if trace is not None:
                self._decorate(card, trace)
            else:
                card.set_feedback_enabled(False, "This answer's run was not found.")
            if turn.get("corrected") is not None:
                card.show_correction(turn["corrected"], turn["answer"])
                card.add_marker("✓ Corrected", "You corrected this answer")
        self.last_question = turns[-1]["question"] if turns else None
        self._update_composer()

    def rename(self, conversation_id: str, title: str) -> None:
        self.tasks.run(
            lambda: self.services.conversations.rename(conversation_id, title),
            on_done=lambda _: self.refresh_conversations(),
            on_error=self._show_error,
            serial=True,
        )

    def delete(self, conversation_id: str) -> None:
        if self.busy and conversation_id == self.conversation_id:
            return

        def deleted(_: Any) -> None:
            if conversation_id == self.conversation_id:
                self.new_conversation()
            self.refresh_conversations()

        self.tasks.run(
            lambda: self.services.conversations.delete(conversation_id),
            on_done=deleted,
            on_error=self._show_error,
            serial=True,
        )

    # -- asking ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.run is not None

    def send(self, question: str) -> None:
        if self.busy or not question.strip():
            return
        self.view.transcript.add_question(question)
        self._ask(question, regenerate=False)

    def regenerate(self) -> None:
        if self.busy or not self.last_question:
            return
        self.view.transcript.remove_last_answer()
        self._ask(self.last_question, regenerate=True)

    def stop(self) -> None:
        if self.run is not None:
            self.run.cancel.set()
            self.run.card.set_status("Stopping…")

    def _ask(self, question: str, *, regenerate: bool) -> None:
        card = self.view.transcript.add_answer()
        run = _Run(question, card)
        self.run = run
        self.last_question = question
        card.set_status("Loading the model…" if self.model.state != "ready" else "Thinking…")
        self._update_composer()
        self.busy_changed.emit(True)
        conversation_id = self.conversation_id

        def work(report: Any) -> Trace:
            self.model.ensure()
            session = self.services.session(conversation_id)
            report(("conversation", session.conversation_id))
            if regenerate and conversation_id:
                seams.drop_last_turn(self.services, conversation_id)
            return session.ask(
                question,
                on_text=lambda piece: report(("text", piece)),
                on_event=lambda event: report(("event", event)),
                cancel=run.cancel,
            )

        run.task = self.tasks.run(
            work,
            on_progress=lambda item: self._progress(run, item),
            on_done=lambda trace: self._finished(run, trace),
            on_error=lambda exc: self._failed(run, exc),
            cancel=run.cancel,
            name="ask",
        )

    def _progress(self, run: _Run, item: tuple[str, Any]) -> None:
        kind, value = item
        card = run.card
        if kind == "text":
            if not card.text():
                card.set_status("")
            card.append_text(value)
        elif kind == "conversation":
            if self.conversation_id != value:
                self.conversation_id = value
                self.refresh_conversations()
        elif kind == "event":
            line = step_line(value)
            if line:
                card.add_step(line)
            if value.kind == "step_started" and not card.text() and not run.cancel.is_set():
                card.set_status("Thinking…")
            elif value.kind == "tool_call":
                card.set_status(f"Using {value.data.get('tool')}…")
            elif value.kind == "tool_result":
                status = value.data.get("status")
                if status == "denied":
                    card.set_status(f"{value.data.get('tool')} was not allowed.")

    def _finished(self, run: _Run, trace: Trace) -> None:
        card = run.card
        card.fold_steps()
        if trace.final_answer is not None:
            card.set_text(trace.final_answer)
        elif trace.status == "cancelled" and not card.text():
            card.set_text("")
        self._decorate(card, trace)
        if trace.status == "cancelled":
            card.set_status("Stopped.")
            card.set_feedback_enabled(False, "A stopped answer cannot be rated.")
        elif trace.status == "budget_exhausted":
            card.set_status("Jackdaw ran out of steps for this question.", "error")
        else:
            card.set_status("")
        speed = tokens_per_second(trace)
        if speed is not None:
            self.speed_measured.emit(speed)
        self._end(run)
        self.answer_finished.emit(trace)
        self.refresh_conversations()

    def _failed(self, run: _Run, exc: BaseException) -> None:
        run.card.set_status(error_text(exc), "error")
        run.card.set_feedback_enabled(False)
        self._end(run)

    def _end(self, run: _Run) -> None:
        if self.run is run:
            self.run = None
        self._update_composer()
        self.busy_changed.emit(False)

    def _update_composer(self) -> None:
        self.view.composer.set_busy(self.busy, can_regenerate=bool(self.last_question))

    # -- an answer's extras -------------------------------------------------------------------
    def _decorate(self, card: AnswerCard, trace: Trace) -> None:
        card.trace_id = trace.id
        card.set_sources(trace.extra.get("sources", []))
        card.set_related(related_fact_line(trace.extra or {}))
        for label, tip in markers_for(trace):
            card.add_marker(label, tip)
        speed = tokens_per_second(trace)
        seconds = trace.duration_ms / 1000
        card.set_stats(f"{speed:.1f} tokens/s · {seconds:.1f} s" if speed else f"{seconds:.1f} s")
        if trace.status in ("ok", "budget_exhausted"):
            ok = seams.has_feedback(self.services)
            card.set_feedback_enabled(ok, "" if ok else NO_FEEDBACK)
        card.source_clicked.connect(lambda i: open_source(card.sources[i]))
        card.rated.connect(lambda up, comment: self.rate(card, up, comment))
        card.correct_requested.connect(lambda: self.ask_correction(card, trace.question))

    def rate(self, card: AnswerCard, up: bool, comment: str) -> None:
        trace_id = card.trace_id
        if trace_id is None:
            return

        def work() -> Any:
            feedback = seams.feedback_service(self.services)
            if feedback is None:
                raise RuntimeError(NO_FEEDBACK)
            return feedback.rate(trace_id, up, comment)

        self.tasks.run(
            work,
            on_done=lambda _: card.set_status("Comment saved." if comment else "Thanks — noted."),
            on_error=lambda exc: card.set_status(error_text(exc), "error"),
            name="rate",
            serial=True,
        )

    def ask_correction(self, card: AnswerCard, question: str) -> CorrectionDialog:
        dialog = CorrectionDialog(question, card.text(), self.view)
        dialog.accepted.connect(lambda: self.correct(card, dialog.corrected(), dialog.note_text()))
        dialog.open()
        return dialog

    def correct(self, card: AnswerCard, answer: str, note: str) -> None:
        trace_id = card.trace_id
        if trace_id is None or not answer:
            return

        def work() -> Any:
            feedback = seams.feedback_service(self.services)
            if feedback is None:
                raise RuntimeError(NO_FEEDBACK)
            return feedback.correct(trace_id, answer, note)

        def saved(_: Any) -> None:
            card.show_correction(answer)
            card.add_marker("✓ Corrected", "Your correction is saved and used from now on")
            card.set_status("Correction saved: Jackdaw will use it next time.", "ok")

        self.tasks.run(
            work,
            on_done=saved,
            on_error=lambda exc: card.set_status(error_text(exc), "error"),
            name="correct",
            serial=True,
        )

    def _show_error(self, exc: BaseException) -> None:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.warning(self.view, "Jackdaw", error_text(exc))

    def shutdown(self) -> None:
        if self.run is not None:
            self.run.cancel.set()
