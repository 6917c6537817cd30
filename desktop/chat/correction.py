"""The "Correct…" editor: the answer, pre-filled, to be rewritten, plus an optional note."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)


class CorrectionDialog(QDialog):
    def __init__(self, question: str, answer: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Correct this answer")
        self.resize(560, 420)
        layout = QVBoxLayout(self)
        asked = QLabel(f"<b>Question:</b> {question}" if question else "")
        asked.setWordWrap(True)
        layout.addWidget(asked)
        layout.addWidget(
            QLabel("Write the right answer. Jackdaw uses it the next time you ask this:")
        )
        self.answer = QPlainTextEdit(answer)
        layout.addWidget(self.answer, 1)
        self.note = QLineEdit()
        self.note.setPlaceholderText("Note (optional): why the first answer was wrong")
        layout.addWidget(self.note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        self.answer.textChanged.connect(
            lambda: self.save_button.setEnabled(bool(self.answer.toPlainText().strip()))
        )
        layout.addWidget(buttons)
        self.answer.setFocus()

    def corrected(self) -> str:
        return self.answer.toPlainText().strip()

    def note_text(self) -> str:
        return self.note.text().strip()
