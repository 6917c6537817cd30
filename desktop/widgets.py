"""Small reusable widgets: a Markdown view that is as tall as its text, and a few helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFont, QFontDatabase, QTextDocument
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QTextBrowser, QWidget

CODE_CSS = (
    "pre { background-color: #f3f4f6; padding: 6px; }"
    "code { background-color: #f3f4f6; font-family: monospace; }"
)


class MarkdownView(QTextBrowser):
    """Read-only Markdown (code blocks included) without a scroll bar of its own: it grows
    to fit its text, so a transcript of these scrolls as one page. Links open in the system's
    viewer (files, the web) unless a handler takes them via ``link_activated``."""

    link_activated = Signal(QUrl)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextBrowserInteraction
            | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.document().setDefaultStyleSheet(CODE_CSS)
        self.document().setDocumentMargin(2)
        self.document().contentsChanged.connect(self._fit)
        self.anchorClicked.connect(self._open)
        self._markdown = ""

    def set_markdown(self, text: str) -> None:
        if text == self._markdown:
            return
        self._markdown = text
        self.document().setMarkdown(text, QTextDocument.MarkdownFeature.MarkdownDialectGitHub)
        self._fit()

    def markdown(self) -> str:
        return self._markdown

    def _open(self, url: QUrl) -> None:
        if self.receivers(self.link_activated) > 0:  # type: ignore[arg-type]
            self.link_activated.emit(url)
        else:
            QDesktopServices.openUrl(url)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        doc = self.document()
        width = self.viewport().width()
        if width > 0:
            doc.setTextWidth(width)
        height = int(doc.size().height()) + 2 * self.frameWidth() + 2
        if height != self.height():
            self.setFixedHeight(max(height, 20))

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self.height())


class LinkBrowser(QTextBrowser):
    """A scrolling rich-text view whose links go to ``link_activated`` (not navigation)."""

    link_activated = Signal(QUrl)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self.link_activated)


def muted_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    label = QLabel(text, parent)
    label.setProperty("role", "muted")
    label.setWordWrap(True)
    return label


def monospace_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def short_path(path: str) -> str:
    """``/home/me/Notes/x.md`` -> ``~/Notes/x.md``: shorter, and how people say it."""
    try:
        home = str(Path.home())
    except RuntimeError:
        return path
    if path == home or path.startswith(home + "/"):
        return "~" + path[len(home) :]
    return path


def pretty_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def human_size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
