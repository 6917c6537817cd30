"""``jackdaw gui --screenshot PATH --view V``: render one view of the real app to a PNG."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop
from PySide6.QtWidgets import QWidget

from desktop.confirm import ConfirmDialog
from tools.confirm import ConfirmationRequest
from tools.rules import Scope

VIEWS = ("chat", "knowledge", "learning", "permissions", "models", "settings", "confirm")
SETTLE_S = 5.0
SAMPLE_QUERY = "travel budget decisions"


def settle(app: Any, seconds: float = SETTLE_S) -> None:
    """Let queued work finish (background tasks and the signals they send back)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if not app.tasks.busy:
            break
        time.sleep(0.01)
    for _ in range(5):  # layouts and deferred deletes
        QCoreApplication.processEvents()


def demo_request(notes_folder: str) -> ConfirmationRequest:
    path = f"{notes_folder}/shopping.md"
    return ConfirmationRequest(
        tool="write_note",
        description="Create a Markdown note in the user's notes folder, or append text to an "
        "existing note.",
        risk="write",
        arguments={"note": "shopping", "text": "- oat milk\n- coffee beans", "mode": "append"},
        reason="write tools ask before they run",
        preview=(
            f"--- {path}\n+++ {path}\n@@ -1,2 +1,5 @@\n # Shopping\n - bread\n+\n"
            "+- oat milk\n+- coffee beans"
        ),
        paths=(path,),
        scope=Scope(tool="write_note", path_prefix=notes_folder),
        timeout_s=60,
    )


def take_screenshot(app: Any, path: str, view: str) -> int:
    window = app.window
    settle(app)
    target: QWidget = window
    if view == "chat":
        rows = app.chat._rows
        if rows:
            app.chat.open_conversation(rows[0]["id"])
            window.chat.conversations.select(rows[0]["id"])
    elif view in ("knowledge", "learning", "permissions"):
        page = {
            "knowledge": app.knowledge_page,
            "learning": app.learning_page,
            "permissions": app.permissions_page,
        }[view]
        window.show_page(page)
        settle(app, 60)
        if view == "learning" and app.learning_page.runs.runs.rowCount():
            app.learning_page.runs.runs.selectRow(0)
        if view == "knowledge" and app.knowledge.folders:
            app.knowledge.index(None)  # bring the folders up to date, then search them
            settle(app, 120)
            app.knowledge_page.search.setText(SAMPLE_QUERY)
            app.knowledge.search(SAMPLE_QUERY)
    elif view == "models":
        window.show_page(app.models_page)  # showing it looks for models, in a worker
        settle(app, 60)
        active = next((row for row in app.models.rows if row.active), None)
        if active is not None:  # the model in use, with its memory check
            app.models_page.select(active.key)
            settle(app, 120)  # the check joins the default model when it never was
    elif view == "settings":
        target = app.open_settings()
    elif view == "confirm":
        notes = app.services.config.tools.notes_folder or str(app.services.paths.data_dir / "notes")
        target = ConfirmDialog(demo_request(notes), window)
        target.show()
    else:
        raise ValueError(f"unknown view {view!r}; one of {', '.join(VIEWS)}")
    settle(app)
    target.repaint()
    image = target.grab()
    ok = image.save(path, "PNG")
    if view == "confirm":
        target.deleteLater()
    return 0 if ok else 1
