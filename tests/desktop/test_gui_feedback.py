"""Rating and correcting through the UI, and answers marked as replayed or corrected."""

from __future__ import annotations

from PySide6.QtCore import Qt

from agent_core.traces import Trace
from desktop import seams
from desktop.chat.controller import markers_for
from tests.desktop.conftest import RecordingFeedback, last_card, send, wait_answer
from tests.fakes import final
from tests.knowledge.fakes import FakeEmbedder


def test_rate_with_a_comment_and_correct(qtbot, make_app) -> None:
    feedback = RecordingFeedback()
    app = make_app([final("The capital of Australia is Sydney.")], feedback=feedback)
    send(qtbot, app, "What is the capital of Australia?")
    wait_answer(qtbot, app)
    card = last_card(app)
    trace_id = card.trace_id
    assert card.up.isEnabled() and card.correct.isEnabled()

    qtbot.mouseClick(card.down, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(feedback.ratings) == 1)
    assert feedback.ratings[0] == (trace_id, False, "")
    assert card.down.isChecked() and not card.up.isChecked()
    assert card.comment_row.isVisible()
    qtbot.keyClicks(card.comment, "Sydney is not the capital")
    qtbot.keyClick(card.comment, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(feedback.ratings) == 2)
    assert feedback.ratings[1] == (trace_id, False, "Sydney is not the capital")
    assert not card.comment_row.isVisible()

    dialog = app.chat.ask_correction(card, "What is the capital of Australia?")
    assert dialog.answer.toPlainText() == "The capital of Australia is Sydney."  # pre-filled
    dialog.answer.setPlainText("The capital of Australia is Canberra.")
    dialog.note.setText("Sydney is the largest city, not the capital")
    dialog.save_button.click()
    qtbot.waitUntil(lambda: len(feedback.corrections) == 1)
    assert feedback.corrections[0] == (
        trace_id,
        "The capital of Australia is Canberra.",
        "Sydney is the largest city, not the capital",
    )
    qtbot.waitUntil(lambda: "Correction saved" in card.status.text())
    assert any("Corrected" in card.markers.itemAt(i).widget().text()
               for i in range(card.markers.count() - 1))  # fmt: skip


