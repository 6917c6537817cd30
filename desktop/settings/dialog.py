"""The Settings dialog's layout: Model, Server, Data & safety. No service calls here."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.widgets import muted_label


def _row(*widgets: QWidget, stretch_first: bool = True) -> QWidget:
    box = QWidget()
    layout = QHBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if (i == 0 and stretch_first) else 0)
    return box


def _role(label: QLabel, role: str) -> QLabel:
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)
    return label


class SettingsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(640, 660)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._model_tab(), "Model")
        self.tabs.addTab(self._server_tab(), "Server")
        self.tabs.addTab(self._data_tab(), "Data && safety")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.rejected.connect(self.reject)
        self.status = _role(QLabel(), "error")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

    # -- Model --------------------------------------------------------------------------------
    def _model_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.first_run = QWidget()
        first_layout = QHBoxLayout(self.first_run)
        first_layout.setContentsMargins(0, 0, 0, 0)
        hint = _role(
            QLabel(
                "Jackdaw works now with its small built-in model; a larger GGUF answers "
                "much better."
            ),
            "banner",
        )
        hint.setWordWrap(True)
        self.first_run_pick = QPushButton("Pick a GGUF…")
        first_layout.addWidget(hint, 1)
        first_layout.addWidget(self.first_run_pick)
        layout.addWidget(self.first_run)

        where = QHBoxLayout()
        self.local = QRadioButton("A GGUF file on this computer")
        self.remote = QRadioButton("A server of my own (OpenAI-compatible; see Server)")
        self.backend_group = QButtonGroup(self)
        self.backend_group.addButton(self.local)
        self.backend_group.addButton(self.remote)
        where.addWidget(self.local)
        where.addWidget(self.remote)
        where.addStretch(1)
        layout.addLayout(where)

        form = QFormLayout()
        self.model_path = QLineEdit()
        self.model_path.setPlaceholderText(
            "the built-in Qwen2.5-Coder-0.5B-Instruct (or smollm2-135m, or a GGUF path)"
        )
        self.browse = QPushButton("Browse…")
        self.use_builtin = QPushButton("Use built-in")
        form.addRow("Model file:", _row(self.model_path, self.browse, self.use_builtin))
        self.meta = QLabel()
        self.meta.setWordWrap(True)
        self.meta.setTextFormat(Qt.TextFormat.RichText)
        self.meta_error = _role(QLabel(), "error")
        self.meta_error.setWordWrap(True)
        form.addRow("", self.meta)
        form.addRow("", self.meta_error)
        self.show_meta("")
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(512, 262144)
        self.n_ctx.setSingleStep(512)
        self.n_ctx.setSuffix(" tokens")
        form.addRow("Context size:", self.n_ctx)
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setSpecialValueText("Automatic")
        form.addRow("CPU threads:", self.threads)
        self.gpu_layers = QComboBox()
        self.gpu_layers.setEditable(True)
        self.gpu_layers.addItems(["auto", "all", "0"])
        self.gpu_layers.setToolTip("auto: use a GPU when there is one; 0: CPU only; or a number")
        form.addRow("GPU layers:", self.gpu_layers)
        self.estimate = muted_label()
        form.addRow("Memory:", self.estimate)
        self.test_load = QPushButton("Test load")
        self.test_result = QLabel()
        self.test_result.setWordWrap(True)
        form.addRow("", _row(self.test_load, self.test_result, stretch_first=False))
        layout.addLayout(form)

        embed = QGroupBox("Embedding model (for searching your folders)")
        embed_form = QFormLayout(embed)
        self.embedding_path = QLineEdit()
        self.embedding_path.setPlaceholderText("the default all-MiniLM-L6-v2")
        self.embedding_browse = QPushButton("Browse…")
        embed_form.addRow("Model file:", _row(self.embedding_path, self.embedding_browse))
        self.embedding_warning = muted_label(
            "Changing it means every document is embedded again (a rebuild of the index)."
        )
        embed_form.addRow("", self.embedding_warning)
        layout.addWidget(embed)
        layout.addStretch(1)
        return tab

    # -- Server -------------------------------------------------------------------------------
    def _server_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addWidget(
            muted_label(
                "Point Jackdaw at an OpenAI-compatible server you run (llama.cpp server, "
                "Ollama, vLLM …). Choose it under Model › “A server of my own”."
            )
        )
        form = QFormLayout()
        self.server_url = QLineEdit()
        self.server_url.setPlaceholderText("http://127.0.0.1:8080/v1")
        self.server_model = QLineEdit()
        self.server_model.setPlaceholderText("the model name the server expects")
        self.api_key = QLineEdit()
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setPlaceholderText("none")
        self.forget_key = QPushButton("Forget key")
        self.key_note = muted_label("Kept in the OS keychain, never in a file.")
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(5, 3600)
        self.timeout.setSuffix(" s")
        form.addRow("URL:", self.server_url)
        form.addRow("Model:", self.server_model)
        form.addRow("API key:", _row(self.api_key, self.forget_key))
        form.addRow("", self.key_note)
        form.addRow("Time-out:", self.timeout)
        layout.addLayout(form)
        layout.addStretch(1)
        return tab

    # -- Data & safety ------------------------------------------------------------------------
    def _data_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        form = QFormLayout()
        self.data_folder = QLabel()
        self.data_folder.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_data = QPushButton("Open")
        form.addRow("Data folder:", _row(self.data_folder, self.open_data))
        form.addRow(
            "",
            muted_label("To keep Jackdaw's data elsewhere, set JACKDAW_HOME before starting it."),
        )
        self.confirm_timeout = QSpinBox()
        self.confirm_timeout.setRange(5, 3600)
        self.confirm_timeout.setSuffix(" s")
        self.confirm_timeout.setToolTip("A tool confirmation left unanswered this long is denied")
        form.addRow("Confirmation time-out:", self.confirm_timeout)
        self.refine_idle = QSpinBox()
        self.refine_idle.setRange(1, 24 * 60)
        self.refine_idle.setSuffix(" min idle")
        self.refine_per_day = QSpinBox()
        self.refine_per_day.setRange(0, 24)
        self.refine_per_day.setSpecialValueText("never (only “Refine now”)")
        self.refine_per_day.setSuffix(" a day at most")
        form.addRow("Refine prompts after:", self.refine_idle)
        form.addRow("", self.refine_per_day)
        layout.addLayout(form)
        layout.addStretch(1)
        return tab

    # -- helpers for the controller -----------------------------------------------------------
    def gpu_layers_text(self) -> str:
        return self.gpu_layers.currentText().strip() or "auto"

    def set_gpu_layers(self, value: str) -> None:
        self.gpu_layers.setCurrentText(value)

    def show_status(self, text: str, role: str = "error") -> None:
        _role(self.status, role).setText(text)

    def show_test_result(self, text: str, ok: bool) -> None:
        _role(self.test_result, "ok" if ok else "error").setText(text)

    def show_meta(self, html_text: str, error: str = "") -> None:
        self.meta.setText(html_text)
        self.meta.setVisible(bool(html_text))
        self.meta_error.setText(error)
        self.meta_error.setVisible(bool(error))
