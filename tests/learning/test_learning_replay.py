"""Replay: exact replay of a recorded run (first divergence) and experience replay (skips the
model's planning calls, checks hold or the model takes over with the workflow)."""

from __future__ import annotations

import json

from agent_core.learning.replay import DIVERGED, MATCH, RECORDED, SKIPPED, ReplayReport
from agent_core.prompting import Passage, Turn
from tests.fakes import ScriptedBackend, call, final


def _read_then_calc(world) -> object:
    trace, _ = world.ask(
        "What does todo.md say, and what is 6 times 7?",
        [
            call("read_file", path=str(world.docs / "todo.md")),
            call("calculator", expression="6*7"),
            final("Buy milk; 42."),
        ],
    )
    return trace


# -- exact replay ------------------------------------------------------------------------------
def test_exact_replay_of_an_unchanged_run_matches_every_step(world) -> None:
    trace = _read_then_calc(world)
    report = world.learning.replay(trace.id)
    assert [s.status for s in report.steps] == [MATCH, MATCH, MATCH]
    assert report.first_divergence is None and report.matches
    assert ReplayReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_a_changed_tool_result_is_the_first_divergence_at_its_step(world) -> None:
    trace = _read_then_calc(world)
    (world.docs / "todo.md").write_text("Sell the boat.\n", encoding="utf-8")
    report = world.learning.replay(trace.id)
    assert report.first_divergence == 0
    step = report.steps[0]
    assert step.status == DIVERGED and step.detail == "tool result changed"
    assert "Buy milk" in step.expected and "Sell the boat" in step.actual
    assert report.steps[1].status == MATCH  # the calculator still gives 42


def test_divergence_at_a_later_step(world) -> None:
    trace = _read_then_calc(world)
    world.executor.registry._tools.pop("calculator")  # the tool went away
    report = world.learning.replay(trace.id)
    assert report.first_divergence == 1
    assert "unknown_tool" in report.steps[1].detail


def test_replay_from_the_record_runs_nothing(world) -> None:
    trace = _read_then_calc(world)
    (world.docs / "todo.md").unlink()
    report = world.learning.replay(trace.id, mode="record")
    assert [s.status for s in report.steps] == [RECORDED, RECORDED, MATCH]
    assert report.matches


def test_a_tampered_record_is_reported(world) -> None:
    trace = _read_then_calc(world)
    trace.steps[1].messages[-1]["content"] = "Result of read_file:\nsomething else"
    world.traces.save(trace)
    report = world.learning.replay(trace.id, mode="record")
    assert report.first_divergence == 1
    assert "do not follow" in report.steps[1].detail


def test_side_effecting_tools_are_not_run_again(world) -> None:
    world.confirmer.answers.append("once")
    trace, _ = world.ask("Note milk", [call("write_note", note="shop", text="milk"), final("ok")])
    report = world.learning.replay(trace.id)
    assert report.steps[0].status == SKIPPED
    assert len(world.confirmer.requests) == 1  # nobody was asked again


def test_model_replay_reports_a_different_output(world) -> None:
    trace, _ = world.ask("Capital of France?", [final("Paris")])
    world.backend = ScriptedBackend([final("Lyon")])
    report = world.learning.replay(trace.id, mode="model")
    assert report.first_divergence == 0
    assert report.steps[0].expected == final("Paris") and report.steps[0].actual == final("Lyon")


# -- experience replay ---------------------------------------------------------------------------
def test_a_repeated_task_that_sees_what_it_saw_before_says_the_recorded_answer(world) -> None:
    question = "What does todo.md say, and what is 6 times 7?"
    first = _read_then_calc(world)
    assert first.extra["model_calls"] == 5  # each call: free start + its constrained JSON
    trace, backend = world.ask(question, [final("Something else.")])
    assert backend.requests == [] and trace.extra["model_calls"] == 0
    assert trace.final_answer == "Buy milk; 42." and trace.status == "ok"
    assert [(s.kind, s.tool_name, s.response_schema) for s in trace.steps] == [
        ("tool_call", "read_file", None),
        ("tool_call", "calculator", None),
        ("final", None, None),
    ]
    assert trace.extra["replay"]["answer"] == "recorded"
    (experience,) = world.learning.experiences.all()
    assert (experience.successes, experience.uses) == (2, 1)
    # The exact replay of this run says where its answer came from.
    report = world.learning.replay(trace.id, mode="record")
    assert report.steps[-1].detail == "answered from the record, no model call"


