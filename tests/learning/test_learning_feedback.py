"""Ratings and corrections: history, supersession, and a correction taking effect at once."""

from __future__ import annotations

import pytest

from agent_core.learning.errors import FeedbackError
from agent_core.learning.memory import asks_alike, terms_agree
from agent_core.traces import TraceNotFoundError
from tests.fakes import final
from tests.learning.fakes import cosine


def test_ratings_keep_their_history(world) -> None:
    trace, _ = world.ask("Capital of France?", [final("Lyon")])
    first = world.learning.rate(trace.id, up=True)
    second = world.learning.rate(trace.id[:6], up=False, comment="wrong city")  # a prefix works
    history = world.learning.ratings(trace.id)
    assert [r.id for r in history] == [first.id, second.id]
    assert history[0].superseded_by == second.id and history[1].active
    assert world.learning.feedback.current_rating(trace.id).comment == "wrong city"


def test_rating_an_unknown_or_unfinished_run_is_a_user_error(world) -> None:
    with pytest.raises(TraceNotFoundError):
        world.learning.rate("nope", up=True)
    backend_outputs: list[str] = []  # the scripted backend runs dry: the run errors
    with pytest.raises(AssertionError):
        world.ask("q", backend_outputs)
    (row,) = world.traces.list()
    with pytest.raises(FeedbackError, match="no answer to rate"):
        world.learning.rate(row["id"], up=True)


def test_a_correction_supersedes_earlier_ones_of_the_run_and_the_question(world) -> None:
    a, _ = world.ask("Who maintains the billing service?", [final("Bob")])
    b, _ = world.ask("who maintains the billing service", [final("Carol")])
    first = world.learning.correct(a.id, "Dana")
    second = world.learning.correct(a.id, "Dana Scully", note="full name")
    third = world.learning.correct(b.id, "Erin")  # the same question, asked in another run
    active = world.learning.corrections()
    assert [c.id for c in active] == [third.id]
    history = world.learning.corrections(history=True)
    assert [(c.id, c.superseded_by) for c in history] == [
        (first.id, second.id),
        (second.id, third.id),
        (third.id, None),
    ]
    assert history[1].note == "full name" and history[1].original_answer == "Bob"


def test_same_question_is_answered_from_the_correction_without_the_model(world) -> None:
    wrong, _ = world.ask("Who maintains the billing service?", [final("Bob")])
    correction = world.learning.correct(wrong.id, "Dana")
    streamed: list[str] = []
    backend_outputs: list[str] = []  # no model call may happen
    trace, backend = world.ask("who maintains the billing service", backend_outputs)
    assert not backend.requests
    assert trace.final_answer == f"Dana (your correction of {_date(correction.created_at)})"
    used = trace.extra["correction"]
    assert used["correction_id"] == correction.id and used["similarity"] == 1.0
    assert trace.extra["model_calls"] == 0
    assert [s.kind for s in trace.steps] == ["final"] and trace.steps[0].messages == []
    # The GUI's streaming path sees the answer too.
    agent = world.agent(backend)
    agent.run("Who maintains the billing service?", on_text=streamed.append)
    assert "".join(streamed).startswith("Dana (your correction of ")


def test_a_similar_question_gets_the_correction_as_a_verified_fact(world) -> None:
    wrong, _ = world.ask("Which port does the billing service use?", [final("80")])
    world.learning.correct(wrong.id, "8443")
    paraphrase = "Billing service: which port does it use in production?"
    similarity = cosine(world.embedder, wrong.question, paraphrase)
    world.config.correction_similarity = similarity - 0.05
    world.config.correction_strong_similarity = similarity + 0.05
    trace, backend = world.ask(paraphrase, [final("It uses 8443.")])
    prompt = backend.requests[0]["messages"][-1]["content"]
    assert "Verified facts from the user's own corrections" in prompt
    assert "Answer: 8443 (your correction of" in prompt
    # the facts come last, right after the question (where the small model heeds them)
    assert prompt.index(paraphrase) < prompt.index("Verified facts") < prompt.index("8443")
    assert trace.extra["corrections"][0]["answer"] == "8443"
    assert "correction" not in trace.extra  # not strong enough to answer by itself


