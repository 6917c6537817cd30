"""What a person reads, with the real models: properties that hold for any output (these
models' exact words depend on the CPU's arithmetic, so no exact text is asserted)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from agent_core.agent import Agent
from agent_core.memory_db import open_memory_db
from agent_core.prompting import Passage, PromptBuilder
from agent_core.protocols import DECIDE, HERMES
from agent_core.traces import TraceStore
from models.chat import GenerationSettings
from tests.benchmarks.bench_answers import leak_kind
from tools.base import ToolRegistry
from tools.builtins.calculator import make_calculator
from tools.builtins.clock import make_current_datetime
from tools.executor import ToolExecutor

pytestmark = pytest.mark.real_model
GREEDY = GenerationSettings(temperature=0.0, seed=7, max_tokens=96)


@pytest.fixture(scope="module")
def qwen() -> Iterator[object]:
    from models.discovery import default_chat_model
    from models.llama_backend import LlamaCppBackend

    backend = LlamaCppBackend(default_chat_model(), n_ctx=4096)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def smollm() -> Iterator[object]:
    from models.discovery import tiny_chat_model
    from models.llama_backend import LlamaCppBackend

    backend = LlamaCppBackend(tiny_chat_model(), n_ctx=4096)
    yield backend
    backend.close()


class Notes:
    def retrieve(self, question: str) -> list[Passage]:
        return [
            Passage(
                "notes/bread.md",
                "My sourdough starter is called Clint Yeastwood. "
                "I feed it every Tuesday and Friday with rye flour.",
            )
        ]


def agent(backend, tmp_path: Path, **kw) -> Agent:
    tools = ToolRegistry([make_calculator(), make_current_datetime()])
    return Agent(
        backend,
        ToolExecutor(tools),
        TraceStore(open_memory_db(tmp_path / "m.db")),
        PromptBuilder(count_tokens=backend.count_tokens),
        GREEDY,
        **kw,
    )


def test_the_default_model_answers_in_plain_words(qwen, tmp_path: Path) -> None:
    streamed: list[str] = []
    trace = agent(qwen, tmp_path).run("What is the capital of France?", on_text=streamed.append)
    assert trace.extra["protocol"] == HERMES.name
    assert trace.status == "ok" and leak_kind(trace.final_answer) is None, trace.final_answer
    assert "".join(streamed).strip()  # it was streamed as it was written


def test_a_notes_question_is_answered_from_the_passage_in_one_call(qwen, tmp_path: Path) -> None:
    trace = agent(qwen, tmp_path, retriever=Notes()).run("What is my sourdough starter called?")
    assert leak_kind(trace.final_answer) is None, trace.final_answer
    assert "Clint" in trace.final_answer
    assert trace.extra["model_calls"] == 1
    assert trace.extra["sources"][0]["source"] == "notes/bread.md"


def test_a_tool_call_of_the_default_model_validates(qwen, tmp_path: Path) -> None:
    trace = agent(qwen, tmp_path).run("Use the calculator: what is 1234 multiplied by 5678?")
    assert leak_kind(trace.final_answer) is None, trace.final_answer
    calls = [s for s in trace.steps if s.tool_name]
    assert calls, "asked to use the calculator, it called no tool"
    for step in calls:  # whatever it called, the call was valid by the tool's schema
        if step.kind != "repeat":  # a repeated call is not run again: no outcome of its own
            assert step.tool_outcome["status"] not in ("invalid_arguments", "unknown_tool")
        schema = step.response_schema["tool_call"]
        jsonschema.validate({"name": step.tool_name, "arguments": step.tool_args}, schema)
    # and the model itself said the result in words (not the "Here is what I found" fallback)
    assert not trace.extra.get("empty_answer"), trace.final_answer
    assert "7006652" in trace.final_answer.replace(",", ""), trace.final_answer


def test_the_tiny_model_decides_then_answers_without_leaks(smollm, tmp_path: Path) -> None:
    trace = agent(smollm, tmp_path).run("Hello! What can you do for me?")
    assert trace.extra["protocol"] == DECIDE.name
    assert trace.status == "ok" and leak_kind(trace.final_answer) is None, trace.final_answer
