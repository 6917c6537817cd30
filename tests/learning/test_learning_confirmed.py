"""Answers the user rated up are confirmed answers: the same (or a close) question gets them
again, citing the rating, unless the user changed their mind or the notes changed since."""

from __future__ import annotations

import os
import time

from agent_core.learning.memory import READ_TOOLS
from agent_core.prompting import Passage
from tests.fakes import call, final
from tests.learning.fakes import cosine


class Notes:
    """A retriever that always shows one note file."""

    def __init__(self, path) -> None:
        self.path = path

    def retrieve(self, question: str) -> list[Passage]:
        text = self.path.read_text(encoding="utf-8")
        return [Passage(self.path.name, text, {"path": str(self.path), "similarity": 0.6})]


def _date(stamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(stamp))


def test_an_up_rated_answer_answers_the_same_question_without_the_model(world) -> None:
    first, _ = world.ask("What is my blood type?", [final("Your blood type is A negative.")])
    rating = world.learning.rate(first.id, up=True)
    trace, backend = world.ask("what is my blood type", [])
    assert backend.requests == [] and trace.extra["model_calls"] == 0
    assert trace.final_answer == (
        f"Your blood type is A negative. (the answer you rated up on {_date(rating.created_at)})"
    )
    used = trace.extra["correction"]
    assert used["kind"] == "confirmed" and used["correction_id"] == rating.id


def test_a_close_question_gets_the_confirmed_answer_as_a_fact(world) -> None:
    first, _ = world.ask("What is my blood type?", [final("A negative.")])
    world.learning.rate(first.id, up=True)
    paraphrase = "Which blood group am I, do you know my type?"
    similarity = cosine(world.embedder, first.question, paraphrase)
    world.config.correction_similarity = similarity - 0.05
    world.config.correction_strong_similarity = similarity + 0.05
    trace, backend = world.ask(paraphrase, [final("You are A negative.")])
    prompt = backend.requests[0]["messages"][-1]["content"]
    assert "Answer: A negative. (you approved this answer on" in prompt
    assert trace.extra["corrections"][0]["kind"] == "confirmed"


def test_a_later_down_rating_or_correction_withdraws_the_confirmation(world) -> None:
    first, _ = world.ask("What is my blood type?", [final("A negative.")])
    world.learning.rate(first.id, up=True)
    world.learning.rate(first.id, up=False)
    trace, backend = world.ask("What is my blood type?", [final("B positive.")])
    assert len(backend.requests) == 1 and "correction" not in trace.extra
    world.learning.rate(trace.id, up=True)
    world.learning.correct(trace.id, "O negative.")
    again, backend = world.ask("What is my blood type?", [])
    assert again.final_answer.startswith("O negative. (your correction of")


def test_an_answer_from_tools_is_not_recalled_as_confirmed(world) -> None:
    first, _ = world.ask(
        "What is 6 times 7?", [call("calculator", expression="6*7"), final("It is 42.")]
    )
    world.learning.rate(first.id, up=True)
    feedback = world.learning.feedback
    assert feedback.confirmations("What is 6 times 7?", None, 0.5, READ_TOOLS) == []


def test_a_changed_note_withdraws_the_confirmed_answer(world) -> None:
    note = world.docs / "health.md"
    note.write_text("Blood type: A negative.\n", encoding="utf-8")
    past = time.time() - 60
    os.utime(note, (past, past))
    first, _ = world.ask("What is my blood type?", [final("A negative.")], retriever=Notes(note))
    world.learning.rate(first.id, up=True)
    same, backend = world.ask("What is my blood type?", [], retriever=Notes(note))
    assert backend.requests == [] and same.final_answer.startswith("A negative. (the answer")
    note.write_text("Blood type: A negative. Donor card renewed.\n", encoding="utf-8")
    again, backend = world.ask(
        "What is my blood type?", [final("A negative.")], retriever=Notes(note)
    )
    assert len(backend.requests) == 1 and "correction" not in again.extra


def test_confirmed_answers_can_be_switched_off(world) -> None:
    first, _ = world.ask("What is my blood type?", [final("A negative.")])
    world.learning.rate(first.id, up=True)
    world.config.recall_confirmed_answers = False
    trace, backend = world.ask("What is my blood type?", [final("A negative.")])
    assert len(backend.requests) == 1 and "correction" not in trace.extra


def test_down_rating_an_answer_given_from_a_confirmation_withdraws_it(world) -> None:
    first, _ = world.ask("What is my blood type?", [final("A negative.")])
    world.learning.rate(first.id, up=True)
    recalled, _ = world.ask("What is my blood type?", [])
    assert recalled.extra["correction"]["kind"] == "confirmed"
    world.learning.rate(recalled.id, up=False, comment="my type changed? no, it was wrong")
    current = world.learning.feedback.current_rating(first.id)
    assert current is not None and not current.up and recalled.id in current.comment
    trace, backend = world.ask("What is my blood type?", [final("B positive.")])
    assert len(backend.requests) == 1 and trace.final_answer == "B positive."


def test_an_answer_read_from_a_file_is_recalled_while_the_file_is_unchanged(world) -> None:
    # "Which blood group am I?" after "What is my blood type?" answered by reading health.md
    # and rated up: the answer stands as long as what it was read from does.
    note = world.docs / "health.md"
    note.write_text("Blood type: A negative.\n", encoding="utf-8")
    past = time.time() - 60
    os.utime(note, (past, past))
    first, _ = world.ask(
        "What is my blood type?",
        [call("read_file", path=str(note)), final("Your blood type is A negative.")],
    )
    assert [s.tool_name for s in first.steps if s.tool_name] == ["read_file"]
    world.learning.rate(first.id, up=True)
    same, backend = world.ask("What is my blood type?", [])
    assert backend.requests == []
    assert same.final_answer.startswith("Your blood type is A negative. (the answer you rated")
    note.write_text("Blood type: A negative. Donor card renewed.\n", encoding="utf-8")
    again, backend = world.ask("What is my blood type?", [final("A negative.")])
    assert "correction" not in again.extra and "corrections" not in again.extra


def test_an_answer_that_also_wrote_a_note_is_not_recalled(world) -> None:
    first, _ = world.ask(
        "What is on my list?",
        [
            call("read_file", path=str(world.docs / "todo.md")),
            call("write_note", title="list", text="Milk."),
            final("Milk, and a call to Anna."),
        ],
    )
    assert "write_note" in [s.tool_name for s in first.steps]
    world.learning.rate(first.id, up=True)
    feedback = world.learning.feedback
    assert feedback.confirmations("What is on my list?", None, 0.5, READ_TOOLS) == []
