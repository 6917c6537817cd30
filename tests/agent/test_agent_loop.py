"""The agent loop, driven by a scripted backend: every branch of observe -> decide -> act."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent_core.agent import Agent, AgentEvent
from agent_core.learning.outcome import leak_kind
from agent_core.memory_db import open_memory_db
from agent_core.prompting import Passage, PromptBuilder, Turn
from agent_core.traces import TraceStore
from models.chat import GenerationSettings, Message
from tests.fakes import ScriptedBackend, call, final
from tools.base import Risk, Tool, ToolRegistry
from tools.executor import ToolExecutor


def add_tool() -> Tool:
    return Tool(
        name="add",
        description="Add two integers.",
        parameters={
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
        risk=Risk.READ,
        function=lambda a, b: a + b,
    )


def broken_tool() -> Tool:
    def explode() -> str:
        raise OSError("disk on fire")

    return Tool(
        "explode", "Always fails.", {"type": "object", "properties": {}}, Risk.READ, explode
    )


@pytest.fixture
def store(tmp_path: Path) -> TraceStore:
    return TraceStore(open_memory_db(tmp_path / "memory.db"))


def make_agent(
    backend: ScriptedBackend, store: TraceStore, tools=None, executor=None, **kw
) -> Agent:
    registry = ToolRegistry(tools if tools is not None else [add_tool(), broken_tool()])
    return Agent(
        backend,
        executor or ToolExecutor(registry),
        store,
        PromptBuilder(count_tokens=backend.count_tokens),
        GenerationSettings(temperature=0, seed=7),
        **kw,
    )


def test_final_answer_in_one_step(store: TraceStore) -> None:
    backend = ScriptedBackend([final("Paris.")])
    trace = make_agent(backend, store).run("Capital of France?")
    assert trace.status == "ok"
    assert trace.final_answer == "Paris."
    assert [s.kind for s in trace.steps] == ["final"]
    # The answer was free text, in one model call, with the tools in the template.
    assert backend.requests[0]["schema"] is None
    assert [t["function"]["name"] for t in backend.requests[0]["tools"]] == ["add", "explode"]
    assert trace.extra["model_calls"] == 1
    assert store.get(trace.id).final_answer == "Paris."


def test_tool_call_then_answer(store: TraceStore) -> None:
    backend = ScriptedBackend([call("add", a=2, b=3), final("5")])
    events: list[AgentEvent] = []
    trace = make_agent(backend, store).run("2+3?", on_event=events.append)
    assert trace.status == "ok" and trace.final_answer == "5"
    first = trace.steps[0]
    assert (first.kind, first.tool_name, first.tool_args) == ("tool_call", "add", {"a": 2, "b": 3})
    assert first.tool_outcome["status"] == "ok" and first.observation == "5"
    # The call and its observation are fed back on the next turn, as the template wants.
    called, result = backend.requests[-1]["messages"][-2:]
    assert called["tool_calls"][0]["function"] == {"name": "add", "arguments": {"a": 2, "b": 3}}
    assert result == {"role": "tool", "name": "add", "tool_call_id": "call00000", "content": "5"}
    # The call itself was generated under the tool's schema.
    jsonschema.validate(
        {"name": "add", "arguments": {"a": 2, "b": 3}}, backend.requests[1]["schema"]
    )
    assert [e.kind for e in events if e.kind.startswith("tool")] == ["tool_call", "tool_result"]


def test_unknown_tool_is_fed_back_and_model_retries(store: TraceStore) -> None:
    backend = ScriptedBackend([call("rm_rf"), final("sorry")])
    trace = make_agent(backend, store).run("delete everything")
    assert trace.steps[0].kind == "mistake"
    assert "no tool named 'rm_rf'" in trace.steps[0].observation
    assert "no tool named 'rm_rf'" in backend.requests[-1]["messages"][-1]["content"]
    assert trace.final_answer == "sorry"


def test_invalid_arguments_are_fed_back(store: TraceStore) -> None:
    backend = ScriptedBackend([call("add", a="two", b=3), call("add", a=2, b=3), final("5")])
    trace = make_agent(backend, store).run("2+3?")
    assert trace.steps[0].kind == "mistake"
    assert trace.steps[0].tool_outcome["status"] == "invalid_arguments"
    assert "'two' is not of type 'integer'" in trace.steps[0].observation
    assert trace.steps[1].tool_outcome["status"] == "ok"
    assert trace.final_answer == "5"


def test_a_broken_tool_call_is_a_model_mistake(store: TraceStore) -> None:
    # A server (no grammar) can send a call that is not JSON: fed back, the model retries.
    backend = ScriptedBackend(["<tool_call>\n{not json\n</tool_call>", final("4")])
    trace = make_agent(backend, store).run("2+2?")
    assert [s.kind for s in trace.steps] == ["mistake", "final"]
    assert "not valid JSON" in trace.steps[0].error
    assert trace.final_answer == "4"


def test_failing_tool_becomes_an_observation(store: TraceStore) -> None:
    backend = ScriptedBackend([call("explode"), final("the tool failed")])
    trace = make_agent(backend, store).run("go")
    assert trace.steps[0].tool_outcome["status"] == "error"
    assert "disk on fire" in trace.steps[0].observation
    assert trace.status == "ok"


def test_the_last_step_answers_with_what_was_found(store: TraceStore) -> None:
    outputs = [call("add", a=i, b=1) for i in range(3)]  # a model that calls forever
    backend = ScriptedBackend(outputs)
    trace = make_agent(backend, store, max_steps=3).run("loop forever")
    assert len(trace.steps) == 3
    # The last step may only answer: the call it started ends it, and the person reads
    # what was found, in plain words, nothing internal.
    assert trace.status == "ok" and trace.final_answer == "Here is what I found: 2"
    assert "tool_call" in trace.steps[0].response_schema
    assert "tool_call" not in trace.steps[-1].response_schema
    assert backend.requests[-1]["text_only"] is True


def test_repeated_identical_call_is_not_run_twice(store: TraceStore) -> None:
    calls: list[int] = []
    tool = add_tool()
    counting = Tool(
        tool.name,
        tool.description,
        tool.parameters,
        tool.risk,
        lambda a, b: calls.append(1) or a + b,
    )
    backend = ScriptedBackend([call("add", a=1, b=1), call("add", a=1, b=1), final("2")])
    trace = make_agent(backend, store, tools=[counting]).run("1+1")
    assert len(calls) == 1
    assert trace.steps[1].kind == "repeat"
    assert "tool_call" not in trace.steps[2].response_schema  # forced to answer
    # The model got the same result again, as the call's result; nothing internal.
    assert trace.steps[2].messages[-1] == {
        "role": "tool",
        "name": "add",
        "tool_call_id": "call00001",
        "content": "2",
    }
    # Answering, it reads the result once, as text after the question, without tool specs
    # (shown its own calls, the small default model repeats them).
    answering = backend.requests[-1]
    assert answering["tools"] is None and answering["text_only"] is True
    assert answering["messages"][1:] == [
        {"role": "user", "content": "1+1\n\nDone for this request, with these results:\n2"}
    ]
    assert trace.final_answer == "2"


def test_cancellation_stops_between_tokens(store: TraceStore) -> None:
    backend = ScriptedBackend([final("a long answer that the user stops")], cancel_after_chars=12)
    cancel = threading.Event()
    streamed: list[str] = []
    trace = make_agent(backend, store).run("talk", on_text=streamed.append, cancel=cancel)
    assert trace.status == "cancelled"
    assert trace.steps[-1].kind == "cancelled"
    assert trace.final_answer and "".join(streamed) == trace.final_answer
    assert len(trace.final_answer) < len("a long answer that the user stops")
    assert store.get(trace.id).status == "cancelled"


def test_cancel_before_start_runs_nothing(store: TraceStore) -> None:
    backend = ScriptedBackend([final("x")])
    cancel = threading.Event()
    cancel.set()
    trace = make_agent(backend, store).run("q", cancel=cancel)
    assert trace.status == "cancelled" and not backend.requests


def test_streaming_shows_only_the_answer_text(store: TraceStore) -> None:
    backend = ScriptedBackend([final('He said "hi"\nthen left')])
    pieces: list[str] = []
    make_agent(backend, store).run("q", on_text=pieces.append)
    assert "".join(pieces) == 'He said "hi"\nthen left'


def test_answer_cut_by_max_tokens_is_kept_and_marked(store: TraceStore) -> None:
    backend = ScriptedBackend(["It is a long sto"])
    backend.finish_reason = "length"
    trace = make_agent(backend, store).run("tell me")
    assert trace.final_answer == "It is a long sto [...]"
    assert trace.extra["truncated"] is True


def test_fault_of_ours_raises_and_the_trace_is_kept(store: TraceStore) -> None:
    backend = ScriptedBackend([])  # running out of outputs raises AssertionError: a bug
    agent = make_agent(backend, store)
    with pytest.raises(AssertionError):
        agent.run("q")
    (row,) = store.list()
    assert row["status"] == "error"
    assert "AssertionError" in store.get(row["id"]).error


def test_history_and_passages_reach_the_prompt_in_order(store: TraceStore) -> None:
    class OneRetriever:
        def retrieve(self, question: str) -> list[Passage]:
            return [Passage("notes/cat.md#Food", "The cat eats fish.")]

    backend = ScriptedBackend([final("Fish [1].")])
    agent = make_agent(backend, store, retriever=OneRetriever())
    trace = agent.run("What does the cat eat?", history=[Turn("Hi", "Hello!")])
    messages = backend.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert backend.requests[0]["tools"]  # tool specs go through the template, before it all
    assert messages[-1]["content"].endswith("What does the cat eat?")
    assert "--- notes/cat.md#Food\nThe cat eats fish." in messages[-1]["content"]
    assert trace.extra["sources"][0]["source"] == "notes/cat.md#Food"
    assert trace.steps[0].messages == messages  # the exact messages are recorded


def test_history_goes_back_as_plain_answers(store: TraceStore) -> None:
    backend = ScriptedBackend([final("Yes.")])
    make_agent(backend, store).run("And then?", history=[Turn("Hi", "Hello!")])
    assert backend.requests[0]["messages"][2] == {"role": "assistant", "content": "Hello!"}


def test_a_huge_tool_result_is_cut_visibly_and_the_prompt_fits(store: TraceStore) -> None:
    big = Tool(
        "dump", "Dump.", {"type": "object", "properties": {}}, Risk.READ, lambda: "word " * 50_000
    )
    backend = ScriptedBackend([call("dump"), final("done")], context=2048)
    trace = make_agent(backend, store, tools=[big]).run("dump it")
    assert trace.final_answer == "done"
    fed = backend.requests[-1]["messages"][-1]["content"]
    assert "[... cut:" in fed and "more characters not shown" in fed
    assert backend.count_prompt_tokens(backend.requests[-1]["messages"]) < 2048
    # The trace keeps what the tool gave, far more than the model was shown.
    assert trace.steps[0].observation.count("word") > fed.count("word")


def test_a_short_question_never_overflows_a_small_context(store: TraceStore) -> None:
    class ManyPassages:
        def retrieve(self, question: str) -> list[Passage]:
            return [Passage(f"notes/{i}.md", "lorem ipsum " * 200) for i in range(30)]

    backend = ScriptedBackend([final("ok")], context=1024)
    agent = make_agent(backend, store, retriever=ManyPassages())
    trace = agent.run("What is in my notes?", history=[Turn("q " * 300, "a " * 300)] * 5)
    assert trace.status == "ok"
    sent = backend.requests[0]["messages"]
    assert (
        backend.count_prompt_tokens(sent, backend.requests[0]["tools"])
        <= 1024 - agent.answer_reserve
    )


def test_retrieval_is_shown_as_a_step(store: TraceStore) -> None:
    class OneRetriever:
        def retrieve(self, question: str) -> list[Passage]:
            return [Passage("notes/cat.md", "The cat eats fish.")]

    events: list[AgentEvent] = []
    backend = ScriptedBackend([final("Fish [1].")])
    make_agent(backend, store, retriever=OneRetriever()).run("cat food?", on_event=events.append)
    searched = [e for e in events if e.kind == "searched"]
    assert searched and searched[0].data["sources"] == ["notes/cat.md"]


def test_decide_then_answer_for_templates_without_tools(store: TraceStore) -> None:
    backend = ScriptedBackend(
        ['{"tool": "add", "arguments": {"a": 2, "b": 3}}', '{"tool": "none"}', "It is 5."],
        chat_template="",
    )
    trace = make_agent(backend, store).run("2+3?")
    assert trace.extra["protocol"] == "decide"
    assert trace.final_answer == "It is 5."
    assert trace.steps[0].tool_outcome["status"] == "ok"
    assert trace.extra["model_calls"] == 3  # decision, decision, answer
    assert "Result of add:\n5" in backend.requests[1]["messages"][-1]["content"]
    assert "add:" in backend.requests[0]["messages"][0]["content"]  # tools described in text


def test_an_empty_answer_becomes_a_plain_sentence(store: TraceStore) -> None:
    backend = ScriptedBackend(["  </tool_call> "])
    trace = make_agent(backend, store).run("?")
    assert trace.final_answer and "could not come up with an answer" in trace.final_answer
    assert trace.extra["empty_answer"] is True


def test_with_a_retriever_the_model_is_not_offered_its_own_search(store: TraceStore) -> None:
    class NoPassages:
        def retrieve(self, question: str) -> list[Passage]:
            return []

    search = Tool(
        "search_knowledge", "Search.", {"type": "object", "properties": {}}, Risk.READ, lambda: ""
    )
    backend = ScriptedBackend([final("ok")])
    make_agent(backend, store, tools=[add_tool(), search], retriever=NoPassages()).run("q")
    assert [t["function"]["name"] for t in backend.requests[0]["tools"]] == ["add"]


def test_a_follow_up_is_searched_with_the_question_before_it(store: TraceStore) -> None:
    asked: list[str] = []

    class Recorder:
        def retrieve(self, question: str) -> list[Passage]:
            asked.append(question)
            return [Passage("bread.md", "Fed on Tuesdays.")] if "starter" in question else []

    backend = ScriptedBackend([final("On Tuesdays.")])
    trace = make_agent(backend, store, retriever=Recorder()).run(
        "How often do I feed it?", history=[Turn("What is my starter called?", "Clint.")]
    )
    assert asked == [
        "How often do I feed it?",
        "What is my starter called? How often do I feed it?",
    ]
    assert trace.extra["sources"][0]["source"] == "bread.md"


def test_after_a_write_went_through_the_next_turn_answers(store: TraceStore) -> None:
    written: list[str] = []
    note = Tool(
        "write_note",
        "Write.",
        {"type": "object", "properties": {"text": {"type": "string"}}},
        Risk.WRITE,
        lambda text: written.append(text) or "Saved.",
    )

    class Yes:
        def confirm(self, request):
            from tools.confirm import Answer

            return Answer.allow_once()

    backend = ScriptedBackend([call("write_note", text="milk"), final("Saved your note.")])
    agent = Agent(
        backend,
        ToolExecutor(ToolRegistry([note]), confirmer=Yes()),
        store,
        PromptBuilder(count_tokens=backend.count_tokens),
        GenerationSettings(),
    )
    trace = agent.run("note milk")
    assert written == ["milk"] and trace.final_answer == "Saved your note."
    assert "tool_call" not in trace.steps[-1].response_schema
    assert backend.requests[-1]["text_only"] is True  # held to plain text


def test_an_answer_that_is_only_a_call_becomes_what_was_found(store: TraceStore) -> None:
    backend = ScriptedBackend(
        [call("add", a=2, b=3), '>{"name": "add", "arguments": {"a": 2, "b": 3}}']
    )
    trace = make_agent(backend, store, max_steps=2).run("2+3?")
    assert trace.final_answer == "Here is what I found: 5"
    assert trace.extra["empty_answer"] is True


class Similar:
    """Passages with a given similarity to the question (as the knowledge retriever gives)."""

    def __init__(self, similarity: float) -> None:
        self.similarity = similarity

    def retrieve(self, question: str) -> list[Passage]:
        meta = {"similarity": self.similarity}
        return [Passage("notes/dentist.md", "Dentist: 14 March 2027, 09:30.", meta)]


def test_a_close_match_in_the_notes_is_answered_without_tools(store: TraceStore) -> None:
    backend = ScriptedBackend([final("On 14 March 2027 at 09:30.")])
    trace = make_agent(backend, store, retriever=Similar(0.6)).run("When is my dentist?")
    (request,) = backend.requests
    assert request["tools"] is None and request["text_only"] is True
    assert trace.extra["answered_from_notes"] is True and trace.extra["model_calls"] == 1
    assert "tool_call" not in trace.steps[0].response_schema
    assert trace.final_answer == "On 14 March 2027 at 09:30."


def test_a_loose_match_leaves_the_tools_offered(store: TraceStore) -> None:
    backend = ScriptedBackend([call("add", a=2, b=3), final("5")])
    agent = make_agent(backend, store, retriever=Similar(0.2), answer_from_notes_at=0.45)
    trace = agent.run("What is 2 plus 3?")
    assert backend.requests[0]["tools"] and backend.requests[0]["text_only"] is False
    assert "answered_from_notes" not in trace.extra and trace.final_answer == "5"


def test_after_a_tool_whose_result_is_the_answer_the_next_turn_answers(
    store: TraceStore,
) -> None:
    tool = add_tool()
    answering = Tool(
        tool.name, tool.description, tool.parameters, tool.risk, tool.function, answers=True
    )
    backend = ScriptedBackend([call("add", a=2, b=3), final("2 plus 3 is 5.")])
    trace = make_agent(backend, store, tools=[answering]).run("What is 2 plus 3?")
    assert backend.requests[-1]["tools"] is None and backend.requests[-1]["text_only"] is True
    assert "tool_call" not in trace.steps[-1].response_schema
    assert trace.final_answer == "2 plus 3 is 5." and len(trace.steps) == 2


def test_after_a_plain_read_the_model_may_call_again(store: TraceStore) -> None:
    backend = ScriptedBackend([call("add", a=2, b=3), call("add", a=5, b=1), final("6")])
    trace = make_agent(backend, store).run("2 plus 3, plus 1?")
    assert "tool_call" in trace.steps[1].response_schema  # chains stay possible
    assert trace.final_answer == "6"


class EchoingBackend(ScriptedBackend):
    """Copies its prompt's notes frame back before the answer (the 0.5B model did: "From
    my files: --- recipes.md ... Answer from these passages ...: ... 400 g.")."""

    def chat(self, messages: list[Message], settings: Any, **kw: Any) -> Any:
        content = messages[-1]["content"]
        frame = content[: content.rindex("the answer.") + len("the answer")]  # no question
        self.outputs = [final(frame + ":\n" + self.outputs[0])]
        return super().chat(messages, settings, **kw)


