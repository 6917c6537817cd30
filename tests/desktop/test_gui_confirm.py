"""The tool confirmation dialog: each choice, the "always" rule honoured, time-out, keyboard,
and the rest of the UI staying live while it is up."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.confirm import ConfirmDialog, QtConfirmationHandler, scope_in_words
from tests.desktop.conftest import last_card, send, wait_answer
from tests.fakes import call, final
from tools.confirm import ConfirmationRequest
from tools.rules import Scope


def notes_dir(app) -> Path:
    return app.services.paths.data_dir / "notes"


def open_dialog(qtbot, app) -> ConfirmDialog:
    qtbot.waitUntil(lambda: bool(app.confirmer.open_dialogs()), timeout=10_000)
    return app.confirmer.open_dialogs()[0]


def audit(app):
    return app.services.tool_executor.audit.recent(10)


@pytest.mark.parametrize(
    ("choice", "written", "answer"),
    [
        ("allow_once", True, "allow_once"),
        ("allow_always", True, "allow_always"),
        ("deny", False, "deny"),
    ],
)
def test_each_choice_leads_to_its_outcome(qtbot, make_app, choice, written, answer) -> None:
    app = make_app([call("write_note", note="shop", text="milk"), final("Done.")])
    send(qtbot, app, "Note that I need milk")
    dialog = open_dialog(qtbot, app)
    assert "write_note" in dialog.windowTitle()
    assert dialog.request.preview and "+milk" in dialog.request.preview
    assert not dialog.isModal()
    qtbot.mouseClick(getattr(dialog, choice), Qt.MouseButton.LeftButton)
    wait_answer(qtbot, app)
    assert (notes_dir(app) / "shop.md").exists() is written
    entry = audit(app)[0]
    assert entry.tool == "write_note" and entry.answer == answer
    assert entry.decision == ("deny" if choice == "deny" else "allow")
    assert last_card(app).text() == "Done."
    trace = app.services.traces.get(last_card(app).trace_id)
    observation = trace.steps[0].observation
    assert ("denied by the user" in observation) is (choice == "deny")


def test_always_allow_is_honoured_next_time(qtbot, make_app) -> None:
    app = make_app(
        [
            call("write_note", note="shop", text="milk"),
            final("Noted."),
            call("write_note", note="shop", text="eggs"),
            final("Noted again."),
        ]
    )
    asked: list[ConfirmDialog] = []
    app.confirmer.asked.connect(asked.append)
    send(qtbot, app, "Note milk")
    dialog = open_dialog(qtbot, app)
    words = scope_in_words(dialog.request)
    assert words is not None and words.startswith("write_note in ")
    assert words in dialog.allow_always.text().replace("&", "")
    dialog.allow_always.click()
    wait_answer(qtbot, app)
    send(qtbot, app, "Note eggs")
    wait_answer(qtbot, app)
    assert len(asked) == 1  # the second call did not ask
    assert (notes_dir(app) / "shop.md").read_text() == "milk\n\neggs\n"
    rules = app.services.tool_executor.policy.rules()
    assert [r.scope.tool for r in rules] == ["write_note"]
    assert audit(app)[0].rule == f"rule:{rules[0].id}"


def test_no_answer_within_the_timeout_denies(qtbot, make_app) -> None:
    def short_timeout(config) -> None:
        config.tools.confirm_timeout_s = 1.0

    app = make_app(
        [call("write_note", note="shop", text="milk"), final("Not written.")],
        configure=short_timeout,
    )
    send(qtbot, app, "Note milk")
    dialog = open_dialog(qtbot, app)
    assert "1 s" in dialog.countdown.text()
    wait_answer(qtbot, app)
    qtbot.waitUntil(lambda: not app.confirmer.open_dialogs())
    assert not (notes_dir(app) / "shop.md").exists()
    entry = audit(app)[0]
    assert entry.decision == "deny" and entry.answer == "deny"
    assert "no answer within 1 s" in entry.observation


def test_escape_denies_and_deny_has_the_focus(qtbot, make_app) -> None:
    app = make_app([call("write_note", note="shop", text="milk"), final("Fine.")])
    send(qtbot, app, "Note milk")
    dialog = open_dialog(qtbot, app)
    assert dialog.deny.hasFocus() or QApplication.focusWidget() in (dialog.deny, None)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    wait_answer(qtbot, app)
    assert audit(app)[0].answer == "deny"
    assert not (notes_dir(app) / "shop.md").exists()


def test_the_ui_stays_live_while_the_dialog_waits(qtbot, make_app) -> None:
    app = make_app([call("write_note", note="shop", text="milk"), final("OK.")])
    send(qtbot, app, "Note milk")
    dialog = open_dialog(qtbot, app)
    # the main window still takes input and runs other work while the question is open
    window = app.window
    window.tabs.setCurrentWidget(app.permissions_page)
    qtbot.waitUntil(lambda: app.permissions_page.audit_note.text() != "")
    window.tabs.setCurrentIndex(0)
    done = threading.Event()
    app.tasks.run(lambda: 42, on_done=lambda _: done.set())
    qtbot.waitUntil(done.is_set)
    assert dialog.isVisible()
    dialog.allow_once.click()
    wait_answer(qtbot, app)
    assert (notes_dir(app) / "shop.md").exists()


def test_a_tool_that_always_asks_offers_no_standing_rule(qtbot) -> None:
    request = ConfirmationRequest(
        tool="run_python",
        description="Run Python code",
        risk="execute",
        arguments={"code": "print(1)\nprint(2)"},
        reason="run_python asks before every call",
        scope=None,
        timeout_s=30,
    )
    dialog = ConfirmDialog(request)
    qtbot.addWidget(dialog)
    assert not dialog.allow_always.isEnabled()
    answers = []
    dialog.answered.connect(answers.append)
    dialog.allow_once.click()
    assert answers[0].kind == "allow_once"


def test_the_handler_refuses_to_wait_on_the_gui_thread(qtbot) -> None:
    handler = QtConfirmationHandler()
    request = ConfirmationRequest("t", "", "write", {}, "", scope=Scope("t"), timeout_s=1)
    with pytest.raises(RuntimeError):
        handler.confirm(request)
