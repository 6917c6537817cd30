"""The pages beside the chat: Permissions (rules, revoke, audit filter), Knowledge (add a
folder, progress, search, failures) and Learning (runs and the step-by-step viewer)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt

from knowledge import KnowledgeSettings, open_knowledge_base
from models.catalog import DEFAULT_MODEL
from models.gguf_info import ModelInfo
from tests.desktop.conftest import send, wait_answer
from tests.fakes import ScriptedBackend, call, final
from tests.knowledge.fakes import FakeEmbedder
from tools.rules import Lifetime, Scope


def test_permissions_list_revoke_and_filter_the_audit(qtbot, make_app) -> None:
    app = make_app([call("calculator", expression="6*7"), final("42.")])
    send(qtbot, app, "What is 6*7?")
    wait_answer(qtbot, app)
    policy = app.services.tool_executor.policy
    policy.allow(Scope.make("write_note", app.services.paths.data_dir / "notes"), Lifetime.ALWAYS)
    page = app.permissions_page
    app.window.show_page(page)
    qtbot.waitUntil(lambda: page.rules.rowCount() == 1 and page.audit.rowCount() >= 1)
    assert "write_note in" in page.rules.item(0, 2).text()
    assert page.audit.item(0, 1).text() == "calculator"

    page.audit_filter.setText("no-such-tool")
    assert page.audit.rowCount() == 0
    page.audit_filter.setText("calculator")
    assert page.audit.rowCount() == 1
    page.decision.setCurrentText("denied")
    assert page.audit.rowCount() == 0
    page.decision.setCurrentText("Any decision")

    page.rules.selectRow(0)
    assert page.revoke.isEnabled()
    page.revoke.click()
    qtbot.waitUntil(lambda: page.rules.rowCount() == 0)
    assert policy.rules() == []


def test_knowledge_add_a_folder_index_search_and_see_failures(
    qtbot, make_app, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lighthouses.md").write_text("# Lighthouses\n\nThe keeper trims the lamp wick.\n")
    (docs / "garden.txt").write_text("Tomatoes need sun and water every day.\n")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 64)
    os.symlink(docs / "missing-target", docs / "dangling.txt")
    kb = open_knowledge_base(
        tmp_path / "knowledge.db", FakeEmbedder(), KnowledgeSettings(max_file_mb=1.0)
    )
    app = make_app([], extra={"knowledge": kb})
    page, controller = app.knowledge_page, app.knowledge
    app.window.show_page(page)
    progress: list[object] = []
    original = controller._progress
    controller._progress = lambda p: (progress.append(p), original(p))

    controller.add_folder(str(docs))
    qtbot.waitUntil(lambda: controller.busy or page.folders.rowCount() == 1, timeout=10_000)
    # Done when the run says so: the folder's row can be listed before its indexing starts.
    qtbot.waitUntil(lambda: "Indexed" in page.result_label.text(), timeout=20_000)
    qtbot.waitUntil(lambda: page.problems.rowCount() == 2)
    assert not controller.busy and page.folders.rowCount() == 1
    assert progress and progress[-1].files_done == progress[-1].files_total
    assert page.folders.item(0, 1).text() == "watching"
    assert page.folders.item(0, 2).text() == "4"
    assert "Indexed" in page.result_label.text()
    reasons = {page.problems.item(r, 0).text(): page.problems.item(r, 1).text() for r in range(2)}
    assert any("dangling" in name and "failed" in why for name, why in reasons.items())
    assert any("binary" in name and "skipped" in why for name, why in reasons.items())
    assert app.window.index_label.text() == "Index: idle"
    assert app.services.config.knowledge.watched_folders == [str(docs.resolve())]

    page.search.setText("lamp keeper")
    qtbot.keyClick(page.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(controller.hits))
    assert Path(controller.hits[0].path).name == "lighthouses.md"
    assert "lighthouses.md" in page.hits.toPlainText()
    assert "Lighthouses" in page.hits.toPlainText()  # the heading, with the path
    kb.close()


def test_knowledge_indexing_can_be_paused_and_cancelled(qtbot, make_app, tmp_path) -> None:
    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(60):
        (docs / f"note-{i:02}.md").write_text(f"# Note {i}\n\nSome words about topic {i}.\n")
    kb = open_knowledge_base(tmp_path / "knowledge.db", FakeEmbedder())
    app = make_app([], extra={"knowledge": kb})
    page, controller = app.knowledge_page, app.knowledge
    app.window.show_page(page)
    seen: list[object] = []
    original = controller._progress

    def pause_at_first(progress) -> None:
        seen.append(progress)
        original(progress)
        if len(seen) == 1:
            page.pause.setChecked(True)

    controller._progress = pause_at_first
    controller.add_folder(str(docs))
    qtbot.waitUntil(lambda: page.pause.isChecked(), timeout=10_000)
    assert "paused" in app.window.index_label.text()
    assert page.progress_box.isVisible()
    qtbot.wait(200)  # reports already on their way when the pause came arrive
    count = len(seen)
    qtbot.wait(400)
    assert len(seen) <= count + 1  # held while paused
    assert controller.busy
    page.cancel.click()
    qtbot.waitUntil(lambda: not controller.busy, timeout=10_000)
    assert "Cancelled" in page.result_label.text()
    assert not page.progress_box.isVisible()
    kb.close()


def test_learning_runs_and_the_step_viewer(qtbot, make_app) -> None:
    app = make_app([call("calculator", expression="2+3"), final("Five.")])
    send(qtbot, app, "What is 2+3?")
    wait_answer(qtbot, app)
    page = app.learning_page
    app.window.show_page(page)
    runs = page.runs
    qtbot.waitUntil(lambda: runs.runs.rowCount() == 1)
    runs.runs.selectRow(0)
    qtbot.waitUntil(lambda: runs.steps.count() == 2)
    assert "calculator" in runs.steps.item(0).text()
    runs.steps.setCurrentRow(0)
    detail = runs.detail.toPlainText()
    for section in ("Prompt", "Raw output", "Tool call", "Permission", "Result", "Timings"):
        assert section in detail
    assert "allow (by default:" in detail

    # exact replay: recorded model outputs, live tools; every step matches here
    qtbot.waitUntil(runs.replay.isEnabled)
    runs.replay.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Replayed"), timeout=15_000)
    assert "every step matches" in page.status.text()
    runs.steps.setCurrentRow(0)
    assert "matches the recording" in runs.detail.toPlainText()

    runs.filter.setCurrentText("Failed or stopped")
    assert runs.runs.rowCount() == 0
    runs.filter.setCurrentText("All runs")
    assert runs.runs.rowCount() == 1


class DefaultModelBackend(ScriptedBackend):
    """Records what the default model's file says of itself, at a path since deleted."""

    folder = "."

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            path=f"{self.folder}/{DEFAULT_MODEL.filename}",
            name="Qwen2.5 Coder 0.5B Instruct AWQ",  # its header's general.name, for Q4_K_M
            architecture="qwen2",
            parameters=630_167_424,
            quantization="Q4_K_M",
            context_length=self.context,
            file_size=DEFAULT_MODEL.size,
            sha256=DEFAULT_MODEL.sha256,
        )


