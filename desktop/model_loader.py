"""Loads the model (and the agent on it) in the background after the window is shown."""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop import seams
from desktop.model_names import loaded_name
from desktop.tasks import TaskRunner
from tools.confirm import ConfirmationHandler


class ModelLoader(QObject):
    """``ensure()`` may be called from any worker: the first caller loads, the rest wait.

    States: ``idle`` -> ``loading`` -> ``ready`` | ``failed``. Signals arrive on the main thread.
    """

    loading = Signal()
    loaded = Signal(object)  # ModelInfo
    failed = Signal(object)  # the exception

    def __init__(
        self, services: Any, tasks: TaskRunner, confirmer: ConfirmationHandler | None = None
    ) -> None:
        super().__init__()
        self.services = services
        self.tasks = tasks
        self.confirmer = confirmer
        self.state = "idle"
        self.info: Any = None
        self.error: BaseException | None = None
        self.display_name = ""  # the loaded model's human name, read in the worker
        self._lock = threading.Lock()
        self._ready = False

    def ensure(self) -> Any:
        """Build the agent (loading the model) and hand it the dialog; return the ModelInfo.

        Runs in a worker thread. Raises what loading raised (a JackdawError for a bad file).
        """
        with self._lock:
            if not self._ready:
                self.services.agent  # noqa: B018 (builds backend + agent)
                if self.confirmer is not None:
                    seams.install_confirmer(self.services, self.confirmer)
                info = self.services.chat_backend.info
                self.display_name = loaded_name(self.services.config, info)
                self._ready = True
            return self.services.chat_backend.info

    def load(self) -> None:
        """Start loading in the background (no-op while a load is under way)."""
        if self.state == "loading":
            return
        self.state = "loading"
        self.loading.emit()
        self.tasks.run(self.ensure, on_done=self._done, on_error=self._failed, name="load-model")

    def reload(self) -> None:
        """Forget the loaded model (after Settings changed it) and load the configured one."""

        def forget_then_load() -> Any:
            with self._lock:
                self._ready = False
                seams.forget_model(self.services)
            return self.ensure()

        self.state = "loading"
        self.loading.emit()
        self.tasks.run(forget_then_load, on_done=self._done, on_error=self._failed, name="reload")

    def _done(self, info: Any) -> None:
        self.state, self.info, self.error = "ready", info, None
        self.loaded.emit(info)

    def _failed(self, exc: BaseException) -> None:
        self.state, self.error = "failed", exc
        self.failed.emit(exc)