def test_a_replay_whose_result_changed_asks_the_model_for_the_answer(world) -> None:
    todo = world.docs / "todo.md"
    world.ask(f"Read {todo} please", [call("read_file", path=str(todo)), final("Buy milk.")])
    todo.write_text("Sell the boat.\n", encoding="utf-8")
    trace, backend = world.ask(f"Read {todo} please", [final("Sell the boat.")])
    assert trace.extra["replay"]["replayed_steps"] == [0]  # the path is a slot: no hash check
    assert "Sell the boat" in (trace.steps[0].observation or "")
    assert len(backend.requests) == 1 and trace.final_answer == "Sell the boat."


def test_a_replay_with_other_notes_passages_asks_the_model_for_the_answer(world) -> None:
    passages = [Passage("list.md", "Milk, eggs.")]

    class Notes:
        def retrieve(self, question: str) -> list[Passage]:
            return list(passages)

    question = "What is 6 times 7?"
    world.ask(question, [call("calculator", expression="6*7"), final("42")], retriever=Notes())
    same, backend = world.ask(question, [final("Forty-two.")], retriever=Notes())
    assert backend.requests == [] and same.final_answer == "42"
    passages[0] = Passage("list.md", "Milk, eggs, and 7 more eggs.")
    other, backend = world.ask(question, [final("Forty-two.")], retriever=Notes())
    assert len(backend.requests) == 1 and other.final_answer == "Forty-two."


def test_a_repeated_task_in_a_conversation_replays_the_calls_and_asks_for_the_answer(
    world,
) -> None:
    question = "What does todo.md say, and what is 6 times 7?"
    first = _read_then_calc(world)
    backend = ScriptedBackend([final("Buy milk; 42.")])
    history = [Turn("Hello", "Hi! How can I help?")]
    trace = world.agent(backend).run(question, history=history)
    assert len(backend.requests) == 1  # only the answer: both planning calls were skipped
    assert trace.extra["model_calls"] == 1
    assert [(s.kind, s.tool_name) for s in trace.steps] == [
        ("tool_call", "read_file"),
        ("tool_call", "calculator"),
        ("final", None),
    ]
    assert [s.response_schema is None for s in trace.steps] == [True, True, False]
    (experience,) = world.learning.experiences.all()
    assert trace.extra["replayed_from"] == experience.id
    replay = trace.extra["replay"]
    assert replay["replayed_steps"] == [0, 1] and replay["fell_back"] is None
    assert replay["sources"] == [first.id]
    # The model saw the replayed calls' results exactly as if it had made them: as text,
    # after the question, since it may only answer.
    answer_prompt = backend.requests[0]["messages"][-1]
    # The plan was for the calls, which are done: the answer turn is not shown it (the 0.5B
    # model retold it as its answer).
    assert "Plans that worked" not in answer_prompt["content"]
    assert "Buy milk" in answer_prompt["content"] and "calculator" not in answer_prompt["content"]
    content = answer_prompt["content"]
    assert question in content and content.index(question) < content.index("Buy milk")
    assert [m.get("role") for m in trace.steps[-1].messages[-4:]] == [
        "assistant",
        "tool",
        "assistant",
        "tool",
    ]
    assert experience.successes == 2 and experience.uses == 1
    # Only the answer was left: the model was not offered the tools again.
    assert "tool_call" not in trace.steps[-1].response_schema


def test_a_new_task_of_the_same_shape_fills_the_slots(world) -> None:
    world.ask("What is 17 times 23?", [call("calculator", expression="17*23"), final("391")])
    trace, backend = world.ask("What is 4 times 5?", [final("20")])
    assert trace.steps[0].tool_args == {"expression": "4*5"}
    assert trace.steps[0].observation == "4*5 = 20"
    assert trace.extra["replay"]["slots"] == {"expression": "4", "expression2": "5"}
    assert trace.extra["replay"]["matched_by"] == "pattern"
    assert len(backend.requests) == 1


