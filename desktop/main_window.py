"""The main window's layout: pages in tabs, Settings in the corner, a three-part status bar."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QPushButton, QTabWidget, QWidget

from desktop.chat.view import ChatView


class MainWindow(QMainWindow):
    settings_requested = Signal()
    closing = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Jackdaw")
        self.resize(1100, 740)
        self.chat = ChatView()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.chat, "Chat")
        settings = QPushButton("Settings")
        settings.setToolTip("Model, server, data and safety (Ctrl+,)")
        settings.setFlat(True)
        settings.clicked.connect(self.settings_requested)
        self.tabs.setCornerWidget(settings)
        self.setCentralWidget(self.tabs)

        self.model_label = QLabel("Model: not loaded")
        self.speed_label = QLabel("— tokens/s")
        self.speed_label.setToolTip("Generation speed of the last answer")
        self.index_label = QLabel("Index: no folders")
        bar = self.statusBar()
        bar.setSizeGripEnabled(False)
        bar.addWidget(self.model_label, 1)
        bar.addPermanentWidget(self.speed_label)
        bar.addPermanentWidget(self.index_label)

        self._action("Settings…", "Ctrl+,", lambda: self.settings_requested.emit())
        self._action("Quit", QKeySequence.StandardKey.Quit, self.close)
        self._close_guard: Callable[[], None] | None = None

    def _action(self, text: str, keys: Any, slot: Callable[[], Any]) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(keys))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def add_page(self, widget: QWidget, title: str) -> int:
        return self.tabs.addTab(widget, title)

    def show_page(self, widget: QWidget) -> None:
        self.tabs.setCurrentWidget(widget)

    def set_model_text(self, text: str, tip: str = "", error: bool = False) -> None:
        self.model_label.setText(text)
        self.model_label.setToolTip(tip)
        self.model_label.setStyleSheet("color: #b91c1c" if error else "")

    def closeEvent(self, event: Any) -> None:
        self.closing.emit()  # the app cancels work and waits (bounded) before we go
        super().closeEvent(event)
