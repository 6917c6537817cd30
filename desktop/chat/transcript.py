"""The transcript: question bubbles and answer cards in one scrolling column."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.sources import SourceRef
from desktop.widgets import MarkdownView, muted_label

# Streaming re-renders the Markdown at most this often (every token would be wasted work).
RENDER_INTERVAL_MS = 40


class QuestionBubble(QFrame):
    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "question")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label)


class AnswerCard(QFrame):
    """One answer: Markdown body, live status, sources, markers, feedback and copy."""

    rated = Signal(bool, str)  # up, comment
    correct_requested = Signal()
    source_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "answer")
        self.trace_id: str | None = None
        self.sources: list[SourceRef] = []
        self._text = ""
        self._dirty = False
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 8)
        layout.setSpacing(6)
        # What the agent did for this answer, one line a step; folds away once answered.
        self.steps: list[str] = []
        self.steps_toggle = QToolButton()
        self.steps_toggle.setProperty("role", "feedback")
        self.steps_toggle.setCheckable(True)
        self.steps_toggle.setChecked(True)
        self.steps_toggle.toggled.connect(self._show_steps)
        self.steps_toggle.hide()
        layout.addWidget(self.steps_toggle)
        self.steps_label = muted_label()
        self.steps_label.setWordWrap(True)
        self.steps_label.setTextFormat(Qt.TextFormat.PlainText)
        self.steps_label.hide()
        layout.addWidget(self.steps_label)
        self.body = MarkdownView()
        layout.addWidget(self.body)
        # After a correction: the answer before it, folded away (show_correction).
        self.original: str | None = None
        self.original_toggle: QToolButton | None = None
        self.original_label: QLabel | None = None
        self.status = muted_label()
        self.status.hide()
        layout.addWidget(self.status)

        self.markers = QHBoxLayout()
        self.markers.setSpacing(6)
        self.markers_row = QWidget()
        self.markers_row.setLayout(self.markers)
        self.markers.setContentsMargins(0, 0, 0, 0)
        self.markers.addStretch(1)
        self.markers_row.hide()
        layout.addWidget(self.markers_row)

        self.sources_label = QLabel()
        self.sources_label.setWordWrap(True)
        self.sources_label.setTextFormat(Qt.TextFormat.RichText)
        self.sources_label.linkActivated.connect(lambda href: self.source_clicked.emit(int(href)))
        self.sources_label.hide()
        layout.addWidget(self.sources_label)

        # Something the user taught that is close to this question, not given to the model.
        self.related_label = muted_label()  # wraps
        self.related_label.setToolTip(
            "A question close to this one that you corrected or rated up. It was not given "
            "to the model, which cannot tell whether it asks the same thing: you can."
        )
        self.related_label.hide()
        layout.addWidget(self.related_label)

        footer = QHBoxLayout()
        footer.setSpacing(4)
        self.up = self._feedback_button("▲ Good", "This answer helped (Alt+G)")
        self.down = self._feedback_button("▼ Bad", "This answer was wrong or unhelpful")
        self.correct = self._feedback_button("Correct…", "Write the right answer")
        self.correct.setCheckable(False)
        self.copy = self._feedback_button("Copy", "Copy the answer as Markdown")
        self.copy.setCheckable(False)
        self.up.clicked.connect(lambda: self._rate(True))
        self.down.clicked.connect(lambda: self._rate(False))
        self.correct.clicked.connect(self.correct_requested)
        self.copy.clicked.connect(self.copy_to_clipboard)
        for button in (self.up, self.down, self.correct, self.copy):
            footer.addWidget(button)
        footer.addStretch(1)
        self.stats = muted_label()
        self.stats.setWordWrap(False)
        footer.addWidget(self.stats)
        layout.addLayout(footer)

        self.comment_row = QWidget()
        comment_layout = QHBoxLayout(self.comment_row)
        comment_layout.setContentsMargins(0, 0, 0, 0)
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("Add a comment (optional) — Enter saves it")
        self.comment.returnPressed.connect(self._save_comment)
        self.save_comment = QPushButton("Save comment")
        self.save_comment.clicked.connect(self._save_comment)
        comment_layout.addWidget(self.comment, 1)
        comment_layout.addWidget(self.save_comment)
        self.comment_row.hide()
        layout.addWidget(self.comment_row)
        self.set_feedback_enabled(False)

    def _feedback_button(self, text: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setCheckable(True)
        button.setProperty("role", "feedback")
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        return button

    # -- steps -----------------------------------------------------------------------------
    def add_step(self, line: str) -> None:
        self.steps.append(line)
        self.steps_label.setText("\n".join(f"· {x}" for x in self.steps))
        self._label_steps()
        self.steps_toggle.show()
        self._show_steps(self.steps_toggle.isChecked())

    def fold_steps(self) -> None:
        self.steps_toggle.setChecked(False)

    def _label_steps(self) -> None:
        arrow = "▾" if self.steps_toggle.isChecked() else "▸"
        n = len(self.steps)
        self.steps_toggle.setText(f"{arrow} {n} step{'s' if n != 1 else ''}")

    def _show_steps(self, shown: bool) -> None:
        self.steps_label.setVisible(shown and bool(self.steps))
        self._label_steps()

    # -- streaming -------------------------------------------------------------------------
    def set_status(self, text: str, role: str = "muted") -> None:
        self.status.setProperty("role", role)
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def append_text(self, piece: str) -> None:
        self._text += piece
        self._dirty = True
        if not self._render_timer.isActive():
            self._render_timer.start()

    def text(self) -> str:
        return self._text

    def _render(self) -> None:
        if self._dirty:
            self._dirty = False
            self.body.set_markdown(self._text)
        else:
            self._render_timer.stop()

    def set_text(self, text: str) -> None:
        self._render_timer.stop()
        self._text = text
        self._dirty = False
        self.body.set_markdown(text)

    # -- a corrected answer ------------------------------------------------------------------
    def show_correction(self, corrected: str, original: str | None = None) -> None:
        """The body shows the user's corrected answer; the original is folded away below it,
        struck through (both stay in the history)."""
        original = self._text if original is None else original
        self.set_text(corrected)
        if self.original_toggle is None:
            layout = self.layout()
            assert isinstance(layout, QVBoxLayout)
            at = layout.indexOf(self.body) + 1
            self.original_toggle = QToolButton()
            self.original_toggle.setProperty("role", "feedback")
            self.original_toggle.setCheckable(True)
            self.original_toggle.setToolTip("The answer before your correction")
            self.original_toggle.toggled.connect(self._show_original)
            self.original_label = QLabel()
            self.original_label.setWordWrap(True)
            self.original_label.setTextFormat(Qt.TextFormat.RichText)
            self.original_label.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextSelectableByMouse
            )
            self.original_label.hide()
            layout.insertWidget(at, self.original_toggle)
            layout.insertWidget(at + 1, self.original_label)
        assert self.original_label is not None
        self.original = original
        escaped = html.escape(original or "(no answer)").replace("\n", "<br>")
        self.original_label.setText(f'<span style="color:#6b7280"><s>{escaped}</s></span>')
        self.original_toggle.setChecked(False)
        self._show_original(False)
        self.original_toggle.show()  # added after the card was shown

    def _show_original(self, shown: bool) -> None:
        if self.original_toggle is None or self.original_label is None:
            return
        self.original_toggle.setText(f"{'▾' if shown else '▸'} Original answer (corrected)")
        self.original_label.setVisible(shown)

    # -- when the answer is complete ---------------------------------------------------------
    def set_sources(self, sources: list[dict[str, Any]]) -> None:
        self.sources = [SourceRef.from_dict(s) for s in sources]
        if not self.sources:
            self.sources_label.hide()
            return
        links = "<br>".join(
            f'<a href="{i}">[{i + 1}] {html.escape(ref.label)}</a>'
            for i, ref in enumerate(self.sources)
        )
        self.sources_label.setText(f'<span style="color:#6b7280">Sources</span><br>{links}')
        self.sources_label.setToolTip("Click a source to open it")
        self.sources_label.show()

    def set_related(self, line: str | None) -> None:
        self.related_label.setText(line or "")
        self.related_label.setVisible(bool(line))

    def add_marker(self, text: str, tip: str = "") -> QLabel:
        label = QLabel(text)
        label.setProperty("role", "marker")
        label.setToolTip(tip)
        self.markers.insertWidget(self.markers.count() - 1, label)
        self.markers_row.show()
        return label

    def set_stats(self, text: str) -> None:
        self.stats.setText(text)

    def set_feedback_enabled(self, enabled: bool, why_not: str = "") -> None:
        for button in (self.up, self.down, self.correct):
            button.setEnabled(enabled)
            if not enabled and why_not:
                button.setToolTip(why_not)
        self.copy.setEnabled(bool(self._text))

    def show_rating(self, up: bool | None) -> None:
        self.up.setChecked(up is True)
        self.down.setChecked(up is False)

    # -- actions ---------------------------------------------------------------------------
    def _rate(self, up: bool) -> None:
        self.show_rating(up)
        self._pending_up = up
        self.rated.emit(up, "")
        self.comment_row.show()
        self.comment.setFocus()

    def _save_comment(self) -> None:
        text = self.comment.text().strip()
        if text:
            self.rated.emit(getattr(self, "_pending_up", True), text)
        self.comment_row.hide()

    def copy_to_clipboard(self) -> None:
        QGuiApplication.clipboard().setText(self._text)


class Transcript(QScrollArea):
    """A column of bubbles and cards that keeps the newest text in view while it streams
    (unless the reader scrolled up to read something older)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        body.setObjectName("transcriptBody")
        self.column = QVBoxLayout(body)
        self.column.setContentsMargins(24, 16, 24, 16)
        self.column.setSpacing(12)
        self.column.addStretch(1)
        self.setWidget(body)
        self._follow = True
        self._cards: list[AnswerCard] = []
        bar = self.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range)
        bar.valueChanged.connect(self._on_scroll)
        self.placeholder = muted_label(
            "Ask about your notes and documents. Ctrl+Enter sends; Esc stops an answer."
        )
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.column.insertWidget(0, self.placeholder)

    def _insert(self, widget: QWidget) -> None:
        self.placeholder.hide()
        self.column.insertWidget(self.column.count() - 1, widget)

    def add_question(self, text: str) -> QuestionBubble:
        bubble = QuestionBubble(text)
        bubble.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addStretch(1)
        layout.addWidget(bubble, 4)
        self._insert(row)
        self._follow = True
        return bubble

    def add_answer(self) -> AnswerCard:
        card = AnswerCard()
        self._insert(card)
        self._cards.append(card)
        return card

    def cards(self) -> list[AnswerCard]:
        return list(self._cards)

    def remove_last_answer(self) -> None:
        if self._cards:
            card = self._cards.pop()
            self.column.removeWidget(card)
            card.deleteLater()

    def clear(self) -> None:
        self._cards.clear()
        while self.column.count() > 1:
            item = self.column.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None and widget is not self.placeholder:
                widget.deleteLater()
        self.column.insertWidget(0, self.placeholder)
        self.placeholder.show()
        self._follow = True

    def _on_scroll(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 24

    def _on_range(self, _min: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)
