"""Something the user taught that is close to a new question, but not close enough to give to
the model, is shown to the person beside the answer ("You taught me: ..."), never to the
model: a neighbouring need's fact misleads the small model (measured: "What is our cat
called?" shown "How old is our cat?" -> "9 years old"), while a person tells at a glance
whether it answers their question."""

from __future__ import annotations

from agent_core.progress import related_fact_line
from tests.fakes import final
from tests.learning.fakes import cosine

TAUGHT = "What is my blood type?"
ANSWER = "A negative."
ASKED = "Which blood group do I have, my type?"


def _teach(world, question: str = TAUGHT, answer: str = ANSWER, up: bool = True) -> None:
    trace, _ = world.ask(question, [final(answer if up else "O positive.")])
    if up:
        world.learning.rate(trace.id, up=True)
    else:
        world.learning.correct(trace.id, answer)


def _related_ground(world, similarity: float) -> None:
    """Thresholds so that ``similarity`` is too far to give the fact to the model, near
    enough to show it to the person."""
    world.config.correction_similarity = similarity + 0.05
    world.config.correction_strong_similarity = similarity + 0.1
    world.config.related_fact_similarity = similarity - 0.05


def test_a_near_learnt_answer_is_shown_beside_the_answer_not_given_to_the_model(world) -> None:
    _teach(world)
    _related_ground(world, cosine(world.embedder, TAUGHT, ASKED))
    trace, backend = world.ask(ASKED, [final("I do not know.")])
    prompt = backend.requests[0]["messages"][-1]["content"]
    assert ANSWER not in prompt and TAUGHT not in prompt  # the model never saw it
    assert "corrections" not in trace.extra
    assert trace.final_answer == "I do not know."  # the answer is the model's own
    related = trace.extra["related_fact"]
    assert (related["question"], related["answer"], related["kind"]) == (
        TAUGHT,
        ANSWER,
        "confirmed",
    )
    line = related_fact_line(trace.extra)
    assert line is not None
    assert line.startswith(f'You taught me: "{TAUGHT}" -> {ANSWER} (rated up on 20')


def test_a_correction_is_shown_as_one(world) -> None:
    _teach(world, up=False)
    _related_ground(world, cosine(world.embedder, TAUGHT, ASKED))
    trace, _ = world.ask(ASKED, [final("I do not know.")])
    assert "(your correction on 20" in (related_fact_line(trace.extra) or "")


def test_nothing_is_shown_below_the_floor(world) -> None:
    _teach(world)
    similarity = cosine(world.embedder, TAUGHT, ASKED)
    _related_ground(world, similarity)
    world.config.related_fact_similarity = similarity + 0.01
    trace, _ = world.ask(ASKED, [final("I do not know.")])
    assert "related_fact" not in trace.extra and related_fact_line(trace.extra) is None


def test_nothing_is_shown_when_two_learnt_questions_are_about_as_near(world) -> None:
    # Which one the person asked about is anyone's guess: showing either would mislead.
    _teach(world)
    _teach(world, "What is my blood type group?", "Group A.")
    similarity = min(
        cosine(world.embedder, TAUGHT, ASKED),
        cosine(world.embedder, "What is my blood type group?", ASKED),
    )
    _related_ground(world, similarity)
    world.config.related_fact_margin = 0.5
    trace, _ = world.ask(ASKED, [final("I do not know.")])
    assert "related_fact" not in trace.extra


def test_not_shown_when_the_fact_goes_to_the_model(world) -> None:
    _teach(world)
    similarity = cosine(world.embedder, TAUGHT, ASKED)
    _related_ground(world, similarity)
    world.config.correction_similarity = similarity - 0.01  # near enough for the model now
    trace, backend = world.ask(ASKED, [final("A negative.")])
    assert ANSWER in backend.requests[0]["messages"][-1]["content"]
    assert "related_fact" not in trace.extra


def test_a_question_asking_for_another_kind_of_thing_is_shown_nothing(world) -> None:
    taught, asked = "On which day is the piano lesson?", "What time is the piano lesson?"
    _teach(world, taught, "Wednesdays.")
    _related_ground(world, cosine(world.embedder, taught, asked))
    trace, _ = world.ask(asked, [final("I do not know.")])
    assert "related_fact" not in trace.extra
