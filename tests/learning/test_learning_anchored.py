"""A need asked again in other words, far from the corrected question: the correction is
shown when it is the nearest learnt question by a clear margin and the note ranked first
for the new question holds its answer; never by similarity alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_core.prompting import Passage
from tests.fakes import final
from tests.learning.fakes import FakeJudge, cosine

QUESTION = "What is the code of my bike's D-lock?"
CORRECT = "1937, the last four digits of the frame number."
PARAPHRASE = "Which combination opens the lock on my bike?"


class Ranked:
    """A retriever that shows note files in a fixed order (the first is the best hit)."""

    def __init__(self, *paths: Path, similarity: float = 0.5) -> None:
        self.paths = paths
        self.similarity = similarity

    def retrieve(self, question: str) -> list[Passage]:
        return [
            Passage(
                p.name,
                p.read_text(encoding="utf-8"),
                {"path": str(p), "similarity": self.similarity},
            )
            for p in self.paths
        ]


@pytest.fixture
def bike(world) -> Path:
    note = world.docs / "bike.md"
    note.write_text(
        "Bike: frame number WTU-1937. D-lock: old code 0415, now the last four digits of the "
        "frame number (1937).\nShop: Spokes on Mill Road.\n",
        encoding="utf-8",
    )
    return note


def _teach(world, note: Path, question: str = QUESTION, answer: str = CORRECT) -> None:
    first, _ = world.ask(question, [final("0415.")], retriever=Ranked(note))
    world.learning.correct(first.id, answer)


def _between(world, similarity: float) -> None:
    """Thresholds so that ``similarity`` is anchored ground: above the anchored floor,
    below the similarity that shows a correction by itself."""
    world.config.anchored_fact_similarity = similarity - 0.05
    world.config.correction_similarity = similarity + 0.05
    world.config.correction_strong_similarity = similarity + 0.1


def test_a_distant_paraphrase_sees_the_correction_its_note_holds(world, bike) -> None:
    _teach(world, bike)
    _between(world, cosine(world.embedder, QUESTION, PARAPHRASE))
    trace, backend = world.ask(PARAPHRASE, [final("1937.")], retriever=Ranked(bike))
    prompt = backend.requests[0]["messages"][-1]["content"]
    assert f"Question: {QUESTION}\n  Answer: {CORRECT}" in prompt
    # ...last, after the notes and the question (where the small model reads it).
    assert prompt.index("From my files:") < prompt.index(PARAPHRASE) < prompt.index(CORRECT)
    (fact,) = trace.extra["corrections"]
    assert fact["anchored_in"] == "bike.md" and fact["kind"] == "correction"
    assert trace.final_answer == "1937."  # a fact in the prompt, not an answer by itself


def test_not_when_the_first_note_does_not_hold_the_answer(world, bike) -> None:
    other = world.docs / "gym.md"
    other.write_text("Gym locker: number 12, padlock code 2211.\n", encoding="utf-8")
    _teach(world, bike)
    _between(world, cosine(world.embedder, QUESTION, PARAPHRASE))
    trace, backend = world.ask(PARAPHRASE, [final("2211.")], retriever=Ranked(other, bike))
    assert CORRECT not in backend.requests[0]["messages"][-1]["content"]
    assert "corrections" not in trace.extra


def test_not_an_answer_no_note_says(world, bike) -> None:
    # The user's word for something the notes do not hold (a fact from outside) is shown by
    # similarity only: a question near it in words may ask about something else.
    _teach(world, bike, answer="Ask Femi at Spokes, he knows it.")
    _between(world, cosine(world.embedder, QUESTION, PARAPHRASE))
    trace, _ = world.ask(PARAPHRASE, [final("I do not know.")], retriever=Ranked(bike))
    assert "corrections" not in trace.extra


def test_not_when_another_learnt_question_is_about_as_near(world, bike) -> None:
    _teach(world, bike)
    rival = "Which lock code did my bike shop set?"
    _teach(world, bike, question=rival, answer="Spokes set 0415 on Mill Road.")
    near, far = (
        cosine(world.embedder, QUESTION, PARAPHRASE),
        cosine(world.embedder, rival, PARAPHRASE),
    )
    assert abs(near - far) < 0.3  # the fake embedder puts both near the paraphrase
    _between(world, max(near, far))
    world.config.anchored_fact_similarity = min(near, far) - 0.05
    world.config.anchored_fact_margin = abs(near - far) + 0.01
    trace, _ = world.ask(PARAPHRASE, [final("0415.")], retriever=Ranked(bike))
    assert "corrections" not in trace.extra
    world.config.anchored_fact_margin = abs(near - far) - 0.01  # clear of it: shown
    trace, _ = world.ask(PARAPHRASE, [final("1937.")], retriever=Ranked(bike))
    assert len(trace.extra["corrections"]) == 1


def test_not_without_notes_nor_below_the_floor(world, bike) -> None:
    _teach(world, bike)
    similarity = cosine(world.embedder, QUESTION, PARAPHRASE)
    _between(world, similarity)
    trace, _ = world.ask(PARAPHRASE, [final("I do not know.")])  # no notes found
    assert "corrections" not in trace.extra
    world.config.anchored_fact_similarity = similarity + 0.01
    trace, _ = world.ask(PARAPHRASE, [final("0415.")], retriever=Ranked(bike))
    assert "corrections" not in trace.extra


def test_an_anchored_correction_does_not_stop_replay_nor_answer_alone(world, bike) -> None:
    _teach(world, bike)
    _between(world, cosine(world.embedder, QUESTION, PARAPHRASE))
    world.config.correction_strong_similarity = 0.0  # even then: only shown, never said
    trace, backend = world.ask(PARAPHRASE, [final("1937.")], retriever=Ranked(bike))
    assert len(backend.requests) == 1 and "correction" not in trace.extra
    assert trace.extra["corrections"][0]["anchored_in"] == "bike.md"


def test_an_answer_without_names_is_anchored_by_its_words(world) -> None:
    note = world.docs / "allotment.md"
    note.write_text(
        "Bed 3 this year: brassicas under the net (kale, purple sprouting broccoli).\n"
        "Bed 4: potatoes.\n",
        encoding="utf-8",
    )
    question = "What is growing in bed 3 on the allotment?"
    answer = "Brassicas under the net: kale and purple sprouting broccoli."
    _teach(world, note, question=question, answer=answer)
    paraphrase = "Which crops are in the third bed at the allotment?"
    _between(world, cosine(world.embedder, question, paraphrase))
    trace, _ = world.ask(paraphrase, [final("Kale.")], retriever=Ranked(note))
    assert trace.extra["corrections"][0]["answer"] == answer
    note.write_text("Bed 3 this year: potatoes again.\n", encoding="utf-8")
    trace, _ = world.ask(paraphrase, [final("Potatoes.")], retriever=Ranked(note))
    assert "corrections" not in trace.extra


def test_an_up_rated_answer_is_not_shown_by_its_note(world, bike) -> None:
    # An answer the model read right needs no help in other words, and shown to another
    # question about the same note it hijacked it.
    first, _ = world.ask(QUESTION, [final(CORRECT)], retriever=Ranked(bike))
    world.learning.rate(first.id, up=True)
    _between(world, cosine(world.embedder, QUESTION, PARAPHRASE))
    trace, _ = world.ask(PARAPHRASE, [final("1937.")], retriever=Ranked(bike))
    assert "corrections" not in trace.extra


def test_a_month_written_short_in_the_note_anchors_it(world) -> None:
    note = world.docs / "running.md"
    note.write_text("Race log:\n- 15 Nov 2025, parkrun: 24:31\n- 7 Feb 2026, parkrun: 23:58\n")
    question = "What is my parkrun personal best?"
    answer = "23:58, on 7 February 2026."
    _teach(world, note, question=question, answer=answer)
    paraphrase = "What is my fastest parkrun time?"
    _between(world, cosine(world.embedder, question, paraphrase))
    trace, _ = world.ask(paraphrase, [final("23:58.")], retriever=Ranked(note))
    assert trace.extra["corrections"][0]["answer"] == answer
    note.write_text("Race log:\n- 7 Mar 2026, parkrun: 23:58\n")  # another month: not anchored
    trace, _ = world.ask(paraphrase, [final("23:58.")], retriever=Ranked(note))
    assert "corrections" not in trace.extra


def test_a_question_with_a_learnt_fact_is_answered_from_it_without_tools(world, bike) -> None:
    # Offered tools with the answer in front of it, the small model read files past it or
    # fed the answer to the calculator; a task (not a question) keeps its tools.
    _teach(world, bike)
    _between(world, cosine(world.embedder, QUESTION, PARAPHRASE))
    weak = Ranked(bike, similarity=0.31)  # not so close that the notes alone end the tools
    trace, backend = world.ask(PARAPHRASE, [final("1937.")], retriever=weak)
    assert backend.requests[0]["text_only"] is True and trace.extra["answered_from_facts"]
    task = "Write the combination for the lock on my bike into a note"
    _between(world, cosine(world.embedder, QUESTION, task))
    trace, backend = world.ask(task, [final("Done.")], retriever=weak)
    assert trace.extra["corrections"] and backend.requests[0]["text_only"] is False
    assert "answered_from_facts" not in trace.extra


def test_an_anchored_correction_the_judge_accepts_is_said(world, bike) -> None:
    asked = "Which combination opens the D-lock on my bike?"  # names what QUESTION names
    _teach(world, bike)
    _between(world, cosine(world.embedder, QUESTION, asked))
    world.learning.memory.judge = FakeJudge({QUESTION})
    trace, backend = world.ask(asked, [], retriever=Ranked(bike))
    assert backend.requests == []
    assert trace.final_answer.startswith(f"{CORRECT} (your correction of ")
    assert trace.extra["correction"]["anchored_in"] == "bike.md"


def test_an_anchored_correction_the_judge_refuses_is_still_read(world, bike) -> None:
    _teach(world, bike)
    _between(world, cosine(world.embedder, QUESTION, PARAPHRASE))
    judge = FakeJudge(set())
    world.learning.memory.judge = judge
    trace, backend = world.ask(PARAPHRASE, [final("1937.")], retriever=Ranked(bike))
    assert judge.asked == [(PARAPHRASE, QUESTION)]
    assert len(backend.requests) == 1 and "correction" not in trace.extra
    assert trace.extra["corrections"][0]["anchored_in"] == "bike.md"
