"""Work off the main thread, results back on it (Anki's ``QueryOp``, style.md item 7).

``TaskRunner.run(fn, on_done=..., on_error=...)`` runs ``fn`` in a thread pool; its result or
exception comes back as a signal, delivered on the main thread. ``run(..., on_progress=...)``
passes ``fn`` a ``report(value)`` callable that may be called any number of times from the
worker: each value reaches ``on_progress`` on the main thread, in order.

A ``Task`` carries a ``threading.Event`` the work may check to stop early (``task.cancel()``);
``TaskRunner.shutdown`` cancels everything still running and waits a bounded time, so closing
the window while a model streams never hangs.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger("jackdaw.desktop")

Report = Callable[[Any], None]


class _Bus(QObject):
    # Lives on the main thread as long as the runner; a signal emitted on a worker is queued
    # to the main thread. Tasks themselves hold no Qt object, so they may die on any thread.
    progress = Signal(int, object)
    done = Signal(int, object)
    failed = Signal(int, object)


class Task:
    """A handle on one piece of background work: its name and its cancel event."""

    def __init__(self, task_id: int, name: str, cancel: threading.Event | None = None) -> None:
        self.id = task_id
        self.name = name
        self.cancel_event = cancel or threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


@dataclass
class _Entry:
    task: Task
    on_done: Callable[[Any], None] | None
    on_error: Callable[[BaseException], None]
    on_progress: Callable[[Any], None] | None


class _Runnable(QRunnable):
    # Auto-deleted by the pool once run() returns.
    def __init__(self, bus: _Bus, task_id: int, fn: Callable[..., Any], with_report: bool) -> None:
        super().__init__()
        self.bus = bus
        self.task_id = task_id
        self.fn = fn
        self.with_report = with_report

    def run(self) -> None:
        bus, task_id = self.bus, self.task_id
        try:
            if self.with_report:
                result = self.fn(lambda value: bus.progress.emit(task_id, value))
            else:
                result = self.fn()
        except BaseException as exc:  # handed to the main thread; a worker must never die silently
            exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
            bus.failed.emit(task_id, exc)
        else:
            bus.done.emit(task_id, result)


class TaskRunner(QObject):
    """One thread pool for the window's background work."""

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        # Small writes to memory.db go one at a time: the app shares one SQLite connection
        # between threads, and two transactions on it at once would collide.
        self.serial_pool = QThreadPool(self)
        self.serial_pool.setMaxThreadCount(1)
        self._bus = _Bus(self)
        self._bus.progress.connect(self._progress)
        self._bus.done.connect(self._done)
        self._bus.failed.connect(self._failed)
        self._live: dict[int, _Entry] = {}
        self._ids = itertools.count(1)
        self.closed = False

    def run(
        self,
        fn: Callable[..., Any],
        *,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
        cancel: threading.Event | None = None,
        name: str = "",
        serial: bool = False,
    ) -> Task:
        """Start ``fn``; ``cancel`` is the event the work checks (set by ``Task.cancel``).
        ``serial`` queues it behind the other serial tasks (quick writes to memory.db)."""
        task = Task(next(self._ids), name or getattr(fn, "__name__", "task"), cancel)
        if self.closed:  # shutting down: nothing new starts (the services are going away)
            task.cancel()
            return task
        self._live[task.id] = _Entry(
            task, on_done, on_error or _log_failure(task.name), on_progress
        )
        pool = self.serial_pool if serial else self.pool
        pool.start(_Runnable(self._bus, task.id, fn, on_progress is not None))
        return task

    def _progress(self, task_id: int, value: Any) -> None:
        if self.closed:
            return
        entry = self._live.get(task_id)
        if entry is not None and entry.on_progress is not None:
            entry.on_progress(value)

    def _done(self, task_id: int, result: Any) -> None:
        entry = self._live.pop(task_id, None)
        if self.closed:
            return
        if entry is not None and entry.on_done is not None:
            entry.on_done(result)

    def _failed(self, task_id: int, exc: BaseException) -> None:
        entry = self._live.pop(task_id, None)
        if self.closed:
            return
        if entry is not None:
            entry.on_error(exc)

    @property
    def busy(self) -> bool:
        return bool(self._live)

    def running(self) -> list[Task]:
        return [entry.task for entry in self._live.values()]

    def shutdown(self, timeout_ms: int = 8000) -> bool:
        """Cancel every task, start no new one, and wait (bounded) for the pools; True when
        all finished."""
        self.closed = True
        for entry in list(self._live.values()):
            entry.task.cancel()
        started = time.monotonic()
        done = self.pool.waitForDone(timeout_ms)
        left = max(0, timeout_ms - int((time.monotonic() - started) * 1000))
        return self.serial_pool.waitForDone(left) and done


def _log_failure(name: str) -> Callable[[BaseException], None]:
    def log_it(exc: BaseException) -> None:
        log.error(
            "background task %s failed: %s\n%s",
            name,
            exc,
            getattr(exc, "__traceback_text__", ""),
        )

    return log_it


def error_text(exc: BaseException) -> str:
    """What to show a person: a JackdawError says what to do next; anything else is ours."""
    from models.errors import JackdawError

    if isinstance(exc, JackdawError):
        return str(exc).replace("\n  -> ", "\n")
    return f"Something went wrong inside Jackdaw ({type(exc).__name__}: {exc})."
