"""Scripted fakes for the engine Protocols (style.md item 1)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from models.chat import ChatResult, GenerationSettings, Message, TextCallback, ToolSpec
from models.gguf_info import ModelInfo

# A chat template that takes tools in the Hermes format (Qwen2.5's family): the agent talks
# to a scripted backend the way it talks to such a model.
HERMES_TEMPLATE = "{# scripted: renders tools; calls look like <tool_call>{...}</tool_call> #}"
CALL_OPEN, CALL_CLOSE = "<tool_call>\n", "\n</tool_call>"


def final(answer: str) -> str:
    """What a model says when it answers: the answer itself, as free text."""
    return answer


def call(tool: str, **arguments: Any) -> str:
    """What a model says when it calls a tool (the Hermes format)."""
    return CALL_OPEN + json.dumps({"name": tool, "arguments": arguments}) + CALL_CLOSE


def prompt_tokens(messages: list[Message]) -> int:
    return sum(len(str(m.get("content") or "").split()) + 4 for m in messages)


@dataclass
class ScriptedBackend:
    """Returns queued outputs in order and records every request it was given."""

    outputs: list[str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    context: int = 4096
    cancel_after_chars: int | None = None  # simulate a user pressing Stop mid-answer
    finish_reason: str = "stop"
    chat_template: str = HERMES_TEMPLATE
    _pending: str | None = None  # the rest of a tool call, for the constrained continuation

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("scripted", "scripted", "fake", 0, "none", self.context, 0, "0" * 64)

    @property
    def context_size(self) -> int:
        return self.context

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_prompt_tokens(
        self, messages: list[Message], tools: list[ToolSpec] | None = None
    ) -> int:
        return prompt_tokens(messages) + (len(json.dumps(tools).split()) if tools else 0)

    def chat(
        self,
        messages: list[Message],
        settings: GenerationSettings,
        *,
        response_schema: dict[str, Any] | None = None,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
        tools: list[ToolSpec] | None = None,
        prefix: str = "",
        text_only: bool = False,
    ) -> ChatResult:
        self.requests.append(
            {
                "messages": [dict(m) for m in messages],
                "schema": response_schema,
                "settings": settings,
                "tools": tools,
                "prefix": prefix,
                "text_only": text_only,
            }
        )
        if prefix and self._pending is not None:
            text, self._pending = self._pending, None  # the call, continued under its schema
        else:
            if not self.outputs:
                raise AssertionError("the scripted backend ran out of outputs")
            text = self.outputs.pop(0)
            if CALL_OPEN.strip() in text:
                rest = text.split(CALL_OPEN.strip(), 1)[1].lstrip("\n")
                self._pending = rest.split(CALL_CLOSE.strip(), 1)[0].rstrip("\n")
        sent: list[str] = []
        finish = self.finish_reason
        for i, ch in enumerate(text):  # stream character by character
            if self.cancel_after_chars is not None and i == self.cancel_after_chars and cancel:
                cancel.set()
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                break
            sent.append(ch)
            if on_text is not None:
                on_text(ch)
        out = "".join(sent)
        return ChatResult(
            text=out,
            prompt_tokens=self.count_prompt_tokens(messages, tools),
            completion_tokens=len(out.split()),
            finish_reason=finish,
            duration_ms=1.0,
            first_token_ms=0.5,
        )

    def close(self) -> None:
        pass
