"""Fixtures for the desktop tests: the real app (real widgets, offscreen) on real Services,
with the scripted backend standing in for the model where a test says so."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt

from agent_core.services import Services
from desktop.app import Jackdaw
from tests.fakes import ScriptedBackend

WAIT_MS = 15_000


class RecordingFeedback:
    """Stands in for the learning engine's rate/correct where a test needs only those."""

    def __init__(self) -> None:
        self.ratings: list[tuple[str, bool, str]] = []
        self.corrections: list[tuple[str, str, str]] = []

    def rate(self, trace_id: str, up: bool, comment: str = "") -> None:
        self.ratings.append((trace_id, up, comment))

    def correct(self, trace_id: str, answer: str, note: str = "") -> None:
        self.corrections.append((trace_id, answer, note))


class SlowBackend(ScriptedBackend):
    """Streams one character every ``delay`` seconds; ``started`` is set at the first one."""

    def __init__(self, outputs: list[str], delay: float = 0.02) -> None:
        super().__init__(outputs)
        self.delay = delay
        self.started = threading.Event()

    def chat(self, messages: Any, settings: Any, **kwargs: Any) -> Any:
        on_text = kwargs.get("on_text")

        def slow(piece: str) -> None:
            self.started.set()
            time.sleep(self.delay)
            if on_text is not None:
                on_text(piece)

        kwargs["on_text"] = slow
        return super().chat(messages, settings, **kwargs)


MakeApp = Callable[..., Jackdaw]


@pytest.fixture
def make_app(qtbot: Any) -> Iterator[MakeApp]:
    """``make_app(outputs, backend=, configure=, feedback=, extra=, load=)`` -> a shown app.

    ``configure(config)`` runs before anything is built from the config; ``extra`` maps
    service names to objects injected before the window exists (e.g. ``knowledge``).
    """
    made: list[Jackdaw] = []

    def make(
        outputs: list[str] | None = None,
        *,
        backend: Any = None,
        configure: Callable[[Any], None] | None = None,
        feedback: Any = None,
        extra: dict[str, Any] | None = None,
        load: bool = True,
        real_model: bool = False,
    ) -> Jackdaw:
        services = Services()
        if configure is not None:
            configure(services.config)
        if not real_model:
            services.__dict__["chat_backend"] = backend or ScriptedBackend(list(outputs or []))
        if feedback is not None:
            services.__dict__["feedback"] = feedback
        for name, value in (extra or {}).items():
            services.__dict__[name] = value
        app = Jackdaw(services)
        qtbot.addWidget(app.window)
        app.start(load_model=load)
        qtbot.waitExposed(app.window)
        made.append(app)
        return app

    yield make
    for app in made:
        close_app(app)


def close_app(app: Jackdaw) -> None:
    app.window.close()
    app.shutdown()
    app.services.close()


def send(qtbot: Any, app: Jackdaw, text: str) -> None:
    """Type ``text`` into the composer and press Ctrl+Enter, as a person would."""
    edit = app.window.chat.composer.edit
    app.window.activateWindow()
    edit.setFocus()
    qtbot.waitUntil(edit.hasFocus, timeout=WAIT_MS)
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def wait_answer(qtbot: Any, app: Jackdaw, timeout: int = WAIT_MS) -> None:
    qtbot.waitUntil(lambda: not app.chat.busy, timeout=timeout)
    qtbot.waitUntil(lambda: not app.tasks.busy, timeout=timeout)


def last_card(app: Jackdaw) -> Any:
    return app.window.chat.transcript.cards()[-1]
