"""The conversation protocols: free-text answers, structured tool calls, one per family."""

from __future__ import annotations

import json
import threading
from typing import Any

import jsonschema
import pytest

from agent_core.actions import CALL, FINAL, ActionError, parse_action
from agent_core.protocols import (
    DECIDE,
    HERMES,
    LLAMA3,
    MISTRAL,
    NativeToolCalls,
    parse_raw,
    protocol_for,
)
from models.chat import GenerationSettings
from tests.fakes import ScriptedBackend, call
from tools.base import Risk, Tool

GREET = Tool(
    "greet",
    "Say hi.",
    {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    Risk.READ,
    lambda name: f"hi {name}",
)
SETTINGS = GenerationSettings(temperature=0)

# Fragments of real chat templates, enough to tell the families apart.
QWEN25 = "{%- if tools %}...<tools>...{{- '<tool_call>\\n{\"name\": ' }}...</tool_call>"
MISTRAL_T = "{%- if tools %}[AVAILABLE_TOOLS]...[TOOL_CALLS]..."
LLAMA31 = "{%- if tools %}Environment: ipython...<|python_tag|>..."
SMOLLM2 = "{% for message in messages %}<|im_start|>{{ message['role'] }}..."


@pytest.mark.parametrize(
    ("template", "expected"),
    [(QWEN25, HERMES), (MISTRAL_T, MISTRAL), (LLAMA31, LLAMA3), (SMOLLM2, DECIDE), ("", DECIDE)],
)
def test_the_protocol_follows_the_chat_template(template: str, expected: Any) -> None:
    assert protocol_for(template) is expected


def test_a_protocol_can_be_chosen_by_name() -> None:
    assert protocol_for(QWEN25, "decide") is DECIDE
    with pytest.raises(ValueError, match="Unknown conversation protocol"):
        protocol_for("", "json-envelope")


@pytest.mark.parametrize("protocol", [HERMES, MISTRAL, LLAMA3])
def test_native_calls_render_and_parse_back(protocol: NativeToolCalls) -> None:
    raw = protocol.render_call("greet", {"name": "Ann"})
    action = protocol.parse(raw)
    assert (action.kind, action.tool, action.arguments) == (CALL, "greet", {"name": "Ann"})
    assert parse_raw(raw).tool == "greet"
    schema = protocol.call_schema([GREET])
    body = json.loads(raw[len(protocol.call_prefix) :].removesuffix(protocol.closing))
    jsonschema.validate(body, schema)


def test_a_plain_reply_is_the_answer_without_protocol_tags() -> None:
    assert HERMES.parse("Paris is the capital.</tool_call>").answer == "Paris is the capital."
    assert parse_raw("Hello there").kind == FINAL


def test_old_json_actions_still_parse() -> None:
    old = json.dumps({"action": "final_answer", "answer": "France"})
    assert parse_raw(old).answer == "France"
    with pytest.raises(ActionError, match="not valid JSON"):
        parse_action("nope")


def test_hermes_answer_streams_freely_in_one_call() -> None:
    backend = ScriptedBackend(["The capital of France is Paris."])
    seen: list[str] = []
    reply = HERMES.turn(
        backend,
        [{"role": "user", "content": "?"}],
        [GREET],
        SETTINGS,
        allow_tools=True,
        on_text=seen.append,
    )
    assert reply.action is not None and reply.action.answer == "The capital of France is Paris."
    assert "".join(seen) == "The capital of France is Paris."
    assert len(backend.requests) == 1 and backend.requests[0]["schema"] is None
    assert backend.requests[0]["tools"][0]["function"]["name"] == "greet"


def test_hermes_call_is_continued_under_the_schema_and_never_shown() -> None:
    backend = ScriptedBackend([call("greet", name="Ann")])
    seen: list[str] = []
    reply = HERMES.turn(
        backend,
        [{"role": "user", "content": "hi Ann"}],
        [GREET],
        SETTINGS,
        allow_tools=True,
        on_text=seen.append,
    )
    assert reply.action is not None
    assert (reply.action.tool, reply.action.arguments) == ("greet", {"name": "Ann"})
    assert "".join(seen) == ""  # nothing of the call reaches the person
    _first, second = backend.requests
    assert second["prefix"].endswith("<tool_call>\n")
    assert second["schema"] == HERMES.call_schema([GREET])
    assert len(reply.results) == 2


def test_a_call_when_only_an_answer_is_allowed_ends_the_answer_there() -> None:
    # What came before the call is the answer; the call is neither run nor shown.
    backend = ScriptedBackend(["It is 5. " + call("greet", name="Ann")])
    seen: list[str] = []
    reply = HERMES.turn(
        backend,
        [{"role": "user", "content": "x"}],
        [GREET],
        SETTINGS,
        allow_tools=False,
        on_text=seen.append,
    )
    assert reply.action is not None and reply.action.kind == FINAL
    assert reply.action.answer == "It is 5." and "".join(seen).strip() == "It is 5."
    assert len(backend.requests) == 1


def test_marks_before_a_bare_call_mid_reply_are_never_shown() -> None:
    backend = ScriptedBackend(['>{"name": "greet", "arguments": {"name": "Ann"}}'])
    seen: list[str] = []
    reply = HERMES.turn(
        backend,
        [{"role": "user", "content": "x"}],
        [GREET],
        SETTINGS,
        allow_tools=False,
        on_text=seen.append,
    )
    assert "".join(seen) == "" and reply.action is not None and reply.action.answer == ""


def test_stop_during_a_hermes_answer_cancels() -> None:
    cancel = threading.Event()
    backend = ScriptedBackend(["a long answer here"], cancel_after_chars=3)
    reply = HERMES.turn(
        backend, [{"role": "user", "content": "x"}], [], SETTINGS, allow_tools=False, cancel=cancel
    )
    assert reply.cancelled and reply.action is None


def test_decide_then_answer_makes_a_decision_then_streams_free_text() -> None:
    backend = ScriptedBackend(['{"tool": "none"}', "Hello Ann!"], chat_template="")
    seen: list[str] = []
    reply = DECIDE.turn(
        backend,
        [{"role": "user", "content": "hi"}],
        [GREET],
        SETTINGS,
        allow_tools=True,
        on_text=seen.append,
    )
    assert reply.action is not None and reply.action.answer == "Hello Ann!"
    assert "".join(seen) == "Hello Ann!"
    decision, answer = backend.requests
    assert decision["schema"] == DECIDE.decision_schema([GREET]) and answer["schema"] is None
    jsonschema.validate({"tool": "greet", "arguments": {"name": "x"}}, decision["schema"])
    assert DECIDE.parse(reply.raw).answer == "Hello Ann!"


def test_decide_calls_a_tool_from_its_decision() -> None:
    backend = ScriptedBackend(['{"tool": "greet", "arguments": {"name": "Bo"}}'], chat_template="")
    reply = DECIDE.turn(
        backend, [{"role": "user", "content": "hi"}], [GREET], SETTINGS, allow_tools=True
    )
    assert reply.action is not None and reply.action.tool == "greet"
    assert len(backend.requests) == 1


def test_no_prompt_holds_a_placeholder_a_model_could_copy() -> None:
    from agent_core.prompting import load_template

    for name in ("system.txt", "passages.txt", "tools.txt", "facts.txt", "workflows.txt"):
        text = load_template(name)
        assert "<your" not in text and '"action"' not in text, name


@pytest.mark.parametrize(
    "reply",
    ['{"name": "greet", "arguments": {"name": "Ann"}}', '```json\n{"name": "greet"}\n```'],
)
def test_a_bare_json_call_is_taken_as_a_call_and_never_shown(reply: str) -> None:
    # Small Qwen models often write the call without its <tool_call> tags: it is generated
    # again under the schema, in the model's own format, and none of it is shown.
    continued = '{"name": "greet", "arguments": {"name": "Ann"}}'
    backend = ScriptedBackend([reply, continued])
    seen: list[str] = []
    result = HERMES.turn(
        backend,
        [{"role": "user", "content": "hi"}],
        [GREET],
        SETTINGS,
        allow_tools=True,
        on_text=seen.append,
    )
    assert "".join(seen) == ""
    assert backend.requests[1]["prefix"] == "<tool_call>\n"
    assert result.action is not None and result.action.arguments == {"name": "Ann"}
    assert result.raw.startswith("<tool_call>\n{")


def test_text_that_only_looks_like_a_call_at_first_is_shown_whole() -> None:
    backend = ScriptedBackend(["{Braces} are fine here."])
    seen: list[str] = []
    reply = HERMES.turn(
        backend,
        [{"role": "user", "content": "x"}],
        [GREET],
        SETTINGS,
        allow_tools=True,
        on_text=seen.append,
    )
    assert "".join(seen) == "{Braces} are fine here."
    assert reply.action is not None and reply.action.kind == FINAL


def test_an_answer_only_turn_parses_back_whatever_it_looks_like() -> None:
    # A turn that could only answer has no decision: JSON-looking text is the answer.
    assert DECIDE.parse('{"a": 1} is JSON', allow_tools=False).answer == '{"a": 1} is JSON'
    assert DECIDE.parse("", allow_tools=False).answer == ""


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        ('>{"name": "read_file", "arguments": {"path": "x"}}', ""),
        ('It is 5. {"name": "calculator", "arguments": {"expression": "2+3"}}', "It is 5."),
        ('{"name": "list_folder", "arguments": {"path"', ""),  # cut off mid-way
        ('Here you go: {"name": "Ann", "age": 3}', 'Here you go: {"name": "Ann", "age": 3}'),
    ],
)
def test_a_call_written_into_an_answer_never_reaches_the_person(said: str, shown: str) -> None:
    assert HERMES.parse(said).answer == shown


