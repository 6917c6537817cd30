"""Scripted fakes for the engine Protocols (style.md item 1)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from models.chat import ChatResult, GenerationSettings, Message, TextCallback
from models.gguf_info import ModelInfo


def final(answer: str) -> str:
    return json.dumps({"action": "final_answer", "answer": answer})


def call(tool: str, **arguments: Any) -> str:
    return json.dumps({"action": "call_tool", "tool": tool, "arguments": arguments})


@dataclass
class ScriptedBackend:
    """Returns queued outputs in order and records every request it was given."""

    outputs: list[str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    context: int = 4096
    cancel_after_chars: int | None = None  # simulate a user pressing Stop mid-answer
    finish_reason: str = "stop"

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("scripted", "scripted", "fake", 0, "none", self.context, 0, "0" * 64)

    @property
    def context_size(self) -> int:
        return self.context

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def chat(
        self,
        messages: list[Message],
        settings: GenerationSettings,
        *,
        response_schema: dict[str, Any] | None = None,
        on_text: TextCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> ChatResult:
        self.requests.append(
            {
                "messages": [dict(m) for m in messages],
                "schema": response_schema,
                "settings": settings,
            }
        )
        if not self.outputs:
            raise AssertionError("the scripted backend ran out of outputs")
        text = self.outputs.pop(0)
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
            prompt_tokens=self.count_prompt_tokens(messages),
            completion_tokens=len(out.split()),
            finish_reason=finish,
            duration_ms=1.0,
            first_token_ms=0.5,
        )

    def close(self) -> None:
        pass
