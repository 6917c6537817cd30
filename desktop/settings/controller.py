"""Fills the Settings dialog from the config, checks a picked GGUF, saves.

Reading a GGUF header, test-loading a model, the keychain and writing config.toml all run in
workers. The stored API key is never read into the dialog: only whether there is one.
"""

from __future__ import annotations

import copy
import dataclasses
import html
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog

from desktop import seams
from desktop.model_names import loaded_name
from desktop.settings.dialog import SettingsDialog
from desktop.settings.estimate import estimate
from desktop.tasks import TaskRunner, error_text
from desktop.widgets import human_size
from models.discovery import chat_model_label
from models.gguf_info import model_info

DEFAULT_KEY_NAME = "server-api-key"
GGUF_FILTER = "GGUF models (*.gguf);;All files (*)"


def describe_info(info: Any, name: str = "") -> str:
    """The picked GGUF as a small table; ``name`` is its human name (not ``general.name``)."""
    billions = info.parameters / 1e9
    size = f"{billions:.1f} B" if billions >= 1 else f"{info.parameters / 1e6:.0f} M"
    rows = [
        ("Name", name or info.name),
        ("Architecture", info.architecture),
        ("Parameters", size),
        ("Quantisation", info.quantization),
        ("Trained context", f"{info.context_length:,} tokens"),
        ("File size", human_size(info.file_size)),
    ]
    cells = "".join(
        f"<tr><td style='color:#6b7280;padding-right:10px'>{k}</td>"
        f"<td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


def gpu_available() -> bool:
    """Whether this llama.cpp build can offload to a GPU (imports llama_cpp: workers only)."""
    try:
        from models.llama_backend import gpu_offload_supported

        return gpu_offload_supported()
    except Exception:  # no llama.cpp at all: the estimate is still worth showing
        return False


def apply_config(target: Any, new: Any) -> None:
    """Copy ``new``'s values into ``target`` section by section, field by field: whoever holds
    the config (or one of its sections) sees the change."""
    for section_field in dataclasses.fields(target):
        if section_field.name == "unknown":
            continue
        section = getattr(target, section_field.name)
        for item in dataclasses.fields(section):
            setattr(
                section,
                item.name,
                copy.deepcopy(getattr(getattr(new, section_field.name), item.name)),
            )


def valid_gpu_layers(text: str) -> bool:
    return text.lower() in ("auto", "all", "0", "cpu") or text.isdigit()


class SettingsController(QObject):
    saved = Signal(bool)  # True when the chat model settings changed (reload it)

    def __init__(self, services: Any, dialog: SettingsDialog, tasks: TaskRunner) -> None:
        super().__init__(dialog)
        self.services = services
        self.dialog = dialog
        self.tasks = tasks
        self._inspect_timer = QTimer(self)
        self._inspect_timer.setSingleShot(True)
        self._inspect_timer.setInterval(250)
        self._inspect_timer.timeout.connect(self.inspect_model)
        self._test_started = 0.0
        self.key_stored = False
        self._fill()
        d = dialog
        d.browse.clicked.connect(self.pick_model)
        d.first_run_pick.clicked.connect(self.pick_model)
        d.use_builtin.clicked.connect(lambda: d.model_path.setText(""))
        d.embedding_browse.clicked.connect(self.pick_embedding)
        d.model_path.textChanged.connect(lambda _: self._inspect_timer.start())
        d.n_ctx.valueChanged.connect(lambda _: self._inspect_timer.start())
        d.gpu_layers.currentTextChanged.connect(lambda _: self._inspect_timer.start())
        d.test_load.clicked.connect(self.test_load)
        d.forget_key.clicked.connect(self.forget_key)
        d.open_data.clicked.connect(
            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(services.paths.data_dir)))
        )
        d.save_button.clicked.connect(self.save)
        self.inspect_model()
        self._check_key()

    # -- filling ------------------------------------------------------------------------------
    def _fill(self) -> None:
        config, d = self.services.config, self.dialog
        model = config.model
        d.first_run.setVisible(not model.path and model.backend == "local")
        (d.remote if model.backend == "openai" else d.local).setChecked(True)
        d.model_path.setText(model.path)
        d.n_ctx.setValue(model.n_ctx)
        d.threads.setValue(model.n_threads)
        d.set_gpu_layers(str(model.gpu_layers))
        d.embedding_path.setText(config.knowledge.embedding_model)
        server = config.server
        d.server_url.setText(server.base_url)
        d.server_model.setText(server.model)
        d.timeout.setValue(server.timeout_s)
        d.data_folder.setText(str(self.services.paths.data_dir))
        d.confirm_timeout.setValue(int(config.tools.confirm_timeout_s))
        d.refine_idle.setValue(int(config.learning.refine_idle_minutes))
        d.refine_per_day.setValue(config.learning.refine_max_per_day)

    def _check_key(self) -> None:
        name = self.services.config.server.api_key_name
        if not name:
            return

        def has_key() -> bool:
            return self.services.secrets.get(name) is not None

        self.tasks.run(has_key, on_done=self._show_key_state, on_error=self._key_error)

    def _show_key_state(self, stored: bool) -> None:
        self.key_stored = stored
        self.dialog.forget_key.setEnabled(stored)
        self.dialog.api_key.setPlaceholderText(
            "a key is stored (hidden) — type to replace it" if stored else "none"
        )

    def _key_error(self, exc: BaseException) -> None:
        self.dialog.key_note.setText(error_text(exc))
        self.dialog.forget_key.setEnabled(False)

    # -- the model file -----------------------------------------------------------------------
    def pick_model(self) -> None:
        self.dialog.tabs.setCurrentIndex(0)
        start = self.dialog.model_path.text() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self.dialog, "Pick a GGUF model", start, GGUF_FILTER)
        if path:
            self.dialog.local.setChecked(True)
            self.dialog.model_path.setText(path)

    def pick_embedding(self) -> None:
        start = self.dialog.embedding_path.text() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self.dialog, "Pick an embedding GGUF", start, GGUF_FILTER
        )
        if path:
            self.dialog.embedding_path.setText(path)

    def _model_file(self) -> Path:
        from models.discovery import resolve_chat_model

        # empty: the default model; a name such as "smollm2-135m"; else the user's file
        return resolve_chat_model(self.dialog.model_path.text())

    def inspect_model(self) -> None:
        """Show the picked file's metadata and memory estimate, or why it cannot be used."""
        n_ctx, layers = self.dialog.n_ctx.value(), self.dialog.gpu_layers_text()
        requested = self.dialog.model_path.text()

        def work() -> tuple[Any, Any, bool, str]:
            path = self._model_file()
            return (
                model_info(path, with_sha256=False),
                estimate(path, n_ctx, layers),
                gpu_available(),
                chat_model_label(str(path), read_file=True),
            )

        def shown(result: tuple[Any, Any, bool, str]) -> None:
            if requested != self.dialog.model_path.text():
                return  # the user typed on; a newer check is coming
            info, memory, gpu, name = result
            self.dialog.show_meta(describe_info(info, name))
            self.dialog.estimate.setText(memory.describe(gpu))

        def failed(exc: BaseException) -> None:
            if requested != self.dialog.model_path.text():
                return
            self.dialog.show_meta("", error_text(exc))
            self.dialog.estimate.setText("")

        self.tasks.run(work, on_done=shown, on_error=failed, name="inspect-model")

    def test_load(self) -> None:
        """Load the picked model with these settings in a throwaway Services, then free it."""
        config = self._config_from_dialog()
        if config is None:
            return
        self.dialog.test_load.setEnabled(False)
        self.dialog.show_test_result("Loading…", True)
        self._test_started = time.perf_counter()

        def work() -> str:
            trial = type(self.services)(self.services.paths, config)
            try:
                return loaded_name(config, trial.chat_backend.info)
            finally:
                trial.close()

        def done(name: str) -> None:
            seconds = time.perf_counter() - self._test_started
            self.dialog.test_load.setEnabled(True)
            self.dialog.show_test_result(f"Loaded {name} in {seconds:.1f} s.", True)

        def failed(exc: BaseException) -> None:
            self.dialog.test_load.setEnabled(True)
            self.dialog.show_test_result(error_text(exc), False)

        self.tasks.run(work, on_done=done, on_error=failed, name="test-load")

    # -- saving -------------------------------------------------------------------------------
    def _config_from_dialog(self) -> Any | None:
        d = self.dialog
        layers = d.gpu_layers_text()
        if not valid_gpu_layers(layers):
            d.tabs.setCurrentIndex(0)
            d.show_status(f"GPU layers should be auto, all, 0 or a number, not “{layers}”.")
            return None
        config = copy.deepcopy(self.services.config)
        model = config.model
        model.backend = "openai" if d.remote.isChecked() else "local"
        model.path = d.model_path.text().strip()
        model.n_ctx = d.n_ctx.value()
        model.n_threads = d.threads.value()
        model.gpu_layers = layers
        config.knowledge.embedding_model = d.embedding_path.text().strip()
        server = config.server
        server.base_url = d.server_url.text().strip() or server.base_url
        server.model = d.server_model.text().strip()
        server.timeout_s = d.timeout.value()
        if d.api_key.text() and not server.api_key_name:
            server.api_key_name = DEFAULT_KEY_NAME
        config.tools.confirm_timeout_s = float(d.confirm_timeout.value())
        config.learning.refine_idle_minutes = float(d.refine_idle.value())
        config.learning.refine_max_per_day = d.refine_per_day.value()
        if model.backend == "openai" and not server.model:
            d.tabs.setCurrentIndex(1)
            d.show_status("Name the server's model (Server › Model), or pick a GGUF file.")
            return None
        return config

    def save(self) -> None:
        config = self._config_from_dialog()
        if config is None:
            return
        key = self.dialog.api_key.text()
        before = self.services.config
        model_changed = (
            config.model != before.model
            or config.server != before.server
            or bool(key and config.model.backend == "openai")
        )
        self.dialog.save_button.setEnabled(False)
        self.dialog.show_status("Saving…", "muted")

        def work() -> None:
            if key:
                self.services.secrets.set(config.server.api_key_name, key)
            apply_config(self.services.config, config)
            seams.apply_confirm_timeout(self.services, config.tools.confirm_timeout_s)
            self.services.save_config()

        def done(_: Any) -> None:
            self.dialog.api_key.clear()
            self.saved.emit(model_changed)
            self.dialog.accept()

        def failed(exc: BaseException) -> None:
            self.dialog.save_button.setEnabled(True)
            self.dialog.show_status(error_text(exc))

        self.tasks.run(work, on_done=done, on_error=failed, name="save-settings", serial=True)

    def forget_key(self) -> None:
        name = self.services.config.server.api_key_name
        if not name:
            return
        self.tasks.run(
            lambda: self.services.secrets.delete(name),
            on_done=lambda _: self._show_key_state(False),
            on_error=self._key_error,
        )
