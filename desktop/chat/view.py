"""The chat page's layout: conversations on the left; transcript and composer on the right."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.chat.transcript import Transcript


class ConversationList(QWidget):
    """New, search, rename (F2), delete (Del); emits what the user asked for."""

    new_requested = Signal()
    selected = Signal(str)
    rename_requested = Signal(str, str)
    delete_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        self.new_button = QPushButton("+  New chat")
        self.new_button.setToolTip("Start a new conversation (Ctrl+N)")
        self.new_button.clicked.connect(self.new_requested)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search conversations")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.list = QListWidget()
        self.list.setObjectName("conversations")
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setWordWrap(False)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(self._changed)
        self.empty = QLabel("No conversations yet.")
        self.empty.setProperty("role", "muted")
        layout.addWidget(self.new_button)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty)
        self.rename_action = QAction("Rename…", self)
        self.rename_action.setShortcut(QKeySequence(Qt.Key.Key_F2))
        self.rename_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.rename_action.triggered.connect(self.ask_rename)
        self.delete_action = QAction("Delete…", self)
        self.delete_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.delete_action.triggered.connect(self.ask_delete)
        self.list.addAction(self.rename_action)
        self.list.addAction(self.delete_action)
        self._quiet = False

    def set_conversations(self, rows: list[dict[str, Any]], current: str | None) -> None:
        self._quiet = True
        self.list.clear()
        for row in rows:
            item = QListWidgetItem(row.get("title") or "New conversation")
            item.setData(Qt.ItemDataRole.UserRole, row["id"])
            item.setToolTip(row.get("title") or "")
            self.list.addItem(item)
            if row["id"] == current:
                self.list.setCurrentItem(item)
        self._quiet = False
        self.empty.setVisible(not rows)
        self._filter(self.search.text())

    def current_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def select(self, conversation_id: str | None) -> None:
        self._quiet = True
        self.list.setCurrentRow(-1)
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == conversation_id:
                self.list.setCurrentItem(item)
        self._quiet = False

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setHidden(bool(needle) and needle not in item.text().lower())

    def _changed(self, item: QListWidgetItem | None, _previous: Any) -> None:
        if item is not None and not self._quiet:
            self.selected.emit(item.data(Qt.ItemDataRole.UserRole))

    def _menu(self, pos: Any) -> None:
        if self.list.itemAt(pos) is None:
            return
        menu = QMenu(self)
        menu.addAction(self.rename_action)
        menu.addAction(self.delete_action)
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def ask_rename(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        title, ok = QInputDialog.getText(
            self, "Rename conversation", "Title:", QLineEdit.EchoMode.Normal, item.text()
        )
        if ok and title.strip():
            self.rename_requested.emit(item.data(Qt.ItemDataRole.UserRole), title.strip())

    def ask_delete(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        answer = QMessageBox.question(
            self,
            "Delete conversation",
            f"Delete “{item.text()}”? Its recorded runs stay in the Learning page.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_requested.emit(item.data(Qt.ItemDataRole.UserRole))


class Composer(QWidget):
    send_requested = Signal(str)
    stop_requested = Signal()
    regenerate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(24, 4, 24, 12)
        self.edit = QPlainTextEdit()
        self.edit.setObjectName("composer")
        self.edit.setPlaceholderText("Ask Jackdaw…  (Ctrl+Enter sends)")
        self.edit.setFixedHeight(72)
        self.edit.setTabChangesFocus(True)
        buttons = QVBoxLayout()
        self.send = QPushButton("Send")
        self.send.setProperty("role", "primary")
        self.send.setToolTip("Send (Ctrl+Enter)")
        self.stop = QPushButton("Stop")
        self.stop.setToolTip("Stop the answer (Esc)")
        self.regenerate = QPushButton("Regenerate")
        self.regenerate.setToolTip("Ask the last question again")
        for button in (self.send, self.stop, self.regenerate):
            buttons.addWidget(button)
        layout.addWidget(self.edit, 1)
        layout.addLayout(buttons)
        self.send.clicked.connect(self._send)
        self.stop.clicked.connect(self.stop_requested)
        self.regenerate.clicked.connect(self.regenerate_requested)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self.edit)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(self._send)
        self.set_busy(False, can_regenerate=False)

    def _send(self) -> None:
        text = self.edit.toPlainText().strip()
        if text and self.send.isEnabled():
            self.edit.clear()
            self.send_requested.emit(text)

    def set_busy(self, busy: bool, *, can_regenerate: bool) -> None:
        self.send.setEnabled(not busy)
        self.stop.setVisible(busy)
        self.regenerate.setVisible(not busy)
        self.regenerate.setEnabled(can_regenerate and not busy)


class ChatView(QWidget):
    """Layout only; :class:`desktop.chat.controller.ChatController` gives it life."""

    pick_model_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.conversations = ConversationList()
        self.transcript = Transcript()
        self.composer = Composer()
        self.banner = QLabel(
            "You are using the small built-in model: good for short questions about your "
            'notes, basic elsewhere. A larger GGUF answers better: <a href="pick">pick one…</a>'
        )
        self.banner.setProperty("role", "banner")
        self.banner.setWordWrap(True)
        self.banner.linkActivated.connect(lambda _href: self.pick_model_requested.emit())
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(0)
        banner_row = QHBoxLayout()
        banner_row.setContentsMargins(24, 10, 24, 0)
        banner_row.addWidget(self.banner)
        right_layout.addLayout(banner_row)
        right_layout.addWidget(self.transcript, 1)
        right_layout.addWidget(self.composer)
        splitter = QSplitter()
        splitter.addWidget(self.conversations)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 760])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self.stop_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.stop_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.stop_shortcut.activated.connect(self.composer.stop_requested)
        self.new_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.New), self)
        self.new_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.new_shortcut.activated.connect(self.conversations.new_requested)
