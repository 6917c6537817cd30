"""The seam between the agent and whatever generates text: the ``ChatBackend`` Protocol."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from models.gguf_info import ModelInfo

# OpenAI-shaped: {"role": "system" | "user" | "assistant" | "tool", "content": ...}; an assistant
# message that calls tools also carries "tool_calls" (the chat template renders them).
Message = dict[str, Any]
ToolSpec = dict[str, Any]  # {"type": "function", "function": {"name", "description", "parameters"}}
TextCallback = Callable[[str], None]


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings; recorded on every step so a run can be replayed exactly."""

    temperature: float = 0.2
    seed: int = 42
    max_tokens: int = 512
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationSettings:
        return cls(**data)


@dataclass(frozen=True)
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop | length | cancelled
    duration_ms: float
    first_token_ms: float
    prompt: str = ""  # the exact text the model saw, when the backend formats it itself
    reused_prompt_tokens: int = 0  # not read again: held from the last call or a saved state

    @property
    def cancelled(self) -> bool:
        return self.finish_reason == "cancelled"

    @property
    def tokens_per_second(self) -> float:
        generating = (self.duration_ms - self.first_token_ms) / 1000
        return self.completion_tokens / generating if generating > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class ChatBackend(Protocol):
    """Chat completion over OpenAI-shaped messages.

    ``chat`` always streams internally: ``on_text`` receives each new piece of text, and
    ``cancel`` is checked between tokens; a cancelled generation returns what it had with
    ``finish_reason == "cancelled"`` (cancellation is honoured while the prompt is read, too).
    With ``response_schema`` the output is constrained to JSON matching that schema (a
    grammar), so it always parses. ``tools`` are OpenAI-shaped tool specs handed to the chat
    template (for templates that support tools). ``prefix`` is text the assistant's reply
    already starts with: the output continues it (and does not repeat it). ``text_only``
    holds the reply to plain text: it cannot start like JSON or markup (a tool call), where
    the backend can enforce that.
    """

    @property
    def chat_template(self) -> str:
        """The model's chat template (Jinja), or "" when it is not known (a remote server)."""
        ...

    @property
    def info(self) -> ModelInfo: ...

    @property
    def context_size(self) -> int: ...

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
    ) -> ChatResult: ...

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer."""
        ...

    def count_prompt_tokens(
        self, messages: list[Message], tools: list[ToolSpec] | None = None
    ) -> int:
        """Tokens of the whole formatted prompt (chat template and tool specs included)."""
        ...

    def close(self) -> None: ...