def test_an_echo_of_the_notes_frame_is_taken_off_the_answer(store: TraceStore) -> None:
    backend = EchoingBackend(["The sugar and butter make 200 + 200 = 400 g."])
    trace = make_agent(backend, store, retriever=Similar(0.6)).run("When is my dentist?")
    assert backend.requests[0]["messages"][-1]["content"].startswith("From my files:")
    assert trace.final_answer == "The sugar and butter make 200 + 200 = 400 g."
    assert trace.extra["echo_removed"] is True


def test_an_echo_with_nothing_after_it_is_no_answer(store: TraceStore) -> None:
    echo = "From my files:\n--- notes/dentist.md\nDentist: 14 March 2027, 09:30.\nMore notes"
    trace = make_agent(ScriptedBackend([final(echo)]), store, retriever=Similar(0.6)).run("?")
    assert trace.final_answer and "could not come up with an answer" in trace.final_answer
    assert trace.extra["echo_removed"] is True and trace.extra["empty_answer"] is True


def test_an_answer_that_quotes_the_notes_later_is_left_alone(store: TraceStore) -> None:
    said = "Your dentist is on 14 March. From my files: dentist.md says 09:30."
    trace = make_agent(ScriptedBackend([final(said)]), store, retriever=Similar(0.6)).run("?")
    assert trace.final_answer == said and "echo_removed" not in trace.extra


