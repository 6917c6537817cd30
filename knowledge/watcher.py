"""Keeping watched folders fresh: note, settle, batch (like mkdocs' livereload).

A watchdog observer per watched folder only *notes* the paths its events name. A worker
thread waits until no event has arrived for ``settle_seconds`` (so an editor's save burst,
or a copy of a thousand files, becomes one batch), then brings exactly those paths up to
date with :meth:`KnowledgeBase.index`: same hashing, rename detection and per-file error
handling as a full scan, and never one embedding per keystroke-save.

The worker also polls the watched folders: one that disappears (an unplugged drive) is
marked offline and its index kept; when it comes back it is watched again and reconciled.
Start-up and scheduled reconcile scans (see :func:`add_reconcile_job`) run on the same
worker, so indexing is never concurrent with itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from knowledge.base import KnowledgeBase
from knowledge.types import IngestResult

log = logging.getLogger("jackdaw.knowledge")

BatchCallback = Callable[[list[str], IngestResult], None]
StatusCallback = Callable[[str, str], None]  # (folder, "online" | "offline")
ErrorCallback = Callable[[BaseException], None]

# Reading a file raises "opened" / "closed_no_write" events: reacting to those would make
# the indexer re-trigger itself forever. A directory's "modified" only says a child changed,
# and the child has its own event.
_FILE_EVENTS = {
    EVENT_TYPE_CREATED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MOVED,
    EVENT_TYPE_CLOSED,
}
_DIR_EVENTS = {EVENT_TYPE_CREATED, EVENT_TYPE_DELETED, EVENT_TYPE_MOVED}
# A batch this large is cheaper as a scan of the folders it touches (unchanged files cost
# one stat each) than as thousands of single-path look-ups.
MAX_BATCH_PATHS = 500


class _Noter(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher, root: str) -> None:
        self.watcher = watcher
        self.root = root

    def on_any_event(self, event: FileSystemEvent) -> None:
        kinds = _DIR_EVENTS if event.is_directory else _FILE_EVENTS
        if event.event_type not in kinds:
            return
        paths = [os.fsdecode(event.src_path)]
        if event.event_type == EVENT_TYPE_MOVED:
            paths.append(os.fsdecode(event.dest_path))
        self.watcher.note(self.root, paths, is_directory=event.is_directory)


class FolderWatcher:
    def __init__(
        self,
        kb: KnowledgeBase,
        settle_seconds: float = 1.0,
        on_batch: BatchCallback | None = None,
        on_status: StatusCallback | None = None,
        on_error: ErrorCallback | None = None,
        poll_seconds: float = 5.0,
        reconcile_on_start: bool = True,
        folders_poll_seconds: float = 1.0,
    ) -> None:
        self.kb = kb
        self.settle_seconds = settle_seconds
        self.on_batch = on_batch
        self.on_status = on_status
        self.on_error = on_error
        self.poll_seconds = poll_seconds
        self.reconcile_on_start = reconcile_on_start
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._reconcile_requested = False
        self._last_event = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancel = threading.Event()  # cancels a run in progress when stopping
        self._observers: dict[str, Any] = {}
        self._online: dict[str, bool] = {}
        self._worker: threading.Thread | None = None
        # Folders added or removed by another process (jackdaw folders add while `watch` or
        # the app runs) are picked up this often: one SELECT on knowledge.db.
        self.folders_poll_seconds = folders_poll_seconds
        self.not_watched: dict[str, str] = {}  # folder -> why it has no observer
        self._folders_lock = threading.RLock()  # add/remove from the GUI and the worker

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is not None:
            return
        for folder in self.kb.folder_paths():
            self._online[folder] = os.path.isdir(folder)
            if self._online[folder]:
                self._observe(folder)
        if self.reconcile_on_start:
            self.request_reconcile()
        self._worker = threading.Thread(target=self._run, name="knowledge-watcher", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._cancel.set()
        self._wake.set()
        for folder in list(self._observers):
            self._unobserve(folder)
        if self._worker is not None:
            self._worker.join(timeout)
            self._worker = None

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def watched(self) -> list[str]:
        """Folders whose changes really arrive: an observer and its event thread alive."""
        return sorted(f for f in list(self._observers) if self.is_watching(f))

    def is_watching(self, folder: str) -> bool:
        observer = self._observers.get(folder)
        if observer is None or not observer.is_alive():
            return False
        emitters = list(getattr(observer, "emitters", ()))
        return bool(emitters) and all(e.is_alive() for e in emitters)

    def add_folder(self, folder: str, index: bool = True) -> None:
        """Start watching a folder added while running, and index it (unless the caller
        indexes it itself, with its own progress)."""
        with self._folders_lock:
            self._online[folder] = os.path.isdir(folder)
            if self._online[folder] and folder not in self._observers:
                self._observe(folder)
        if index:
            self.note(folder, [folder])

    def remove_folder(self, folder: str) -> None:
        with self._folders_lock:
            self._online.pop(folder, None)
            self.not_watched.pop(folder, None)
            self._unobserve(folder)

    # -- noting -----------------------------------------------------------------------------

    def note(self, root: str, paths: list[str], is_directory: bool = True) -> None:
        """Record changed paths; cheap, called on watchdog's thread."""
        kept = [p for p in paths if self._relevant(root, p, is_directory)]
        if not kept:
            return
        with self._lock:
            self._pending.update(kept)
            self._last_event = time.monotonic()
        self._wake.set()

    def request_reconcile(self) -> None:
        """Queue a full scan of every watched folder (start-up, schedule, missed events)."""
        with self._lock:
            self._reconcile_requested = True
        self._wake.set()

    def _relevant(self, root: str, path: str, is_directory: bool) -> bool:
        """Drop events inside ignored folders, and hidden files (editor swap and lock
        files change on every keystroke); a reconcile still records the hidden ones."""
        if path == root:
            return True
        if path in self.kb.rules.excluded_paths:
            return False
        rel = os.path.relpath(path, root)
        if rel.startswith(".."):
            return False
        parts = rel.split(os.sep)
        folders = parts if is_directory else parts[:-1]
        if any(self.kb.rules.dir_reason(part) for part in folders):
            return False
        return is_directory or not (self.kb.rules.skip_hidden and parts[-1].startswith("."))

    # -- the worker -------------------------------------------------------------------------

    def _run(self) -> None:
        next_poll = next_folders = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_folders:
                self._sync_folders()
                next_folders = now + self.folders_poll_seconds
                next_poll = min(next_poll, next_folders)
            if now >= next_poll:
                self._poll_folders()
                next_poll = min(now + self.poll_seconds, next_folders)
            with self._lock:
                reconcile = self._reconcile_requested
                pending = bool(self._pending)
                quiet_for = now - self._last_event
            if reconcile:
                with self._lock:
                    self._reconcile_requested = False
                self._ingest(None)
                continue
            if pending and quiet_for >= self.settle_seconds:
                with self._lock:
                    batch = sorted(self._pending)
                    self._pending.clear()
                self._ingest(batch)
                continue
            wait = next_poll - now
            if pending:
                wait = min(wait, self.settle_seconds - quiet_for)
            self._wake.wait(max(wait, 0.01))
            self._wake.clear()

    def _ingest(self, batch: list[str] | None) -> None:
        roots = self.kb.folder_paths()
        paths: list[str] | None
        if batch is None:
            paths = None
        else:
            paths = [p for p in batch if any(p == r or p.startswith(r + os.sep) for r in roots)]
            if not paths:
                return
            if len(paths) > MAX_BATCH_PATHS or any(p in roots for p in paths):
                touched = {r for r in roots for p in paths if p == r or p.startswith(r + os.sep)}
                paths = sorted(touched)
        try:
            result = self.kb.index(paths, cancel=self._cancel)
        except Exception as exc:  # a fault must not kill the watcher; report and go on
            log.exception("indexing a batch failed")
            if self.on_error:
                self.on_error(exc)
            return
        if result.offline_folders:
            for folder in result.offline_folders:
                self._set_online(folder, False)
        log.info(
            "indexed %s: +%d ~%d >%d -%d !%d",
            "all folders" if paths is None else f"{len(paths)} path(s)",
            result.added,
            result.updated,
            result.renamed,
            result.deleted,
            result.failed,
        )
        if self.on_batch:
            self.on_batch(paths or [], result)

    def _sync_folders(self) -> None:
        """Follow the folders table: watch folders added elsewhere, drop removed ones."""
        try:
            current = set(self.kb.folder_paths())
        except Exception:  # a busy or closing DB: try again on the next poll
            log.debug("could not read the watched folders", exc_info=True)
            return
        with self._folders_lock:
            added = sorted(current - set(self._online))
            removed = sorted(set(self._online) - current)
        for folder in added:
            log.info("now watching %s (added while running)", folder)
            self.add_folder(folder)
        for folder in removed:
            self.remove_folder(folder)

    def _poll_folders(self) -> None:
        for folder in list(self._online):
            present = os.path.isdir(folder)
            if present == self._online.get(folder):
                continue
            if not present:
                self.kb.store.set_folder_status(
                    folder, "offline", "folder not found (unplugged drive?); index kept"
                )
                self._set_online(folder, False)
            else:
                self._set_online(folder, True)
                self.note(folder, [folder])  # catch up on what changed while away

    def _set_online(self, folder: str, online: bool) -> None:
        if self._online.get(folder) == online:
            return
        self._online[folder] = online
        if online:
            self._observe(folder)
        else:
            self._unobserve(folder)
        log.info("folder %s is %s", folder, "online" if online else "offline")
        if self.on_status:
            self.on_status(folder, "online" if online else "offline")

    def _observe(self, folder: str) -> None:
        observer = Observer()
        try:
            observer.schedule(_Noter(self, folder), folder, recursive=True)
            observer.daemon = True
            observer.start()
        except Exception as exc:  # inotify limits, a vanished folder: rescans still run
            log.warning("cannot watch %s: %s", folder, exc)
            self.not_watched[folder] = f"changes are not watched ({exc}); re-scans still run"
            try:
                observer.stop()
            except Exception:
                pass
            return
        self.not_watched.pop(folder, None)
        self._observers[folder] = observer

    def _unobserve(self, folder: str) -> None:
        observer = self._observers.pop(folder, None)
        if observer is not None:
            observer.stop()
            if observer is not threading.current_thread():
                observer.join(5)


def add_reconcile_job(scheduler: Any, watcher: FolderWatcher, minutes: float) -> Any:
    """Schedule a periodic reconcile scan on an APScheduler scheduler; returns the job.

    The job only queues the scan; the watcher's worker runs it, after any batch in progress.
    """
    return scheduler.add_job(
        watcher.request_reconcile,
        "interval",
        minutes=minutes,
        id="knowledge-reconcile",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
    )
