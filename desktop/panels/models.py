"""Models: the chat models Jackdaw can run (installed, in the catalogue, already on this
computer), downloads with progress and Cancel, "Use this model" after a memory check, and the
embedding model. Every call into ``models/`` runs in a worker (see ``models_adapter``)."""

from __future__ import annotations

import html
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.model_names import configured_name
from desktop.panels.models_adapter import (
    CATALOGUED,
    FOUND,
    GROUP_TITLES,
    PACKAGED,
    EmbeddingInfo,
    ModelRow,
    ModelsAdapter,
    progress_words,
    size_words,
)
from desktop.tasks import Task, TaskRunner, error_text
from desktop.widgets import muted_label, short_path
from models.assemble import ModelChecksumError
from models.download import DownloadCancelled, DownloadProgress
from models.fit import GB, Fit

COLUMNS = ["Model", "Size", "Memory", "Speed", "Licence", "Status"]
TREE_STYLE = "QTreeWidget::item { padding: 3px 2px; }"
IN_USE = QBrush(QColor("#15803d"))
NOT_HERE = QBrush(QColor("#6b7280"))


def _role(label: QLabel, role: str) -> QLabel:
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)
    return label


def fit_words(fit: Fit) -> str:
    """The fit in a person's words: how much it needs, against what the machine has."""
    need = f"Needs about {fit.needed_bytes / GB:.1f} GB of memory at a {fit.n_ctx:,}-token context"
    if fit.available_bytes is None:
        return need + "."
    have = f"{fit.available_bytes / GB:.1f} GB"
    if fit.fits:
        return f"{need}; {have} are free now."
    return (
        f"It will not fit: it needs about {fit.needed_bytes / GB:.1f} GB of memory and only "
        f"{have} are free now. Loading it may fail or make this computer crawl. Close other "
        "programs, lower the context in Settings, or choose a smaller model."
    )