def test_a_decision_written_into_an_answer_never_reaches_the_person() -> None:
    assert DECIDE.parse('{"tool": "none"}\n{"tool": "calculator", "arguments": {}} 5').answer == "5"
    assert HERMES.parse('{"tool": "none"}').answer == ""


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ('{"tool": "calculator", "arguments": {"expression": "17*23"}}', ""),
        ('It is 391. {"tool": "none"}', "It is 391. "),
        ('```json\n{"tool": "none"}\n```', ""),
        ("Use {braces} in Python sets.", "Use {braces} in Python sets."),
    ],
)
def test_a_decision_written_again_as_the_answer_never_streams(written: str, shown: str) -> None:
    """SmolLM2 through llama-cpp-python's server wrote its decision's JSON again as its
    answer, and it streamed to the person before it was cleaned away."""
    backend = ScriptedBackend(['{"tool": "none"}', written], chat_template="")
    seen: list[str] = []
    reply = DECIDE.turn(
        backend, [{"role": "user", "content": "hi"}], [GREET], SETTINGS,
        allow_tools=True, on_text=seen.append,
    )  # fmt: skip
    assert "".join(seen) == shown
    assert reply.action is not None and reply.action.answer == shown.strip()
    assert backend.requests[1]["text_only"] is True  # a local model is held to text too
