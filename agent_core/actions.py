"""What the model may say on each turn, as a JSON Schema, and how we read it back.

Every model turn is one JSON object constrained by :func:`action_schema` (a grammar in
llama.cpp), so even a 135M model cannot produce an unparseable action. A scripted backend or a
remote server can still send anything, so :func:`parse_action` never trusts the text.
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


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class AnswerStream:
    """Pulls the text of ``"answer"`` out of a final-answer action while it is generated,
    so a person sees the answer stream word by word instead of raw JSON."""

    def __init__(self) -> None:
        self.raw = ""
        self._pos = -1  # index in raw of the next unread answer character; -1: not found yet
        self._done = False
        self.answer = ""

    def feed(self, piece: str) -> str:
        """Add raw model output; return the new answer text it completes (may be empty)."""
        self.raw += piece
        if self._done:
            return ""
        if self._pos < 0:
            if f'"{FINAL}"' not in self.raw:
                return ""
            key = self.raw.find('"answer"')
            if key < 0:
                return ""
            colon = self.raw.find(":", key + 8)
            quote = self.raw.find('"', colon + 1) if colon >= 0 else -1
            if quote < 0:
                return ""
            self._pos = quote + 1
        out: list[str] = []
        i = self._pos
        while i < len(self.raw):
            ch = self.raw[i]
            if ch == '"':
                self._done = True
                i += 1
                break
            if ch == "\\":
                if i + 1 >= len(self.raw):
                    break  # wait for the rest of the escape
                nxt = self.raw[i + 1]
                if nxt == "u":
                    if i + 6 > len(self.raw):
                        break
                    try:
                        out.append(chr(int(self.raw[i + 2 : i + 6], 16)))
                    except ValueError:
                        out.append(self.raw[i : i + 6])
                    i += 6
                    continue
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        self._pos = i
        text = "".join(out)
        self.answer += text
        return text
