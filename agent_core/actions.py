"""An action of the agent: the final answer, or a call of a tool with its arguments.

How a model *says* an action is its conversation protocol's business (agent_core/protocols.py:
free text for answers, a schema-constrained call for tools). :func:`parse_action` reads the
JSON actions of traces recorded before free-text answers; :func:`action_schema` is that old
JSON form, kept for reading such traces and as a representative schema in tests.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from tools.base import Tool

FINAL = "final_answer"
CALL = "call_tool"


def action_schema(tools: list[Tool]) -> dict[str, Any]:
    """Either a final answer or a call of one of ``tools`` with arguments of its schema."""
    final = {
        "type": "object",
        "properties": {"action": {"const": FINAL}, "answer": {"type": "string"}},
        "required": ["action", "answer"],
        "additionalProperties": False,
    }
    calls = [
        {
            "type": "object",
            "properties": {
                "action": {"const": CALL},
                "tool": {"const": tool.name},
                "arguments": tool.parameters,
            },
            "required": ["action", "tool", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    return {"anyOf": [final, *calls]} if calls else final


@dataclass(frozen=True)
class Action:
    kind: str  # final_answer | call_tool
    answer: str = ""
    tool: str = ""
    arguments: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Action:
        return cls(**data)


class ActionError(ValueError):
    """The model's reply is not a usable action; the message is fed back to the model."""


def parse_action(text: str) -> Action:
    try:
        # Grammar-constrained output may hold raw newlines inside strings: accept them.
        data = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise ActionError(
            f"Your reply was not valid JSON ({exc.msg}). Reply with one JSON object."
        ) from None
    if not isinstance(data, dict):
        raise ActionError("Your reply must be a JSON object.")
    kind = data.get("action")
    if kind == FINAL:
        answer = data.get("answer")
        if not isinstance(answer, str):
            raise ActionError('A final answer needs "answer" as a string.')
        return Action(FINAL, answer=answer)
    if kind == CALL:
        tool = data.get("tool")
        if not isinstance(tool, str) or not tool:
            raise ActionError('A tool call needs "tool" with the name of a tool.')
        return Action(CALL, tool=tool, arguments=data.get("arguments", {}))
    raise ActionError(f'"action" must be "{FINAL}" or "{CALL}".')