def test_a_runs_summary_names_its_model_as_people_read_it(qtbot, make_app, tmp_path: Path) -> None:
    backend = DefaultModelBackend([final("Paris.")])
    backend.folder = str(tmp_path / "gone")
    app = make_app(backend=backend)
    send(qtbot, app, "Capital of France?")
    wait_answer(qtbot, app)
    page = app.learning_page
    app.window.show_page(page)
    runs = page.runs
    qtbot.waitUntil(lambda: runs.runs.rowCount() == 1)
    runs.runs.selectRow(0)
    qtbot.waitUntil(lambda: runs.steps.count() == 1)
    summary = runs.summary.text()  # the file is gone: the name comes from what was recorded
    assert DEFAULT_MODEL.display_name in summary and "AWQ" not in summary


def test_replay_highlights_the_first_divergence(qtbot, make_app) -> None:
    app = make_app()
    notes = app.services.paths.data_dir / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    note = notes / "plan.md"
    note.write_text("Ship on Friday.\n")
    app.services.chat_backend.outputs.extend(
        [call("read_file", path=str(note)), final("It ships on Friday.")]
    )
    send(qtbot, app, "When do we ship?")
    wait_answer(qtbot, app)
    note.write_text("Ship on Monday.\n")  # the world changed since the run
    page = app.learning_page
    app.window.show_page(page)
    runs = page.runs
    qtbot.waitUntil(lambda: runs.runs.rowCount() == 1)
    runs.runs.selectRow(0)
    qtbot.waitUntil(lambda: runs.steps.count() == 2 and runs.replay.isEnabled())
    runs.replay.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Replayed"), timeout=15_000)
    assert "step 1 diverges" in page.status.text()
    assert runs.steps.currentRow() == 0
    assert runs.steps.item(0).background().color().name() == "#fecaca"
    assert "DIVERGES" in runs.detail.toPlainText()


def test_the_app_watches_folders_and_saved_files_become_searchable(
    qtbot, make_app, tmp_path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "old.md").write_text("# Old\n\nAn old note about herons.\n")
    kb = open_knowledge_base(tmp_path / "knowledge.db", FakeEmbedder())
    kb.add_folder(docs)

    def configure(config) -> None:
        config.knowledge.watched_folders = [str(docs.resolve())]
        config.knowledge.settle_seconds = 0.2

    app = make_app([], configure=configure, extra={"knowledge": kb})
    qtbot.waitUntil(lambda: app.services.watcher is not None, timeout=15_000)
    # The start-up reconcile scan indexed what was there before.
    qtbot.waitUntil(lambda: any("old.md" in h.path for h in kb.search("herons", 3)), timeout=15_000)
    (docs / "new.md").write_text("# New\n\nA fresh note about kingfishers.\n")
    qtbot.waitUntil(
        lambda: any("new.md" in h.path for h in kb.search("kingfishers", 3)), timeout=15_000
    )
    qtbot.waitUntil(lambda: "Index: updated" in app.window.index_label.text(), timeout=5_000)
    watcher = app.services.watcher
    app.shutdown()
    app.services.stop_watching()
    assert app.services.watcher is None and watcher.watched == []
