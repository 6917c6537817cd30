from __future__ import annotations

import json

import jsonschema
import pytest

from agent_core.actions import ActionError, AnswerStream, action_schema, parse_action
from tools.base import Risk, Tool


def test_schema_accepts_answers_and_known_calls_only() -> None:
    tool = Tool(
        "greet",
        "Say hi.",
        {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        Risk.READ,
        lambda name: f"hi {name}",
    )
    schema = action_schema([tool])
    jsonschema.validate({"action": "final_answer", "answer": "x"}, schema)
    jsonschema.validate(
        {"action": "call_tool", "tool": "greet", "arguments": {"name": "a"}}, schema
    )
    for bad in (
        {"action": "call_tool", "tool": "other", "arguments": {}},
        {"action": "call_tool", "tool": "greet", "arguments": {}},
        {"action": "final_answer"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"action": "dance"}', '"action" must be'),
        ('{"action": "final_answer", "answer": 3}', "as a string"),
        ('{"action": "call_tool"}', '"tool"'),
    ],
)
def test_parse_action_rejects_with_a_message_for_the_model(text: str, message: str) -> None:
    with pytest.raises(ActionError, match=message):
        parse_action(text)


def test_answer_stream_decodes_escapes_split_across_pieces() -> None:
    answer = 'Line one\nTab\there "quoted" \\ back é \u2603'
    raw = json.dumps({"action": "final_answer", "answer": answer})
    stream = AnswerStream()
    out = "".join(stream.feed(raw[i : i + 3]) for i in range(0, len(raw), 3))
    assert out == answer == stream.answer


def test_answer_stream_ignores_tool_calls() -> None:
    stream = AnswerStream()
    raw = json.dumps({"action": "call_tool", "tool": "t", "arguments": {"answer": "no"}})
    assert stream.feed(raw) == ""