class ModelsPage(QWidget):
    """The layout only; the controller fills it and wires its signals."""

    refresh_requested = Signal()
    folder_added = Signal(str)
    file_opened = Signal(str)
    selected = Signal(str)  # a row's key ("" when none)
    download_requested = Signal()
    cancel_requested = Signal()
    use_requested = Signal()
    settings_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        head = QHBoxLayout()
        title = QLabel("Chat models")
        title.setProperty("role", "title")
        self.open_file = QPushButton("Open a GGUF file…")
        self.open_file.setToolTip("Use a model file of yours from anywhere (not copied)")
        self.add_folder = QPushButton("Add a folder…")
        self.add_folder.setToolTip("Also look for GGUF files in a folder of yours")
        self.refresh = QPushButton("Look again")
        self.refresh.setToolTip("Look for new GGUF files in the usual places and your folders")
        head.addWidget(title, 1)
        head.addWidget(self.open_file)
        head.addWidget(self.add_folder)
        head.addWidget(self.refresh)
        layout.addLayout(head)
        self.active = QLabel()
        self.active.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.active)
        layout.addWidget(
            muted_label(
                "A bigger model answers better, but more slowly. Speed: tokens (about ¾ of a "
                "word each) written per second on 2 CPU cores; a GPU is much faster. Memory: "
                "about what it needs at your context size. Jackdaw also lists the GGUFs that "
                "LM Studio, GPT4All, Jan, Ollama, llama.cpp and the Hugging Face cache keep, "
                "and uses them where they are."
            )
        )

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setStyleSheet(TREE_STYLE)
        self.tree.setAlternatingRowColors(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.tree, 1)
        self.looking = muted_label("Looking for models…")
        layout.addWidget(self.looking)

        self.details = QFrame()
        self.details.setProperty("role", "answer")
        box = QVBoxLayout(self.details)
        box.setContentsMargins(12, 10, 12, 10)
        self.name = QLabel()
        self.name.setProperty("role", "title")
        self.about = muted_label()
        self.about.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fit = QLabel()
        self.fit.setWordWrap(True)
        buttons = QHBoxLayout()
        self.download = QPushButton("Download")
        self.use = QPushButton("Use this model")
        self.use.setProperty("role", "primary")
        self.cancel = QPushButton("Cancel download")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress_label = muted_label()
        self.progress_label.setWordWrap(False)
        buttons.addWidget(self.use)
        buttons.addWidget(self.download)
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.progress_label)
        buttons.addWidget(self.cancel)
        buttons.addStretch(0)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for widget in (self.name, self.about, self.fit):
            box.addWidget(widget)
        box.addLayout(buttons)
        box.addWidget(self.message)
        layout.addWidget(self.details)

        embed = QGroupBox("Embedding model (finds the passages of your folders)")
        embed_layout = QHBoxLayout(embed)
        self.embedding = QLabel()
        self.embedding.setWordWrap(True)
        self.embedding.setTextFormat(Qt.TextFormat.RichText)
        self.embedding_settings = QPushButton("Change in Settings…")
        embed_layout.addWidget(self.embedding, 1)
        embed_layout.addWidget(self.embedding_settings)
        layout.addWidget(embed)

        self.refresh.clicked.connect(self.refresh_requested)
        self.add_folder.clicked.connect(self._pick_folder)
        self.open_file.clicked.connect(self._pick_file)
        self.tree.itemSelectionChanged.connect(lambda: self.selected.emit(self.selected_key()))
        self.download.clicked.connect(self.download_requested)
        self.cancel.clicked.connect(self.cancel_requested)
        self.use.clicked.connect(self.use_requested)
        self.embedding_settings.clicked.connect(self.settings_requested)
        self.show_row(None)
        self.show_progress(None)
        self.show_message("")

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Look for GGUF files in a folder")
        if folder:
            self.folder_added.emit(folder)

    def _pick_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a GGUF model", "", "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.file_opened.emit(path)

    # -- the list ---------------------------------------------------------------------------
    def set_rows(self, rows: list[ModelRow], keep: str = "") -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        for group in (PACKAGED, CATALOGUED, FOUND):
            members = [r for r in rows if r.group == group]
            title = GROUP_TITLES[group]
            if group == FOUND and not members:
                title += ": none found (“Add a folder…” to look elsewhere)"
            heading = QTreeWidgetItem([title])
            heading.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = QFont(heading.font(0))
            font.setBold(True)
            heading.setFont(0, font)
            heading.setFirstColumnSpanned(True)
            self.tree.addTopLevelItem(heading)
            heading.setFirstColumnSpanned(True)
            for row in members:
                item = QTreeWidgetItem(self._cells(row))
                item.setData(0, Qt.ItemDataRole.UserRole, row.key)
                item.setToolTip(0, row.path or row.label)
                item.setToolTip(3, row.speed_basis)
                for column in range(1, len(COLUMNS)):
                    item.setTextAlignment(
                        column,
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                        if column in (1, 2, 3)
                        else Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    )
                if row.active:
                    item.setForeground(5, IN_USE)
                    bold = QFont(item.font(0))
                    bold.setBold(True)
                    item.setFont(0, bold)
                elif not row.downloaded:
                    item.setForeground(5, NOT_HERE)
                heading.addChild(item)
            heading.setExpanded(True)
        self.tree.expandAll()
        self.tree.blockSignals(False)
        if keep:
            self.select(keep)

    @staticmethod
    def _cells(row: ModelRow) -> list[str]:
        name = row.name + (" (default)" if row.default else "")
        if row.group == FOUND:
            name += f"  — {row.source}"
        ram = f"~{row.ram_bytes / GB:.1f} GB" if row.ram_bytes else "—"
        speed = f"~{row.tok_s:.0f} tokens/s" if row.tok_s else "—"
        return [name, size_words(row.size), ram, speed, row.licence or "—", row.state]

    def items(self) -> list[QTreeWidgetItem]:
        out: list[QTreeWidgetItem] = []
        for i in range(self.tree.topLevelItemCount()):
            heading = self.tree.topLevelItem(i)
            if heading is not None:
                out += [c for j in range(heading.childCount()) if (c := heading.child(j))]
        return out

    def item_for(self, key: str) -> QTreeWidgetItem | None:
        for item in self.items():
            if item.data(0, Qt.ItemDataRole.UserRole) == key:
                return item
        return None

    def select(self, key: str) -> bool:
        item = self.item_for(key)
        if item is None:
            return False
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        return True

    def selected_key(self) -> str:
        item = self.tree.currentItem()
        if item is None or not item.isSelected():
            return ""
        return str(item.data(0, Qt.ItemDataRole.UserRole) or "")

    # -- one model --------------------------------------------------------------------------
    def show_row(self, row: ModelRow | None, downloading: str = "") -> None:
        """One model's details; ``downloading``: the key of the download under way."""
        if row is None:
            self.name.setText("Select a model")
            self.about.setText(
                "to see what it needs, download it or use it. The one in use is in bold."
            )
            self.fit.setText("")
            self.fit.hide()
            self.use.hide()
            self.download.hide()
            return
        self.name.setText(row.name)
        lines = []
        where = {PACKAGED: "Installed with Jackdaw", CATALOGUED: f"From {row.label}"}.get(
            row.group, f"{row.source}: {row.label}"
        )
        lines.append(where)
        if row.details:
            lines.append(row.details[:1].upper() + row.details[1:])
        if row.licence:
            lines.append(f"Licence: {row.licence}")
        if row.path and row.group != PACKAGED:
            lines.append(short_path(row.path))
        self.about.setText("\n".join(lines))
        self.fit.show()
        self.download.setVisible(
            row.group == CATALOGUED and not row.downloaded and row.key != downloading
        )
        self.download.setText(f"Download ({size_words(row.size)})")
        self.download.setEnabled(not downloading)
        self.download.setToolTip("One download at a time" if downloading else "")
        self.use.setVisible(row.usable)
        self.use.setEnabled(not row.active)
        self.set_use_text("In use" if row.active else "Use this model")

    def set_use_text(self, text: str) -> None:
        """ "Use anyway" (after the memory warning) is a plain button, not the blue one."""
        self.use.setText(text)
        self.use.setProperty("role", "" if text == "Use anyway" else "primary")
        self.use.style().unpolish(self.use)
        self.use.style().polish(self.use)

    def set_status(self, key: str, text: str) -> None:
        item = self.item_for(key)
        if item is not None:
            item.setText(len(COLUMNS) - 1, text)

    def show_fit(self, fit: Fit | None, checking: bool = False) -> None:
        if checking:
            _role(self.fit, "muted").setText("Checking what it needs…")
        elif fit is None:
            self.fit.setText("")
        else:
            _role(self.fit, "ok" if fit.fits else "error").setText(fit_words(fit))

    def show_progress(self, progress: DownloadProgress | None, name: str = "") -> None:
        visible = progress is not None
        for widget in (self.progress, self.progress_label, self.cancel):
            widget.setVisible(visible)
        if progress is None:
            return
        total = progress.total_bytes or 1
        self.progress.setValue(int(1000 * progress.done_bytes / total))
        self.progress_label.setText(progress_words(progress))
        self.progress.setToolTip(f"Downloading {name or progress.name}")

    def show_message(self, text: str, role: str = "muted") -> None:
        _role(self.message, role).setText(text)
        self.message.setVisible(bool(text))

    def show_active(self, name: str, where: str) -> None:
        self.active.setText(
            f"In use: <b>{html.escape(name)}</b>"
            + (f" <span style='color:#6b7280'>— {html.escape(where)}</span>" if where else "")
        )

    def show_embedding(self, info: EmbeddingInfo | None, error: str = "") -> None:
        if info is None:
            self.embedding.setText(html.escape(error))
            return
        size = f", {size_words(info.size)}" if info.size else ""
        self.embedding.setText(
            f"<b>{html.escape(info.name)}</b>{size}<br>"
            "<span style='color:#92400e'>Changing it rebuilds the index: every document in "
            "your folders is read and embedded again, which takes a while.</span>"
        )


