"""The desktop app keeps a folder added while it runs fresh (issue 12): pytest-qt, the real
app on real Services, real watchdog and real files; the embedder is the fake one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from knowledge import KnowledgeSettings, open_knowledge_base
from tests.desktop.conftest import make_app  # noqa: F401  (the fixture)
from tests.knowledge.fakes import FakeEmbedder

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")
WAIT_MS = 15_000


def names(app: Any, query: str) -> list[str]:
    return [Path(h.path).name for h in app.services.knowledge.search(query, k=5)]


def test_a_folder_added_while_the_app_runs_is_watched_at_once(
    qtbot: Any,
    make_app: Any,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "first.md").write_text("# First\n\nThe keeper trims the lamp wick.\n")
    kb = open_knowledge_base(
        tmp_path / "knowledge.db", FakeEmbedder(), KnowledgeSettings(max_file_mb=1.0)
    )

    def configure(config: Any) -> None:
        config.knowledge.settle_seconds = 0.2

    # No folder yet, so nothing is watched when the app starts.
    app = make_app([], extra={"knowledge": kb}, configure=configure, load=False)
    assert app.services.watcher is None
    page, controller = app.knowledge_page, app.knowledge
    app.window.show_page(page)
    controller.add_folder(str(docs))
    qtbot.waitUntil(lambda: app.services.watcher is not None, timeout=WAIT_MS)
    watcher = app.services.watcher
    qtbot.waitUntil(lambda: str(docs) in watcher.watched, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not controller.busy, timeout=WAIT_MS)
    controller.refresh()
    qtbot.waitUntil(
        lambda: page.folders.rowCount() == 1 and page.folders.item(0, 1).text() == "watching",
        timeout=WAIT_MS,
    )

    (docs / "gulls.md").write_text("# Gulls\n\nGulls steal chips on the pier.\n")
    qtbot.waitUntil(lambda: names(app, "gulls chips pier")[:1] == ["gulls.md"], timeout=WAIT_MS)
    os.remove(docs / "first.md")
    qtbot.waitUntil(lambda: "first.md" not in names(app, "keeper lamp wick"), timeout=WAIT_MS)

    # Stopping the watcher is seen: the page no longer claims "watching".
    app.services.stop_watching()
    controller.refresh()
    qtbot.waitUntil(lambda: page.folders.item(0, 1).text() == "not watched", timeout=WAIT_MS)
