"""Fakes for the learning tests: a deterministic embedder and a prompt-sensitive backend."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent_core.prompting import VerifiedFact
from models.chat import ChatResult, GenerationSettings, Message, TextCallback, ToolSpec
from models.errors import JackdawError
from models.gguf_info import ModelInfo
from tests.fakes import HERMES_TEMPLATE, call, final, prompt_tokens

_STOP = {"a", "an", "the", "is", "are", "was", "of", "to", "in", "on", "for", "my", "me"}
_STOP |= {"what", "which", "who", "how", "do", "does", "tell"}


class WordsEmbedder:
    """Hashed bag of content words: questions sharing their words are similar, and the same
    question (any case, spacing or punctuation) is identical."""

    def __init__(self, dimension: int = 256) -> None:
        self._dimension = dimension
        self.embedded: list[str] = []
        self.lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return "fake-words-v1"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return 512

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                if word in _STOP:
                    continue
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self._dimension] += 1.0
            out[row, 0] += 0.05
            out[row] /= np.linalg.norm(out[row])
        with self.lock:
            self.embedded.extend(texts)
        return out


def cosine(embedder: WordsEmbedder, a: str, b: str) -> float:
    va, vb = embedder.embed([a, b])
    return float(va @ vb)


@dataclass
class ExemplarBackend:
    """A "model" whose answers depend on its prompt: it answers a question with the answer
    an exemplar ("Q: ...\\nA: ...") or a verified fact in its prompt gives for it, and "I do
    not know." otherwise. Enough to tell a good prompt version from a bad one."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_after: int | None = None  # raise on the N+1th call (a crash mid-refinement)
    chat_template: str = HERMES_TEMPLATE

    @property
    def info(self) -> ModelInfo:
        return ModelInfo("exemplar", "exemplar", "fake", 0, "none", 4096, 0, "0" * 64)

    @property
    def context_size(self) -> int:
        return 4096

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_prompt_tokens(
        self, messages: list[Message], tools: list[ToolSpec] | None = None
    ) -> int:
        return prompt_tokens(messages)

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
        if self.fail_after is not None and len(self.requests) >= self.fail_after:
            raise RuntimeError("the model crashed")
        self.requests.append({"messages": messages, "settings": settings, "tools": tools})
        asked = messages[-1]["content"].split("\n\nVerified facts")[0]  # the facts come last
        question = asked.strip().splitlines()[-1].strip().lower()
        system = messages[0]["content"]
        answer = "I do not know."
        for q, a in re.findall(r"^Q: (.*)\nA: (.*)$", system, re.MULTILINE):
            if q.strip().lower() == question:
                answer = a.strip()
        text = final(answer)
        if on_text is not None:
            on_text(text)
        return ChatResult(text, self.count_prompt_tokens(messages), 3, "stop", 1.0, 0.5)

    def close(self) -> None:
        pass


def outputs_json(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [call(t, **a) for t, a in calls]


class FakeJudge:
    """Says yes to the learnt questions in ``yes``; records what it was asked."""

    def __init__(self, yes: set[str], fail: bool = False) -> None:
        self.yes = yes
        self.fail = fail
        self.asked: list[tuple[str, str]] = []

    def same_need(self, question: str, fact: VerifiedFact) -> tuple[bool, dict[str, Any]]:
        self.asked.append((question, fact.question))
        if self.fail:
            raise JackdawError("The judge's model file is gone.")
        return fact.question in self.yes, {"purpose": "same_need", "model": "judge-model"}
