"""Experiences come only from runs that worked; feedback demotes them, twice retires them; a
corrected question is never answered by replaying a plan."""

from __future__ import annotations

import pytest

from agent_core.learning.experiences import ACTIVE, RETIRED
from agent_core.learning.outcome import leak_kind, unverified_reason
from tests.fakes import call, final


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("I could not come up with an answer to that. Try asking it another way.", "empty"),
        ('{"action": "final_answer", "answer": "Paris"}', "json"),
        ('<tool_call>{"name": "calculator"}</tool_call>', "protocol tags"),
        ("Paris<|im_end|>", "protocol tags"),
        ("<your answer to the user>", "placeholder"),
        ("This exact call was already made; its result is unchanged", "internal text"),
        ("Error: the tool failed", "internal text"),
        ("From my files:\n--- recipes.md\n200 g sugar", "internal text"),
        ("3 eggs.\n\nAnswer from these passages if they hold the answer:\n400 g.", "internal text"),
        ("The task that worked for similar tasks before was reading travel.txt.", "internal text"),
        ("I keep my notes in a folder; the answer is in the passages of March.", None),
        ("Paris is the capital of France.", None),
        ("6 * 7 = 42, so the answer is 42.", None),
    ],
)
def test_leaks_are_recognised(answer: str, kind: str | None) -> None:
    assert leak_kind(answer) == kind


def test_an_empty_answer_teaches_nothing(world) -> None:
    trace, _ = world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("")])
    assert trace.extra["empty_answer"] is True
    assert unverified_reason(trace) == "the model gave no answer"
    assert world.learning.experiences.all() == []


def test_a_leaky_answer_teaches_nothing_until_the_user_rates_it_up(world) -> None:
    trace, _ = world.ask(
        "What is 6 times 7?",
        [call("calculator", expression="6*7"), final("Result of calculator: 42")],
    )
    assert trace.status == "ok"
    assert unverified_reason(trace) == "the answer leaks internal text"
    assert world.learning.experiences.all() == []
    world.learning.rate(trace.id, up=True)  # the user's word counts over the check
    (experience,) = world.learning.experiences.all()
    assert experience.sources == [trace.id] and experience.status == ACTIVE


def test_a_run_with_a_failed_tool_call_teaches_nothing(world) -> None:
    trace, _ = world.ask(
        "What is on my list?",
        [
            call("read_file", path=str(world.docs / "ghost.md")),
            call("read_file", path=str(world.docs / "todo.md")),
            final("Buy milk."),
        ],
    )
    assert trace.status == "ok" and "read_file ended" in (unverified_reason(trace) or "")
    assert world.learning.experiences.all() == []


def test_a_clean_run_verifies_and_teaches(world) -> None:
    trace, _ = world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    assert unverified_reason(trace) is None
    (experience,) = world.learning.experiences.all()
    assert experience.successes == 1 and experience.failures == 0


def test_a_down_rating_demotes_and_a_second_failure_retires(world) -> None:
    first, _ = world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    (experience,) = world.learning.experiences.all()
    assert experience.usable
    world.learning.rate(first.id, up=False)
    experience = world.learning.experience(experience.id)
    assert (experience.successes, experience.failures) == (1, 1)
    assert experience.status == ACTIVE and not experience.usable  # demoted: not offered
    # The same run corrected as well is one unhappy run, not two failures.
    world.learning.correct(first.id, "6 times 7 is 42.")
    assert world.learning.experience(experience.id).failures == 1
    # Not offered again, so the model plans the next such run itself; that run verifies and
    # is merged into the same experience; down-rated, it is the second failure: retired.
    second, _ = world.ask("What is 8 times 9?", [call("calculator", expression="8*9"), final("72")])
    assert "replay" not in second.extra and second.steps[0].response_schema is not None
    experience = world.learning.experience(experience.id)
    assert experience.sources == [first.id, second.id] and experience.successes == 2
    world.learning.rate(second.id, up=False)
    experience = world.learning.experience(experience.id)
    assert (experience.failures, experience.status) == (2, RETIRED)
    # A retired experience is never offered, and the next good run starts a new one.
    third, _ = world.ask("What is 3 times 4?", [call("calculator", expression="3*4"), final("12")])
    assert "replay" not in third.extra
    assert [e.status for e in world.learning.experience_list()] == [RETIRED, ACTIVE]


def test_two_failed_replays_retire_an_experience(world) -> None:
    world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    (experience,) = world.learning.experiences.all()
    world.learning.experiences.record_use(experience.id, success=True)
    for _ in range(2):
        world.learning.experiences.record_use(experience.id, success=False)
    again = world.learning.experience(experience.id)
    assert (again.successes, again.failures, again.status) == (2, 2, RETIRED)
    assert world.learning.experiences.similar("What is 6 times 7?", None, 0.5) == []


def test_a_down_rated_replay_demotes_the_experience_it_replayed(world) -> None:
    world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    replayed, backend = world.ask("What is 6 times 7?", [final("42")])
    (experience,) = world.learning.experiences.all()
    # Nothing changed, so the recorded answer was said again without asking the model.
    assert replayed.extra["replayed_from"] == experience.id and len(backend.requests) == 0
    world.learning.rate(replayed.id, up=False)
    world.learning.correct(replayed.id, "It is 42.")  # the same unhappy run: counted once
    assert world.learning.experience(experience.id).failures == 1


def test_a_corrected_question_is_never_answered_by_replaying_a_plan(world) -> None:
    world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    # Another question of the same shape is corrected (the calculator plan fits it too).
    wrong, _ = world.ask("What is 2 times 2?", [final("5")])
    assert wrong.extra.get("replayed_from")  # replayed, answered wrongly
    world.learning.correct(wrong.id, "2 times 2 is 4.")
    world.config.correction_strong_similarity = 2.0  # the correction goes into the prompt
    trace, backend = world.ask("What is 2 times 2?", [final("4")])
    assert "replay" not in trace.extra and "replayed_from" not in trace.extra
    assert trace.extra["corrections"]  # the model answered with the correction before it
    assert "2 times 2 is 4." in backend.requests[0]["messages"][-1]["content"]
    # Questions nobody corrected still replay.
    trace, _ = world.ask("What is 3 times 5?", [final("15")])
    assert trace.extra.get("replayed_from")
