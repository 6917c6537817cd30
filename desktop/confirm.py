"""Asking before a tool runs: the dialog, and the ``ConfirmationHandler`` that raises it.

:class:`QtConfirmationHandler.confirm` is called on a worker thread (the agent's); it hands the
request to the main thread with a queued signal, waits for the answer, and denies when none
comes within the request's time-out. The dialog is not modal: streaming, other conversations
and the other pages keep working while it is up.
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets import monospace_font, muted_label, pretty_value, short_path
from tools.confirm import Answer, ConfirmationRequest

RISK_WORDS = {
    "read": "reads files",
    "write": "changes files",
    "execute": "runs code",
    "network": "uses the network",
}


def scope_in_words(request: ConfirmationRequest) -> str | None:
    """ "write_note in ~/Notes": what an "always" answer would allow, as a person says it."""
    scope = request.scope
    if scope is None:
        return None
    parts = [scope.tool]
    if scope.path_prefix:
        parts.append(f"in {short_path(scope.path_prefix)}")
    parts += [f"when {k} matches {v}" for k, v in scope.arg_patterns.items()]
    return " ".join(parts)


def diff_html(diff: str) -> str:
    """A unified diff as coloured HTML lines (added green, removed red)."""
    lines = []
    for line in diff.splitlines():
        text = html.escape(line) or "&nbsp;"
        if line.startswith(("+++", "---")):
            lines.append(f'<span style="color:#6b7280">{text}</span>')
        elif line.startswith("@@"):
            lines.append(f'<span style="color:#7c3aed">{text}</span>')
        elif line.startswith("+"):
            lines.append(f'<span style="background:#dcfce7;color:#166534">{text}</span>')
        elif line.startswith("-"):
            lines.append(f'<span style="background:#fee2e2;color:#991b1b">{text}</span>')
        else:
            lines.append(text)
    return '<pre style="margin:0">' + "<br>".join(lines) + "</pre>"


class ConfirmDialog(QDialog):
    """Tool, risk, arguments, preview; Allow once · Always allow (scope) · Deny.

    Keyboard: Alt+A allows once, Alt+W always allows, Alt+D / Esc denies; Deny has the
    focus, so a stray Enter never allows anything. A countdown shows when it denies itself.
    """

    answered = Signal(object)  # Answer

    def __init__(self, request: ConfirmationRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        self.setWindowTitle(f"Allow {request.tool}?")
        self.setModal(False)
        self.setMinimumWidth(520)
        self._answered = False
        layout = QVBoxLayout(self)
        layout.setSpacing(10)

        head = QHBoxLayout()
        title = QLabel(f"Jackdaw wants to use <b>{html.escape(request.tool)}</b>")
        title.setProperty("role", "title")
        risk = QLabel(f"{request.risk} · {RISK_WORDS.get(request.risk, 'unknown risk')}")
        risk.setProperty("role", f"risk-{request.risk}")
        risk.setToolTip("The tool's risk class")
        head.addWidget(title, 1)
        head.addWidget(risk)
        layout.addLayout(head)
        if request.description:
            layout.addWidget(muted_label(request.description))
        if request.reason:
            layout.addWidget(muted_label(f"Asking because {request.reason}."))

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for name, value in (request.arguments or {}).items():
            text = pretty_value(value)
            if "\n" in text or len(text) > 80:
                box = QPlainTextEdit(text)
                box.setReadOnly(True)
                box.setFont(monospace_font())
                lines = min(max(text.count("\n") + 1, 2), 8)
                box.setFixedHeight(box.fontMetrics().lineSpacing() * lines + 14)
                form.addRow(f"{name}:", box)
            else:
                field_label = QLabel(text)
                field_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                field_label.setWordWrap(True)
                form.addRow(f"{name}:", field_label)
        if request.paths:
            paths = QLabel("<br>".join(html.escape(short_path(p)) for p in request.paths))
            form.addRow("Touches:", paths)
        if not request.arguments:
            form.addRow("Arguments:", muted_label("none"))
        layout.addLayout(form)

        if request.preview:
            layout.addWidget(QLabel("What would change:"))
            self.preview = QTextEdit()
            self.preview.setReadOnly(True)
            self.preview.setFont(monospace_font())
            self.preview.setHtml(diff_html(request.preview))
            self.preview.setMinimumHeight(120)
            layout.addWidget(self.preview, 1)

        self.countdown = muted_label()
        layout.addWidget(self.countdown)

        buttons = QVBoxLayout()
        buttons.setSpacing(6)
        self.allow_once = QPushButton("&Allow once")
        self.allow_once.setToolTip("Run this call now; ask again next time (Alt+A)")
        words = scope_in_words(request)
        self.allow_always = QPushButton(
            f"Al&ways allow {words}" if words else "Always allow (not offered: asks every time)"
        )
        self.allow_always.setToolTip(
            "Adds a permission rule; revoke it on the Permissions page (Alt+W)"
            if words
            else "This tool asks before every call; no rule can cover it"
        )
        self.allow_always.setEnabled(words is not None)
        self.deny = QPushButton("&Deny")
        self.deny.setToolTip("Do not run it; Jackdaw is told you said no (Esc)")
        for button in (self.allow_once, self.allow_always, self.deny):
            button.setAutoDefault(False)
            button.setDefault(False)
            button.setStyleSheet("text-align: left; padding: 6px 12px;")
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.allow_once.clicked.connect(lambda: self.choose(Answer.allow_once()))
        if request.scope is not None:
            scope = request.scope
            self.allow_always.clicked.connect(lambda: self.choose(Answer.allow_always(scope)))
        self.deny.clicked.connect(lambda: self.choose(Answer.deny()))
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        escape.activated.connect(self.deny.click)
        self.deny.setFocus()

        self._remaining = max(int(request.timeout_s), 1)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(1000)
        self._show_remaining()

    def _tick(self) -> None:
        self._remaining -= 1
        self._show_remaining()

    def _show_remaining(self) -> None:
        self.countdown.setText(f"No answer in {max(self._remaining, 0)} s denies it.")

    def choose(self, answer: Answer) -> None:
        if self._answered:
            return
        self._answered = True
        self._timer.stop()
        self.answered.emit(answer)
        if answer.allowed:
            self.accept()
        else:
            self.reject()

    def expire(self) -> None:
        """The time ran out (the worker already denied): close without answering."""
        self._answered = True
        self._timer.stop()
        self.reject()

    def reject(self) -> None:
        if not self._answered:  # closed with the window button: that is a no
            self.choose(Answer.deny("the dialog was closed"))
            return
        super().reject()


@dataclass
class _Pending:
    request: ConfirmationRequest
    done: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None
    dialog: ConfirmDialog | None = None


class QtConfirmationHandler(QObject):
    """A ``ConfirmationHandler`` backed by :class:`ConfirmDialog`.

    ``confirm`` blocks its (worker) thread only; the dialog lives on the main thread.
    """

    _ask = Signal(object)
    _expire = Signal(object)
    asked = Signal(object)  # the ConfirmDialog, once shown (the window raises itself)

    def __init__(self, parent_widget: QWidget | None = None) -> None:
        super().__init__()
        self.parent_widget = parent_widget
        self._pending: list[_Pending] = []
        self._closed = False
        self._ask.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self._expire.connect(self._close_dialog, Qt.ConnectionType.QueuedConnection)

    def confirm(self, request: ConfirmationRequest) -> Answer:
        if QThread.currentThread() is self.thread():
            # Waiting here would freeze the very loop that has to show the dialog.
            raise RuntimeError("QtConfirmationHandler.confirm must be called off the GUI thread")
        if self._closed:
            return Answer.deny("the window is closing")
        pending = _Pending(request)
        self._ask.emit(pending)
        if pending.done.wait(request.timeout_s):
            assert pending.answer is not None
            return pending.answer
        self._expire.emit(pending)
        return Answer.deny(f"no answer within {request.timeout_s:g} s")

    def _show(self, pending: _Pending) -> None:
        if pending.done.is_set() or self._closed:
            pending.answer = pending.answer or Answer.deny("the window is closing")
            pending.done.set()
            return
        dialog = ConfirmDialog(pending.request, self.parent_widget)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        pending.dialog = dialog
        self._pending.append(pending)

        def answered(answer: Answer) -> None:
            pending.answer = answer
            pending.done.set()
            if pending in self._pending:
                self._pending.remove(pending)

        dialog.answered.connect(answered)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        QApplication.alert(dialog)
        self.asked.emit(dialog)

    def _close_dialog(self, pending: _Pending) -> None:
        if pending in self._pending:
            self._pending.remove(pending)
        if pending.dialog is not None:
            pending.dialog.expire()

    def open_dialogs(self) -> list[ConfirmDialog]:
        return [p.dialog for p in self._pending if p.dialog is not None]

    def close(self) -> None:
        """Deny everything still waiting (the window is closing)."""
        self._closed = True
        for pending in list(self._pending):
            if pending.dialog is not None:
                pending.dialog.choose(Answer.deny("the window is closing"))
            pending.answer = pending.answer or Answer.deny("the window is closing")
            pending.done.set()
        self._pending.clear()
