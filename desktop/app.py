"""The app: builds the window, its controllers and the background machinery, and runs it.

``run_gui(services)`` is what ``jackdaw`` (no arguments) and ``jackdaw gui`` call. The window
is shown first; the model loads afterwards in a worker, so the window is usable at once.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from desktop import seams
from desktop.chat.controller import ChatController
from desktop.confirm import ConfirmDialog, QtConfirmationHandler
from desktop.main_window import MainWindow
from desktop.model_loader import ModelLoader
from desktop.model_names import configured_name
from desktop.panels.knowledge import KnowledgeController, KnowledgePage
from desktop.panels.learning import LearningController
from desktop.panels.learning_view import LearningPage
from desktop.panels.models import ModelsController, ModelsPage, stored_path
from desktop.panels.permissions import PermissionsController, PermissionsPage
from desktop.settings.controller import SettingsController
from desktop.settings.dialog import SettingsDialog
from desktop.style import STYLE_SHEET
from desktop.tasks import TaskRunner, error_text

log = logging.getLogger("jackdaw.desktop")
SHUTDOWN_WAIT_MS = 10_000


def application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv or ["jackdaw"])
    assert isinstance(app, QApplication)
    app.setApplicationName("Jackdaw")
    app.setOrganizationName("Jackdaw")
    app.setStyleSheet(STYLE_SHEET)
    return app


class Jackdaw(QObject):
    """Owns the window and wires every page's controller to the services."""

    # From the folder watcher's thread: a batch was ingested ("Index: updated 3 files").
    watched_batch = Signal(str)

    def __init__(self, services: Any) -> None:
        super().__init__()
        self.services = services
        self.window = MainWindow()
        self.tasks = TaskRunner(self)
        self.confirmer = QtConfirmationHandler(self.window)
        seams.install_confirmer(services, self.confirmer)
        self.model = ModelLoader(services, self.tasks, self.confirmer)
        self.chat = ChatController(services, self.window.chat, self.tasks, self.model)

        self.knowledge_page = KnowledgePage()
        self.knowledge = KnowledgeController(services, self.knowledge_page, self.tasks)
        self.knowledge.start_watching = self._watch_now
        self.learning_page = LearningPage()
        self.learning = LearningController(services, self.learning_page, self.tasks)
        self.permissions_page = PermissionsPage()
        self.permissions = PermissionsController(services, self.permissions_page, self.tasks)
        self.window.add_page(self.knowledge_page, "Knowledge")
        self.window.add_page(self.learning_page, "Learning")
        self.window.add_page(self.permissions_page, "Permissions")
        self.models_page = ModelsPage()
        self.models = ModelsController(services, self.models_page, self.tasks)
        self.window.add_page(self.models_page, "Models")
        self.model_names: dict[str, str] = {}  # [model] path -> a human name already read
        self.settings_dialog: SettingsDialog | None = None
        self._reload_after_run = False
        self._closed = False
        self.refinement: Any = None  # the idle-time refinement schedule, once the model is up

        w = self.window
        w.settings_requested.connect(self.open_settings)
        w.chat.pick_model_requested.connect(self.pick_model)
        self.models.switched.connect(self._model_switched)
        self.models.settings_requested.connect(self.open_settings)
        w.tabs.currentChanged.connect(self._page_shown)
        w.closing.connect(self.shutdown)
        self.model.loading.connect(self._model_loading)
        self.model.loaded.connect(self._model_loaded)
        self.model.failed.connect(self._model_failed)
        self.chat.speed_measured.connect(
            lambda speed: w.speed_label.setText(f"{speed:.1f} tokens/s")
        )
        self.chat.busy_changed.connect(self._busy_changed)
        self.chat.answer_finished.connect(lambda _: self._refresh_if_shown())
        self.knowledge.index_state.connect(w.index_label.setText)
        self.confirmer.asked.connect(self._confirmation_shown)
        self.watched_batch.connect(self._watched_batch)
        self._update_banner()
        w.set_model_text(f"Model: {self._model_name()} (loads in the background)")

    # -- start-up ---------------------------------------------------------------------------
    def start(self, *, load_model: bool = True) -> None:
        self.window.show()
        self.chat.refresh_conversations()
        self.knowledge.refresh(open_kb=False)
        self.window.chat.composer.edit.setFocus()
        if load_model:
            # After the first paint: the window is up before llama.cpp is even imported.
            QTimer.singleShot(0, self.model.load)

    def _page_shown(self, _index: int) -> None:
        self._refresh_if_shown()

    def _refresh_if_shown(self) -> None:
        page = self.window.tabs.currentWidget()
        if page is self.permissions_page:
            self.permissions.refresh()
        elif page is self.learning_page:
            self.learning.refresh()
        elif page is self.knowledge_page:
            self.knowledge.refresh()
        elif page is self.models_page and not self.models.rows:
            self.models.refresh()  # discovery reads every GGUF's header: once, then on demand

    # -- the model --------------------------------------------------------------------------
    def _model_name(self) -> str:
        """A human name without reading the file (the main thread)."""
        return configured_name(self.services.config, self.model_names)

    def _model_loading(self) -> None:
        self.window.set_model_text(f"Model: {self._model_name()} — loading…")

    def _model_loaded(self, info: Any) -> None:
        # The human name the loader read from the file's header in its worker (never the
        # raw general.name; a backend handed in by a test or a plugin keeps its own).
        name = self.model.display_name or str(getattr(info, "name", ""))
        if dataclasses.is_dataclass(info) and not isinstance(info, type):
            info = dataclasses.replace(info, name=name)
        tip = info.describe()
        self.window.set_model_text(f"Model: {name}", tip)
        self.models.model_state(f"Now using {name}: loaded, ready for questions.", "ok")
        self._start_refinement_schedule()
        self._start_watching()

    def _start_watching(self) -> None:
        """Watch the folders (in a worker: it loads the embedder and runs a reconcile scan)."""
        if self._closed or not self.services.config.knowledge.watched_folders:
            return
        self.tasks.run(self._watch_now, name="watch folders")

    def _watch_now(self, reconcile: bool = True) -> Any:
        """Start watching (idempotent); called in a worker. Also used by the Knowledge page
        when a folder is added while nothing is watched yet (it then indexes itself)."""

        def on_batch(paths: list[str], result: Any) -> None:
            changed = result.added + result.updated + result.renamed + result.deleted
            if changed:  # a batch that changed nothing says nothing
                self.watched_batch.emit(f"Index: updated {changed} file(s)")

        def on_status(folder: str, status: str) -> None:
            self.watched_batch.emit(f"Index: {os.path.basename(folder)} {status}")

        if self._closed:
            return None
        return self.services.start_watching(
            on_batch=on_batch, on_status=on_status, reconcile_on_start=reconcile
        )

    def _watched_batch(self, text: str) -> None:
        self.window.index_label.setText(text)
        self._refresh_if_shown()

    def _start_refinement_schedule(self) -> None:
        """Offline prompt refinement when the app has been idle ([learning] settings)."""
        if self.refinement is not None or self._closed or not seams.has_learning(self.services):
            return
        engine = seams.learning_service(self.services)
        if engine is not None:
            self.refinement = engine.scheduler()
            self.refinement.start()
            if seams.has_capability(engine, "prepare_judge"):  # not at the first judgement
                self.tasks.run(engine.prepare_judge, name="prepare the learning judge")

    def _model_failed(self, exc: BaseException) -> None:
        self.models.model_state(f"It could not be loaded: {error_text(exc)}", "error")
        self.window.set_model_text(
            f"Model: {self._model_name()} could not be loaded — see Settings",
            error_text(exc),
            error=True,
        )

    def _update_banner(self) -> None:
        model = self.services.config.model
        self.window.chat.banner.setVisible(not model.path and model.backend == "local")

    # -- settings ---------------------------------------------------------------------------
    def open_settings(self) -> SettingsDialog:
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            return self.settings_dialog
        dialog = SettingsDialog(self.window)
        controller = SettingsController(self.services, dialog, self.tasks)
        controller.saved.connect(self._settings_saved)
        dialog.finished.connect(lambda _: setattr(self, "settings_dialog", None))
        self.settings_dialog = dialog
        dialog.open()
        return dialog

    def pick_model(self) -> None:
        """The chat banner's "pick one…": the Models page (the catalogue, the GGUFs already
        on this computer, and a file of one's own through Settings)."""
        self.window.show_page(self.models_page)

    def _model_switched(self, stored: str, name: str) -> None:
        """The Models page changed [model] path (saved already): reload as Settings would."""
        if stored:
            self.model_names[stored_path(stored)] = name
        self._settings_saved(True)

    def _settings_saved(self, model_changed: bool) -> None:
        self._update_banner()
        self.models.settings_changed()
        if not model_changed:
            return
        if self.chat.busy:
            self._reload_after_run = True
        else:
            self.model.reload()

    def _busy_changed(self, busy: bool) -> None:
        if busy and self.refinement is not None:
            self.refinement.note_activity()  # the user is here: no refinement now
        if not busy and self._reload_after_run:
            self._reload_after_run = False
            self.model.reload()

    # -- tool confirmations -----------------------------------------------------------------
    def _confirmation_shown(self, dialog: ConfirmDialog) -> None:
        if self.window.isMinimized():
            self.window.showNormal()

    # -- shutting down ----------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop what runs (answers, indexing), deny open confirmations, wait (bounded)."""
        if self._closed:
            return
        self._closed = True
        started = time.perf_counter()
        if self.refinement is not None:
            self.refinement.shutdown()
        self.confirmer.close()
        self.chat.shutdown()
        self.knowledge.shutdown()
        self.models.shutdown()
        if not self.tasks.shutdown(SHUTDOWN_WAIT_MS):
            log.warning("background work still running after %d ms", SHUTDOWN_WAIT_MS)
            return  # a worker may still use them: leave the knowledge base and engine open
        log.info("shut down in %.0f ms", (time.perf_counter() - started) * 1000)


def run_gui(
    services: Any,
    *,
    screenshot: str | None = None,
    view: str = "chat",
    load_model: bool = True,
) -> int:
    """Open the app and run until its window closes; with ``screenshot``, render ``view`` to
    that PNG and exit."""
    if screenshot and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = application()
    jackdaw = Jackdaw(services)
    if screenshot:
        from desktop.screenshot import take_screenshot

        jackdaw.start(load_model=False)
        try:
            return take_screenshot(jackdaw, screenshot, view)
        finally:
            jackdaw.window.close()
    jackdaw.start(load_model=load_model)
    code = app.exec()
    jackdaw.shutdown()
    return int(code)
