"""Knowledge: watched folders, indexing progress (pause, cancel), failures, and search."""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from PySide6.QtCore import QObject, QUrl, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop import seams
from desktop.sources import SourceRef, open_source
from desktop.tasks import Task, TaskRunner, error_text
from desktop.widgets import LinkBrowser, muted_label, short_path

PROBLEM_STATUSES = ("failed", "skipped", "no_text", "encrypted", "truncated", "partial")
PROBLEM_WORDS = {
    "failed": "failed",
    "skipped": "skipped",
    "no_text": "no text (a scan?)",
    "encrypted": "encrypted",
    "empty": "empty",
    "truncated": "indexed in part",
    "partial": "being indexed (or interrupted; carries on next run)",
}
MAX_PROBLEMS_SHOWN = 500
SEARCH_RESULTS = 10


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "never"


def _table(headers: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    return table


def eta_words(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"about {max(int(seconds), 1)} s left"
    return f"about {round(seconds / 60)} min left"


class _Starting:
    """A progress snapshot for the moment a run is asked for, before its first report."""

    phase = "scanning"
    files_done = files_total = chunks_embedded = 0
    eta_s = None
    current_file = None


class KnowledgePage(QWidget):
    add_requested = Signal(str)
    remove_requested = Signal(str)
    reindex_requested = Signal()
    pause_toggled = Signal(bool)
    cancel_requested = Signal()
    search_requested = Signal(str)
    folder_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        head = QHBoxLayout()
        title = QLabel("Watched folders")
        title.setProperty("role", "title")
        self.add = QPushButton("Add folder…")
        self.remove = QPushButton("Remove")
        self.remove.setEnabled(False)
        self.reindex = QPushButton("Check for changes")
        self.reindex.setToolTip("Scan every watched folder and index what changed")
        head.addWidget(title, 1)
        for button in (self.add, self.remove, self.reindex):
            head.addWidget(button)
        layout.addLayout(head)
        self.unavailable = muted_label()
        self.unavailable.hide()
        layout.addWidget(self.unavailable)
        self.folders = _table(["Folder", "State", "Files", "Chunks", "Last update"])
        self.folders.setMaximumHeight(160)
        layout.addWidget(self.folders)

        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress_label = muted_label()
        self.pause = QPushButton("Pause")
        self.pause.setCheckable(True)
        self.cancel = QPushButton("Cancel")
        progress_row.addWidget(self.progress, 2)
        progress_row.addWidget(self.progress_label, 3)
        progress_row.addWidget(self.pause)
        progress_row.addWidget(self.cancel)
        self.progress_box = QWidget()
        self.progress_box.setLayout(progress_row)
        progress_row.setContentsMargins(0, 0, 0, 0)
        self.progress_box.hide()
        layout.addWidget(self.progress_box)
        self.result_label = muted_label()
        layout.addWidget(self.result_label)

        split = QSplitter()
        problems_box = QWidget()
        problems_layout = QVBoxLayout(problems_box)
        problems_layout.setContentsMargins(0, 0, 0, 0)
        self.problems_title = QLabel("Files not indexed")
        problems_layout.addWidget(self.problems_title)
        self.problems = _table(["File", "Why"])
        problems_layout.addWidget(self.problems)
        search_box = QWidget()
        search_layout = QVBoxLayout(search_box)
        search_layout.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search your folders (the same search the agent uses)")
        self.search.setClearButtonEnabled(True)
        self.hits = LinkBrowser()
        self.hits.setPlaceholderText("Hits appear here, each with its file and page or heading.")
        search_layout.addWidget(self.search)
        search_layout.addWidget(self.hits, 1)
        split.addWidget(search_box)
        split.addWidget(problems_box)
        split.setSizes([600, 400])
        layout.addWidget(split, 1)

        self.add.clicked.connect(self._pick_folder)
        self.remove.clicked.connect(self._remove)
        self.reindex.clicked.connect(self.reindex_requested)
        self.pause.toggled.connect(self._pause)
        self.cancel.clicked.connect(self.cancel_requested)
        self.search.returnPressed.connect(lambda: self.search_requested.emit(self.search.text()))
        self.folders.itemSelectionChanged.connect(self._selected)

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Watch a folder")
        if folder:
            self.add_requested.emit(folder)

    def _remove(self) -> None:
        path = self.selected_folder()
        if path:
            self.remove_requested.emit(path)

    def _pause(self, paused: bool) -> None:
        self.pause.setText("Resume" if paused else "Pause")
        self.pause_toggled.emit(paused)

    def _selected(self) -> None:
        path = self.selected_folder()
        self.remove.setEnabled(path is not None)
        self.folder_selected.emit(path or "")

    def selected_folder(self) -> str | None:
        row = self.folders.currentRow()
        if row < 0 or not self.folders.selectedItems():
            return None
        item = self.folders.item(row, 0)
        return item.toolTip() if item else None

    def set_available(self, available: bool, why: str = "") -> None:
        for widget in (self.add, self.reindex, self.search, self.folders):
            widget.setEnabled(available)
        self.unavailable.setText(why)
        self.unavailable.setVisible(not available)

    def set_folders(
        self,
        folders: list[Any],
        indexing: set[str],
        watching: set[str] | None = None,
        not_watched: dict[str, str] | None = None,
    ) -> None:
        """``watching``: folders whose change events really arrive (None: not known)."""
        self.folders.setRowCount(0)
        for info in folders:
            r = self.folders.rowCount()
            self.folders.insertRow(r)
            if info.status == "offline":
                state = "offline"
            elif info.path in indexing:
                state = "indexing"
            elif watching is None or info.path in watching:
                state = "watching"
            else:
                state = "not watched"
            why = (not_watched or {}).get(info.path) or getattr(info, "note", None) or ""
            values = [
                short_path(info.path),
                state,
                str(info.documents),
                str(info.chunks),
                _when(info.last_scan_at),
            ]
            problems = getattr(info, "problems", 0)
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c == 0:
                    item.setToolTip(info.path)
                elif c == 1 and why:
                    item.setToolTip(why)
                elif c == 2 and problems:
                    item.setToolTip(f"{problems} not (fully) indexed: see Files not indexed")
                self.folders.setItem(r, c, item)
        if not folders and not indexing:
            self.result_label.setText("No folders yet. Add one and Jackdaw keeps it indexed.")

    def set_problems(self, documents: list[Any]) -> None:
        self.problems_title.setText(
            f"Files not indexed ({len(documents)})" if documents else "Files not indexed: none"
        )
        self.problems.setRowCount(0)
        for doc in documents:
            r = self.problems.rowCount()
            self.problems.insertRow(r)
            name = QTableWidgetItem(short_path(doc.path))
            name.setToolTip(doc.path)
            why = PROBLEM_WORDS.get(doc.status, doc.status)
            reason = QTableWidgetItem(f"{why}: {doc.error}" if doc.error else why)
            reason.setToolTip(doc.error or "")
            self.problems.setItem(r, 0, name)
            self.problems.setItem(r, 1, reason)

    def show_progress(self, progress: Any | None) -> None:
        if progress is None:
            self.progress_box.hide()
            self.pause.setChecked(False)
            return
        self.progress_box.show()
        total = max(progress.files_total, 0)
        if progress.phase == "scanning":
            self.progress.setRange(0, 0)  # busy: the total is not known yet
            self.progress.setFormat(f"scanning: {total} files found")
            self.progress_label.setText(f"scanning: {total} files found")
            return
        self.progress.setRange(0, total or 0)
        self.progress.setValue(progress.files_done)
        self.progress.setFormat(f"{progress.files_done} of {total} files" if total else "scanning")
        parts = [f"{progress.chunks_embedded} chunks", eta_words(progress.eta_s)]
        if progress.current_file:
            parts.append(short_path(progress.current_file))
        self.progress_label.setText(" · ".join(p for p in parts if p))

    def show_hits(self, hits: list[Any], query: str) -> None:
        if not hits:
            self.hits.setHtml(
                f"<p style='color:#6b7280'>Nothing found for “{html.escape(query)}”.</p>"
            )
            return
        blocks = []
        for i, hit in enumerate(hits):
            ref = SourceRef(hit.path, hit.page, hit.heading)
            blocks.append(
                f"<p><a href='hit:{i}'><b>{html.escape(ref.label)}</b></a><br>"
                f"<span style='color:#374151'>{html.escape(hit.snippet)}</span></p>"
            )
        self.hits.setHtml("".join(blocks))


class KnowledgeController(QObject):
    index_state = Signal(str)  # a short line for the status bar

    def __init__(self, services: Any, page: KnowledgePage, tasks: TaskRunner) -> None:
        super().__init__(page)
        self.services = services
        self.page = page
        self.tasks = tasks
        self.hits: list[Any] = []
        self.folders: list[Any] = []
        self.indexing: set[str] = set()
        self.task: Task | None = None
        # Starts watching the folders (set by the app; called in a worker): a folder added
        # while the app runs is watched at once, even if none was watched before.
        self.start_watching: Any = None
        self._last_progress: Any | None = None
        self._resume = threading.Event()
        self._resume.set()
        self.available = seams.has_knowledge(services)
        page.add_requested.connect(self.add_folder)
        page.remove_requested.connect(self.remove_folder)
        page.reindex_requested.connect(lambda: self.index(None))
        page.pause_toggled.connect(self.set_paused)
        page.cancel_requested.connect(self.cancel)
        page.search_requested.connect(self.search)
        page.hits.link_activated.connect(self._open_hit)
        if not self.available:
            page.set_available(False, "The knowledge base is not part of this build yet.")
            self.index_state.emit("Index: not available")

    def _kb(self) -> seams.KnowledgeService:
        kb = seams.knowledge_service(self.services)
        if kb is None:
            raise RuntimeError("The knowledge base is not available.")
        return kb

    def refresh(self, open_kb: bool = True) -> None:
        """Folders, failures and the index state. With ``open_kb`` False and the knowledge
        base not open yet, only the config is read (opening it loads the embedding model)."""
        if not self.available:
            self.index_state.emit("Index: not available")
            return
        if not open_kb and not seams.knowledge_is_open(self.services):
            n = len(self.services.config.knowledge.watched_folders)
            self.index_state.emit(f"Index: {n} folder{'s' if n != 1 else ''}" if n else
                                  "Index: no folders")  # fmt: skip
            return
        if not seams.knowledge_is_open(self.services):
            self.page.result_label.setText(
                "Opening the knowledge base (the first time, the embedding model is prepared)…"
            )

        def load() -> tuple[list[Any], list[Any]]:
            kb = self._kb()
            listing = getattr(kb, "problems", None)
            if listing is not None:  # kept until each file changes
                problems = list(listing(limit=MAX_PROBLEMS_SHOWN))
            else:
                problems = [d for d in kb.documents() if d.status in PROBLEM_STATUSES]
            return kb.folders(), problems

        self.tasks.run(load, on_done=self._show, on_error=self._failed, name="kb-refresh")

    def _watch_state(self) -> tuple[set[str], dict[str, str]]:
        watcher = getattr(self.services, "watcher", None)
        if watcher is None:
            return set(), {}
        return set(watcher.watched), dict(getattr(watcher, "not_watched", {}))

    def _show(self, result: tuple[list[Any], list[Any]]) -> None:
        if self.page.result_label.text().startswith("Opening"):
            self.page.result_label.setText("")
        self.folders, problems = result
        self.page.set_folders(self.folders, self.indexing, *self._watch_state())
        self.page.set_problems(problems)
        self._emit_state()

    def _emit_state(self, progress: Any | None = None) -> None:
        progress = progress or (self._last_progress if self.busy else None)
        if progress is not None:
            paused = "" if self._resume.is_set() else " (paused)"
            self.index_state.emit(
                f"Indexing {progress.files_done} of {progress.files_total}{paused}"
            )
            return
        offline = [f for f in self.folders if f.status == "offline"]
        if offline:
            self.index_state.emit(f"Index: offline folder {short_path(offline[0].path)}")
        elif not self.folders:
            self.index_state.emit("Index: no folders")
        else:
            self.index_state.emit("Index: idle")

    def add_folder(self, path: str) -> None:
        def work() -> tuple[str, bool]:
            kb = self._kb()
            folder = kb.add_folder(path)
            seams.remember_watched_folders(self.services, [f.path for f in kb.folders()])
            watcher = getattr(self.services, "watcher", None)
            if watcher is not None:  # the app watches already: observe the new folder too
                watcher.add_folder(folder, index=False)  # indexed below, with progress
                return folder, False
            if self.start_watching is not None:  # nothing watched yet: start now
                self.start_watching(reconcile=False)  # the run below is the start-up scan
                return folder, True
            return folder, False

        def added(result: tuple[str, bool]) -> None:
            folder, started = result
            self.index(None if started else [folder])

        self.tasks.run(work, on_done=added, on_error=self._failed, serial=True)

    def remove_folder(self, path: str) -> None:
        if self.busy:
            self.page.result_label.setText("Cancel the indexing first, then remove the folder.")
            return

        def work() -> int:
            kb = self._kb()
            watcher = getattr(self.services, "watcher", None)
            if watcher is not None:
                watcher.remove_folder(path)
            dropped = kb.remove_folder(path)
            seams.remember_watched_folders(self.services, [f.path for f in kb.folders()])
            return dropped

        def removed(n: int) -> None:
            self.page.result_label.setText(
                f"Stopped watching {short_path(path)}; {n} documents left the index."
            )
            self.refresh()

        self.tasks.run(work, on_done=removed, on_error=self._failed, serial=True)

    @property
    def busy(self) -> bool:
        return self.task is not None

    def index(self, paths: list[str] | None) -> None:
        if self.busy or not self.available:
            return
        cancel = threading.Event()
        self._resume.set()
        self.indexing = set(paths) if paths else {f.path for f in self.folders}

        def work(report: Any) -> Any:
            def on_progress(progress: Any) -> None:
                report(progress)
                while not self._resume.wait(0.2):  # paused: hold the indexer right here
                    if cancel.is_set():
                        return

            return self._kb().index(paths, on_progress=on_progress, cancel=cancel)

        self.page.result_label.setText("")
        self.task = self.tasks.run(
            work,
            on_progress=self._progress,
            on_done=self._indexed,
            on_error=self._index_failed,
            cancel=cancel,
            name="index",
        )
        # Honest from the first moment: the bar shows "scanning" before any number is known.
        self.page.show_progress(_Starting())
        if self.folders:
            self.page.set_folders(self.folders, self.indexing, *self._watch_state())

    def _progress(self, progress: Any) -> None:
        if self.task is None:
            return
        self._last_progress = progress
        self.page.show_progress(progress)
        self._emit_state(progress)

    def _indexed(self, result: Any) -> None:
        self._finish()
        parts = [
            f"{result.added} added",
            f"{result.updated} updated",
            f"{result.deleted} removed",
            f"{result.unchanged} unchanged",
        ]
        if result.failed or result.skipped:
            parts.append(f"{result.failed} failed, {result.skipped} skipped")
        verb = "Cancelled" if result.cancelled else "Indexed"
        self.page.result_label.setText(f"{verb} in {result.seconds:.1f} s: " + ", ".join(parts))
        self.refresh()

    def _index_failed(self, exc: BaseException) -> None:
        self._finish()
        self._failed(exc)
        self.refresh()

    def _finish(self) -> None:
        self.task = None
        self._last_progress = None
        self.indexing = set()
        self._resume.set()
        self.page.show_progress(None)
        if self.folders:  # no folder is "indexing" any more, before the refresh comes back
            self.page.set_folders(self.folders, self.indexing, *self._watch_state())
        self._emit_state()  # nor is the status bar left saying "Indexing 4 of 4"

    def set_paused(self, paused: bool) -> None:
        if paused:
            self._resume.clear()
        else:
            self._resume.set()
        self._emit_state()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self._resume.set()

    def search(self, query: str) -> None:
        query = query.strip()
        if not query or not self.available:
            return

        def work() -> list[Any]:
            return list(self._kb().search(query, SEARCH_RESULTS))

        def shown(hits: list[Any]) -> None:
            self.hits = hits
            self.page.show_hits(hits, query)

        self.tasks.run(work, on_done=shown, on_error=self._failed, name="kb-search")

    def _open_hit(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith("hit:"):
            hit = self.hits[int(text[4:])]
            open_source(SourceRef(hit.path, hit.page, hit.heading))

    def _failed(self, exc: BaseException) -> None:
        self.page.result_label.setText(error_text(exc))

    def shutdown(self) -> None:
        self.cancel()