def test_rate_and_correct_are_stored_by_the_learning_engine(qtbot, make_app) -> None:
    app = make_app(
        [final("The capital of Australia is Sydney.")], extra={"embedder": FakeEmbedder()}
    )
    send(qtbot, app, "What is the capital of Australia?")
    wait_answer(qtbot, app)
    card = last_card(app)
    qtbot.mouseClick(card.down, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(card.comment, "wrong city")
    qtbot.keyClick(card.comment, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: card.status.text() == "Comment saved.", timeout=10_000)
    dialog = app.chat.ask_correction(card, "What is the capital of Australia?")
    dialog.answer.setPlainText("Canberra.")
    dialog.save_button.click()
    qtbot.waitUntil(lambda: "Correction saved" in card.status.text(), timeout=10_000)

    engine = seams.learning_service(app.services)
    ratings = engine.ratings(card.trace_id)
    assert [(r.value, r.comment) for r in ratings] == [(-1, ""), (-1, "wrong city")]
    assert [r.superseded_by is None for r in ratings] == [False, True]  # history kept
    corrections = engine.corrections()
    assert [(c.trace_id, c.answer) for c in corrections] == [(card.trace_id, "Canberra.")]

    # the Learning page shows the run as corrected, and filters on it
    page = app.learning_page
    app.window.show_page(page)
    qtbot.waitUntil(lambda: page.runs.runs.rowCount() == 1)
    assert "corrected" in page.runs.runs.item(0, 4).text()
    page.runs.filter.setCurrentText("Rated up")
    assert page.runs.runs.rowCount() == 0
    page.runs.filter.setCurrentText("Corrected")
    assert page.runs.runs.rowCount() == 1


def test_a_corrected_answer_shows_the_correction_and_folds_the_original(qtbot, make_app) -> None:
    app = make_app(
        [final("The capital of Australia is Sydney.")], extra={"embedder": FakeEmbedder()}
    )
    send(qtbot, app, "What is the capital of Australia?")
    wait_answer(qtbot, app)
    card = last_card(app)
    card.add_step("searched the notes")  # the steps row stays where it is
    dialog = app.chat.ask_correction(card, "What is the capital of Australia?")
    dialog.answer.setPlainText("The capital of Australia is Canberra.")
    dialog.save_button.click()
    qtbot.waitUntil(lambda: "Correction saved" in card.status.text(), timeout=10_000)

    # The body is the corrected answer; the original is folded away, struck through.
    assert card.text() == "The capital of Australia is Canberra."
    assert "Canberra" in card.body.toPlainText() and "Sydney" not in card.body.toPlainText()
    assert card.original == "The capital of Australia is Sydney."
    assert card.original_toggle.isVisible() and not card.original_label.isVisible()
    assert "Original answer" in card.original_toggle.text()
    qtbot.mouseClick(card.original_toggle, Qt.MouseButton.LeftButton)
    assert card.original_label.isVisible()
    assert "<s>The capital of Australia is Sydney.</s>" in card.original_label.text()
    layout = card.layout()
    assert layout.indexOf(card.steps_toggle) < layout.indexOf(card.body)
    assert layout.indexOf(card.body) < layout.indexOf(card.original_toggle)
    # Copy and a second correction start from the corrected answer.
    assert app.chat.ask_correction(card, "q").answer.toPlainText() == card.text()

    # Reopened from the history: the corrected answer again, the original kept and folded.
    conversation_id = app.chat.conversation_id
    app.chat.new_conversation()
    app.chat.open_conversation(conversation_id)
    qtbot.waitUntil(lambda: len(app.window.chat.transcript.cards()) == 1, timeout=10_000)
    qtbot.waitUntil(lambda: last_card(app).original is not None, timeout=10_000)
    again = last_card(app)
    assert again.text() == "The capital of Australia is Canberra."
    assert again.original == "The capital of Australia is Sydney."
    assert not again.original_label.isVisible()
    markers = [again.markers.itemAt(i).widget().text() for i in range(again.markers.count() - 1)]
    assert "✓ Corrected" in markers


def test_without_a_learning_engine_feedback_is_disabled_with_a_reason(
    qtbot, make_app, monkeypatch
) -> None:
    monkeypatch.setattr(seams, "has_learning", lambda services: False)
    app = make_app([final("Hello.")])
    send(qtbot, app, "Hi")
    wait_answer(qtbot, app)
    card = last_card(app)
    assert not card.up.isEnabled()
    assert "learning" in card.up.toolTip()


def test_markers_for_replayed_and_corrected_answers() -> None:
    trace = Trace(question="q", model={}, settings={})
    assert markers_for(trace) == []
    trace.extra = {"replayed_from": "exp1", "correction": {"created_at": 0.0, "answer": "a"}}
    labels = [label for label, _ in markers_for(trace)]
    assert labels[0].startswith("↻ Replayed") and labels[1].startswith("✓ Your correction of")
    trace.extra = {"corrections": [{"answer": "a"}, {"answer": "b"}]}
    assert markers_for(trace)[0][0] == "✓ Informed by your corrections"
    trace.extra = {"corrections": [{"question": "Bike lock code?", "answer": "1937"}]}
    label, tip = markers_for(trace)[0]
    assert label == "✓ Informed by your correction"
    assert 'Corrected: "Bike lock code?" -> 1937' in tip
    trace.extra = {"corrections": [{"question": "Flour?", "answer": "Rye.", "kind": "confirmed"}]}
    label, tip = markers_for(trace)[0]
    assert label == "✓ Informed by an answer you rated up" and 'Rated up: "Flour?"' in tip
    trace.extra["corrections"][0]["judged_by"] = "Qwen2.5 Coder 1.5B"
    tip = markers_for(trace)[0][1]
    assert tip.endswith('"Flour?" -> Rye. (judged to answer this question by Qwen2.5 Coder 1.5B)')
    trace.extra = {"correction": {"created_at": 0.0, "answer": "a", "kind": "confirmed"}}
    assert markers_for(trace)[0][0].startswith("✓ The answer you rated up on ")
    trace.extra = {"correction": {"question": "Flour?", "answer": "Rye.", "judged_by": "Qwen"}}
    assert markers_for(trace)[0][1] == (
        'Answered with the answer you gave when you corrected "Flour?", judged to ask the same '
        "by Qwen"
    )


def test_the_learning_page_shows_the_refinement_schedule(qtbot, make_app) -> None:
    import json
    import subprocess
    import sys
    import time

    app = make_app([final("Hello.")], extra={"embedder": FakeEmbedder()})
    engine = seams.learning_service(app.services)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with engine.conn:  # a refinement whose process died mid-run
        engine.conn.execute(
            "INSERT INTO refinement_runs (started_at, status, report_json) "
            "VALUES (?, 'running', ?)",
            (time.time() - 60, json.dumps({"pid": dead.pid})),
        )
    page = app.learning_page
    app.window.show_page(page)
    qtbot.waitUntil(lambda: "Idle refinement" in page.schedule.text(), timeout=10_000)
    text = page.schedule.text()
    assert "last run" in text and "interrupted" in text and "running" not in text
    # No judge installed in the tests: the page says what that costs and how to add one.
    assert "no judge installed" in page.judge.text()
    assert "jackdaw models pull qwen2.5-coder-1.5b" in page.judge.text()


def test_schedule_text() -> None:
    from desktop.panels.learning import schedule_text

    now = 1_000_000.0
    base = {"scheduled": True, "idle_minutes": 15.0, "last_run": None}
    assert schedule_text({**base, "next_run_at": now}, now).startswith("Idle refinement: due now")
    later = schedule_text({**base, "next_run_at": now + 600, "why_not": "active 300 s ago"}, now)
    assert "next" in later and "after 15 min idle" in later and "never run yet" in later
    assert "off" in schedule_text({**base, "next_run_at": None}, now)
    assert "not scheduled" in schedule_text({**base, "scheduled": False, "next_run_at": now}, now)
    last = {"status": "rejected", "started_at": now - 60, "candidate_score": 0.5,
            "current_score": 0.75, "reason": "scores 0.500, below the current 0.750"}  # fmt: skip
    text = schedule_text({**base, "next_run_at": now, "last_run": last}, now)
    assert "last run" in text and "rejected (0.500 vs 0.750)" in text and "below" in text


def test_something_taught_close_to_a_new_question_is_shown_beside_its_answer(
    qtbot, make_app
) -> None:
    app = make_app(
        [final("Your blood type is A negative."), final("I do not know.")],
        extra={"embedder": FakeEmbedder()},
    )
    send(qtbot, app, "What is my blood type?")
    wait_answer(qtbot, app)
    first = last_card(app)
    assert not first.related_label.isVisible()  # nothing taught yet
    qtbot.mouseClick(first.up, Qt.MouseButton.LeftButton)
    engine = seams.learning_service(app.services)
    qtbot.waitUntil(lambda: bool(engine.ratings(first.trace_id)), timeout=10_000)

    # Close (0.73 on this embedder), too far to give the model: the person sees it.
    send(qtbot, app, "What blood type group am I?")
    wait_answer(qtbot, app)
    card = last_card(app)
    assert card.text() == "I do not know."  # the model's own answer, untouched
    qtbot.waitUntil(card.related_label.isVisible, timeout=10_000)
    text = card.related_label.text()
    assert text.startswith(
        'You taught me: "What is my blood type?" -> Your blood type is A negative.'
    )
    assert "(rated up on 20" in text
    layout = card.layout()
    assert layout.indexOf(card.body) < layout.indexOf(card.related_label)