def test_the_error_of_a_failed_call_is_not_said_as_the_answer(store: TraceStore) -> None:
    backend = ScriptedBackend([call("add", a=2, b=3), call("explode"), final("PLACEHOLDER")])
    agent = make_agent(backend, store, max_steps=6)
    first = agent.run("go")
    error = first.steps[1].observation
    assert first.steps[1].tool_outcome["status"] == "error" and "disk on fire" in error
    backend = ScriptedBackend([call("add", a=2, b=3), call("explode"), final(f"  {error}\n")])
    trace = make_agent(backend, store, max_steps=6).run("go")
    # What the calls found that worked is said instead; the error never is.
    assert trace.final_answer == "Here is what I found: 5"
    assert trace.extra["empty_answer"] is True
    # Nothing worked: the failure is said in words (a user cannot act on a bare "Error:").
    backend = ScriptedBackend([call("explode"), final(error)])
    trace = make_agent(backend, store, max_steps=6).run("go")
    assert trace.final_answer == "I could not get an answer: explode failed: OSError: disk on fire."
    assert leak_kind(trace.final_answer) is None


def test_a_facts_label_copied_by_the_model_is_taken_off(store: TraceStore) -> None:
    said = "The combination is 0415. (your correction of 2026-11-30)"
    trace = make_agent(ScriptedBackend([final(said)]), store).run("lock?")
    assert trace.final_answer == "The combination is 0415."


def test_a_file_found_is_said_without_its_frame(store: TraceStore, tmp_path: Path) -> None:
    from tools.builtins.files import make_read_file
    from tools.paths import PathGuard
    from tools.policy import PermissionPolicy

    note = tmp_path / "family.txt"
    note.write_text("Reunion: Porto, every second year.\n", encoding="utf-8")
    registry = ToolRegistry([make_read_file(PathGuard([tmp_path]))])
    executor = ToolExecutor(registry, PermissionPolicy(read_roots=[tmp_path]))
    # The model reads the file, then reads it again: the repeated call ends the tools, and
    # its answer turn says nothing: the person reads what was found, as text.
    backend = ScriptedBackend([call("read_file", path=str(note))] * 2 + [final("")])
    trace = make_agent(backend, store, executor=executor).run("In which city is the reunion?")
    found = "Here is what I found: family.txt: Reunion: Porto, every second year."
    assert trace.final_answer == found
