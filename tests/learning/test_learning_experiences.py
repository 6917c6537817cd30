"""Experiences: slots, check functions as data, workflows, de-duplication, retrieval."""

from __future__ import annotations

import json

from agent_core.learning import slots
from agent_core.learning.experiences import Experience, induce
from tests.fakes import call, final


def test_literal_values_from_the_task_become_slots() -> None:
    t = slots.extract("What is 17 times 23?", [{"expression": "17*23"}], ["391"])
    assert t.arguments == [{"expression": "{{expression}}*{{expression2}}"}]
    assert t.template == "What is {expression} times {expression2}?"
    values = slots.match(t.pattern, "what is 4 times  5", t.slots)
    assert values == {"expression": "4", "expression2": "5"}
    assert slots.fill(t.arguments[0], values) == {"expression": "4*5"}
    assert slots.match(t.pattern, "What is the capital of France?", t.slots) is None
    # A number's slot takes a number (measured: "17 times 23 plus 4" replayed as "17*23 plus 4").
    assert (
        slots.match(t.pattern, "What is 17 times 23 plus 4? Use the calculator.", t.slots) is None
    )
    assert slots.match(t.pattern, "What is 3.5 times 4?", t.slots) == {
        "expression": "3.5",
        "expression2": "4",
    }


def test_paths_and_phrases_keep_their_original_spelling() -> None:
    t = slots.extract("What does Todo.md say?", [{"path": "/home/u/Docs/Todo.md"}], ["x"])
    assert t.arguments == [{"path": "/home/u/Docs/{{path}}"}]
    assert slots.match(t.pattern, "WHAT DOES Shop List.md SAY", t.slots) == {"path": "Shop List.md"}
    t = slots.extract("Search my notes for cat food", [{"query": "cat food"}], ["[]"])
    assert slots.match(t.pattern, "search my notes for dog toys", t.slots) == {"query": "dog toys"}


def test_values_from_earlier_results_are_references_or_dependencies() -> None:
    t = slots.extract(
        "Add 2 and 40 then multiply by 3",
        [{"expression": "2+40"}, {"expression": "42*3"}],
        ["42", "126"],
    )
    assert t.arguments[1] == {"expression": "{{@0}}*{{expression3}}"}  # the result of step 1
    t = slots.extract(
        "Read the newest file in Documents",
        [{"path": "Documents"}, {"path": "Documents/report.md"}],
        ['[{"name": "report.md"}]', "text"],
    )
    assert t.depends_on == [[], [0]]  # "report" came from the listing, not from the task


def test_a_task_that_is_all_slot_gets_no_pattern() -> None:
    t = slots.extract("Bananas", [{"query": "Bananas"}], ["x"])
    assert t.pattern is None


def test_induced_script_has_slots_checks_and_a_workflow(world) -> None:
    todo = world.docs / "todo.md"
    trace, _ = world.ask(
        "Read todo.md and tell me what to buy",
        [call("read_file", path=str(todo)), final("Milk.")],
    )
    experience = world.learning.experiences.get(world.learning.experiences.all()[0].id)
    assert experience.sources == [trace.id]
    (step,) = experience.script.steps
    assert step.tool == "read_file"
    assert step.arguments == {"path": str(world.docs) + "/{{path}}"}
    kinds = [c.kind for c in step.pre]
    assert kinds == ["tool_exists", "tool_permitted", "args_valid", "paths_exist"]
    assert [c.to_dict() for c in step.post] == [
        {"kind": "status_ok"},
        {"kind": "non_empty"},
        {"kind": "result_type", "type": "text"},
    ]
    assert experience.task_template == "Read {path} and tell me what to buy"
    assert "1. Call read_file with path='" in experience.workflow
    assert experience.workflow.endswith("2. Answer from the results.")
    # Stored as data: it round-trips through JSON.
    again = Experience.from_dict(json.loads(json.dumps(experience.to_dict())))
    assert again.to_dict() == experience.to_dict()


def test_a_literal_file_gets_a_hash_check(world) -> None:
    todo = world.docs / "todo.md"
    world.ask("What is on my list?", [call("read_file", path=str(todo)), final("Milk.")])
    (experience,) = world.learning.experiences.all()
    (check,) = [c for c in experience.script.steps[0].pre if c.kind == "file_unchanged"]
    assert check.params["path"] == str(todo.resolve()) and len(check.params["sha256"]) == 64


def test_runs_that_teach_nothing(world) -> None:
    world.ask("Hello?", [final("Hi.")])  # no tools
    world.ask("Write it", [call("write_note", note="x", text="y"), final("No.")])  # denied
    world.ask("Read a ghost", [call("read_file", path="ghost.md"), final("None.")])  # error
    assert world.learning.experiences.all() == []


def test_the_same_task_again_merges_into_one_experience(world) -> None:
    world.config.experience_similarity = 2.0  # no replay here: the model plans both times
    for name in ("todo.md", "shop.md"):
        world.ask(
            f"Read {name} and tell me what to buy",
            [call("read_file", path=str(world.docs / name)), final("Things.")],
        )
    (experience,) = world.learning.experiences.all()
    assert experience.successes == 2 and len(experience.sources) == 2


def test_different_tools_make_different_experiences(world) -> None:
    world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    world.ask("What time is it?", [call("current_datetime"), final("Noon.")])
    assert len(world.learning.experiences.all()) == 2


def test_similar_tasks_get_the_workflow_as_guidance_within_budget(world) -> None:
    world.ask("What is 6 times 7?", [call("calculator", expression="6*7"), final("42")])
    world.config.experience_similarity = 0.3
    trace, backend = world.ask("Compute 6 times 7 please, quickly", [final("42")])
    prompt = backend.requests[0]["messages"][-1]["content"]
    assert "Plans that worked for similar tasks before" in prompt
    assert "1. Call calculator with expression=" in prompt
    assert trace.extra["guidance"] == [world.learning.experiences.all()[0].id]
    # Over its budget the workflow is dropped, and that is recorded.
    builder_budget = 3
    agent = world.agent(type(backend)([final("42")]))
    agent.builder.guidance_budget = builder_budget
    trace = agent.run("Compute 6 times 7 please, quickly")
    assert trace.extra["dropped_learning"]["guidance"] == [0]


def test_induce_needs_a_registry_entry_only_for_file_checks(world) -> None:
    trace, _ = world.ask("What is 2 plus 2?", [call("calculator", expression="2+2"), final("4")])
    experience = induce(trace, world.executor.registry)
    assert experience is not None and experience.script.slots[0].example == "2"
