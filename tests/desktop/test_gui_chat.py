"""The chat page: a streamed answer, Stop, Regenerate, copy, conversations, closing mid-answer."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QInputDialog, QMessageBox

from tests.desktop.conftest import SlowBackend, last_card, send, wait_answer
from tests.fakes import final


def test_a_question_streams_its_answer_token_by_token(qtbot, make_app) -> None:
    answer = "Paris is the capital.\n\n```python\nprint('hi')\n```"
    app = make_app([final(answer)])
    pieces: list[str] = []
    original = app.chat._progress

    def spy(run, item):
        if item[0] == "text":
            pieces.append(item[1])
        original(run, item)

    app.chat._progress = spy
    send(qtbot, app, "What is the capital of France?")
    wait_answer(qtbot, app)

    card = last_card(app)
    assert card.text() == answer
    assert len(pieces) > 5 and "".join(pieces) == answer  # it arrived piece by piece
    assert "print('hi')" in card.body.toPlainText()  # the code block is rendered, no fences
    assert "```" not in card.body.toPlainText()
    assert card.trace_id is not None
    trace = app.services.traces.get(card.trace_id)
    assert trace.status == "ok" and trace.final_answer == answer
    # the conversation appears in the list, titled by its first question
    conversations = app.window.chat.conversations.list
    qtbot.waitUntil(lambda: conversations.count() == 1)
    assert conversations.item(0).text().startswith("What is the capital")
    assert app.window.speed_label.text().endswith("tokens/s")
    assert app.window.model_label.text() == "Model: scripted"
    assert app.window.chat.composer.edit.toPlainText() == ""


def test_a_long_answer_streams_thousands_of_pieces_safely(qtbot, make_app) -> None:
    # Each piece is a signal emitted from the worker; PySide6 6.12.0 drops a reference to
    # True on every emit, which used to abort the interpreter after a few hundred of them.
    answer = "All work and no play. " * 400
    app = make_app([final(answer)])
    send(qtbot, app, "Write a lot")
    wait_answer(qtbot, app, timeout=60_000)
    assert last_card(app).text() == answer.strip()


def test_stop_ends_the_answer_mid_stream(qtbot, make_app) -> None:
    backend = SlowBackend([final("word " * 400)], delay=0.005)
    app = make_app(backend=backend)
    send(qtbot, app, "Tell me a long story")
    card = None
    qtbot.waitUntil(lambda: bool(app.window.chat.transcript.cards()))
    card = last_card(app)
    qtbot.waitUntil(lambda: len(card.text()) > 10)
    assert app.window.chat.composer.stop.isVisible()
    qtbot.keyClick(app.window.chat.composer.edit, Qt.Key.Key_Escape)
    wait_answer(qtbot, app)
    trace = app.services.traces.get(card.trace_id)
    assert trace.status == "cancelled"
    assert 10 < len(card.text()) < len("word " * 400)
    assert card.status.text() == "Stopped."
    assert not card.up.isEnabled()  # a stopped answer is not rated
    assert app.window.chat.composer.send.isEnabled()


def test_regenerate_asks_the_last_question_again(qtbot, make_app) -> None:
    app = make_app([final("First try."), final("Second try.")])
    send(qtbot, app, "Say something")
    wait_answer(qtbot, app)
    assert last_card(app).text() == "First try."
    regenerate = app.window.chat.composer.regenerate
    assert regenerate.isEnabled()
    qtbot.mouseClick(regenerate, Qt.MouseButton.LeftButton)
    wait_answer(qtbot, app)
    cards = app.window.chat.transcript.cards()
    assert [c.text() for c in cards] == ["Second try."]
    backend = app.services.chat_backend
    assert backend.requests[1]["messages"][-1]["content"].endswith("Say something")


def test_copy_puts_the_answer_on_the_clipboard(qtbot, make_app) -> None:
    app = make_app([final("Copy **me**.")])
    send(qtbot, app, "Hi")
    wait_answer(qtbot, app)
    qtbot.mouseClick(last_card(app).copy, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "Copy **me**."


def test_conversations_new_open_rename_search_delete(qtbot, make_app, monkeypatch) -> None:
    app = make_app([final("Answer one."), final("Answer two.")])
    chat, conv = app.window.chat, app.window.chat.conversations
    send(qtbot, app, "First topic")
    wait_answer(qtbot, app)
    qtbot.mouseClick(conv.new_button, Qt.MouseButton.LeftButton)
    assert chat.transcript.cards() == []
    send(qtbot, app, "Second topic")
    wait_answer(qtbot, app)
    qtbot.waitUntil(lambda: conv.list.count() == 2)

    # open the older one: its turns come back, with their runs (sources, feedback)
    older = next(conv.list.item(i) for i in range(2) if conv.list.item(i).text() == "First topic")
    conv.list.setCurrentItem(older)
    qtbot.waitUntil(lambda: [c.text() for c in chat.transcript.cards()] == ["Answer one."])
    assert chat.transcript.cards()[0].trace_id is not None

    # rename (F2 opens the dialog; the dialog is answered here)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Renamed topic", True))
    conv.ask_rename()
    qtbot.waitUntil(lambda: any(conv.list.item(i).text() == "Renamed topic" for i in range(2)))

    conv.search.setText("renamed")
    visible = [conv.list.item(i).text() for i in range(2) if not conv.list.item(i).isHidden()]
    assert visible == ["Renamed topic"]
    conv.search.clear()

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    conv.select(app.chat.conversation_id)
    conv.ask_delete()
    qtbot.waitUntil(lambda: conv.list.count() == 1)
    assert app.services.conversations.list()[0]["title"] == "Second topic"
    assert app.chat.conversation_id is None and chat.transcript.cards() == []


def test_closing_the_window_mid_answer_shuts_down_cleanly(qtbot, make_app) -> None:
    backend = SlowBackend([final("word " * 2000)], delay=0.01)
    app = make_app(backend=backend)
    send(qtbot, app, "Go on and on")
    qtbot.waitUntil(backend.started.is_set)
    started = time.perf_counter()
    app.window.close()
    app.shutdown()
    assert time.perf_counter() - started < 5
    assert not app.tasks.busy or app.tasks.pool.activeThreadCount() == 0
    row = app.services.traces.list(limit=1)[0]
    assert row["status"] == "cancelled"  # saved, consistent: the DB is not left mid-write
    assert app.services.memory.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_the_window_is_usable_while_the_model_loads(qtbot, make_app) -> None:
    app = make_app([final("Hello.")], load=False)
    assert app.model.state == "idle"
    send(qtbot, app, "Hi")  # the first question loads the model itself
    wait_answer(qtbot, app)
    assert last_card(app).text() == "Hello."


def test_refinement_schedule_starts_with_the_model_and_stops_at_exit(
    qtbot, make_app, monkeypatch
) -> None:
    from agent_core.learning.loop import Learning

    prepared: list[Learning] = []
    monkeypatch.setattr(Learning, "prepare_judge", lambda self: prepared.append(self))
    app = make_app([])
    app._model_loaded(app.services.chat_backend.info)
    qtbot.waitUntil(lambda: len(prepared) == 1, timeout=5_000)  # the judge's file, in a worker
    schedule = app.refinement
    assert schedule is not None and schedule.scheduler.running
    assert schedule.scheduler.get_job(schedule.JOB_ID) is not None
    app.shutdown()
    assert schedule.scheduler is None


def test_the_card_shows_each_step_then_folds_them(qtbot, make_app, tmp_path) -> None:
    from tests.fakes import call

    app = make_app([call("calculator", expression="17*23"), final("17 times 23 is 391.")])
    send(qtbot, app, "What is 17 times 23?")
    wait_answer(qtbot, app)
    card = last_card(app)
    assert card.text() == "17 times 23 is 391."
    assert card.steps[0].startswith("calling calculator") and "17*23" in card.steps[0]
    assert any("391" in step for step in card.steps)  # the result, in one line
    assert card.steps_toggle.isVisible() and not card.steps_label.isVisible()  # folded
    assert card.steps_toggle.text() == f"▸ {len(card.steps)} steps"
    qtbot.mouseClick(card.steps_toggle, Qt.MouseButton.LeftButton)
    assert card.steps_label.isVisible() and "calling calculator" in card.steps_label.text()
    assert app.window.grab().save(str(tmp_path / "steps.png"))  # what a person sees