class ModelsController(QObject):
    """Fills the page from ``ModelsAdapter`` in workers; one download at a time."""

    # [model] path changed: (what is stored, the model's human name); the app reloads it
    switched = Signal(str, str)
    settings_requested = Signal()

    def __init__(self, services: Any, page: ModelsPage, tasks: TaskRunner) -> None:
        super().__init__(page)
        self.services = services
        self.page = page
        self.tasks = tasks
        self.adapter = ModelsAdapter(services)
        self.rows: list[ModelRow] = []
        self.fits: dict[str, Fit] = {}
        self.download_task: Task | None = None
        self.downloading = ""  # the key of the row being downloaded
        self.loading = False
        page.refresh_requested.connect(self.refresh)
        page.folder_added.connect(self.add_folder)
        page.file_opened.connect(self.open_file)
        page.selected.connect(self._selected)
        page.download_requested.connect(lambda: self.download(self.page.selected_key()))
        page.cancel_requested.connect(self.cancel_download)
        page.use_requested.connect(lambda: self.use(self.page.selected_key()))
        page.settings_requested.connect(self.settings_requested)

    # -- the list ---------------------------------------------------------------------------
    def row(self, key: str) -> ModelRow | None:
        return next((r for r in self.rows if r.key == key), None)

    def refresh(self) -> None:
        """Look for models again (discovery reads every GGUF's header: a worker)."""
        if self.loading:
            return
        self.loading = True
        self.page.looking.setText("Looking for models…")
        self.page.looking.show()

        def load() -> tuple[list[ModelRow], EmbeddingInfo | BaseException]:
            rows = self.adapter.rows()
            try:
                embedding: EmbeddingInfo | BaseException = self.adapter.embedding()
            except Exception as exc:
                embedding = exc
            return rows, embedding

        self.tasks.run(load, on_done=self._loaded, on_error=self._load_failed, name="models")

    def _loaded(self, result: tuple[list[ModelRow], Any]) -> None:
        rows, embedding = result
        self.loading = False
        self.rows = rows
        self.fits.clear()  # files may have changed since
        found = sum(1 for r in rows if r.group == FOUND)
        self.page.looking.setText(f"{found} GGUF file(s) found on this computer." if found else "")
        self.page.looking.setVisible(bool(found))
        self._show_rows()
        if isinstance(embedding, EmbeddingInfo):
            self.page.show_embedding(embedding)
        else:
            self.page.show_embedding(None, error_text(embedding))

    def _load_failed(self, exc: BaseException) -> None:
        self.loading = False
        self.page.looking.setText(f"Could not look for models: {error_text(exc)}")

    def _show_rows(self) -> None:
        keep = self.page.selected_key()
        self.page.set_rows(self.rows, keep)
        active = next((r for r in self.rows if r.active), None)
        config = self.services.config
        if config.model.backend == "openai":
            self.page.show_active(
                config.server.model or "the server's model", f"a server at {config.server.base_url}"
            )
        elif active is not None:
            where = "built in" if active.group == PACKAGED else short_path(active.path)
            self.page.show_active(active.name, where)
        else:
            self.page.show_active(configured_name(config), short_path(config.model.path))
        self._selected(self.page.selected_key())

    def _selected(self, key: str) -> None:
        row = self.row(key)
        self.page.show_row(row, downloading=self.downloading)
        if row is None:
            return
        if not self.downloading and self.page.message.property("for") != key:
            self.page.show_message("")
        if key in self.fits:
            self._show_fit(row, self.fits[key])
        else:
            self.check_fit(row)

    def _show_fit(self, row: ModelRow, fit: Fit) -> None:
        self.page.show_fit(fit)
        if row.usable and not row.active:
            self.page.set_use_text("Use this model" if fit.fits else "Use anyway")

    def check_fit(self, row: ModelRow) -> None:
        self.page.show_fit(None, checking=True)

        def done(fit: Fit) -> None:
            self.fits[row.key] = fit
            if self.page.selected_key() == row.key:
                self._show_fit(row, fit)

        def failed(exc: BaseException) -> None:
            if self.page.selected_key() == row.key:
                self.page.show_fit(None)
                self.show_message(row.key, error_text(exc), "error")

        self.tasks.run(lambda: self.adapter.fit(row), on_done=done, on_error=failed, name="fit")

    def show_message(self, key: str, text: str, role: str = "muted") -> None:
        self.page.message.setProperty("for", key)
        self.page.show_message(text, role)

    def open_file(self, path: str) -> None:
        """List a GGUF the user picked (read in a worker) and select it."""

        def done(row: ModelRow) -> None:
            if self.row(row.key) is None:
                self.rows.append(row)
            self._show_rows()
            self.page.select(row.key)

        self.tasks.run(
            lambda: self.adapter.open_file(path),
            on_done=done,
            on_error=lambda exc: self.show_message("", error_text(exc), "error"),
            name="models-open",
        )

    def settings_changed(self) -> None:
        """Settings saved: the model in use, or the embedding model, may have changed."""
        if not self.rows:
            return  # not shown yet: it reads everything when it is
        active = self.adapter.active_key()
        self.rows = [replace(r, active=r.key == active) for r in self.rows]
        self.fits.clear()  # the context size may have changed too
        self._show_rows()
        self.tasks.run(
            self.adapter.embedding,
            on_done=self.page.show_embedding,
            on_error=lambda exc: self.page.show_embedding(None, error_text(exc)),
            name="models-embedding",
        )

    def add_folder(self, folder: str) -> None:
        def done(_: Any) -> None:
            self.refresh()

        self.tasks.run(
            lambda: self.adapter.remember_folder(folder),
            on_done=done,
            on_error=lambda exc: self.show_message("", error_text(exc), "error"),
            name="models-folder",
        )

    # -- downloading ------------------------------------------------------------------------
    def download(self, key: str) -> None:
        row = self.row(key)
        if row is None or row.group != CATALOGUED or row.downloaded or self.download_task:
            return
        cancel = threading.Event()
        self.downloading = key
        self.page.download.hide()
        self.page.show_progress(DownloadProgress(row.name, 0, row.size, 0.0), row.name)
        self.show_message(key, f"Downloading {row.name}…")

        def work(report: Any) -> ModelRow:
            return self.adapter.download(row, report, cancel)

        def progress(p: DownloadProgress) -> None:
            self.page.show_progress(p, row.name)
            share = p.done_bytes / p.total_bytes if p.total_bytes else 0.0
            self.page.set_status(key, f"downloading, {share:.0%}")

        self.download_task = self.tasks.run(
            work,
            on_done=self._downloaded,
            on_error=lambda exc: self._download_failed(row, exc),
            on_progress=progress,
            cancel=cancel,
            name="download-model",
        )

    def cancel_download(self) -> None:
        if self.download_task is not None:
            self.page.cancel.setEnabled(False)
            self.page.progress_label.setText("Stopping…")
            self.download_task.cancel()

    def _download_over(self) -> None:
        self.download_task = None
        self.downloading = ""
        self.page.cancel.setEnabled(True)
        self.page.show_progress(None)

    def _downloaded(self, row: ModelRow) -> None:
        self._download_over()
        self.rows = [row if r.key == row.key else r for r in self.rows]
        self.fits.pop(row.key, None)
        done = f"Downloaded {row.name} (its sha256 checked). “Use this model” switches to it."
        self.show_message(row.key, done, "ok")
        self._show_rows()
        self.page.select(row.key)

    def _download_failed(self, row: ModelRow, exc: BaseException) -> None:
        self._download_over()
        self.page.set_status(row.key, row.state)
        if isinstance(exc, DownloadCancelled):
            text, role = "Download cancelled. “Download” again resumes where it stopped.", "muted"
        elif isinstance(exc, ModelChecksumError):  # its own hint is about packages
            text, role = (
                f"The download of {row.name} failed: the file is not the one pinned (its "
                "sha256 differs), so it was deleted and will not be loaded. Download again; "
                "if this repeats, the file on the Hub has changed: update Jackdaw.",
                "error",
            )
        else:
            text, role = f"The download of {row.name} failed: {error_text(exc)}", "error"
        self._selected(self.page.selected_key())
        self.show_message(row.key, text, role)  # whichever row is selected now

    # -- switching --------------------------------------------------------------------------
    def use(self, key: str) -> None:
        """Switch to ``key`` after the memory check; a model that will not fit is switched to
        only once the user has seen the warning and pressed "Use anyway"."""
        row = self.row(key)
        if row is None or not row.usable or row.active:
            return
        known = self.fits.get(key)
        force = known is not None and not known.fits  # the warning is on the screen
        self.page.use.setEnabled(False)
        self.show_message(key, f"Switching to {row.name}…")

        def work() -> tuple[bool, Fit, str]:
            fit = known if known is not None else self.adapter.fit(row)
            if not fit.fits and not force:
                return False, fit, ""
            return True, fit, self.adapter.use(row)

        def done(result: tuple[bool, Fit, str]) -> None:
            used, fit, stored = result
            self.fits[key] = fit
            self.page.use.setEnabled(True)
            if not used:
                self.show_message(key, "")
                if self.page.selected_key() == key:
                    self._show_fit(row, fit)
                return
            self.rows = [replace(r, active=r.key == key) for r in self.rows]
            self.show_message(key, f"Now using {row.name}; it loads in the background.", "ok")
            self._show_rows()
            self.switched.emit(stored, row.name)

        def failed(exc: BaseException) -> None:
            self.page.use.setEnabled(True)
            self.show_message(key, error_text(exc), "error")

        self.tasks.run(work, on_done=done, on_error=failed, name="use-model")

    def model_state(self, text: str, role: str) -> None:
        """How the switch ended (the app's loader): said next to the model in use."""
        active = next((r for r in self.rows if r.active), None)
        if active is not None and self.page.message.property("for") == active.key:
            self.show_message(active.key, text, role)

    def shutdown(self) -> None:
        self.cancel_download()


def stored_path(stored: str) -> str:
    """The key ``model_names.configured_name`` looks a stored ``[model] path`` up by."""
    return str(Path(stored).expanduser()) if stored else ""
