"""An answer's sources: what to show for each, and opening it in the system's viewer."""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices

from desktop.widgets import short_path

_SUFFIX = re.compile(r"^(?P<path>.*) \((?:page (?P<page>\d+)|(?P<heading>.*))\)$")


@dataclass(frozen=True)
class SourceRef:
    path: str
    page: int | None = None
    heading: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceRef:
        """From a trace's ``extra["sources"]`` item (``{source, text, meta}``)."""
        meta = data.get("meta") or {}
        path = meta.get("path")
        page, heading = meta.get("page"), meta.get("heading") or ""
        if not path:  # only the citation text: "path (page 3)" or "path (Heading)"
            source = str(data.get("source", ""))
            match = _SUFFIX.match(source)
            if match and Path(match["path"]).suffix:
                path, heading = match["path"], match["heading"] or ""
                page = int(match["page"]) if match["page"] else None
            else:
                path = source
        return cls(str(path), int(page) if page is not None else None, str(heading))

    @property
    def label(self) -> str:
        where = f"page {self.page}" if self.page is not None else self.heading
        name = short_path(self.path)
        return f"{name} — {where}" if where else name


def pdf_viewer_command(path: str, page: int) -> list[str] | None:
    """A command that opens ``path`` at ``page`` (1-based), for viewers that can; else None."""
    if sys.platform.startswith("linux"):
        for viewer, args in (
            ("evince", [f"--page-index={page}"]),
            ("okular", ["-p", str(page)]),
            ("zathura", ["-P", str(page)]),
        ):
            if exe := shutil.which(viewer):
                return [exe, *args, path]
    elif sys.platform == "win32":
        if exe := shutil.which("SumatraPDF"):
            return [exe, "-page", str(page), path]
    return None


def open_source(ref: SourceRef) -> bool:
    """Open the file (a PDF at its page where the viewer allows) without blocking."""
    if not Path(ref.path).exists():
        return False
    if ref.page is not None and ref.path.lower().endswith(".pdf"):
        command = pdf_viewer_command(ref.path, ref.page)
        if command and QProcess.startDetached(command[0], command[1:]):
            return True
    return QDesktopServices.openUrl(QUrl.fromLocalFile(ref.path))