def test_a_changed_file_fails_the_precondition_and_the_model_takes_over(world) -> None:
    question = "What is on my list?"
    world.ask(question, [call("read_file", path=str(world.docs / "todo.md")), final("Milk.")])
    (world.docs / "todo.md").write_text("Sell the boat.\n", encoding="utf-8")
    trace, backend = world.ask(
        question, [call("read_file", path=str(world.docs / "todo.md")), final("Sell the boat.")]
    )
    replay = trace.extra["replay"]
    assert replay["replayed_steps"] == []
    assert replay["fell_back"]["step"] == 0 and "has changed" in replay["fell_back"]["reason"]
    assert len(backend.requests) == 3  # the model planned the call itself, then answered
    # ...with the workflow as guidance.
    assert (
        "Plans that worked for similar tasks before"
        in backend.requests[0]["messages"][-1]["content"]
    )
    (experience,) = world.learning.experiences.all()
    assert (experience.uses, experience.failures) == (1, 1)
    assert trace.final_answer == "Sell the boat."


def test_a_failed_postcondition_hands_over_after_that_step(world) -> None:
    world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    world.executor.registry._tools["calculator"] = _replace_function(
        world.executor.registry.get("calculator"), lambda expression: '{"oops": 1}'
    )
    trace, backend = world.ask("What is 6 times 7?", [final("I could not compute it.")])
    replay = trace.extra["replay"]
    assert replay["replayed_steps"] == [0]
    assert replay["fell_back"]["step"] == 0
    assert "returned object, expected text" in replay["fell_back"]["reason"]
    assert len(backend.requests) == 1


def test_a_replayed_tool_that_needs_permission_still_asks(world) -> None:
    world.confirmer.answers.append("once")
    world.ask("Note that I need milk", [call("write_note", note="shop", text="milk"), final("ok")])
    world.confirmer.answers.append("deny")
    trace, _backend = world.ask("Note that I need eggs", [final("I could not write it.")])
    assert len(world.confirmer.requests) == 2  # asked again for the replayed call
    assert world.confirmer.requests[1].arguments == {"note": "shop", "text": "eggs"}
    assert trace.steps[0].tool_outcome["status"] == "denied"
    assert "ended with status denied" in trace.extra["replay"]["fell_back"]["reason"]
    assert not (world.notes / "shop.md").read_text().count("eggs")


def test_a_down_rated_replay_counts_against_the_experience(world) -> None:
    world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    trace, _ = world.ask("What is 6 times 7?", [final("42")])
    world.learning.rate(trace.id, up=False)
    (experience,) = world.learning.experiences.all()
    assert (experience.successes, experience.failures) == (2, 1)


def _learn_a_product_with_slot_filling_on(world) -> None:
    """A calculator script learnt from "17 times 23", found for any task, slots by the model."""
    world.ask("What is 17 times 23?", [call("calculator", expression="17*23"), final("391")])
    world.config.replay_fill_slots_with_model = True
    world.config.experience_similarity = 0.1
    world.config.replay_similarity = 0.1


def test_model_slot_filling_for_a_paraphrase(world) -> None:
    _learn_a_product_with_slot_filling_on(world)
    world.backend = ScriptedBackend([json.dumps({"expression": "8", "expression2": "9"})])
    trace, _backend = world.ask("Multiply 8 by 9, what is it times", [final("72")])
    assert trace.extra["replay"]["matched_by"] == "model"
    assert trace.steps[0].tool_args == {"expression": "8*9"}
    assert trace.extra["model_calls"] == 2  # the slot filling and the answer
    (filling,) = trace.extra["learning_calls"]
    assert filling["purpose"] == "fill slots" and filling["raw_output"].startswith("{")
    # A value that is not in the task is refused: no replay.
    world.backend = ScriptedBackend([json.dumps({"expression": "1", "expression2": "2"})])
    trace, _ = world.ask(
        "Multiply 8 by 9, what is it times", [call("calculator", expression="8*9"), final("72")]
    )
    assert "replay" not in trace.extra
    assert trace.extra["learning_calls"][0]["refused"] == "a value does not occur in the task"
    assert trace.extra["model_calls"] == 4  # the refused filling is a model call too


def _replace_function(tool, function):
    from dataclasses import replace

    return replace(tool, function=function)


def test_model_slot_filling_refuses_a_task_with_a_number_the_script_cannot_hold(world) -> None:
    _learn_a_product_with_slot_filling_on(world)
    world.backend = ScriptedBackend([json.dumps({"expression": "17", "expression2": "23"})])
    trace, _ = world.ask(
        "Multiply 17 by 23 and add 4, what is it",
        [call("calculator", expression="17*23+4"), final("395")],
    )
    assert "replay" not in trace.extra
    assert trace.extra["learning_calls"][0]["refused"] == (
        "the task holds a number the script has no place for"
    )
    assert trace.final_answer == "395"