def test_a_close_question_about_another_name_is_not_answered_from_the_correction(world) -> None:
    wrong, _ = world.ask("What is the wifi network at the Lisbon office called?", [final("x")])
    world.learning.correct(wrong.id, "LIS-Guest")
    world.config.correction_similarity = 0.3
    world.config.correction_strong_similarity = 0.3  # the vectors alone would say "same"
    trace, backend = world.ask(
        "What is the wifi network at the Porto office called?", [final("I do not know.")]
    )
    assert "correction" not in trace.extra and len(backend.requests) == 1
    # ...but the fact, with its own question, is there for the model to judge.
    assert (
        "Question: What is the wifi network at the Lisbon office called?"
        in backend.requests[0]["messages"][-1]["content"]
    )
    trace, _ = world.ask("what's the name of the Lisbon office wifi network", [])
    assert trace.final_answer.startswith("LIS-Guest (your correction of")


def test_a_close_question_asking_for_another_kind_of_thing_is_not_answered(world) -> None:
    # Measured with the real embedder: 0.911, names agreeing; the day is no answer to the time.
    wrong, _ = world.ask("On which day are Ellie's piano lessons?", [final("Mondays.")])
    world.learning.correct(wrong.id, "On Wednesdays, since October.")
    world.config.correction_similarity = 0.3
    world.config.correction_strong_similarity = 0.3
    trace, backend = world.ask("What time does Ellie's piano lesson start?", [final("At 17:30.")])
    assert "correction" not in trace.extra and len(backend.requests) == 1
    assert trace.final_answer == "At 17:30."
    # ...nor shown to the model: shown last in the prompt, the day was said as the time.
    assert "Wednesdays" not in backend.requests[0]["messages"][-1]["content"]
    assert "corrections" not in trace.extra
    trace, backend = world.ask("Which day of the week are Ellie's piano lessons?", [final("x")])
    assert trace.extra.get("corrections") or trace.extra.get("correction")
    assert asks_alike("In what year did I plant the apple tree?", "When was it planted?")
    assert asks_alike("At what time is the lesson now?", "What time does the lesson start?")
    assert not asks_alike("Which days is PE?", "What time is PE?")


def test_the_pronoun_i_is_not_a_name_that_must_agree(world) -> None:
    # "I" is capitalised mid-sentence like a name; a paraphrase without it asks the same.
    assert terms_agree(
        "When was the apple tree planted?", "In what year did I plant the apple tree?"
    )
    assert not terms_agree("When was the apple tree planted in Lisbon?", "When was it in Porto?")
    # A plural is the same name (measured: "the gym ... on Sundays" vs "on Sunday", 0.948).
    assert terms_agree(
        "What time does the gym open on Sundays?", "When does the gym open on Sunday?"
    )
    assert not terms_agree("Is the gym open on Sundays?", "Is the gym open on Mondays?")
    wrong, _ = world.ask("At what temperature did I bake my best loaf?", [final("180")])
    correction = world.learning.correct(wrong.id, "At 240 °C.")
    paraphrase = "How hot was the oven for my best loaf so far?"
    similarity = cosine(world.embedder, wrong.question, paraphrase)
    world.config.correction_similarity = similarity - 0.1
    world.config.correction_strong_similarity = similarity - 0.05
    trace, backend = world.ask(paraphrase, [])
    assert not backend.requests
    assert trace.extra["correction"]["correction_id"] == correction.id
    assert trace.final_answer.startswith("At 240 °C. (your correction of")


def test_unrelated_questions_get_no_correction(world) -> None:
    wrong, _ = world.ask("Which port does the billing service use?", [final("80")])
    world.learning.correct(wrong.id, "8443")
    trace, backend = world.ask("What is the capital of France?", [final("Paris")])
    assert "Verified facts" not in backend.requests[0]["messages"][-1]["content"]
    assert "corrections" not in trace.extra


def test_facts_over_their_budget_are_dropped_and_recorded(world) -> None:
    long = " ".join(["word"] * 300)
    wrong, _ = world.ask("Tell me about the long thing", [final("short")])
    world.learning.correct(wrong.id, long)
    world.config.correction_strong_similarity = 1.1  # never answer by itself
    trace, backend = world.ask("Tell me about the long thing", [final("ok")])
    assert "Verified facts" not in backend.requests[0]["messages"][-1]["content"]
    assert trace.extra["dropped_learning"]["facts"] == [0]


def test_corrections_made_without_an_embedder_still_match_the_same_question(world) -> None:
    wrong, _ = world.ask("Boat name?", [final("none")])
    world.learning.feedback.encoder._source = None  # as if no embedder were available
    world.learning.feedback.encoder._resolved = False
    world.learning.correct(wrong.id, "Albatross")
    hits = world.learning.feedback.lookup("boat name", None, 0.8)
    assert [c.answer for c, _ in hits] == ["Albatross"]


def _date(timestamp: float) -> str:
    import time

    return time.strftime("%Y-%m-%d", time.localtime(timestamp))
